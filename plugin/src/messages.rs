//! Puter's message forms -> Moonshot's `messages` (MOONSHOT-API.md §3, §6).
//!
//! Accepted: a bare string prompt; messages as strings or objects; a missing
//! role (a user message); content as a string, a part, or a part array whose
//! parts are strings, `{type:"text"}`, `{text}`, `{type:"image_url"}`,
//! `{image_url}` (object or bare string url), the same for video, Puter's
//! `tool_use` / `tool_result` blocks, and OpenAI tool calls and tool messages.

use serde_json::{json, Map, Value};

use crate::error::ProviderError;

/// The converted conversation and what the request builder must know of it.
#[derive(Debug, Default, PartialEq)]
pub struct Conversation {
    pub messages: Vec<Value>,
    pub has_image: bool,
    pub has_video: bool,
    /// The prefix of a final `partial: true` assistant message.
    pub partial_prefix: Option<String>,
    /// http(s) media urls still to be fetched and inlined, as
    /// (message index, part index) -> url.
    pub remote_media: Vec<RemoteMedia>,
    /// Indexes of system messages that declare `tools` (kimi-k3's dynamic
    /// tools); the request builder refuses them for other models.
    pub system_tools: Vec<usize>,
}

/// Longest media URL the plugin fetches: its request line must fit the
/// media agent's 8 KiB output buffer (client.rs), and pre-signed URLs run
/// to a few kilobytes.
pub const MAX_MEDIA_URL_BYTES: usize = 7 * 1024;

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct RemoteMedia {
    pub message: usize,
    pub part: usize,
    pub url: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    fn part_type(self) -> &'static str {
        match self {
            MediaKind::Image => "image_url",
            MediaKind::Video => "video_url",
        }
    }
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::invalid_argument(message)
}

/// Converts the `messages` argument (or a `prompt` string).
pub fn convert(
    messages: Option<&Value>,
    prompt: Option<&Value>,
) -> Result<Conversation, ProviderError> {
    let mut conv = Conversation::default();
    let items: Vec<&Value> = match (messages, prompt) {
        (Some(Value::Array(items)), _) => items.iter().collect(),
        (Some(single @ (Value::String(_) | Value::Object(_))), _) => vec![single],
        (Some(Value::Null) | None, Some(p @ Value::String(_))) => vec![p],
        (Some(Value::Null) | None, _) => {
            return Err(bad("the request has no 'messages' (or 'prompt')"))
        }
        (Some(_), _) => return Err(bad("'messages' must be an array of messages or a string")),
    };
    if items.is_empty() {
        return Err(bad("'messages' is empty"));
    }
    let last = items.len() - 1;
    for (i, item) in items.into_iter().enumerate() {
        convert_message(item, i, i == last, &mut conv)?;
    }
    Ok(conv)
}

fn convert_message(
    item: &Value,
    index: usize,
    is_last: bool,
    conv: &mut Conversation,
) -> Result<(), ProviderError> {
    let object = match item {
        Value::String(text) => {
            conv.messages.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Value::Object(object) => object,
        _ => {
            return Err(bad(format!(
                "message {index} must be an object or a string"
            )))
        }
    };
    let role = match object.get("role") {
        None | Some(Value::Null) => "user",
        Some(Value::String(role)) => role.as_str(),
        Some(_) => return Err(bad(format!("message {index}: 'role' must be a string"))),
    };
    match role {
        "system" | "user" | "developer" => {
            let role = if role == "developer" { "system" } else { role };
            user_like(object, role, index, conv)
        }
        "assistant" => assistant(object, index, is_last, conv),
        "tool" => {
            let id = object
                .get("tool_call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(format!(
                        "message {index}: a tool message needs 'tool_call_id'"
                    ))
                })?;
            let mut out = json!({"role": "tool", "tool_call_id": id, "content": text_of(object.get("content"))});
            if let Some(name) = object.get("name").and_then(Value::as_str) {
                out["name"] = json!(name);
            }
            conv.messages.push(out);
            Ok(())
        }
        other => Err(bad(format!(
            "message {index}: unknown role '{other}' (use system, user, assistant or tool)"
        ))),
    }
}

