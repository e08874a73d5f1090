//! Scripted replies and the Moonshot response shapes built from a [`ReplySpec`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);
static COMPLETION_IDS: AtomicU64 = AtomicU64::new(1);

/// The next `x-request-id` value, "sim-req-<n>" (process-wide counter).
pub(crate) fn next_request_id() -> String {
    format!("sim-req-{}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed))
}

fn next_completion_id() -> String {
    format!(
        "chatcmpl-sim-{}",
        COMPLETION_IDS.fetch_add(1, Ordering::Relaxed)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One scripted answer to a POST /v1/chat/completions request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with this status (Content-Type application/json, Content-Length) and extra headers.
    ///
    /// An `x-request-id` header is added unless `headers` has one; extra `Content-Length`,
    /// `Transfer-Encoding` and `Connection` headers are dropped to keep the framing valid.
    Json {
        /// HTTP status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// The JSON body.
        body: Value,
    },
    /// A 200 SSE stream: each event written as `data: <payload>\n\n`, each one `delay` after the
    /// previous one (the first `delay` after the head), then `data: [DONE]\n\n` unless `done` is
    /// false. Content-Type text/event-stream, Transfer-Encoding chunked (each event one HTTP
    /// chunk); the terminating zero-size chunk is always written.
    Sse {
        /// Event payloads, written after `data: `.
        events: Vec<String>,
        /// Pause before each event.
        delay: Duration,
        /// Whether `data: [DONE]` follows the events.
        done: bool,
    },
    /// Raw bytes for fault tests: `head` (a full "HTTP/1.1 200 OK\r\n...\r\n\r\n" string) is
    /// written as-is, then each piece of `body` with its own write() call (no chunked encoding
    /// added), each one `delay` after the previous write; then the connection stays silent for
    /// `hold_open` (interruptible by shutdown) and closes.
    Raw {
        /// Status line and headers, written verbatim.
        head: String,
        /// Body pieces, one write() each.
        body: Vec<Vec<u8>>,
        /// Pause before each body piece.
        delay: Duration,
        /// Silence after the last piece before closing.
        hold_open: Duration,
    },
}

impl Reply {
    /// Moonshot's error envelope `{"error":{"type","message"}}` with this status; adds header `x-request-id: "sim-req-<n>"`.
    pub fn error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::Json {
            status,
            headers: vec![("x-request-id".to_string(), next_request_id())],
            body: error_body(error_type, message),
        }
    }

    /// A 200 non-stream chat.completion built from a spec.
    pub fn completion(spec: &ReplySpec) -> Reply {
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: completion_body(spec),
        }
    }

    /// A 200 stream built from a spec: role chunk, reasoning deltas, content deltas, tool-call
    /// deltas, the finishing chunk, and the usage chunk the spec's [`UsageShape`] asks for.
    pub fn stream(spec: &ReplySpec) -> Reply {
        Reply::Sse {
            events: stream_events(spec).iter().map(Value::to_string).collect(),
            delay: spec.delay,
            done: true,
        }
    }
}

/// Moonshot's error envelope `{"error":{"type","message"}}`.
pub(crate) fn error_body(error_type: &str, message: &str) -> Value {
    json!({"error": {"type": error_type, "message": message}})
}

/// What a scripted completion or stream says.
#[derive(Clone, Debug)]
pub struct ReplySpec {
    /// Echoed as the response's "model".
    pub model: String,
    /// `reasoning_content`, when the model thinks.
    pub reasoning: Option<String>,
    /// The answer text.
    pub content: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCallSpec>,
    /// "stop" | "length" | "tool_calls".
    pub finish_reason: String,
    /// Token usage; `None` sends no usage at all.
    pub usage: Option<UsageSpec>,
    /// Where the usage goes.
    pub usage_shape: UsageShape,
    /// Stream text is split into pieces of this many chars (chars, not bytes; 0 counts as 1).
    pub chunk_chars: usize,
    /// Pause between stream events.
    pub delay: Duration,
}

impl Default for ReplySpec {
    /// Model "kimi-k2.6", content "Hello from Kimi.", finish "stop", usage 10/5/0, shape Choice, chunk_chars 4.
    fn default() -> Self {
        ReplySpec {
            model: "kimi-k2.6".to_string(),
            reasoning: None,
            content: "Hello from Kimi.".to_string(),
            tool_calls: Vec::new(),
            finish_reason: "stop".to_string(),
            usage: Some(UsageSpec {
                prompt_tokens: 10,
                completion_tokens: 5,
                cached_tokens: 0,
            }),
            usage_shape: UsageShape::Choice,
            chunk_chars: 4,
            delay: Duration::ZERO,
        }
    }
}

