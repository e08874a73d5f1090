//! Reading one response body into a `Turn`: an event stream as it arrives,
//! or a whole completion.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::cancel::CancelToken;
use crate::client::{self, BodyReader, Upstream};
use crate::config::Config;
use crate::error::{ErrorKind, ProviderError};
use crate::sse::{SseDecoder, SseError};
use crate::stream::{Part, PartSink, Turn};

use super::StopGuard;

/// Longest SSE line we buffer; a chunk is a few hundred bytes.
const MAX_SSE_LINE: usize = 16 * 1024 * 1024;
/// Per open stream, like the agent's buffers (client.rs). Reads copy out of
/// ureq's input buffer, so a small one costs calls, not syscalls.
const READ_BUFFER: usize = 4 * 1024;

/// How long a stream runs before its worker gives back the stack pages its
/// setup touched (stack.rs): a fast answer never pays the syscall and the
/// page faults after it; a real one (seconds to minutes) holds the pages
/// for its first second only.
const STACK_TRIM_AFTER: Duration = Duration::from_secs(1);

/// What is left of a stream's body after `[DONE]`: usually just the end of
/// the chunked encoding. Reading it to the end returns the connection to
/// the agent's pool for the next request; dropping it closes the connection.
pub struct Leftover(BodyReader);

impl Leftover {
    /// Reads to the end (at most 1 MiB); the read timeouts still apply.
    pub fn drain(mut self) {
        let _ = std::io::copy(&mut (&mut self.0).take(1024 * 1024), &mut std::io::sink());
    }
}

pub(super) fn read_stream(
    body: Upstream,
    turn: &mut Turn,
    sink: &mut StopGuard,
    cancel: &CancelToken,
    config: &Config,
) -> Result<Leftover, ProviderError> {
    let mut reader = body.into_reader();
    let mut decoder = SseDecoder::new(MAX_SSE_LINE);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut trim_stack_at = Some(Instant::now() + STACK_TRIM_AFTER);
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
        if trim_stack_at.is_some_and(|at| Instant::now() >= at) {
            // A long stream: from here the worker only reads, on a shallow
            // stack, for as long as the answer takes.
            trim_stack_at = None;
            crate::stack::release_unused();
        }
        let fed = decoder.feed_ref(&buffer[..n], &mut |event| {
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
        });
        // Coalesced text goes out before the next read blocks (and before
        // an error, so a partial result is exactly what was delivered).
        turn.flush(sink);
        fed.map_err(sse_error)?;
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
pub(super) fn read_unstreamed(
    body: Upstream,
    content_type: &str,
    turn: &mut Turn,
    sink: &mut StopGuard,
    config: &Config,
) -> Result<(), ProviderError> {
    let text = body.read_text(&config.timeouts)?;
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
