//! The invariants the fuzz targets check, shared by the cargo-fuzz crate
//! (`plugin/fuzz`, which includes this file by path) and the seed regression
//! test (`tests/tests/fuzz_seeds.rs`), so every committed seed is re-checked
//! by `make test`.
//!
//! Each `check_*` takes one raw fuzz input and panics when an invariant
//! breaks (a panic inside the plugin counts too). This file must only use
//! `std`, `serde_json` and `moonshot_provider`: both crates compile it.

use std::sync::OnceLock;

use moonshot_provider::config::Config;
use moonshot_provider::error::ProviderError;
use moonshot_provider::request;
use moonshot_provider::sse::{SseDecoder, SseError, SseEvent};
use moonshot_provider::stream::{Flow, Part, PartSink, Turn};
use serde_json::{json, Map, Value};

/// The API key of the fuzz configuration, also the secret planted into
/// fuzzed configuration JSON. Distinctive, so finding it in an output is
/// never a coincidence.
pub const FUZZ_KEY: &str = "sk-fuzz-5c0b3f9e21d84a67";

/// A target's check: panics when an input breaks an invariant.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the file `plugin/fuzz/fuzz_targets/<name>.rs`
/// and the seed directory `plugin/fuzz/seeds/<name>/`) and its check.
pub const TARGETS: [(&str, Check); 4] = [
    ("sse_decoder", check_sse),
    ("request_prepare", check_request),
    ("config_from_json", check_config),
    ("stream_chunk", check_stream_chunk),
];

// ---------------------------------------------------------------------------
// SSE decoder
// ---------------------------------------------------------------------------

/// Bytes at the start of an `sse_decoder` input that steer the run rather
/// than being part of the stream: `[limit, split, split, split]`.
pub const SSE_HEADER_LEN: usize = 4;

/// The line limit used when the header does not ask for a small one.
pub const SSE_LARGE_LIMIT: usize = 1 << 16;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Everything observable about one decoding run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseOutcome {
    pub events: Vec<SseEvent>,
    pub error: Option<SseError>,
    /// What `finish()` returned.
    pub discarded: bool,
    pub comments: u64,
}

/// `sse_decoder`: `data` is a 4-byte header then the stream. Header byte 0
/// picks the line limit (>= 0x80: a small limit of `byte & 0x7f`, 0 to 127
/// bytes; else 64 KiB); bytes 1 to 3 are the sizes of successive feeds,
/// cycled (0 = an empty feed).
///
/// Invariants: the outcome (events, error, `finish()`, comment count) is the
/// same fed whole, one byte at a time, and in the header's splits; it equals
/// that of a naive whole-input reading of the SSE rules (so the line limit is
/// enforced exactly: no error iff no line is longer than the limit, before
/// any other error); after an error the decoder stays poisoned; a second
/// `finish()` has nothing to discard.
pub fn check_sse(data: &[u8]) {
    let (header, stream) = data.split_at(data.len().min(SSE_HEADER_LEN));
    let limit = match header.first() {
        Some(&b) if b >= 0x80 => usize::from(b & 0x7f),
        _ => SSE_LARGE_LIMIT,
    };
    let mut sizes: Vec<usize> = header.iter().skip(1).map(|&b| usize::from(b)).collect();
    if sizes.iter().all(|&s| s == 0) {
        sizes = vec![1];
    }

    let whole = sse_decode(limit, &[stream]);

    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let one_by_one = sse_decode(limit, &bytes);
    assert_eq!(
        one_by_one, whole,
        "one byte per feed differs from one feed (limit {limit}, stream {stream:?})"
    );

    let mut chunks = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    let split = sse_decode(limit, &chunks);
    assert_eq!(
        split, whole,
        "feeds of {sizes:?} bytes differ from one feed (limit {limit}, stream {stream:?})"
    );

    let mut reference = sse_reference(stream, limit);
    if whole.error.is_some() {
        // What finish() reports after a fatal error is not specified.
        reference.discarded = whole.discarded;
    }
    assert_eq!(
        whole, reference,
        "decoder differs from the reference reading (limit {limit}, stream {stream:?})"
    );
}

/// Feeds `chunks` in order (stopping at the first error), checks the
/// poisoning, then finishes.
pub fn sse_decode(limit: usize, chunks: &[&[u8]]) -> SseOutcome {
    let mut decoder = SseDecoder::new(limit);
    let mut events = Vec::new();
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = decoder.feed(chunk, &mut |e| events.push(e)) {
            error = Some(e);
            break;
        }
    }
    if let Some(error) = &error {
        let before = events.len();
        assert_eq!(
            decoder.feed(b"data: after\n\n", &mut |e| events.push(e)),
            Err(error.clone()),
            "a decoder that failed must keep failing with the same error"
        );
        assert_eq!(events.len(), before, "a poisoned decoder produced events");
    }
    let discarded = decoder.finish();
    assert!(!decoder.finish(), "a second finish() discarded something");
    SseOutcome {
        events,
        error,
        discarded,
        comments: decoder.comments_seen(),
    }
}

