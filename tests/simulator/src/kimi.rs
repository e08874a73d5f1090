//! The default, deterministic Kimi behaviour used when no scripted reply is queued.

use std::collections::HashMap;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::script::{Reply, ReplySpec, ToolCallSpec, UsageShape, UsageSpec};

/// A live model: id, context length, image in, video in, always reasons.
struct Model {
    id: &'static str,
    context_length: u64,
    image: bool,
    video: bool,
    always_reasons: bool,
}

const MODELS: &[Model] = &[
    Model {
        id: "kimi-k3",
        context_length: 1_048_576,
        image: true,
        video: true,
        always_reasons: true,
    },
    Model {
        id: "kimi-k2.7-code",
        context_length: 262_144,
        image: false,
        video: false,
        always_reasons: true,
    },
    Model {
        id: "kimi-k2.7-code-highspeed",
        context_length: 262_144,
        image: false,
        video: false,
        always_reasons: true,
    },
    // Image and video in, as Moonshot's kimi-k2.6 pricing page says.
    Model {
        id: "kimi-k2.6",
        context_length: 262_144,
        image: true,
        video: true,
        always_reasons: false,
    },
];

fn find_model(id: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.id == id)
}

/// The text of a message's content: a string, or the concatenated `text` parts of an array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// ceil(total chars of all message text / 4) + 8 per message.
pub(crate) fn prompt_tokens(messages: &[Value]) -> u64 {
    let chars: usize = messages
        .iter()
        .map(|m| content_text(&m["content"]).chars().count())
        .sum();
    (chars as u64).div_ceil(4) + 8 * messages.len() as u64
}

/// The text of the last user message, or "" when there is none.
fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

/// The 404 Moonshot answers for an unknown or retired model.
fn unknown_model(model: &str) -> Reply {
    Reply::error(
        404,
        "resource_not_found_error",
        &format!("Not found the model {model} or Permission denied"),
    )
}

/// Parses a body as a JSON object with a live `model` and a `messages` array.
fn parse_request(body: &[u8]) -> Result<(Value, Vec<Value>), Reply> {
    let invalid = |msg: &str| Reply::error(400, "invalid_request_error", msg);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(&format!("Invalid request: {e}")))?;
    if !value.is_object() {
        return Err(invalid("Invalid request: body must be a JSON object"));
    }
    let model = value["model"]
        .as_str()
        .ok_or_else(|| invalid("Invalid request: model is required"))?;
    if find_model(model).is_none() {
        return Err(unknown_model(model));
    }
    let messages = value["messages"]
        .as_array()
        .cloned()
        .ok_or_else(|| invalid("Invalid request: messages must be an array"))?;
    Ok((value, messages))
}

/// Tokens a simulated search result adds to the next request's prompt.
const SEARCH_RESULT_TOKENS: u64 = 120;

/// What the default behaviour does next.
enum Move {
    Search,
    CallTool(String, String),
    AfterSearch,
    AfterTool(String),
    Greet,
}

