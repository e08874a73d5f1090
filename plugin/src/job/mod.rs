//! One `complete()` call from start to `on_done`: send, read the answer
//! (stream or whole) through the web-search loop, emit parts, bill, and
//! build the final result.
//!
//! `search` runs the rounds, `read` reads one response body, `result`
//! accumulates what came and builds the result JSON.

mod read;
mod result;
mod search;

use std::borrow::Cow;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::cancel::CancelToken;
use crate::client::Client;
use crate::config::Config;
use crate::error::ProviderError;
use crate::media;
use crate::metering::{self, Usage};
use crate::request::Prepared;
use crate::stream::{Flow, Part, PartSink, Turn};

pub use read::Leftover;
use result::{result_json, Accumulated};
use search::{Round, SearchLoop};

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

/// What one request runs with, from start to end.
struct Job<'a> {
    prepared: &'a Prepared,
    config: &'a Config,
    client: &'a Client,
    cancel: &'a CancelToken,
    deadline: Instant,
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
    let job = Job {
        prepared,
        config,
        client,
        cancel,
        deadline: Instant::now() + config.timeouts.total,
    };
    let mut guard = StopGuard {
        inner: sink,
        cancel,
        stopped: false,
    };
    let mut answer = Accumulated::default();
    if let Some(prefix) = prepared
        .partial_prefix
        .as_deref()
        .filter(|p| !p.is_empty() && prepared.stream)
    {
        guard.part(&Part::Text { text: prefix }.to_json());
    }

    let outcome = job.converse(&mut guard, &mut answer, leftover);
    // A bill that cannot be made (overflow) fails the request: never a wrong bill.
    match outcome.and_then(|()| answer.bill(prepared, config)) {
        Ok(bill) => finish(prepared, answer, &bill, &mut guard),
        Err(err) => {
            let cancelled = cancel.is_cancelled() || guard.stopped;
            Err(fail(prepared, config, &mut answer, err, cancelled))
        }
    }
}

/// The end of a request that got its answer and bill: the tool calls and
/// usage parts of a stream, then the result (a partial one when a callback
/// stopped the stream).
// Out of line: keeps the frames a stream reads under small (stack.rs).
#[inline(never)]
fn finish(
    prepared: &Prepared,
    answer: Accumulated,
    bill: &metering::Bill,
    guard: &mut StopGuard,
) -> Result<Value, Box<Failure>> {
    let usage = metering::usage_json(&answer.usage, bill);
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
        let err = ProviderError {
            request_id: answer.request_id.clone(),
            ..ProviderError::cancelled()
        };
        let partial = result_json(prepared, answer, usage, false);
        return Err(Failure::new(err, Some(partial)));
    }
    Ok(result_json(prepared, answer, usage, true))
}

/// The failure of a request (reported as a cancel when it was cancelled or
/// a callback stopped it), with the partial result of what it received.
// Out of line: keeps the frames a stream reads under small (stack.rs).
#[inline(never)]
fn fail(
    prepared: &Prepared,
    config: &Config,
    answer: &mut Accumulated,
    err: ProviderError,
    cancelled: bool,
) -> Box<Failure> {
    let mut err = if cancelled {
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
        let usage = answer
            .bill(prepared, config)
            .map(|bill| metering::usage_json(&answer.usage, &bill))
            .unwrap_or(Value::Null);
        result_json(prepared, std::mem::take(answer), usage, false)
    });
    Failure::new(err, partial)
}