/// The SSE rules applied naively to the whole input at once (WHATWG "event
/// stream interpretation", with this decoder's two documented deviations:
/// invalid UTF-8 and over-long lines are fatal errors).
pub fn sse_reference(stream: &[u8], limit: usize) -> SseOutcome {
    let mut out = SseOutcome {
        events: Vec::new(),
        error: None,
        discarded: false,
        comments: 0,
    };
    // A stream that is only the start of a BOM: held back, then discarded.
    if !stream.is_empty() && stream.len() < BOM.len() && BOM.starts_with(stream) {
        out.discarded = true;
        return out;
    }
    let mut rest = stream.strip_prefix(&BOM[..]).unwrap_or(stream);
    let mut data = String::new();
    let mut event_type = String::new();
    let mut last_id: Option<String> = None;
    loop {
        let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            // The stream ends without a line ending.
            if rest.len() > limit {
                out.error = Some(SseError::LineTooLong { limit });
            } else {
                out.discarded = !rest.is_empty() || !data.is_empty() || !event_type.is_empty();
            }
            return out;
        };
        if end > limit {
            out.error = Some(SseError::LineTooLong { limit });
            return out;
        }
        let Ok(line) = std::str::from_utf8(&rest[..end]) else {
            out.error = Some(SseError::InvalidUtf8);
            return out;
        };
        let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
        rest = &rest[end + if crlf { 2 } else { 1 }..];

        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                out.events.push(SseEvent {
                    event: if event_type.is_empty() {
                        "message".to_owned()
                    } else {
                        event_type.clone()
                    },
                    data: std::mem::take(&mut data),
                    id: last_id.clone(),
                });
            }
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            out.comments += 1;
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => last_id = Some(value.to_owned()),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Request converter
// ---------------------------------------------------------------------------

/// The configuration every `prepare` call is checked against.
pub fn fuzz_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_json(&json!({"apiKey": FUZZ_KEY, "today": "2026-11-25"}).to_string())
            .expect("the fuzz configuration is valid")
    })
}

