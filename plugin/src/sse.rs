//! Incremental Server-Sent Events decoder.
//!
//! Implements the WHATWG HTML "event stream interpretation" rules
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>)
//! over the raw bytes of an HTTP response body, fed in arbitrary splits (down
//! to one byte per read). It is used to read Moonshot's OpenAI-compatible
//! streaming chat completions (`data: {json}` events ending with
//! `data: [DONE]`), so it is on the hot path of every streamed token:
//!
//! * line ends are found with a chunked, branch-free scan (no per-byte work
//!   beyond the compare, no per-byte allocation);
//! * a line lying entirely inside the bytes of one `feed` call is parsed in
//!   place, only the trailing partial line of a read is copied into the
//!   (reused) line buffer;
//! * the data / event-type buffers keep their capacity across events.
//!
//! Deviations from the browser algorithm, both deliberate:
//!
//! * invalid UTF-8 is an error ([`SseError::InvalidUtf8`]) rather than being
//!   replaced with U+FFFD, since the payload is JSON we must not silently alter;
//! * a line longer than the configured limit is an error
//!   ([`SseError::LineTooLong`]) to bound memory against an endless line;
//! * so is an event whose data (its `data` lines joined) outgrows
//!   [`SseDecoder::max_event_bytes`] ([`SseError::EventTooLarge`]), which
//!   bounds memory against endless `data` lines that never end the event.
//!
//! The `retry` field is recognised but ignored: we never reconnect.

use std::fmt;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or "message" when none was given.
    pub event: String,
    /// The `data:` lines joined with '\n' (no trailing newline).
    pub data: String,
    /// The last `id:` seen (persists across events per the spec), if any.
    ///
    /// Per the spec an `id` field with an empty value sets the last event ID
    /// to the empty string, which is reported as `Some("")`.
    pub id: Option<String>,
}

/// An event as `feed_ref` hands it over: borrowed from the decoder's
/// buffers, valid during the callback (no allocation per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    pub event: &'a str,
    pub data: &'a str,
    pub id: Option<&'a str>,
}

impl SseEventRef<'_> {
    pub fn to_owned(self) -> SseEvent {
        SseEvent {
            event: self.event.to_string(),
            data: self.data.to_string(),
            id: self.id.map(str::to_string),
        }
    }
}

/// A fatal decoding error. After one, the decoder is poisoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A single line grew past the configured limit without a line ending.
    LineTooLong { limit: usize },
    /// One event's data lines, joined, grew past the limit before the blank
    /// line that ends the event.
    EventTooLarge { limit: usize },
    /// A line was not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong { limit } => write!(
                f,
                "server-sent events stream: a line exceeded the limit of {limit} bytes \
                 without a line ending"
            ),
            SseError::EventTooLarge { limit } => write!(
                f,
                "server-sent events stream: one event's data exceeded the limit of {limit} \
                 bytes before the blank line that ends it"
            ),
            SseError::InvalidUtf8 => {
                f.write_str("server-sent events stream: a line is not valid UTF-8")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// The smallest bound on one event's data: far above any real chunk, and
/// above what a fuzzer feeds, so it never changes a small stream's outcome.
const MIN_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The UTF-8 byte order mark, skipped once at the very start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Where we are in recognising a leading BOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomState {
    /// This many leading bytes of the stream matched the BOM so far (0..=2).
    Matching(usize),
    /// The start of the stream has been handled (BOM skipped or absent).
    Done,
}

/// Per-event state of the interpretation algorithm, kept apart from the line
/// buffer so a line borrowed from that buffer can be processed in place.
#[derive(Debug, Default)]
struct Interpreter {
    /// The data buffer: each `data` value followed by '\n'.
    data: String,
    /// Largest `data` buffer allowed.
    max_data_bytes: usize,
    /// The event type buffer ("" means "message").
    event_type: String,
    /// The last event ID buffer; persists across events.
    last_id: Option<String>,
    /// Number of comment lines seen.
    comments: u64,
}

impl Interpreter {
    /// Processes one complete line (without its line ending).
    fn process_line(
        &mut self,
        line: &[u8],
        on_event: &mut dyn FnMut(SseEventRef),
    ) -> Result<(), SseError> {
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line.starts_with(':') {
            self.comments += 1;
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_data_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_data_bytes,
                    });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            // An `id` containing NUL is ignored (falls through to `_`).
            "id" if !value.contains('\0') => match &mut self.last_id {
                Some(id) => {
                    id.clear();
                    id.push_str(value);
                }
                None => self.last_id = Some(value.to_owned()),
            },
            // `retry` would set the reconnection time if the value is all
            // ASCII digits; we never reconnect, so it is ignored like any
            // unknown field.
            _ => {}
        }
        Ok(())
    }

    /// The blank-line "dispatch the event" step.
    fn dispatch(&mut self, on_event: &mut dyn FnMut(SseEventRef)) {
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // Every `data` line appended a '\n'; remove the last one.
        self.data.pop();
        let event = if self.event_type.is_empty() {
            "message"
        } else {
            &self.event_type
        };
        // Lent, not copied: the buffers keep their capacity for the next event.
        on_event(SseEventRef {
            event,
            data: &self.data,
            id: self.last_id.as_deref(),
        });
        self.data.clear();
        self.event_type.clear();
    }

    /// Whether an event is under construction (fields seen, not dispatched).
    fn has_pending_event(&self) -> bool {
        !self.data.is_empty() || !self.event_type.is_empty()
    }

    /// Drops the event under construction (the last event ID persists).
    fn discard_pending_event(&mut self) {
        self.data.clear();
        self.event_type.clear();
    }
}