impl Job<'_> {
    /// Inlines remote media, then sends the request through the web-search
    /// loop (MOONSHOT-API.md §5).
    // Out of line: the frames a stream reads under stay small (stack.rs).
    #[inline(never)]
    fn converse(
        &self,
        guard: &mut StopGuard,
        answer: &mut Accumulated,
        leftover: &mut Option<Leftover>,
    ) -> Result<(), ProviderError> {
        // Sent as prepared unless media is inlined or a search round adds
        // messages: a long conversation is not copied for nothing.
        let body = if self.prepared.remote_media.is_empty() {
            Cow::Borrowed(&self.prepared.body)
        } else {
            Cow::Owned(self.with_media_inlined()?)
        };
        let search = SearchLoop {
            web_search: self.prepared.web_search,
            thinking_on: self.prepared.thinking_on,
            max_rounds: self.config.web_search.max_rounds,
            max_answer_bytes: self.config.max_answer_bytes,
            coalesce_parts: self.prepared.coalesce_parts,
        };
        let mut round = UpstreamRound {
            job: self,
            leftover,
        };
        search.run(body, &mut round, guard, answer)
    }

    /// The request body with its remote media fetched and inlined.
    #[inline(never)]
    fn with_media_inlined(&self) -> Result<Map<String, Value>, ProviderError> {
        let mut body = self.prepared.body.clone();
        media::inline_all(
            &mut body,
            &self.prepared.remote_media,
            self.client,
            self.cancel,
            self.deadline,
            &self.config.media,
        )?;
        Ok(body)
    }

    /// One request/response with Moonshot; returns its request id and, for a
    /// stream, what is left of its body after `[DONE]`.
    fn one_round(
        &self,
        body: &Map<String, Value>,
        turn: &mut Turn,
        guard: &mut StopGuard,
    ) -> Result<(Option<String>, Option<Leftover>), ProviderError> {
        let (prepared, config) = (self.prepared, self.config);
        let bytes = serde_json::to_vec(body).map_err(|e| ProviderError::internal(e.to_string()))?;
        let upstream =
            self.client
                .post_json("/chat/completions", &bytes, self.cancel, self.deadline)?;
        // Sent: not held for as long as the answer streams.
        drop(bytes);
        let request_id = upstream.request_id.clone();
        let content_type = upstream.content_type();
        let read = if prepared.stream && content_type.starts_with("text/event-stream") {
            read::read_stream(upstream, turn, guard, self.cancel, config).map(Some)
        } else if prepared.stream {
            read::read_unstreamed(upstream, &content_type, turn, guard, config).map(|()| None)
        } else {
            upstream
                .read_text(&config.timeouts)
                .and_then(|text| turn.apply_completion(&text))
                .map(|()| None)
        };
        let leftover = read.map_err(|mut e| {
            e.request_id = e.request_id.take().or(request_id.clone());
            e
        })?;
        Ok((request_id, leftover))
    }

    /// Usage for a round Moonshot sent none for: prompt tokens from
    /// Moonshot's tokenizer endpoint when it answers, else our estimate;
    /// output tokens from what was received.
    fn estimate(&self, body: &Map<String, Value>, turn: &Turn) -> Usage {
        let messages = body.get("messages").cloned().unwrap_or(Value::Null);
        let counted = if self.cancel.is_cancelled() {
            None
        } else {
            self.client.estimate_prompt_tokens(
                body.get("model").cloned().unwrap_or(Value::Null),
                &messages,
                self.cancel,
                self.deadline,
            )
        };
        let arguments: String = turn
            .tool_calls
            .iter()
            .map(|c| c.arguments.as_str())
            .collect();
        metering::estimated_usage(
            &messages.to_string(),
            counted,
            &[&turn.content, &turn.reasoning, &arguments],
        )
    }
}

/// A round sent to Moonshot; keeps the last stream's leftover body.
struct UpstreamRound<'a> {
    job: &'a Job<'a>,
    leftover: &'a mut Option<Leftover>,
}

impl Round for UpstreamRound<'_> {
    fn send(
        &mut self,
        body: &Map<String, Value>,
        turn: &mut Turn,
        sink: &mut StopGuard,
    ) -> Result<Option<String>, ProviderError> {
        // Finish the previous round's body so its connection serves this one.
        if let Some(previous) = self.leftover.take() {
            previous.drain();
        }
        let (request_id, leftover) = self.job.one_round(body, turn, sink)?;
        *self.leftover = leftover;
        Ok(request_id)
    }

    fn estimate(&mut self, body: &Map<String, Value>, turn: &Turn) -> Usage {
        self.job.estimate(body, turn)
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
