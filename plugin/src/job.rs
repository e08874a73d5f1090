//! One `complete()` call from start to `on_done`: send, read the answer
//! (stream or whole), emit parts, bill, and build the final result.

use std::io::Read;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::cancel::CancelToken;
use crate::catalog::{self, ModelCard};
use crate::client::{self, Client};
use crate::config::Config;
use crate::error::{ErrorKind, ProviderError};
use crate::metering::{self, Usage};
use crate::request::Prepared;
use crate::sse::{SseDecoder, SseError};
use crate::stream::{Flow, Part, PartSink, ToolCall, Turn};
use crate::{media, tools};

/// Longest SSE line we buffer; a chunk is a few hundred bytes.
const MAX_SSE_LINE: usize = 16 * 1024 * 1024;
/// Per open stream, like the agent's buffers (client.rs). Reads copy out of
/// ureq's input buffer, so a small one costs calls, not syscalls.
const READ_BUFFER: usize = 4 * 1024;

/// How a request failed, with what it had received by then.
#[derive(Debug)]
pub struct Failure {
    pub error: ProviderError,
    pub partial: Option<Value>,
}

impl Failure {
    pub fn new(error: ProviderError, partial: Option<Value>) -> Box<Failure> {
        Box::new(Failure { error, partial })
    }
}

/// The answer as it accumulates over the rounds of a web-search loop.
#[derive(Default)]
struct Answer {
    content: String,
    reasoning: String,
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<String>,
    /// The model the last response named.
    model: Option<String>,
    usage: Usage,
    rounds: u32,
    request_id: Option<String>,
    extra_choices: Vec<Value>,
}

impl Answer {
    fn absorb(&mut self, turn: &mut Turn) {
        self.content.push_str(&turn.content);
        self.reasoning.push_str(&turn.reasoning);
        self.tool_calls = std::mem::take(&mut turn.tool_calls);
        self.finish_reason = turn.finish_reason.take().or(self.finish_reason.take());
        self.model = turn.model.take().or(self.model.take());
        self.extra_choices = std::mem::take(&mut turn.extra_choices);
    }

    fn received_anything(&self) -> bool {
        !self.content.is_empty() || !self.reasoning.is_empty() || !self.tool_calls.is_empty()
    }

    /// Bytes counted against `max_answer_bytes`.
    fn bytes(&self) -> usize {
        let arguments: usize = self.tool_calls.iter().map(|c| c.arguments.len()).sum();
        self.content.len() + self.reasoning.len() + arguments
    }
}

/// Runs a prepared request to its end. Parts go to `sink` as they arrive;
/// the return value is the final result or the error plus what was received.
/// What is left of a stream's body lands in `leftover`, for the caller to
/// drain once the host has its result.
pub fn run(
    prepared: &Prepared,
    config: &Config,
    client: &Client,
    cancel: &CancelToken,
    sink: &mut dyn PartSink,
    leftover: &mut Option<Leftover>,
) -> Result<Value, Box<Failure>> {
    let deadline = Instant::now() + config.timeouts.total;
    let mut guard = StopGuard {
        inner: sink,
        cancel,
        stopped: false,
    };
    let mut answer = Answer::default();
    if let Some(prefix) = prepared
        .partial_prefix
        .as_deref()
        .filter(|p| !p.is_empty() && prepared.stream)
    {
        guard.part(&Part::Text { text: prefix }.to_json());
    }

    let outcome = converse(
        prepared,
        config,
        client,
        cancel,
        deadline,
        &mut guard,
        &mut answer,
        leftover,
    );
    // A bill that cannot be made (overflow) fails the request: never a wrong bill.
    match outcome.and_then(|()| bill(prepared, config, &answer)) {
        Ok(bill) => {
            let usage = metering::usage_json(&answer.usage, &bill);
            if prepared.stream {
                for call in &answer.tool_calls {
                    let input = call.input();
                    guard.part(
                        &Part::ToolUse {
                            id: &call.id,
                            name: &call.name,
                            input: &input,
                        }
                        .to_json(),
                    );
                }
                guard.part(&Part::Usage { usage: &usage }.to_json());
            }
            if guard.stopped {
                let partial = result_json(prepared, &answer, usage, false);
                let err = ProviderError {
                    request_id: answer.request_id.clone(),
                    ..ProviderError::cancelled()
                };
                return Err(Failure::new(err, Some(partial)));
            }
            Ok(result_json(prepared, &answer, usage, true))
        }
        Err(err) => {
            let mut err = if cancel.is_cancelled() || guard.stopped {
                ProviderError {
                    request_id: err.request_id,
                    ..ProviderError::cancelled()
                }
            } else {
                err
            };
            // An error after a response (a later search round, a cancel)
            // still names the request Moonshot saw.
            err.request_id = err.request_id.or_else(|| answer.request_id.clone());
            answer.request_id.clone_from(&err.request_id);
            let partial = answer.received_anything().then(|| {
                let usage = bill(prepared, config, &answer)
                    .map(|bill| metering::usage_json(&answer.usage, &bill))
                    .unwrap_or(Value::Null);
                result_json(prepared, &answer, usage, false)
            });
            Err(Failure::new(err, partial))
        }
    }
}

