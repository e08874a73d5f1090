//! Moonshot's request rules (MOONSHOT-API.md §3), enforced on every chat
//! request the simulator receives, scripted or not, so a test whose plugin
//! sends something the real API would refuse gets the real API's 400.

use serde_json::Value;

use crate::script::Reply;

fn invalid(message: &str) -> Reply {
    Reply::error(400, "invalid_request_error", message)
}

/// Whether the model reasons for this request, per its family's default.
fn thinking_on(model: &str, body: &Value) -> bool {
    match model {
        "kimi-k3"
        | "kimi-k2.7-code"
        | "kimi-k2.7-code-highspeed"
        | "kimi-k2-thinking"
        | "kimi-k2-thinking-turbo" => true,
        "kimi-k2.6" | "kimi-k2.5" => body["thinking"]["type"] != "disabled",
        _ => false,
    }
}

/// `^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$`
fn valid_tool_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=64).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

/// Every nested property must say its type.
fn untyped_property(schema: &Value, path: &str) -> Option<String> {
    let properties = schema.get("properties")?.as_object()?;
    for (name, property) in properties {
        let here = if path.is_empty() {
            format!("properties.{name}")
        } else {
            format!("{path}.properties.{name}")
        };
        let combined = ["anyOf", "oneOf", "allOf", "$ref"]
            .iter()
            .any(|k| property.get(k).is_some());
        if property.get("type").is_none() && !combined {
            return Some(here);
        }
        if let Some(found) = untyped_property(property, &here) {
            return Some(found);
        }
    }
    None
}