/// System and user messages: content parts, with Puter's tool_result blocks
/// split out into tool messages placed before the rest.
fn user_like(
    object: &Map<String, Value>,
    role: &str,
    index: usize,
    conv: &mut Conversation,
) -> Result<(), ProviderError> {
    if role == "system" && object.contains_key("tools") {
        return system_with_tools(object, index, conv);
    }
    let mut parts = Vec::new();
    match object.get("content") {
        None | Some(Value::Null) => return Err(bad(format!("message {index} has no content"))),
        Some(Value::String(text)) => {
            let mut out = json!({"role": role, "content": text});
            copy_name(object, &mut out);
            conv.messages.push(out);
            return Ok(());
        }
        Some(Value::Array(items)) => {
            // An empty part array would silently drop the message.
            if items.is_empty() {
                return Err(bad(format!(
                    "message {index} has no content (an empty part array)"
                )));
            }
            for (p, item) in items.iter().enumerate() {
                if item.get("type").and_then(Value::as_str) == Some("tool_result") {
                    conv.messages.push(tool_result(item, index)?);
                } else {
                    parts.push(convert_part(item, index, p)?);
                }
            }
        }
        Some(single @ Value::Object(_)) => parts.push(convert_part(single, index, 0)?),
        Some(_) => {
            return Err(bad(format!(
                "message {index}: 'content' must be a string or an array of parts"
            )))
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let message_index = conv.messages.len();
    for (p, part) in parts.iter().enumerate() {
        for kind in [MediaKind::Image, MediaKind::Video] {
            if let Some(url) = part
                .get(kind.part_type())
                .and_then(|m| m.get("url"))
                .and_then(Value::as_str)
            {
                match kind {
                    MediaKind::Image => conv.has_image = true,
                    MediaKind::Video => conv.has_video = true,
                }
                if url.starts_with("http://") || url.starts_with("https://") {
                    if url.len() > MAX_MEDIA_URL_BYTES {
                        return Err(bad(format!(
                            "message {index}: a media URL of {} bytes, over the limit of \
                             {MAX_MEDIA_URL_BYTES}: send the media inline (a data: URL)",
                            url.len()
                        )));
                    }
                    conv.remote_media.push(RemoteMedia {
                        message: message_index,
                        part: p,
                        url: url.to_string(),
                    });
                }
            }
        }
    }
    let mut out = json!({"role": role, "content": parts});
    copy_name(object, &mut out);
    conv.messages.push(out);
    Ok(())
}

/// `{"role":"system","tools":[...]}`, content optional: kimi-k3's documented
/// way to declare tools mid-conversation. Passed through as given.
fn system_with_tools(
    object: &Map<String, Value>,
    index: usize,
    conv: &mut Conversation,
) -> Result<(), ProviderError> {
    let tools = match object.get("tools") {
        Some(Value::Array(tools)) if !tools.is_empty() && tools.iter().all(Value::is_object) => {
            tools
        }
        _ => {
            return Err(bad(format!(
            "message {index}: a system message's 'tools' must be a non-empty array of tool objects"
        )))
        }
    };
    let mut out = json!({"role": "system", "tools": tools});
    match object.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => out["content"] = json!(text),
        Some(_) => {
            return Err(bad(format!(
                "message {index}: a system message with tools takes string content only"
            )))
        }
    }
    copy_name(object, &mut out);
    conv.system_tools.push(conv.messages.len());
    conv.messages.push(out);
    Ok(())
}

fn copy_name(from: &Map<String, Value>, to: &mut Value) {
    if let Some(name) = from.get("name").and_then(Value::as_str) {
        to["name"] = json!(name);
    }
}

/// One content part, normalised to Moonshot's `{type, ...}` form.
fn convert_part(item: &Value, index: usize, p: usize) -> Result<Value, ProviderError> {
    let where_ = || format!("message {index}, part {p}");
    if let Value::String(text) = item {
        return Ok(json!({"type": "text", "text": text}));
    }
    let object = item.as_object().ok_or_else(|| {
        bad(format!(
            "{}: a part must be an object or a string",
            where_()
        ))
    })?;
    let kind = object.get("type").and_then(Value::as_str);
    let media = |kind: MediaKind| -> Result<Value, ProviderError> {
        let url = match object.get(kind.part_type()) {
            Some(Value::String(url)) => url.clone(),
            Some(Value::Object(inner)) => inner
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(format!(
                        "{}: '{}' needs a 'url'",
                        where_(),
                        kind.part_type()
                    ))
                })?
                .to_string(),
            _ => {
                return Err(bad(format!(
                    "{}: '{}' needs a url",
                    where_(),
                    kind.part_type()
                )))
            }
        };
        check_media_url(&url, &where_())?;
        Ok(json!({"type": kind.part_type(), kind.part_type(): {"url": url}}))
    };
    match kind {
        Some("text") | None if object.contains_key("text") => {
            let text = object
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{}: 'text' must be a string", where_())))?;
            Ok(json!({"type": "text", "text": text}))
        }
        Some("image_url") | None if object.contains_key("image_url") => media(MediaKind::Image),
        Some("video_url") | None if object.contains_key("video_url") => media(MediaKind::Video),
        Some(other) => Err(bad(format!(
            "{}: unsupported part type '{other}'",
            where_()
        ))),
        None => Err(bad(format!(
            "{}: a part needs 'type' or one of text, image_url, video_url",
            where_()
        ))),
    }
}