/// Sends the request and, while the answer is a `$web_search` call, runs
/// Moonshot's search round trip: echo the call's arguments as the tool
/// message and ask again (MOONSHOT-API.md §5).
#[allow(clippy::too_many_arguments)]
fn converse(
    prepared: &Prepared,
    config: &Config,
    client: &Client,
    cancel: &CancelToken,
    deadline: Instant,
    guard: &mut StopGuard,
    answer: &mut Answer,
    leftover: &mut Option<Leftover>,
) -> Result<(), ProviderError> {
    let mut body = prepared.body.clone();
    media::inline_all(
        &mut body,
        &prepared.remote_media,
        client,
        cancel,
        deadline,
        &config.media,
    )?;
    loop {
        // Finish the previous round's body so its connection serves this one.
        if let Some(previous) = leftover.take() {
            previous.drain();
        }
        answer.rounds += 1;
        // The answer's byte cap holds across all rounds together.
        let mut turn = Turn::with_budget(config.max_answer_bytes.saturating_sub(answer.bytes()));
        let round = one_round(
            &body, prepared, config, client, cancel, deadline, &mut turn, guard,
        );
        let usage = match turn.usage() {
            Some(usage) if round.is_ok() || usage.prompt_tokens > 0 => Some(usage),
            // Nothing came (a refused request): nothing to bill.
            _ if round.is_err() && !turn.received_anything() => None,
            _ => Some(estimate(&body, &turn, client, cancel, deadline)),
        };
        let added = usage.map_or(Ok(()), |usage| answer.usage.add(&usage));
        let said = (turn.content.clone(), turn.reasoning.clone());
        answer.absorb(&mut turn);
        (answer.request_id, *leftover) = round?;
        added?;
        if guard.stopped || cancel.is_cancelled() {
            return Err(ProviderError::cancelled());
        }
        let (searches, calls): (Vec<ToolCall>, Vec<ToolCall>) =
            std::mem::take(&mut answer.tool_calls)
                .into_iter()
                .partition(|c| c.name == tools::WEB_SEARCH);
        answer.tool_calls = calls;
        let searching = prepared.web_search
            && answer.finish_reason.as_deref() == Some("tool_calls")
            && !searches.is_empty()
            && answer.tool_calls.is_empty();
        if !searching {
            // A user tool call ends the turn; searches asked beside it are dropped.
            return Ok(());
        }
        answer.usage.web_search_calls += searches.len() as u64;
        if answer.rounds >= config.web_search.max_rounds {
            return Err(ProviderError::new(
                ErrorKind::Upstream,
                format!(
                    "web search did not finish within {} rounds",
                    config.web_search.max_rounds
                ),
            )
            .with_code("web_search_rounds_exceeded"));
        }
        append_search_round(&mut body, prepared.thinking_on, &said, &searches);
    }
}

/// Appends the search call (with what the round said before it, usually
/// nothing) and the tool messages echoing each call's arguments.
fn append_search_round(
    body: &mut Map<String, Value>,
    thinking_on: bool,
    (content, reasoning): &(String, String),
    searches: &[ToolCall],
) {
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    let mut assistant = json!({
        "role": "assistant",
        "tool_calls": searches.iter().map(ToolCall::to_openai).collect::<Vec<_>>(),
    });
    if !content.is_empty() {
        assistant["content"] = json!(content);
    }
    if thinking_on || !reasoning.is_empty() {
        assistant["reasoning_content"] = json!(reasoning);
    }
    messages.push(assistant);
    for call in searches {
        messages.push(json!({
            "role": "tool",
            "tool_call_id": call.id,
            "name": tools::WEB_SEARCH,
            "content": call.arguments,
        }));
    }
}