/// Incremental SSE decoder; see the module documentation.
#[derive(Debug)]
pub struct SseDecoder {
    /// Bytes of the current, not yet terminated line.
    line: Vec<u8>,
    max_line_bytes: usize,
    bom: BomState,
    /// The previous feed ended with CR: a LF starting the next feed belongs to
    /// the same line ending.
    after_cr: bool,
    interp: Interpreter,
    /// Set once an error occurred; every later feed returns it.
    error: Option<SseError>,
}

impl SseDecoder {
    /// `max_line_bytes` bounds the buffered partial line (memory bound against an endless line).
    ///
    /// Any line (excluding its line ending) longer than `max_line_bytes` is
    /// rejected with [`SseError::LineTooLong`], whether or not it arrived in a
    /// single read, so the outcome never depends on how the stream is split.
    /// One event's data is bounded too: see [`SseDecoder::max_event_bytes`].
    pub fn new(max_line_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            max_line_bytes,
            bom: BomState::Matching(0),
            after_cr: false,
            interp: Interpreter {
                max_data_bytes: max_line_bytes.max(MIN_MAX_EVENT_BYTES),
                ..Interpreter::default()
            },
            error: None,
        }
    }

    /// The most data (its `data` lines joined, with the '\n' between them)
    /// one event may carry: the line limit, and at least 16 MiB. More is
    /// [`SseError::EventTooLarge`], the memory bound against `data` lines
    /// that never end their event, whatever the length of each line.
    pub fn max_event_bytes(&self) -> usize {
        self.interp.max_data_bytes
    }

    /// Feed bytes; calls `on_event` for every event completed by them, in order.
    /// After an error the decoder is poisoned: further feeds return the same error.
    ///
    /// Events completed before the offending line within the same call are
    /// still delivered before the error is returned.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(SseEvent),
    ) -> Result<(), SseError> {
        self.feed_ref(bytes, &mut |event| on_event(event.to_owned()))
    }

    /// `feed`, lending each event instead of allocating it: the stream's
    /// per-chunk path.
    pub fn feed_ref(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(SseEventRef),
    ) -> Result<(), SseError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        match self.feed_inner(bytes, on_event) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.error = Some(error.clone());
                // Release the memory; nothing will be decoded any more.
                self.line = Vec::new();
                self.interp.discard_pending_event();
                self.interp.data = String::new();
                Err(error)
            }
        }
    }

    fn feed_inner(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(SseEventRef),
    ) -> Result<(), SseError> {
        let mut input = bytes;

        if let BomState::Matching(mut matched) = self.bom {
            while let Some((&byte, rest)) = input.split_first() {
                if byte != BOM[matched] {
                    // Not a BOM: the bytes held back so far are line content.
                    self.line.extend_from_slice(&BOM[..matched]);
                    self.check_line_len(0)?;
                    self.bom = BomState::Done;
                    break;
                }
                input = rest;
                matched += 1;
                if matched == BOM.len() {
                    self.bom = BomState::Done;
                    break;
                }
                self.bom = BomState::Matching(matched);
            }
            if self.bom != BomState::Done {
                // Input exhausted while the BOM is still possible.
                return Ok(());
            }
        }

        if input.is_empty() {
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if input[0] == b'\n' {
                input = &input[1..];
            }
        }

        while !input.is_empty() {
            let Some(end) = find_line_end(input) else {
                // Partial line: keep it for the next feed.
                self.check_line_len(input.len())?;
                self.line.extend_from_slice(input);
                break;
            };
            self.check_line_len(end)?;
            if self.line.is_empty() {
                // Fast path: the whole line is in `input`, parse it in place.
                self.interp.process_line(&input[..end], on_event)?;
            } else {
                self.line.extend_from_slice(&input[..end]);
                self.interp.process_line(&self.line, on_event)?;
                self.line.clear();
            }
            let mut next = end + 1;
            if input[end] == b'\r' {
                match input.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            input = &input[next..];
        }
        Ok(())
    }

    /// Fails if the buffered line plus `extra` more bytes exceeds the limit.
    fn check_line_len(&self, extra: usize) -> Result<(), SseError> {
        if self.line.len().saturating_add(extra) > self.max_line_bytes {
            Err(SseError::LineTooLong {
                limit: self.max_line_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// End of stream: per the spec, an event not terminated by a blank line is DISCARDED (not dispatched). Returns whether any unterminated data was discarded (so a caller can tell a cut stream).
    ///
    /// "Unterminated data" is a partial line (bytes after the last line
    /// ending, including a lone partial BOM) or an event with `data` /
    /// `event` fields but no terminating blank line. A stream that ends right
    /// after a blank line (or after comments / `id` / `retry` lines only)
    /// returns `false`. The pending state is cleared, so a second call
    /// returns `false`; the last event ID and a poisoned state are kept.
    pub fn finish(&mut self) -> bool {
        let partial_bom = matches!(self.bom, BomState::Matching(n) if n > 0);
        let discarded = partial_bom || !self.line.is_empty() || self.interp.has_pending_event();
        if partial_bom {
            self.bom = BomState::Done;
        }
        self.line.clear();
        self.after_cr = false;
        self.interp.discard_pending_event();
        discarded
    }

    /// Lines ignored so far as comments (lines starting with ':'), for diagnostics.
    #[cfg_attr(not(test), allow(dead_code))] // diagnostics, checked by the tests
    pub fn comments_seen(&self) -> u64 {
        self.interp.comments
    }
}

/// Index of the first CR or LF in `haystack`.
#[inline]
fn find_line_end(haystack: &[u8]) -> Option<usize> {
    memchr::memchr2(b'\n', b'\r', haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 16;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    fn msg(data: &str) -> SseEvent {
        ev("message", data, None)
    }

    /// Everything observable after feeding `chunks` then calling `finish`.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        events: Vec<SseEvent>,
        error: Option<SseError>,
        discarded: bool,
        comments: u64,
    }

    fn run_chunks_with_limit(chunks: &[&[u8]], limit: usize) -> Outcome {
        let mut decoder = SseDecoder::new(limit);
        let mut events = Vec::new();
        let mut error = None;
        for chunk in chunks {
            if let Err(e) = decoder.feed(chunk, &mut |e| events.push(e)) {
                error = Some(e);
                break;
            }
        }
        let discarded = decoder.finish();
        Outcome {
            events,
            error,
            discarded,
            comments: decoder.comments_seen(),
        }
    }

    fn run_chunks(chunks: &[&[u8]]) -> Outcome {
        run_chunks_with_limit(chunks, LIMIT)
    }

    fn run(stream: &[u8]) -> Outcome {
        run_chunks(&[stream])
    }

    fn events(stream: &[u8]) -> Vec<SseEvent> {
        let outcome = run(stream);
        assert_eq!(outcome.error, None, "unexpected error for {stream:?}");
        outcome.events
    }

    /// Asserts that every two- and three-way split and the one-byte-at-a-time
    /// feeding of `stream` give exactly the same outcome as a single feed, and
    /// returns that outcome.
    fn assert_split_invariant_with_limit(stream: &[u8], limit: usize) -> Outcome {
        let whole = run_chunks_with_limit(&[stream], limit);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(
            run_chunks_with_limit(&bytes, limit),
            whole,
            "one byte at a time"
        );
        for i in 0..=stream.len() {
            let (a, b) = stream.split_at(i);
            assert_eq!(run_chunks_with_limit(&[a, b], limit), whole, "split at {i}");
            // Empty feeds anywhere must be harmless.
            assert_eq!(
                run_chunks_with_limit(&[a, &[], b, &[]], limit),
                whole,
                "split at {i} with empty feeds"
            );
        }
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
                assert_eq!(
                    run_chunks_with_limit(&chunks, limit),
                    whole,
                    "split at {i} and {j}"
                );
            }
        }
        whole
    }

    fn assert_split_invariant(stream: &[u8]) -> Outcome {
        assert_split_invariant_with_limit(stream, LIMIT)
    }

    #[test]
    fn lf_framing() {
        assert_eq!(events(b"data: a\n\ndata: b\n\n"), vec![msg("a"), msg("b")]);
    }

    #[test]
    fn cr_framing() {
        assert_eq!(events(b"data: a\r\rdata: b\r\r"), vec![msg("a"), msg("b")]);
    }

    #[test]
    fn crlf_framing() {
        assert_eq!(
            events(b"data: a\r\n\r\ndata: b\r\n\r\n"),
            vec![msg("a"), msg("b")]
        );
    }

    #[test]
    fn mixed_line_endings() {
        assert_eq!(
            events(b"data: a\r\ndata: b\rdata: c\n\r\n"),
            vec![msg("a\nb\nc")]
        );
        // LF CR is two line endings: the CR ends an empty line.
        assert_eq!(events(b"data: x\n\rdata: y\n\n"), vec![msg("x"), msg("y")]);
    }

    #[test]
    fn crlf_split_across_feeds_is_one_line_ending() {
        // If the LF were taken as a second line ending, the empty line would
        // dispatch "a" on its own.
        let outcome = run_chunks(&[b"data: a\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(outcome.events, vec![msg("a\nb")]);
        assert_eq!(outcome.error, None);
        assert!(!outcome.discarded);

        // The terminating blank line split in the middle of its CRLF.
        let outcome = run_chunks(&[b"data: a\r\n\r", b"\n", b"data: b\r\n\r\n"]);
        assert_eq!(outcome.events, vec![msg("a"), msg("b")]);

        // The CR flag survives empty feeds in between.
        let outcome = run_chunks(&[b"data: a\r", b"", b"", b"\ndata: b\r\n\r\n"]);
        assert_eq!(outcome.events, vec![msg("a\nb")]);

        // CR at the end of a feed followed by CR at the start of the next is
        // two line endings (a blank line), which dispatches.
        let outcome = run_chunks(&[b"data: a\r", b"\rdata: b\r\r"]);
        assert_eq!(outcome.events, vec![msg("a"), msg("b")]);
    }

    /// A stream exercising every feature, for the split-invariance tests.
    const MIXED_STREAM: &[u8] = b"\xEF\xBB\xBF: keep-alive\r\n\
        id: 1\r\n\
        event: add\r\n\
        data: {\"a\":1}\r\n\
        data:  two\r\r\
        :comment\n\
        data\n\
        data:\n\n\
        id\n\
        retry: 3000\n\
        data: caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80\r\n\
        \r\n\
        data: [DONE]\n\n\
        data: cut";

    #[test]
    fn every_split_point_gives_identical_events() {
        let outcome = assert_split_invariant(MIXED_STREAM);
        assert_eq!(
            outcome,
            Outcome {
                events: vec![
                    ev("add", "{\"a\":1}\n two", Some("1")),
                    ev("message", "\n", Some("1")),
                    ev("message", "café 你好 😀", Some("")),
                    ev("message", "[DONE]", Some("")),
                ],
                error: None,
                discarded: true,
                comments: 2,
            }
        );
    }

    #[test]
    fn typical_moonshot_stream_split_everywhere() {
        let stream = b"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
            : ping\n\n\
            data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n\
            data: [DONE]\n\n";
        let outcome = assert_split_invariant(stream);
        assert_eq!(
            outcome.events,
            vec![
                msg("{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"),
                msg("{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}"),
                msg("[DONE]"),
            ]
        );
        assert_eq!(outcome.error, None);
        assert!(!outcome.discarded);
        assert_eq!(outcome.comments, 1);
    }

    #[test]
    fn comments_are_ignored_and_counted() {
        let outcome = run(b": hello\n:\ndata: a\n: in the middle\ndata: b\n\n:bye\n");
        assert_eq!(outcome.events, vec![msg("a\nb")]);
        assert_eq!(outcome.comments, 4);
        assert!(!outcome.discarded);

        // A comment alone does not dispatch anything, and a blank line after
        // comments only dispatches nothing either.
        let outcome = run(b": only a comment\n\n");
        assert_eq!(outcome.events, vec![]);
        assert_eq!(outcome.comments, 1);
    }

    #[test]
    fn multi_line_data() {
        assert_eq!(
            events(b"data: line one\ndata: line two\ndata: line three\n\n"),
            vec![msg("line one\nline two\nline three")]
        );
    }

    #[test]
    fn data_without_space() {
        assert_eq!(events(b"data:abc\n\n"), vec![msg("abc")]);
    }

    #[test]
    fn only_one_leading_space_is_removed() {
        assert_eq!(events(b"data:  abc\n\n"), vec![msg(" abc")]);
        assert_eq!(events(b"data:\tabc\n\n"), vec![msg("\tabc")]);
        assert_eq!(events(b"data: abc \n\n"), vec![msg("abc ")]);
    }

    #[test]
    fn value_split_at_first_colon_only() {
        assert_eq!(events(b"data: a:b: c\n\n"), vec![msg("a:b: c")]);
        assert_eq!(events(b"data::\n\n"), vec![msg(":")]);
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        // `data` alone appends an empty line.
        assert_eq!(events(b"data\n\n"), vec![msg("")]);
        assert_eq!(events(b"data\ndata\ndata: x\n\n"), vec![msg("\n\nx")]);
        // `event` alone resets the type to the default.
        assert_eq!(events(b"event: a\nevent\ndata: x\n\n"), vec![msg("x")]);
        // `id` alone sets the last event ID to the empty string.
        assert_eq!(
            events(b"id: 7\ndata: x\n\nid\ndata: y\n\n"),
            vec![ev("message", "x", Some("7")), ev("message", "y", Some(""))]
        );
    }

    #[test]
    fn field_names_are_case_sensitive_and_unknown_fields_ignored() {
        assert_eq!(
            events(b"Data: no\nDATA: no\nfoo: bar\ndata : no\n data: no\ndata: yes\n\n"),
            vec![msg("yes")]
        );
        // Unknown fields alone do not make an event.
        let outcome = run(b"foo: bar\n\n");
        assert_eq!(outcome.events, vec![]);
        assert!(!outcome.discarded);
    }

    #[test]
    fn event_type_applies_to_one_event_only() {
        assert_eq!(
            events(b"event: first\ndata: 1\n\ndata: 2\n\nevent: third\nevent: last\ndata: 3\n\n"),
            vec![
                ev("first", "1", None),
                ev("message", "2", None),
                ev("last", "3", None),
            ]
        );
        // `event:` with an empty value means "message".
        assert_eq!(events(b"event:\ndata: x\n\n"), vec![msg("x")]);
    }

    #[test]
    fn event_type_reset_by_blank_line_without_data() {
        assert_eq!(events(b"event: lost\n\ndata: x\n\n"), vec![msg("x")]);
    }

    #[test]
    fn id_persists_across_events() {
        assert_eq!(
            events(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\nid: 3\ndata: d\n\n"),
            vec![
                ev("message", "a", Some("1")),
                ev("message", "b", Some("1")),
                // The id-only "event" dispatched nothing but still set the id.
                ev("message", "c", Some("2")),
                ev("message", "d", Some("3")),
            ]
        );
        // The id is kept even when set on an event later discarded by finish.
        let mut decoder = SseDecoder::new(LIMIT);
        let mut got = Vec::new();
        decoder
            .feed(b"id: 9\ndata: partial\n", &mut |e| got.push(e))
            .unwrap();
        assert!(decoder.finish());
        decoder
            .feed(b"data: next\n\n", &mut |e| got.push(e))
            .unwrap();
        assert_eq!(got, vec![ev("message", "next", Some("9"))]);
    }

    #[test]
    fn id_with_nul_is_ignored() {
        assert_eq!(
            events(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"),
            vec![ev("message", "a", Some("1")), ev("message", "b", Some("1"))]
        );
        assert_eq!(
            events(b"id: \0\ndata: a\n\n"),
            vec![ev("message", "a", None)]
        );
    }

    #[test]
    fn retry_is_ignored() {
        assert_eq!(
            events(b"retry: 1000\nretry: abc\ndata: x\n\nretry: 5\n\n"),
            vec![msg("x")]
        );
    }

    #[test]
    fn bom_is_skipped() {
        assert_eq!(events(b"\xEF\xBB\xBFdata: a\n\n"), vec![msg("a")]);
        // Without the skip, the first field would be "\u{feff}data".
        let outcome = assert_split_invariant(b"\xEF\xBB\xBFdata: a\n\n");
        assert_eq!(outcome.events, vec![msg("a")]);
    }

    #[test]
    fn bom_split_across_feeds() {
        for chunks in [
            &[&b"\xEF"[..], b"\xBB", b"\xBF", b"data: a\n\n"][..],
            &[b"\xEF\xBB", b"\xBFdata: a\n\n"],
            &[b"\xEF", b"\xBB\xBFdata: a\n\n"],
            &[b"\xEF\xBB\xBF", b"data: a\n\n"],
            &[b"", b"\xEF", b"", b"\xBB\xBF", b"", b"data: a\n\n"],
        ] {
            let outcome = run_chunks(chunks);
            assert_eq!(outcome.events, vec![msg("a")], "{chunks:?}");
            assert_eq!(outcome.error, None);
        }
    }

    #[test]
    fn bom_only_skipped_at_start() {
        // A second BOM is content: it becomes part of the field name, so the
        // line is an unknown field and ignored.
        let outcome = assert_split_invariant(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n");
        assert_eq!(outcome.events, vec![msg("b")]);
        // A BOM later in the stream is content too (here in a data value).
        assert_eq!(
            events(b"data: a\n\n\xEF\xBB\xBFdata: b\n\ndata: \xEF\xBB\xBF\n\n"),
            vec![msg("a"), msg("\u{feff}")]
        );
        // In a later feed as well.
        let outcome = run_chunks(&[b"data: a\n\n", b"\xEF\xBB\xBFdata: b\n\n"]);
        assert_eq!(outcome.events, vec![msg("a")]);
    }

    #[test]
    fn bom_prefix_that_is_not_a_bom_is_content() {
        // EF BB 80 is U+FEC0, valid UTF-8, not a BOM: it is kept as the start
        // of the first line ("\u{fec0}data" is an unknown field).
        let outcome = assert_split_invariant(b"\xEF\xBB\x80data: a\n\ndata: b\n\n");
        assert_eq!(outcome.events, vec![msg("b")]);
        // A lone EF followed by ASCII is invalid UTF-8.
        let outcome = assert_split_invariant(b"\xEFdata: a\n\n");
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
        // A partial BOM followed by a line ending is an (invalid) line too.
        let outcome = assert_split_invariant(b"\xEF\xBB\n");
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
        // Stream without a BOM starting with a line ending.
        let outcome = assert_split_invariant(b"\ndata: a\n\n");
        assert_eq!(outcome.events, vec![msg("a")]);
    }

    #[test]
    fn unterminated_event_is_discarded_by_finish() {
        // Complete `data` line but no blank line.
        let outcome = run(b"data: a\n\ndata: b\n");
        assert_eq!(outcome.events, vec![msg("a")]);
        assert!(outcome.discarded);
        // Partial line.
        let outcome = run(b"data: a\n\ndata: b");
        assert_eq!(outcome.events, vec![msg("a")]);
        assert!(outcome.discarded);
        // Partial line ending with CR then finish: the CR ended a line, but
        // no blank line followed.
        let outcome = run(b"data: a\r");
        assert_eq!(outcome.events, vec![]);
        assert!(outcome.discarded);
        // An event type without data is still an unterminated event.
        let outcome = run(b"event: x\n");
        assert!(outcome.discarded);
        // A lone partial BOM is unterminated data.
        let outcome = run(b"\xEF\xBB");
        assert!(outcome.discarded);
        assert_eq!(outcome.error, None);
    }

    #[test]
    fn finish_after_clean_end_returns_false() {
        for stream in [
            &b""[..],
            b"data: a\n\n",
            b"data: a\r\n\r\n",
            b"data: a\r\r",
            b"data: a\n\n: trailing comment\n",
            b"data: a\n\nid: 5\nretry: 10\n",
            b"\xEF\xBB\xBF",
        ] {
            let outcome = run(stream);
            assert!(!outcome.discarded, "{stream:?}");
            assert_eq!(outcome.error, None);
        }
    }

    #[test]
    fn finish_clears_pending_state() {
        let mut decoder = SseDecoder::new(LIMIT);
        let mut got = Vec::new();
        decoder
            .feed(b"event: e\ndata: a\ndata: b", &mut |e| got.push(e))
            .unwrap();
        assert!(decoder.finish());
        assert!(!decoder.finish(), "second finish has nothing to discard");
        // Nothing of the discarded event leaks into a later one.
        decoder.feed(b"data: c\n\n", &mut |e| got.push(e)).unwrap();
        assert_eq!(got, vec![msg("c")]);
    }

    #[test]
    fn endless_line_is_rejected_and_poisons() {
        let mut decoder = SseDecoder::new(16);
        let mut got = Vec::new();
        decoder
            .feed(b"data: ok\n\ndata: 0123", &mut |e| got.push(e))
            .unwrap();
        let mut result = Ok(());
        for _ in 0..10 {
            result = decoder.feed(b"456789", &mut |e| got.push(e));
            if result.is_err() {
                break;
            }
        }
        let expected = SseError::LineTooLong { limit: 16 };
        assert_eq!(result, Err(expected.clone()));
        assert_eq!(got, vec![msg("ok")]);
        // Poisoned: even valid input now fails with the same error.
        assert_eq!(
            decoder.feed(b"\n\ndata: x\n\n", &mut |e| got.push(e)),
            Err(expected.clone())
        );
        assert_eq!(decoder.feed(b"", &mut |e| got.push(e)), Err(expected));
        assert_eq!(got, vec![msg("ok")]);
    }

    #[test]
    fn endless_data_lines_of_one_event_are_bounded() {
        // Lines well under the line limit, never a blank line: the event's
        // data would grow without end.
        let mut decoder = SseDecoder::new(1024);
        let limit = decoder.max_event_bytes();
        assert_eq!(limit, MIN_MAX_EVENT_BYTES);
        let line = format!("data: {}\n", "x".repeat(1000));
        let mut events = 0;
        let mut fed = 0;
        let error = loop {
            match decoder.feed(line.as_bytes(), &mut |_| events += 1) {
                Ok(()) => fed += 1001,
                Err(e) => break e,
            }
            assert!(fed <= limit + 2002, "never refused");
        };
        assert_eq!(error, SseError::EventTooLarge { limit });
        assert_eq!(events, 0);
        assert!(fed + 1001 > limit);
        // Poisoned, memory released.
        assert_eq!(decoder.feed(b"\n", &mut |_| events += 1), Err(error));
        assert_eq!(decoder.interp.data.capacity(), 0);
        assert!(error_text_names_the_event(&SseError::EventTooLarge {
            limit: 7
        }));
    }

    fn error_text_names_the_event(e: &SseError) -> bool {
        e.to_string()
            .contains("one event's data exceeded the limit of 7 bytes")
    }

    #[test]
    fn an_event_up_to_the_bound_is_delivered() {
        let mut decoder = SseDecoder::new(64);
        decoder.interp.max_data_bytes = 10; // "abcd\nefgh\n" is exactly 10
        let mut got = Vec::new();
        decoder
            .feed(b"data: abcd\ndata: efgh\n\n", &mut |e| got.push(e.data))
            .unwrap();
        assert_eq!(got, vec!["abcd\nefgh".to_string()]);
        let err = decoder
            .feed(b"data: abcd\ndata: efghi\n\n", &mut |e| got.push(e.data))
            .unwrap_err();
        assert_eq!(err, SseError::EventTooLarge { limit: 10 });
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn line_limit_is_independent_of_splits() {
        // A 16-byte line is accepted with a limit of 16, a 17-byte one is not,
        // however the stream is split. The limit excludes the line ending.
        let ok = assert_split_invariant_with_limit(b"data: 0123456789\r\n\r\n", 16);
        assert_eq!(ok.events, vec![msg("0123456789")]);
        assert_eq!(ok.error, None);

        let err = assert_split_invariant_with_limit(b"data: a\n\ndata: 01234567890\r\n\r\n", 16);
        assert_eq!(err.events, vec![msg("a")]);
        assert_eq!(err.error, Some(SseError::LineTooLong { limit: 16 }));

        // The limit also applies to a line that arrives whole in one feed.
        let outcome = run_chunks_with_limit(&[b"data: 01234567890\n\n"], 16);
        assert_eq!(outcome.error, Some(SseError::LineTooLong { limit: 16 }));
        assert_eq!(outcome.events, vec![]);

        // The BOM does not count against the limit.
        let outcome = run_chunks_with_limit(&[b"\xEF\xBB\xBFdata: 0123456789\n\n"], 16);
        assert_eq!(outcome.events, vec![msg("0123456789")]);
    }

    #[test]
    fn multibyte_text_split_at_every_byte() {
        let stream = "data: 😀 你好，世界 🎉\n\ndata: 中文\ndata: 🦀\n\n".as_bytes();
        let outcome = assert_split_invariant(stream);
        assert_eq!(
            outcome.events,
            vec![msg("😀 你好，世界 🎉"), msg("中文\n🦀")]
        );
        assert_eq!(outcome.error, None);
        assert!(!outcome.discarded);
    }

    #[test]
    fn four_byte_emoji_split_inside_character() {
        let emoji = "😀".as_bytes();
        assert_eq!(emoji.len(), 4);
        for i in 1..4 {
            let outcome = run_chunks(&[b"data: ", &emoji[..i], &emoji[i..], b"\n\n"]);
            assert_eq!(outcome.events, vec![msg("😀")], "split at {i}");
            assert_eq!(outcome.error, None);
        }
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        // Invalid byte in a data value.
        let outcome = assert_split_invariant(b"data: ok\n\ndata: \xFF\n\ndata: after\n\n");
        assert_eq!(outcome.events, vec![msg("ok")]);
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
        // Truncated multi-byte sequence before the line ending.
        let outcome = run(b"data: \xF0\x9F\x98\n\n");
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
        // Overlong encoding / surrogate.
        let outcome = run(b"data: \xC0\xAF\n\n");
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
        let outcome = run(b"data: \xED\xA0\x80\n\n");
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
        // Strict for comments as well.
        let outcome = run(b": \xFF\n");
        assert_eq!(outcome.error, Some(SseError::InvalidUtf8));
    }

    #[test]
    fn invalid_utf8_poisons() {
        let mut decoder = SseDecoder::new(LIMIT);
        let mut got = Vec::new();
        assert_eq!(
            decoder.feed(b"data: \xFE\n", &mut |e| got.push(e)),
            Err(SseError::InvalidUtf8)
        );
        assert_eq!(
            decoder.feed(b"data: fine\n\n", &mut |e| got.push(e)),
            Err(SseError::InvalidUtf8)
        );
        assert!(got.is_empty());
    }

    #[test]
    fn done_marker_passes_through() {
        let outcome = run(b"data: {\"x\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(outcome.events, vec![msg("{\"x\":1}"), msg("[DONE]")]);
        assert!(!outcome.discarded);
    }

    #[test]
    fn empty_data_lines() {
        assert_eq!(events(b"data:\ndata:\n\n"), vec![msg("\n")]);
        assert_eq!(events(b"data:\n\n"), vec![msg("")]);
        assert_eq!(events(b"data: \n\n"), vec![msg("")]);
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        let outcome = run(b"\n\n\r\n\r\r\n\n");
        assert_eq!(outcome.events, vec![]);
        assert!(!outcome.discarded);
    }

    #[test]
    fn long_lines_across_many_feeds() {
        // Exercise the chunked scan and the buffered path with lines longer
        // than the scan chunk, split at awkward sizes.
        let payload: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let stream = format!("data: {payload}\r\ndata: {payload}\r\n\r\n");
        for size in [1, 3, 31, 32, 33, 64, 100, 4096] {
            let chunks: Vec<&[u8]> = stream.as_bytes().chunks(size).collect();
            let outcome = run_chunks(&chunks);
            assert_eq!(
                outcome.events,
                vec![msg(&format!("{payload}\n{payload}"))],
                "chunk size {size}"
            );
            assert_eq!(outcome.error, None);
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            SseError::LineTooLong { limit: 1024 }.to_string(),
            "server-sent events stream: a line exceeded the limit of 1024 bytes \
             without a line ending"
        );
        assert_eq!(
            SseError::InvalidUtf8.to_string(),
            "server-sent events stream: a line is not valid UTF-8"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(SseError::InvalidUtf8);
        assert!(boxed.source().is_none());
    }
}