/// One tool call of a scripted reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCallSpec {
    /// Opaque call id, e.g. "call_1" or "search:0".
    pub id: String,
    /// Function name.
    pub name: String,
    /// JSON-encoded arguments, sent as a string.
    pub arguments: String,
}

/// Token counts of a scripted reply; `cached_tokens` is counted inside `prompt_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageSpec {
    /// Input tokens, cached ones included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens served from the prompt cache.
    pub cached_tokens: u64,
}

/// Where usage is placed (MOONSHOT-API.md section 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsageShape {
    /// Stream: inside the finishing choice (`choices[0].usage`), Moonshot's classic shape.
    #[default]
    Choice,
    /// Stream: an extra chunk with `"choices":[]` and top-level `usage`.
    TopLevel,
    /// Stream: both of the above.
    Both,
    /// Like `TopLevel`, with cached tokens at `usage.prompt_tokens_details.cached_tokens`.
    PromptDetails,
}

/// The usage object for a shape.
fn usage_value(usage: &UsageSpec, shape: UsageShape) -> Value {
    let mut obj = Map::new();
    obj.insert("prompt_tokens".into(), usage.prompt_tokens.into());
    obj.insert("completion_tokens".into(), usage.completion_tokens.into());
    obj.insert(
        "total_tokens".into(),
        (usage.prompt_tokens + usage.completion_tokens).into(),
    );
    if shape == UsageShape::PromptDetails {
        obj.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": usage.cached_tokens}),
        );
    } else {
        obj.insert("cached_tokens".into(), usage.cached_tokens.into());
    }
    Value::Object(obj)
}

/// The non-stream `chat.completion` body (usage always top-level).
pub(crate) fn completion_body(spec: &ReplySpec) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("content".into(), spec.content.clone().into());
    if let Some(reasoning) = &spec.reasoning {
        message.insert("reasoning_content".into(), reasoning.clone().into());
    }
    if !spec.tool_calls.is_empty() {
        let calls: Vec<Value> = spec
            .tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        message.insert("tool_calls".into(), calls.into());
    }
    let mut body = json!({
        "id": next_completion_id(),
        "object": "chat.completion",
        "created": unix_now(),
        "model": spec.model,
        "choices": [{"index": 0, "message": message, "finish_reason": spec.finish_reason}],
    });
    if let Some(usage) = &spec.usage {
        body["usage"] = usage_value(usage, spec.usage_shape);
    }
    body
}