fn check_media_url(url: &str, where_: &str) -> Result<(), ProviderError> {
    let ok = url.starts_with("data:")
        || url.starts_with("ms://")
        || url.starts_with("http://")
        || url.starts_with("https://");
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{where_}: media url must be a data: URI, ms://<file_id>, or http(s) URL"
        )))
    }
}

/// Puter's `{type:"tool_result", tool_use_id, content}` -> a tool message.
fn tool_result(block: &Value, index: usize) -> Result<Value, ProviderError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "message {index}: a tool_result block needs 'tool_use_id'"
            ))
        })?;
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text_of(block.get("content"))}))
}

/// Tool output as text: strings as they are, part arrays joined, anything
/// else as its JSON.
fn text_of(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts))
            if parts
                .iter()
                .all(|p| p.is_string() || p.get("text").is_some()) =>
        {
            parts
                .iter()
                .map(|p| {
                    p.as_str()
                        .or_else(|| p.get("text").and_then(Value::as_str))
                        .unwrap_or("")
                })
                .collect::<Vec<_>>()
                .join("")
        }
        Some(other) => other.to_string(),
    }
}

/// Assistant messages: text, tool calls (OpenAI's or Puter's tool_use
/// blocks), the reasoning the host echoes back, and partial mode.
fn assistant(
    object: &Map<String, Value>,
    index: usize,
    is_last: bool,
    conv: &mut Conversation,
) -> Result<(), ProviderError> {
    let mut text = String::new();
    let mut tool_calls: Vec<Value> = Vec::new();
    match object.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => text.push_str(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item.get("type").and_then(Value::as_str) {
                    Some("tool_use") => tool_calls.push(tool_use_to_call(item, index)?),
                    Some("thinking") | Some("reasoning") => {}
                    _ => match item {
                        Value::String(s) => text.push_str(s),
                        _ => text.push_str(item.get("text").and_then(Value::as_str).unwrap_or("")),
                    },
                }
            }
        }
        Some(_) => {
            return Err(bad(format!(
                "message {index}: 'content' must be a string or an array of parts"
            )))
        }
    }
    if let Some(calls) = object.get("tool_calls").and_then(Value::as_array) {
        for call in calls {
            tool_calls.push(openai_call(call, index)?);
        }
    }
    let mut out = json!({"role": "assistant"});
    // Moonshot rejects an empty content next to tool_calls: omit it then.
    if !text.is_empty() || tool_calls.is_empty() {
        out["content"] = json!(text);
    }
    if !tool_calls.is_empty() {
        out["tool_calls"] = Value::Array(tool_calls);
    }
    if let Some(reasoning) = echoed_reasoning(object) {
        out["reasoning_content"] = json!(reasoning);
    }
    copy_name(object, &mut out);
    if object.get("partial").and_then(Value::as_bool) == Some(true) {
        if !is_last {
            return Err(bad(format!(
                "message {index}: only the last message may be partial"
            )));
        }
        out["partial"] = json!(true);
        conv.partial_prefix = Some(text);
    }
    conv.messages.push(out);
    Ok(())
}

