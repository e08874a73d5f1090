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
use crate::stream::{Flow, Part, PartSink, Turn};

/// Longest SSE line we buffer; a chunk is a few hundred bytes.
const MAX_SSE_LINE: usize = 16 * 1024 * 1024;
const READ_BUFFER: usize = 16 * 1024;

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

/// Runs a prepared request to its end. Parts go to `sink` as they arrive;
/// the return value is the final result or the error plus what was received.
pub fn run(
    prepared: &Prepared,
    config: &Config,
    client: &Client,
    cancel: &CancelToken,
    sink: &mut dyn PartSink,
) -> Result<Value, Box<Failure>> {
    let deadline = Instant::now() + config.timeouts.total;
    let body = serde_json::to_vec(&prepared.body)
        .map_err(|e| Failure::new(ProviderError::internal(e.to_string()), None))?;
    let mut turn = Turn::default();
    let mut guard = StopGuard {
        inner: sink,
        cancel,
        stopped: false,
    };

    if let Some(prefix) = prepared
        .partial_prefix
        .as_deref()
        .filter(|p| !p.is_empty() && prepared.stream)
    {
        guard.part(&Part::Text { text: prefix }.to_json());
    }

    let outcome = (|| {
        let upstream = client.post_json("/chat/completions", &body, cancel, deadline)?;
        let request_id = upstream.request_id.clone();
        let read = if prepared.stream {
            read_stream(
                upstream.response.into_body(),
                &mut turn,
                &mut guard,
                cancel,
                config,
            )
        } else {
            client::read_body_text(upstream.response.into_body(), &config.timeouts)
                .and_then(|text| turn.apply_completion(&text))
        };
        read.map_err(|mut e| {
            e.request_id = e.request_id.take().or(request_id.clone());
            e
        })?;
        if guard.stopped || cancel.is_cancelled() {
            return Err(ProviderError::cancelled());
        }
        Ok(request_id)
    })();

    match outcome {
        Ok(request_id) => {
            if prepared.stream {
                turn.emit_tool_calls(&mut guard);
            }
            let (usage_value, _) = bill_turn(prepared, config, &turn, false);
            if prepared.stream {
                guard.part(
                    &Part::Usage {
                        usage: &usage_value,
                    }
                    .to_json(),
                );
            }
            Ok(result_json(prepared, &turn, usage_value, request_id, true))
        }
        Err(err) => {
            let err = if cancel.is_cancelled() || guard.stopped {
                ProviderError::cancelled()
            } else {
                err
            };
            let partial = received_anything(&turn).then(|| {
                let (usage_value, _) = bill_turn(prepared, config, &turn, true);
                result_json(prepared, &turn, usage_value, None, false)
            });
            Err(Failure::new(err, partial))
        }
    }
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

fn read_stream(
    body: ureq::Body,
    turn: &mut Turn,
    sink: &mut StopGuard,
    cancel: &CancelToken,
    config: &Config,
) -> Result<(), ProviderError> {
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
            Err(e) => return Err(client::io_error(e, &config.timeouts)),
        };
        decoder
            .feed(&buffer[..n], &mut |event| {
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
        return Err(ProviderError::new(
            ErrorKind::Transport,
            "the stream ended before Moonshot's [DONE]: the answer is incomplete",
        )
        .with_code("stream_cut"));
    }
    Ok(())
}

fn sse_error(e: SseError) -> ProviderError {
    ProviderError::new(ErrorKind::Protocol, e.to_string())
}

fn received_anything(turn: &Turn) -> bool {
    !turn.content.is_empty() || !turn.reasoning.is_empty() || !turn.tool_calls.is_empty()
}

/// The card that actually served: what the response names when it is in the
/// catalog (moonshot-v1-auto's tier), else what we asked for.
fn served_card(prepared: &Prepared, turn: &Turn) -> &'static ModelCard {
    let named = turn.model.as_deref().and_then(catalog::lookup);
    match named {
        Some(card) if card.id != prepared.card.id => card,
        _ => {
            // Auto without a named tier: price by the size the request had.
            if !prepared.card.auto_tiers.is_empty() {
                let prompt: u64 = turn.usage().map(|u| u.prompt_tokens).unwrap_or(0);
                let max = prepared
                    .body
                    .get("max_completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(tier) = catalog::auto_tier(prepared.card, prompt + max) {
                    return tier;
                }
            }
            prepared.card
        }
    }
}

/// Usage as reported, or estimated from what was sent and received.
fn bill_turn(prepared: &Prepared, config: &Config, turn: &Turn, cut: bool) -> (Value, Usage) {
    let usage = match turn.usage() {
        Some(usage) if !cut || usage.prompt_tokens > 0 => usage,
        _ => estimate(prepared, turn),
    };
    let card = served_card(prepared, turn);
    let bill = metering::bill(card, &usage, config.web_search.fee_ucents);
    (metering::usage_json(&usage, &bill), usage)
}

fn estimate(prepared: &Prepared, turn: &Turn) -> Usage {
    let sent = prepared
        .body
        .get("messages")
        .map(|m| m.to_string())
        .unwrap_or_default();
    Usage {
        prompt_tokens: metering::estimate_tokens(&sent),
        completion_tokens: metering::estimate_tokens(&turn.content)
            + metering::estimate_tokens(&turn.reasoning),
        estimated: true,
        ..Usage::default()
    }
}

/// Puter's IChatMessageResult, plus what the host needs to explain it.
/// `complete` is false for the partial result of a failed request, whose
/// finish_reason stays null unless Moonshot sent one.
fn result_json(
    prepared: &Prepared,
    turn: &Turn,
    usage: Value,
    request_id: Option<String>,
    complete: bool,
) -> Value {
    let mut content = String::new();
    if let Some(prefix) = &prepared.partial_prefix {
        content.push_str(prefix);
    }
    content.push_str(&turn.content);
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(content));
    if !turn.reasoning.is_empty() {
        message.insert("reasoning".into(), json!(turn.reasoning));
        message.insert("reasoning_content".into(), json!(turn.reasoning));
    }
    if !turn.tool_calls.is_empty() {
        message.insert(
            "tool_calls".into(),
            Value::Array(turn.tool_calls.iter().map(|c| c.to_openai()).collect()),
        );
    }
    let served = served_card(prepared, turn);
    let mut result = json!({
        "message": Value::Object(message),
        "finish_reason": match (&turn.finish_reason, complete) {
            (Some(reason), _) => json!(reason),
            (None, true) => json!("stop"),
            (None, false) => Value::Null,
        },
        "usage": usage,
        "model": served.id,
    });
    if let Some(from) = prepared.migrated_from {
        result["migrated_from"] = json!(from);
        result["migration_reason"] = json!(prepared.migration_reason);
    }
    if !prepared.adjustments.is_empty() {
        result["adjustments"] = json!(prepared.adjustments);
    }
    if let Some(id) = request_id {
        result["request_id"] = json!(id);
    }
    result
}