/// Splits `text` into pieces of at most `n` chars (`n` 0 counts as 1); empty text gives none.
pub(crate) fn split_chars(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// The JSON payloads of a stream, in order (without the `[DONE]` sentinel).
pub(crate) fn stream_events(spec: &ReplySpec) -> Vec<Value> {
    let id = next_completion_id();
    let created = unix_now();
    let chunk = |delta: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": spec.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}))];
    if let Some(reasoning) = &spec.reasoning {
        for piece in split_chars(reasoning, spec.chunk_chars) {
            events.push(chunk(json!({"reasoning_content": piece})));
        }
    }
    for piece in split_chars(&spec.content, spec.chunk_chars) {
        events.push(chunk(json!({"content": piece})));
    }
    for (index, call) in spec.tool_calls.iter().enumerate() {
        events.push(chunk(json!({"tool_calls": [{
            "index": index, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}}]})));
        for piece in split_chars(&call.arguments, spec.chunk_chars) {
            events.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
            ));
        }
    }
    let mut last = chunk(json!({}));
    last["choices"][0]["finish_reason"] = spec.finish_reason.clone().into();
    let shape = spec.usage_shape;
    if let Some(usage) = &spec.usage {
        if matches!(shape, UsageShape::Choice | UsageShape::Both) {
            last["choices"][0]["usage"] = usage_value(usage, shape);
        }
        events.push(last);
        if shape != UsageShape::Choice {
            events.push(json!({"id": id, "object": "chat.completion.chunk", "created": created,
                               "model": spec.model, "choices": [], "usage": usage_value(usage, shape)}));
        }
    } else {
        events.push(last);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_everything() -> ReplySpec {
        ReplySpec {
            reasoning: Some("think, think".into()),
            content: "héllo wörld".into(),
            tool_calls: vec![
                ToolCallSpec {
                    id: "call_1".into(),
                    name: "add".into(),
                    arguments: r#"{"a":1,"b":2}"#.into(),
                },
                ToolCallSpec {
                    id: "search:0".into(),
                    name: "$web_search".into(),
                    arguments: String::new(),
                },
            ],
            finish_reason: "tool_calls".into(),
            usage: Some(UsageSpec {
                prompt_tokens: 100,
                completion_tokens: 20,
                cached_tokens: 60,
            }),
            ..ReplySpec::default()
        }
    }

    #[test]
    fn splits_by_chars_not_bytes() {
        assert_eq!(split_chars("héllo", 2), vec!["hé", "ll", "o"]);
        assert_eq!(split_chars("ab", 0), vec!["a", "b"]);
        assert!(split_chars("", 4).is_empty());
    }

    #[test]
    fn completion_shape() {
        let body = completion_body(&spec_with_everything());
        assert_eq!(body["object"], "chat.completion");
        assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-sim-"));
        let msg = &body["choices"][0]["message"];
        assert_eq!(msg["role"], "assistant");
        assert_eq!(msg["reasoning_content"], "think, think");
        assert_eq!(msg["tool_calls"][0]["type"], "function");
        assert_eq!(
            msg["tool_calls"][0]["function"]["arguments"],
            r#"{"a":1,"b":2}"#
        );
        assert_eq!(msg["tool_calls"][1]["id"], "search:0");
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            body["usage"],
            json!({"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"cached_tokens":60})
        );
        let plain = completion_body(&ReplySpec {
            usage_shape: UsageShape::PromptDetails,
            ..ReplySpec::default()
        });
        assert!(plain["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());
        assert!(plain["choices"][0]["message"].get("tool_calls").is_none());
        assert!(plain["usage"].get("cached_tokens").is_none());
        assert_eq!(plain["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
        let none = completion_body(&ReplySpec {
            usage: None,
            ..ReplySpec::default()
        });
        assert!(none.get("usage").is_none());
    }

    #[test]
    fn stream_order_and_reassembly() {
        let spec = spec_with_everything();
        let events = stream_events(&spec);
        assert_eq!(
            events[0]["choices"][0]["delta"],
            json!({"role":"assistant","content":""})
        );
        let (mut reasoning, mut content) = (String::new(), String::new());
        let mut args = [String::new(), String::new()];
        let mut phase = 0;
        for e in &events[1..events.len() - 1] {
            let d = &e["choices"][0]["delta"];
            assert_eq!(e["object"], "chat.completion.chunk");
            assert!(e["choices"][0]["finish_reason"].is_null());
            if let Some(r) = d["reasoning_content"].as_str() {
                assert!(phase <= 1);
                phase = 1;
                reasoning.push_str(r);
            } else if let Some(c) = d["content"].as_str() {
                assert!(phase <= 2);
                phase = 2;
                content.push_str(c);
                assert!(c.chars().count() <= 4);
            } else {
                phase = 3;
                let call = &d["tool_calls"][0];
                let i = call["index"].as_u64().unwrap() as usize;
                args[i].push_str(call["function"]["arguments"].as_str().unwrap());
            }
        }
        assert_eq!(reasoning, "think, think");
        assert_eq!(content, "héllo wörld");
        assert_eq!(args[0], r#"{"a":1,"b":2}"#);
        assert_eq!(args[1], "");
        let last = events.last().unwrap();
        assert_eq!(last["choices"][0]["delta"], json!({}));
        assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(last["choices"][0]["usage"]["cached_tokens"], 60);
    }

    #[test]
    fn stream_usage_shapes() {
        let with = |shape| {
            stream_events(&ReplySpec {
                usage_shape: shape,
                ..ReplySpec::default()
            })
        };
        let top = with(UsageShape::TopLevel);
        let finish = &top[top.len() - 2];
        assert!(finish["choices"][0].get("usage").is_none());
        assert_eq!(top.last().unwrap()["choices"], json!([]));
        assert_eq!(top.last().unwrap()["usage"]["total_tokens"], 15);
        let both = with(UsageShape::Both);
        assert_eq!(
            both[both.len() - 2]["choices"][0]["usage"]["prompt_tokens"],
            10
        );
        assert_eq!(both.last().unwrap()["usage"]["completion_tokens"], 5);
        let details = with(UsageShape::PromptDetails);
        let usage = &details.last().unwrap()["usage"];
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
        assert!(usage.get("cached_tokens").is_none());
        let none = stream_events(&ReplySpec {
            usage: None,
            usage_shape: UsageShape::Both,
            ..ReplySpec::default()
        });
        assert!(none
            .iter()
            .all(|e| e.get("usage").is_none() && e["choices"][0].get("usage").is_none()));
        assert_eq!(none.last().unwrap()["choices"][0]["finish_reason"], "stop");
    }
}