/// The reasoning a host sent back, under any of the names our results or
/// other providers use for it.
fn echoed_reasoning(object: &Map<String, Value>) -> Option<String> {
    for field in ["reasoning_content", "reasoning", "thinking"] {
        match object.get(field) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Object(o)) => {
                if let Some(s) = o.get("text").or(o.get("content")).and_then(Value::as_str) {
                    return Some(s.to_string());
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Array(items)) = object.get("content") {
        let joined: String = items
            .iter()
            .filter(|i| {
                matches!(
                    i.get("type").and_then(Value::as_str),
                    Some("thinking") | Some("reasoning")
                )
            })
            .filter_map(|i| {
                i.get("thinking")
                    .or(i.get("reasoning"))
                    .or(i.get("text"))
                    .and_then(Value::as_str)
            })
            .collect();
        if !joined.is_empty() {
            return Some(joined);
        }
    }
    None
}

fn tool_use_to_call(block: &Value, index: usize) -> Result<Value, ProviderError> {
    let id = block.get("id").and_then(Value::as_str);
    let name = block.get("name").and_then(Value::as_str);
    let (Some(id), Some(name)) = (id, name) else {
        return Err(bad(format!(
            "message {index}: a tool_use block needs 'id' and 'name'"
        )));
    };
    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
    Ok(
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments_text(&input)}}),
    )
}