fn next_move(request: &Value, last: &Value) -> Move {
    let tools = request["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let searchable = tools.iter().any(|t| t["function"]["name"] == "$web_search");
    if last["role"] == "tool" {
        return if last["name"] == "$web_search" {
            Move::AfterSearch
        } else {
            Move::AfterTool(content_text(&last["content"]))
        };
    }
    if searchable {
        return Move::Search;
    }
    let function = tools.iter().find(|t| t["type"] == "function");
    match function {
        Some(tool) if request["tool_choice"] != "none" && last["role"] == "user" => {
            let function = &tool["function"];
            let name = function["name"].as_str().unwrap_or("tool").to_string();
            // Fill the first required (else first) property with the user's words.
            let property = function["parameters"]["required"][0].as_str().or_else(|| {
                function["parameters"]["properties"]
                    .as_object()
                    .and_then(|p| p.keys().next().map(String::as_str))
            });
            let arguments = match property {
                Some(p) => json!({ p: content_text(&last["content"]) }),
                None => json!({}),
            };
            Move::CallTool(name, arguments.to_string())
        }
        _ => Move::Greet,
    }
}

/// State of the default behaviour: prompt tokens last seen per
/// `prompt_cache_key`, and a counter for search ids.
#[derive(Default)]
pub(crate) struct Kimi {
    cache: Mutex<HashMap<String, u64>>,
    searches: std::sync::atomic::AtomicU64,
}

impl Kimi {
    /// Notes a chat request's `prompt_cache_key` (if any) and returns its cached tokens: the
    /// prompt tokens of the previous request with that key, capped at this one's, else 0.
    pub(crate) fn note_cache_key(&self, body: &Value) -> u64 {
        let (Some(key), Some(messages)) = (
            body.get("prompt_cache_key").and_then(Value::as_str),
            body.get("messages").and_then(Value::as_array),
        ) else {
            return 0;
        };
        let prompt = prompt_tokens(messages);
        let previous = self.cache.lock().insert(key.to_string(), prompt);
        previous.map_or(0, |p| p.min(prompt))
    }

    /// Answers POST /v1/chat/completions: a `$web_search` call when search
    /// is declared and has not run yet, a call of the first declared tool
    /// when the user just spoke, else a greeting that echoes the user.
    pub(crate) fn chat(&self, body: &[u8]) -> Reply {
        let (request, messages) = match parse_request(body) {
            Ok(parsed) => parsed,
            Err(reply) => return reply,
        };
        let cached = self.note_cache_key(&request);
        let model = request["model"].as_str().unwrap_or_default();
        let always = find_model(model).is_some_and(|m| m.always_reasons);
        let thinking = always || request["thinking"]["type"] != "disabled";
        let last = last_user_text(&messages);
        let last_message = messages.last().cloned().unwrap_or(Value::Null);
        let reasoning =
            thinking.then(|| format!("The user said \"{last}\". I should answer briefly."));

        let mut tool_calls = Vec::new();
        let mut extra_prompt = 0;
        let content = match next_move(&request, &last_message) {
            Move::Search => {
                let n = self
                    .searches
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                tool_calls.push(ToolCallSpec {
                    id: format!("web_search:{n}"),
                    name: "$web_search".into(),
                    arguments: json!({"search_result": {"search_id": format!("sim-search-{n}")},
                                      "usage": {"total_tokens": SEARCH_RESULT_TOKENS}})
                    .to_string(),
                });
                String::new()
            }
            Move::CallTool(name, arguments) => {
                tool_calls.push(ToolCallSpec {
                    id: format!("functions.{name}:0"),
                    name,
                    arguments,
                });
                String::new()
            }
            Move::AfterSearch => {
                extra_prompt = SEARCH_RESULT_TOKENS;
                format!(
                    "According to the web (simulated search), here is what I found about: {last}"
                )
            }
            Move::AfterTool(output) => format!("The tool answered: {output}"),
            Move::Greet => {
                format!("Hello! I'm Kimi, running in the offline simulator. You said: {last}")
            }
        };
        let out_chars = content.chars().count()
            + reasoning.as_ref().map_or(0, |r| r.chars().count())
            + tool_calls
                .iter()
                .map(|c| c.arguments.chars().count())
                .sum::<usize>();
        let prompt = prompt_tokens(&messages) + extra_prompt;
        let stream = request["stream"] == true;
        let include_usage = request["stream_options"]["include_usage"] == true;
        let spec = ReplySpec {
            model: model.to_string(),
            reasoning,
            content,
            finish_reason: if tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            }
            .into(),
            tool_calls,
            usage: Some(UsageSpec {
                prompt_tokens: prompt,
                completion_tokens: (out_chars as u64).div_ceil(4),
                cached_tokens: cached.min(prompt),
            }),
            usage_shape: if stream && include_usage {
                UsageShape::Both
            } else {
                UsageShape::Choice
            },
            ..ReplySpec::default()
        };
        if stream {
            Reply::stream(&spec)
        } else {
            Reply::completion(&spec)
        }
    }

    /// Answers POST /v1/tokenizers/estimate-token-count.
    pub(crate) fn estimate(&self, body: &[u8]) -> Reply {
        match parse_request(body) {
            Ok((_, messages)) => Reply::Json {
                status: 200,
                headers: Vec::new(),
                body: json!({"code": 0, "data": {"total_tokens": prompt_tokens(&messages)},
                             "scode": "0x0", "status": true}),
            },
            Err(reply) => reply,
        }
    }
}

/// Answers GET /v1/models with the live list.
pub(crate) fn models() -> Reply {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| {
            json!({"id": m.id, "object": "model", "owned_by": "moonshot",
                   "context_length": m.context_length, "supports_image_in": m.image,
                   "supports_video_in": m.video, "supports_reasoning": true})
        })
        .collect();
    Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: json!({"object": "list", "data": data}),
    }
}