/// `request_prepare`: `data` parsed as JSON (other inputs are skipped) is
/// given to `prepare` as is, as the `messages` of a request, as its `tools`
/// and as its `tool_choice`. Invariants: see [`check_prepare`].
pub fn check_request(data: &[u8]) {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let tool = json!({"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}});
    check_prepare(&input);
    check_prepare(&json!({"model": "kimi-k2.6", "stream": true, "messages": input}));
    check_prepare(&json!({"messages": "Hello", "tools": input}));
    check_prepare(&json!({"messages": "Hello", "tools": [tool], "tool_choice": input}));
}

/// `prepare(args)` never panics; on success the body names the catalog
/// model and holds a non-empty `messages` array of objects with a `role`;
/// the API key is in no error (Display, Debug or JSON form) and not in the
/// body, unless the arguments themselves contain it.
pub fn check_prepare(args: &Value) {
    let key_given = args.to_string().contains(FUZZ_KEY);
    match request::prepare(args, fuzz_config()) {
        Ok(prepared) => {
            let body = &prepared.body;
            let model = body.get("model").and_then(Value::as_str);
            assert_eq!(
                model,
                Some(prepared.card.id),
                "body 'model' is not the card's id: {body:?}"
            );
            let messages = body
                .get("messages")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("body has no 'messages' array: {body:?}"));
            assert!(!messages.is_empty(), "body has no messages: {args}");
            for message in messages {
                assert!(
                    message.get("role").is_some_and(Value::is_string),
                    "a message without a role: {message} (from {args})"
                );
            }
            let text = Value::Object(body.clone()).to_string();
            assert!(
                serde_json::from_str::<Map<String, Value>>(&text).is_ok(),
                "the body does not serialise to a JSON object: {text}"
            );
            if !key_given {
                assert!(!text.contains(FUZZ_KEY), "the API key is in the body");
                assert!(
                    !format!("{prepared:?}").contains(FUZZ_KEY),
                    "the API key is in the prepared request's Debug"
                );
            }
        }
        Err(error) => {
            assert!(!error.message.is_empty(), "an error without a message");
            if !key_given {
                assert_hides_key(&error, &args.to_string());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// `config_from_json`: `data` as UTF-8 text goes to `Config::from_json`;
/// then, when it is JSON, again with [`FUZZ_KEY`] planted as each key field
/// and as every string value in it. Invariants: never panics; the key (a
/// value the input gives) is in no error; the parsed config's Debug never
/// shows a key that was only given in a key field.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Errors never echo a value: the key is never in one, wherever the input puts it.
    match Config::from_json(text) {
        Ok(config) => assert_eq!(format!("{:?}", config.api_key), "ApiKey(<redacted>)"),
        Err(error) => assert_hides_key(&error, text),
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let given = text.contains(FUZZ_KEY) || value.to_string().contains(FUZZ_KEY);

    let mut planted = vec![(with_strings_replaced(&value), false)];
    let object = match &value {
        Value::Object(map) => map.clone(),
        other => [("settings".to_owned(), other.clone())]
            .into_iter()
            .collect(),
    };
    for field in ["apiKey", "secret_key", "key"] {
        for key in [FUZZ_KEY.to_owned(), format!("  {FUZZ_KEY}\n")] {
            let mut map = object.clone();
            map.insert(field.to_owned(), Value::String(key));
            // Only here is the key in key fields alone (unless the input had it).
            planted.push((Value::Object(map), !given));
        }
    }
    for (config, key_only_in_key_fields) in planted {
        let text = config.to_string();
        match Config::from_json(&text) {
            Ok(config) => {
                if key_only_in_key_fields {
                    assert!(
                        !format!("{config:?}").contains(FUZZ_KEY),
                        "the API key is in the config's Debug: {text}"
                    );
                }
            }
            Err(error) => assert_hides_key(&error, &text),
        }
    }
}

/// `value` with every string in it (not object keys) replaced by the key.
fn with_strings_replaced(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::String(FUZZ_KEY.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(with_strings_replaced).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_strings_replaced(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Panics if the key is in any text form of `error`.
pub fn assert_hides_key(error: &ProviderError, input: &str) {
    for text in [
        error.to_string(),
        format!("{error:?}"),
        error.to_json().to_string(),
    ] {
        assert!(
            !text.contains(FUZZ_KEY),
            "the API key is in an error: {text} (input {input})"
        );
    }
}

// ---------------------------------------------------------------------------
// Stream chunks
// ---------------------------------------------------------------------------

/// Checks every part a `Turn` emits and keeps what they carried.
#[derive(Default)]
struct CheckedSink {
    text: String,
    reasoning: String,
    tool_uses: usize,
}

impl PartSink for CheckedSink {
    fn part(&mut self, json: &str) -> Flow {
        let part: Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("a stream part is not JSON ({e}): {json}"));
        match part.get("type").and_then(Value::as_str) {
            Some("text") => self
                .text
                .push_str(part["text"].as_str().expect("text part")),
            Some("reasoning") => self
                .reasoning
                .push_str(part["reasoning"].as_str().expect("reasoning part")),
            Some("tool_use") => {
                assert!(part["id"].is_string() && part["name"].is_string(), "{json}");
                assert!(
                    part.get("input").is_some(),
                    "tool_use without input: {json}"
                );
                self.tool_uses += 1;
            }
            Some("usage") => assert!(part["usage"].is_object(), "{json}"),
            _ => panic!("a stream part of no known type: {json}"),
        }
        Flow::Continue
    }
}

/// `stream_chunk`: `data` (lossy UTF-8) split at '\n' is applied chunk by
/// chunk to one `Turn`, then whole as one chunk and as a completion.
/// Invariants: never panics; every part is a JSON object of a known type;
/// the text and reasoning parts add up to the turn's content and reasoning;
/// the assembled tool calls give tool_use parts (as the job sends them) and
/// OpenAI tool calls.
pub fn check_stream_chunk(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut turn = Turn::default();
    let mut sink = CheckedSink::default();
    for chunk in text.split('\n') {
        let _ = turn.apply_chunk(chunk, &mut sink);
    }
    assert_eq!(turn.content, sink.text, "text parts do not add up");
    assert_eq!(
        turn.reasoning, sink.reasoning,
        "reasoning parts do not add up"
    );
    check_tool_calls(&turn, &mut sink);
    assert_eq!(sink.tool_uses, turn.tool_calls.len());

    let _ = Turn::default().apply_chunk(&text, &mut CheckedSink::default());
    let mut whole = Turn::default();
    if whole.apply_completion(&text).is_ok() {
        check_tool_calls(&whole, &mut CheckedSink::default());
    }
}

fn check_tool_calls(turn: &Turn, sink: &mut CheckedSink) {
    for call in &turn.tool_calls {
        let input = call.input();
        let part = Part::ToolUse {
            id: &call.id,
            name: &call.name,
            input: &input,
        };
        sink.part(&part.to_json());
        let openai = call.to_openai();
        assert!(openai["function"]["arguments"].is_string(), "{openai}");
    }
    let _ = turn.usage();
}