/// One request/response with Moonshot; returns its request id and, for a
/// stream, what is left of its body after `[DONE]`.
#[allow(clippy::too_many_arguments)]
fn one_round(
    body: &Map<String, Value>,
    prepared: &Prepared,
    config: &Config,
    client: &Client,
    cancel: &CancelToken,
    deadline: Instant,
    turn: &mut Turn,
    guard: &mut StopGuard,
) -> Result<(Option<String>, Option<Leftover>), ProviderError> {
    let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::internal(e.to_string()))?;
    let upstream = client.post_json("/chat/completions", &bytes, cancel, deadline)?;
    let request_id = upstream.request_id.clone();
    let content_type = upstream
        .response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let read = if prepared.stream && content_type.starts_with("text/event-stream") {
        read_stream(upstream.response.into_body(), turn, guard, cancel, config).map(Some)
    } else if prepared.stream {
        read_unstreamed(
            upstream.response.into_body(),
            &content_type,
            turn,
            guard,
            config,
        )
        .map(|()| None)
    } else {
        client::read_body_text(upstream.response.into_body(), &config.timeouts)
            .and_then(|text| turn.apply_completion(&text))
            .map(|()| None)
    };
    let leftover = read.map_err(|mut e| {
        e.request_id = e.request_id.take().or(request_id.clone());
        e
    })?;
    Ok((request_id, leftover))
}

/// Forwards parts until a callback says stop or the request is cancelled.
struct StopGuard<'a> {
    inner: &'a mut dyn PartSink,
    cancel: &'a CancelToken,
    stopped: bool,
}

impl PartSink for StopGuard<'_> {
    fn part(&mut self, json: &str) -> Flow {
        if self.stopped || self.cancel.is_cancelled() {
            return Flow::Stop;
        }
        if self.inner.part(json) == Flow::Stop {
            self.stopped = true;
            self.cancel.cancel();
            return Flow::Stop;
        }
        Flow::Continue
    }
}

/// What is left of a stream's body after `[DONE]`: usually just the end of
/// the chunked encoding. Reading it to the end returns the connection to
/// ureq's pool for the next request; dropping it closes the connection.
pub struct Leftover(ureq::BodyReader<'static>);

impl Leftover {
    /// Reads to the end (at most 1 MiB); the read timeouts still apply.
    pub fn drain(mut self) {
        let _ = std::io::copy(&mut (&mut self.0).take(1024 * 1024), &mut std::io::sink());
    }
}

fn read_stream(
    body: ureq::Body,
    turn: &mut Turn,
    sink: &mut StopGuard,
    cancel: &CancelToken,
    config: &Config,
) -> Result<Leftover, ProviderError> {
    let mut reader = body.into_reader();
    let mut decoder = SseDecoder::new(MAX_SSE_LINE);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut done = false;
    let mut failure: Option<ProviderError> = None;
    while !done {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if cancel.is_cancelled() => {
                let _ = e;
                return Err(ProviderError::cancelled());
            }
            Err(e) => {
                let err = client::io_error(e, &config.timeouts);
                if err.kind == ErrorKind::Timeout {
                    return Err(err);
                }
                // The response had started: a failed read is a cut stream.
                return Err(stream_cut(&format!(" ({})", err.message)));
            }
        };
        decoder
            .feed_ref(&buffer[..n], &mut |event| {
                if done || failure.is_some() {
                    return;
                }
                let data = event.data.trim();
                if data == "[DONE]" {
                    done = true;
                } else if !data.is_empty() {
                    if let Err(e) = turn.apply_chunk(data, sink) {
                        failure = Some(e);
                    }
                }
            })
            .map_err(sse_error)?;
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if sink.stopped || cancel.is_cancelled() {
            return Err(ProviderError::cancelled());
        }
    }
    if !done {
        decoder.finish();
        return Err(stream_cut(""));
    }
    Ok(Leftover(reader))
}

fn stream_cut(detail: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Transport,
        format!("the stream ended before Moonshot's [DONE]{detail}: the answer is incomplete"),
    )
    .with_code("stream_cut")
}

/// A streaming request answered with something other than an event stream:
/// a whole completion (some gateways ignore `stream`) is accepted and
/// replayed as parts; anything else is a protocol error.
fn read_unstreamed(
    body: ureq::Body,
    content_type: &str,
    turn: &mut Turn,
    sink: &mut StopGuard,
    config: &Config,
) -> Result<(), ProviderError> {
    let text = client::read_body_text(body, &config.timeouts)?;
    turn.apply_completion(&text).map_err(|_| {
        let shown = if content_type.is_empty() { "no content type" } else { content_type };
        ProviderError::new(
            ErrorKind::Protocol,
            format!("asked for a stream but upstream answered with {shown} that is not a chat completion"),
        )
    })?;
    if !turn.reasoning.is_empty() {
        sink.part(
            &Part::Reasoning {
                reasoning: &turn.reasoning,
            }
            .to_json(),
        );
    }
    if !turn.content.is_empty() {
        sink.part(
            &Part::Text {
                text: &turn.content,
            }
            .to_json(),
        );
    }
    Ok(())
}