fn openai_call(call: &Value, index: usize) -> Result<Value, ProviderError> {
    let id = call.get("id").and_then(Value::as_str);
    let function = call.get("function");
    let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
    let (Some(id), Some(name)) = (id, name) else {
        return Err(bad(format!(
            "message {index}: a tool call needs 'id' and 'function.name'"
        )));
    };
    let arguments = function
        .and_then(|f| f.get("arguments"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let kind = call
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function");
    Ok(
        json!({"id": id, "type": kind, "function": {"name": name, "arguments": arguments_text(&arguments)}}),
    )
}

/// Moonshot wants arguments as a JSON string; hosts often echo them parsed.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// With thinking on, every assistant message carrying tool_calls must carry
/// reasoning_content (empty allowed), else Moonshot answers 400.
pub fn ensure_reasoning_on_tool_calls(messages: &mut [Value]) {
    for message in messages {
        if message.get("role").and_then(Value::as_str) == Some("assistant")
            && message.get("tool_calls").is_some()
            && message.get("reasoning_content").is_none()
        {
            message["reasoning_content"] = json!("");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(messages: Value) -> Conversation {
        convert(Some(&messages), None).unwrap()
    }

    #[test]
    fn string_prompt_and_roleless_messages_are_user_messages() {
        assert_eq!(
            conv(json!("hi")).messages,
            vec![json!({"role":"user","content":"hi"})]
        );
        assert_eq!(
            conv(json!([{"content":"hi"}])).messages,
            vec![json!({"role":"user","content":"hi"})]
        );
        assert_eq!(
            convert(None, Some(&json!("from prompt"))).unwrap().messages,
            vec![json!({"role":"user","content":"from prompt"})]
        );
    }

    #[test]
    fn parts_are_normalised() {
        let c = conv(json!([{"role":"user","content":[
            "plain",
            {"text":"untyped"},
            {"type":"text","text":"typed"},
            {"image_url":"data:image/png;base64,AAAA"},
            {"type":"image_url","image_url":{"url":"ms://file-1"}},
            {"type":"video_url","video_url":"data:video/mp4;base64,AAAA"}
        ]}]));
        assert_eq!(
            c.messages[0]["content"],
            json!([
                {"type":"text","text":"plain"},
                {"type":"text","text":"untyped"},
                {"type":"text","text":"typed"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
                {"type":"image_url","image_url":{"url":"ms://file-1"}},
                {"type":"video_url","video_url":{"url":"data:video/mp4;base64,AAAA"}}
            ])
        );
        assert!(c.has_image && c.has_video);
        assert!(c.remote_media.is_empty());
    }

    #[test]
    fn remote_media_is_noted_for_fetching() {
        let c = conv(
            json!([{"content":[{"text":"what?"},{"image_url":"https://example.com/cat.png"}]}]),
        );
        assert_eq!(
            c.remote_media,
            vec![RemoteMedia {
                message: 0,
                part: 1,
                url: "https://example.com/cat.png".into()
            }]
        );
    }

    #[test]
    fn puter_tool_blocks_become_openai_tool_messages() {
        let c = conv(json!([
            {"role":"user","content":"weather?"},
            {"role":"assistant","content":[{"type":"text","text":""},{"type":"tool_use","id":"functions.get_weather:0","name":"get_weather","input":{"city":"Paris"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"functions.get_weather:0","content":"18C"}]}
        ]));
        assert_eq!(
            c.messages,
            vec![
                json!({"role":"user","content":"weather?"}),
                json!({"role":"assistant","tool_calls":[{"id":"functions.get_weather:0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}),
                json!({"role":"tool","tool_call_id":"functions.get_weather:0","content":"18C"}),
            ]
        );
    }

    #[test]
    fn echoed_reasoning_is_kept_in_any_form() {
        for (field, value) in [
            ("reasoning_content", json!("r1")),
            ("reasoning", json!("r1")),
            ("thinking", json!({"text":"r1"})),
        ] {
            let mut message = json!({"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f","arguments":{}}}]});
            message[field] = value;
            let c = conv(json!([{"content":"q"}, message]));
            assert_eq!(c.messages[1]["reasoning_content"], json!("r1"), "{field}");
            assert_eq!(
                c.messages[1]["tool_calls"][0]["function"]["arguments"],
                json!("{}")
            );
        }
    }

    #[test]
    fn missing_reasoning_is_filled_when_thinking() {
        let mut c = conv(
            json!([{"content":"q"},{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f","arguments":"{}"}}]}]),
        );
        ensure_reasoning_on_tool_calls(&mut c.messages);
        assert_eq!(c.messages[1]["reasoning_content"], json!(""));
    }

    #[test]
    fn partial_prefix_only_last() {
        let c = conv(
            json!([{"content":"q"},{"role":"assistant","content":"Once upon","partial":true}]),
        );
        assert_eq!(c.partial_prefix.as_deref(), Some("Once upon"));
        assert_eq!(
            c.messages[1],
            json!({"role":"assistant","content":"Once upon","partial":true})
        );
        assert!(convert(
            Some(&json!([{"role":"assistant","content":"x","partial":true},{"content":"q"}])),
            None
        )
        .is_err());
    }

    #[test]
    fn a_media_url_longer_than_the_fetcher_can_send_is_refused() {
        let url = |len: usize| {
            let base = "https://example.com/";
            format!("{base}{}", "a".repeat(len - base.len()))
        };
        let longest = url(MAX_MEDIA_URL_BYTES);
        assert_eq!(
            conv(json!([{"content":[{"image_url": longest}]}]))
                .remote_media
                .len(),
            1
        );
        let input = json!([{"content":[{"image_url": url(MAX_MEDIA_URL_BYTES + 1)}]}]);
        let err = convert(Some(&input), None).unwrap_err();
        assert!(
            err.message.contains("over the limit of 7168"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        for (input, needle) in [
            (json!([]), "empty"),
            (json!(5), "must be an array"),
            (json!([5]), "must be an object"),
            (json!([{"role":"robot","content":"x"}]), "unknown role"),
            (
                json!([{"content":[{"type":"audio","data":"x"}]}]),
                "unsupported part type 'audio'",
            ),
            (
                json!([{"content":[{"image_url":"file:///etc/passwd"}]}]),
                "data: URI",
            ),
            (json!([{"role":"tool","content":"x"}]), "tool_call_id"),
            (json!([{"role":"user"}]), "no content"),
            (json!([{"role":"user","content":[]}]), "an empty part array"),
        ] {
            let err = convert(Some(&input), None).unwrap_err();
            assert!(err.message.contains(needle), "{input}: {}", err.message);
        }
    }
}