/// GET /v1/users/me/balance: MOONSHOT-API.md §7's shape, fixed figures.
pub(crate) fn balance() -> Reply {
    Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: json!({"code": 0, "data": {"available_balance": 49.58894,
                     "voucher_balance": 46.58893, "cash_balance": 3.00001},
                     "scode": "0x0", "status": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(reply: Reply) -> (u16, Value) {
        match reply {
            Reply::Json { status, body, .. } => (status, body),
            other => panic!("expected JSON, got {other:?}"),
        }
    }

    #[test]
    fn counts_prompt_tokens() {
        let messages = vec![
            json!({"role": "system", "content": "abcde"}),
            json!({"role": "user", "content": [{"type": "text", "text": "xyz"},
                                               {"type": "image_url", "image_url": {"url": "u"}}]}),
            json!({"role": "assistant", "content": null, "tool_calls": []}),
        ];
        // 8 chars -> 2, plus 3 messages * 8.
        assert_eq!(prompt_tokens(&messages), 26);
        assert_eq!(last_user_text(&messages), "xyz");
    }

    #[test]
    fn default_completion_and_reasoning() {
        let kimi = Kimi::default();
        let req = json!({"model": "kimi-k2.6", "thinking": {"type": "disabled"},
                         "messages": [{"role": "user", "content": "hi"}]});
        let (status, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        assert_eq!(status, 200);
        let msg = &body["choices"][0]["message"];
        assert_eq!(
            msg["content"],
            "Hello! I'm Kimi, running in the offline simulator. You said: hi"
        );
        assert!(msg.get("reasoning_content").is_none());
        assert_eq!(body["usage"]["prompt_tokens"], 9);
        assert_eq!(body["usage"]["completion_tokens"], 16); // 63 chars
                                                            // kimi-k2.6 thinks unless told not to.
        let req = json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}]});
        let (_, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        assert_eq!(
            body["choices"][0]["message"]["reasoning_content"],
            "The user said \"hi\". I should answer briefly."
        );
        let req = json!({"model": "kimi-k3", "messages": [{"role": "user", "content": "hi"}]});
        let (_, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        assert!(body["choices"][0]["message"]["reasoning_content"].is_string());
        assert_eq!(body["model"], "kimi-k3");
    }

    #[test]
    fn web_search_round_trip_then_answer() {
        let kimi = Kimi::default();
        let tools = json!([{"type": "builtin_function", "function": {"name": "$web_search"}}]);
        let req = json!({"model": "kimi-k2.6", "tools": tools, "messages": [{"role": "user", "content": "news"}]});
        let (_, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        let call = &body["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(call["function"]["name"], "$web_search");
        let req = json!({"model": "kimi-k2.6", "tools": tools, "messages": [
            {"role": "user", "content": "news"},
            {"role": "assistant", "reasoning_content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "name": "$web_search", "content": call["function"]["arguments"]}
        ]});
        let (_, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert!(body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("news"));
    }

    #[test]
    fn calls_the_first_tool_then_reports_its_answer() {
        let kimi = Kimi::default();
        let tools = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
        let req = json!({"model": "kimi-k2.6", "tools": tools, "messages": [{"role": "user", "content": "Paris"}]});
        let (_, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        let call = &body["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
        let req = json!({"model": "kimi-k2.6", "tools": tools, "messages": [
            {"role": "tool", "tool_call_id": call["id"], "content": "18C"}]});
        let (_, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "The tool answered: 18C"
        );
    }

    #[test]
    fn errors_for_bad_json_and_unknown_model() {
        let kimi = Kimi::default();
        let (status, body) = body_of(kimi.chat(b"{nope"));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let req = json!({"model": "kimi-k2.5", "messages": []});
        let (status, body) = body_of(kimi.chat(req.to_string().as_bytes()));
        assert_eq!(status, 404);
        assert_eq!(body["error"]["type"], "resource_not_found_error");
        assert_eq!(
            body["error"]["message"],
            "Not found the model kimi-k2.5 or Permission denied"
        );
    }

    #[test]
    fn prompt_cache_key_hits_on_repeat() {
        let kimi = Kimi::default();
        let first = json!({"model": "kimi-k2.6", "prompt_cache_key": "s1",
                           "messages": [{"role": "user", "content": "hello there"}]});
        let second = json!({"model": "kimi-k2.6", "prompt_cache_key": "s1",
                            "messages": [{"role": "user", "content": "hello there"},
                                         {"role": "assistant", "content": "hi"},
                                         {"role": "user", "content": "again"}]});
        let (_, a) = body_of(kimi.chat(first.to_string().as_bytes()));
        assert_eq!(a["usage"]["cached_tokens"], 0);
        let (_, b) = body_of(kimi.chat(second.to_string().as_bytes()));
        assert_eq!(b["usage"]["cached_tokens"], a["usage"]["prompt_tokens"]);
        let other = json!({"model": "kimi-k2.6", "prompt_cache_key": "s2", "messages": []});
        let (_, c) = body_of(kimi.chat(other.to_string().as_bytes()));
        assert_eq!(c["usage"]["cached_tokens"], 0);
    }

    #[test]
    fn models_and_estimate() {
        let (_, list) = body_of(models());
        assert_eq!(list["data"].as_array().unwrap().len(), 4);
        assert_eq!(list["data"][0]["context_length"], 1_048_576);
        assert_eq!(list["data"][0]["supports_video_in"], true);
        assert_eq!(list["data"][3]["id"], "kimi-k2.6");
        let req = json!({"model": "kimi-k2.6", "messages": [{"role": "user", "content": "abcd"}]});
        let (status, body) = body_of(Kimi::default().estimate(req.to_string().as_bytes()));
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"code":0,"data":{"total_tokens":9},"scode":"0x0","status":true})
        );
    }
}