/// Checks the body; Err is the 400 Moonshot would answer.
pub(crate) fn check(body: &Value) -> Result<(), Reply> {
    let model = body["model"].as_str().unwrap_or_default();
    let on = thinking_on(model, body);

    if let Some(thinking) = body.get("thinking") {
        if !thinking.is_object() {
            return Err(invalid("thinking must be an object"));
        }
        if model == "kimi-k3" {
            return Err(invalid(
                "thinking is not supported for kimi-k3, use reasoning_effort",
            ));
        }
        if model.starts_with("kimi-k2.7") && thinking["type"] != "enabled" {
            return Err(invalid("thinking.type must be enabled for this model"));
        }
        if model == "kimi-k2.5" && thinking.get("keep").is_some_and(|k| !k.is_null()) {
            return Err(invalid("thinking.keep is not supported for this model"));
        }
    }
    if let Some(effort) = body.get("reasoning_effort") {
        if model != "kimi-k3" {
            return Err(invalid("reasoning_effort is not supported for this model"));
        }
        if !matches!(effort.as_str(), Some("low" | "high" | "max")) {
            return Err(invalid("reasoning_effort must be one of low, high, max"));
        }
    }

    // Recorded answers of the real kimi-k3 (tests/recordings/kimi-probes).
    if model == "kimi-k3" {
        if body["logprobs"] == true {
            return Err(invalid(
                "invalid logprobs: only false is allowed for this model",
            ));
        }
        if body.get("logit_bias").is_some() {
            return Err(invalid("Invalid request: logit_bias is not supported yet"));
        }
    }
    if body.get("top_logprobs").is_some() && body["logprobs"] != true {
        return Err(invalid(
            "Invalid request: logprobs must be set to true if top_logprobs is used",
        ));
    }

    let pinned = match model {
        "kimi-k2.6" | "kimi-k2.5" => Some(if on { 1.0 } else { 0.6 }),
        "kimi-k3" | "kimi-k2.7-code" | "kimi-k2.7-code-highspeed" => Some(1.0),
        _ => None,
    };
    if let (Some(pinned), Some(t)) = (pinned, body.get("temperature").and_then(Value::as_f64)) {
        if (t - pinned).abs() > 1e-9 {
            return Err(invalid(&format!(
                "invalid temperature: only {pinned} is allowed for this model"
            )));
        }
    }
    if pinned.is_some()
        && body
            .get("n")
            .and_then(Value::as_u64)
            .is_some_and(|n| n != 1)
    {
        return Err(invalid("invalid n: only 1 is allowed for this model"));
    }

    if let Some(stop) = body.get("stop").and_then(Value::as_array) {
        if stop.len() > 5 || stop.iter().any(|s| s.as_str().is_none_or(|s| s.len() > 32)) {
            return Err(invalid("stop: at most 5 sequences of at most 32 bytes"));
        }
    }

    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if tools.len() > 128 {
        return Err(invalid("too many tools: at most 128"));
    }
    for tool in tools {
        let function = &tool["function"];
        let name = function["name"].as_str().unwrap_or_default();
        match tool["type"].as_str() {
            Some("builtin_function") if name == "$web_search" => continue,
            Some("function") => {}
            _ => return Err(invalid("tool type must be function or builtin_function")),
        }
        if !valid_tool_name(name) {
            return Err(invalid(&format!("function name is invalid: {name}")));
        }
        let parameters = &function["parameters"];
        if !parameters.is_null() && parameters["type"] != "object" {
            return Err(invalid("function parameters must be an object"));
        }
        if let Some(path) = untyped_property(parameters, "") {
            return Err(invalid(&format!("At path '{path}': type is not defined")));
        }
    }
    if body.get("functions").is_some() || body.get("function_call").is_some() {
        return Err(invalid(
            "functions and function_call are not supported, use tools",
        ));
    }
    if let Some(choice) = body.get("tool_choice") {
        let auto_or_none = matches!(choice.as_str(), Some("auto" | "none"));
        let required_on_k3 = model == "kimi-k3" && choice == "required";
        if on && !auto_or_none && !required_on_k3 {
            return Err(invalid(
                "tool_choice 'specified' is incompatible with thinking enabled",
            ));
        }
    }

    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, message) in messages.iter().enumerate() {
        let has_calls = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        if message["role"] == "assistant" && has_calls {
            if on && message.get("reasoning_content").is_none() {
                return Err(invalid(&format!(
                    "thinking is enabled but reasoning_content is missing in assistant tool call message at index {i}"
                )));
            }
            if message["content"] == "" {
                return Err(invalid(&format!(
                    "message at index {i}: content must not be empty"
                )));
            }
        }
        if message.get("partial").is_some() && body["response_format"]["type"] == "json_object" {
            return Err(invalid("partial mode is not supported with json_object"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(body: Value) -> String {
        match check(&body) {
            Ok(()) => String::new(),
            Err(Reply::Json { body, .. }) => body["error"]["message"].as_str().unwrap().to_string(),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_most_common_400s() {
        let tool_call = json!({"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]});
        assert_eq!(
            message(json!({"model":"kimi-k2.6","messages":[{"role":"user","content":"q"}, tool_call]})),
            "thinking is enabled but reasoning_content is missing in assistant tool call message at index 1"
        );
        assert_eq!(
            message(
                json!({"model":"kimi-k2.6","thinking":{"type":"disabled"},"messages":[tool_call]})
            ),
            ""
        );
        assert!(
            message(json!({"model":"kimi-k2.6","temperature":0.3,"messages":[]}))
                .contains("only 1 is allowed")
        );
        assert!(message(
            json!({"model":"kimi-k2.6","tool_choice":"required","tools":[],"messages":[]})
        )
        .contains("incompatible"));
        assert!(
            message(json!({"model":"kimi-k3","thinking":{"type":"enabled"},"messages":[]}))
                .contains("reasoning_effort")
        );
        assert!(message(json!({"model":"kimi-k2.6","tools":[{"type":"function","function":{"name":"get","parameters":{"type":"object","properties":{"x":{}}}}}],"messages":[]}))
            .contains("At path 'properties.x'"));
    }

    #[test]
    fn kimi_k3_refuses_logprobs_and_logit_bias_as_recorded() {
        for (extra, words) in [
            (json!({"logprobs": true}), "only false is allowed"),
            (
                json!({"logit_bias": {"1734": 5}}),
                "logit_bias is not supported yet",
            ),
            (json!({"top_logprobs": 3}), "logprobs must be set to true"),
        ] {
            let mut body = json!({"model": "kimi-k3", "messages": []});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            assert!(message(body).contains(words), "{extra}");
        }
        assert!(check(&json!({"model": "kimi-k3", "logprobs": false, "messages": []})).is_ok());
        assert!(check(
            &json!({"model": "kimi-k2.6", "logprobs": true, "logit_bias": {"1": 1}, "messages": []})
        )
        .is_ok());
    }
}