fn sse_error(e: SseError) -> ProviderError {
    ProviderError::new(ErrorKind::Protocol, e.to_string())
}

/// The card that actually served: what the response names when it is in the
/// catalog (moonshot-v1-auto's tier), else what we asked for.
fn served_card(prepared: &Prepared, answer: &Answer) -> &'static ModelCard {
    let named = answer.model.as_deref().and_then(catalog::lookup);
    match named {
        Some(card) if card.id != prepared.card.id => card,
        _ => {
            // Auto without a named tier: price by the size the request had.
            if !prepared.card.auto_tiers.is_empty() {
                let max = prepared
                    .body
                    .get("max_completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(tier) = catalog::auto_tier(
                    prepared.card,
                    answer.usage.prompt_tokens.saturating_add(max),
                ) {
                    return tier;
                }
            }
            prepared.card
        }
    }
}

fn bill(
    prepared: &Prepared,
    config: &Config,
    answer: &Answer,
) -> Result<metering::Bill, ProviderError> {
    metering::bill(
        served_card(prepared, answer),
        &answer.usage,
        config.web_search.fee_ucents,
    )
}

/// Usage for a round Moonshot sent none for: prompt tokens from Moonshot's
/// tokenizer endpoint when it answers, else our estimate; output tokens
/// from what was received. Marked `estimated`.
fn estimate(
    body: &Map<String, Value>,
    turn: &Turn,
    client: &Client,
    cancel: &CancelToken,
    deadline: Instant,
) -> Usage {
    let messages = body.get("messages").cloned().unwrap_or(Value::Null);
    let asked = if cancel.is_cancelled() {
        None
    } else {
        client.estimate_prompt_tokens(
            body.get("model").cloned().unwrap_or(Value::Null),
            &messages,
            cancel,
            deadline,
        )
    };
    // A tokenizer answer beyond belief is not a count to bill.
    let asked = asked.filter(|&n| n <= metering::MAX_PLAUSIBLE_TOKENS);
    let prompt_tokens = asked.unwrap_or_else(|| metering::estimate_tokens(&messages.to_string()));
    let arguments: String = turn
        .tool_calls
        .iter()
        .map(|c| c.arguments.as_str())
        .collect();
    Usage {
        prompt_tokens,
        completion_tokens: metering::estimate_tokens(&turn.content)
            + metering::estimate_tokens(&turn.reasoning)
            + metering::estimate_tokens(&arguments),
        estimated: true,
        ..Usage::default()
    }
}

/// Puter's IChatMessageResult, plus what the host needs to explain it.
/// `complete` is false for the partial result of a failed request, whose
/// finish_reason stays null unless Moonshot sent one.
fn result_json(prepared: &Prepared, answer: &Answer, usage: Value, complete: bool) -> Value {
    let mut content = String::new();
    if let Some(prefix) = &prepared.partial_prefix {
        content.push_str(prefix);
    }
    content.push_str(&answer.content);
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(content));
    if !answer.reasoning.is_empty() {
        message.insert("reasoning".into(), json!(answer.reasoning));
        message.insert("reasoning_content".into(), json!(answer.reasoning));
    }
    if !answer.tool_calls.is_empty() {
        message.insert(
            "tool_calls".into(),
            Value::Array(answer.tool_calls.iter().map(|c| c.to_openai()).collect()),
        );
    }
    let served = served_card(prepared, answer);
    let mut result = json!({
        "message": Value::Object(message),
        "finish_reason": match (&answer.finish_reason, complete) {
            (Some(reason), _) => json!(reason),
            (None, true) => json!("stop"),
            (None, false) => Value::Null,
        },
        "usage": usage,
        "model": served.id,
    });
    if !answer.extra_choices.is_empty() {
        let first = json!({"index": 0, "message": result["message"].clone(), "finish_reason": result["finish_reason"].clone()});
        let mut choices = vec![first];
        choices.extend(answer.extra_choices.iter().cloned());
        result["choices"] = Value::Array(choices);
    }
    if let Some(from) = prepared.migrated_from {
        result["migrated_from"] = json!(from);
        result["migration_reason"] = json!(prepared.migration_reason);
    }
    if !prepared.adjustments.is_empty() {
        result["adjustments"] = json!(prepared.adjustments);
    }
    // Always present: null only when no response came (nothing to quote).
    result["request_id"] = json!(answer.request_id);
    result
}
