//! ICompleteArguments (Puter's `complete()` argument, as JSON) -> the body of
//! Moonshot's POST /chat/completions, with every rule checked before sending.

use serde_json::{json, Map, Value};

use crate::catalog::{self, ModelCard, ResolveError, Sampling, Thinking};
use crate::config::Config;
use crate::error::{ErrorKind, ProviderError};
use crate::messages::{self, Conversation, RemoteMedia};
use crate::metering;
use crate::{fields, thinking, tools};

/// A request ready to send, and what the result must report about it.
#[derive(Debug)]
pub struct Prepared {
    /// The catalog entry that serves the request (after any migration).
    pub card: &'static ModelCard,
    /// The id the caller asked for, when it was migrated.
    pub migrated_from: Option<&'static str>,
    pub migration_reason: Option<String>,
    pub stream: bool,
    /// `coalesce_parts`: a stream delivers the text (or reasoning) deltas
    /// of one socket read as one part.
    pub coalesce_parts: bool,
    /// The JSON body for Moonshot.
    pub body: Map<String, Value>,
    /// Partial mode's prefix; the result starts with it exactly once.
    pub partial_prefix: Option<String>,
    /// What the plugin changed to satisfy the model's rules, in words.
    pub adjustments: Vec<String>,
    /// The built-in `$web_search` is declared: the job runs its round trips.
    pub web_search: bool,
    /// http(s) media to fetch and inline before sending.
    pub remote_media: Vec<RemoteMedia>,
    /// Whether the model reasons for this request (reasoning_content must
    /// then accompany every assistant tool call sent back).
    pub thinking_on: bool,
}

fn bad_request(message: impl Into<String>) -> ProviderError {
    ProviderError::invalid_request(message)
}

/// Builds the Moonshot request from the host's arguments.
pub fn prepare(args: &Value, config: &Config) -> Result<Prepared, ProviderError> {
    let args = args
        .as_object()
        .ok_or_else(|| ProviderError::invalid_argument("the request must be a JSON object"))?;
    let conversation = messages::convert(args.get("messages"), args.get("prompt"))?;
    let model_name = match args.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.as_str()),
        Some(_) => return Err(ProviderError::invalid_argument("'model' must be a string")),
    };
    let needs_media = conversation.has_image || conversation.has_video;
    let resolution = catalog::resolve(
        model_name,
        config.clock.today(),
        config.retired_models,
        needs_media,
    )
    .map_err(resolve_error)?;
    let card = resolution.card;
    check_modalities(card, &conversation)?;
    if let Some(index) = conversation.system_tools.first() {
        if !card.system_tools {
            return Err(bad_request(format!(
                "message {index}: model '{}' does not take tools in a system message; declare them in 'tools'",
                card.id
            )));
        }
    }

    let stream = flag(args, "stream")?;
    let coalesce_parts = flag(args, "coalesce_parts")?;

    let mut adjustments = Vec::new();
    let mut thinking = thinking::plan(card, args, &mut adjustments)?;
    let tools = tools::plan(args, card, &mut thinking, &mut adjustments)?;
    let Conversation {
        mut messages,
        partial_prefix,
        remote_media,
        ..
    } = conversation;
    if partial_prefix.is_some() && !card.partial_mode {
        return Err(bad_request(format!(
            "model '{}' does not support partial mode",
            card.id
        )));
    }
    if let Some(steer) = &tools.steer {
        let at = if partial_prefix.is_some() {
            messages.len() - 1
        } else {
            messages.len()
        };
        messages.insert(at, json!({"role": "user", "content": steer}));
    }
    if thinking.on {
        messages::ensure_reasoning_on_tool_calls(&mut messages);
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(card.id));
    let limit = max_tokens(args, card, &messages, &mut adjustments)?;
    body.insert("messages".into(), Value::Array(messages));
    body.insert("max_completion_tokens".into(), json!(limit));
    thinking.write(&mut body);
    sampling(args, card, thinking.on, stream, &mut body, &mut adjustments)?;
    response_format(args, card, partial_prefix.is_some(), &mut body)?;
    stop(args, &mut body)?;
    fields::forward(args, card, &mut body)?;
    for field in ["prompt_cache_key", "safety_identifier"] {
        match args.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 512 => {
                body.insert(field.into(), json!(s));
            }
            Some(_) => {
                return Err(ProviderError::invalid_argument(format!(
                    "'{field}' must be a string of 1 to 512 bytes"
                )))
            }
        }
    }
    if !tools.tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools.tools));
    }
    if let Some(choice) = tools.tool_choice {
        body.insert("tool_choice".into(), choice);
    }
    if stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }

    Ok(Prepared {
        card,
        migrated_from: resolution.migrated_from,
        migration_reason: resolution.reason,
        stream,
        coalesce_parts,
        body,
        partial_prefix,
        adjustments,
        web_search: tools.web_search,
        remote_media,
        thinking_on: thinking.on,
    })
}

/// response_format: text | json_object | json_schema {name, schema, strict}.
fn response_format(
    args: &Map<String, Value>,
    card: &ModelCard,
    partial: bool,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    let format = match args.get("response_format") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(kind)) => json!({"type": kind}),
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(_) => {
            return Err(ProviderError::invalid_argument(
                "'response_format' must be an object",
            ))
        }
    };
    let kind = format.get("type").and_then(Value::as_str).unwrap_or("text");
    let json_mode = || {
        if card.json_mode {
            Ok(())
        } else {
            Err(bad_request(format!("model '{}' has no JSON mode", card.id)))
        }
    };
    let wire = match kind {
        "text" => json!({"type": "text"}),
        "json_object" => {
            json_mode()?;
            if partial {
                return Err(bad_request(
                    "partial mode cannot be combined with response_format json_object",
                ));
            }
            json!({"type": "json_object"})
        }
        "json_schema" => {
            json_mode()?;
            let spec = format.get("json_schema").unwrap_or(&format);
            let mut schema = match spec.get("schema") {
                Some(Value::Object(schema)) => schema.clone(),
                _ => {
                    return Err(bad_request(
                        "response_format json_schema needs a 'schema' object",
                    ))
                }
            };
            schema.remove("$schema");
            let mut out = json!({
                "name": spec.get("name").and_then(Value::as_str).unwrap_or("response"),
                "schema": schema,
            });
            if let Some(strict) = spec.get("strict").and_then(Value::as_bool) {
                out["strict"] = json!(strict);
            }
            json!({"type": "json_schema", "json_schema": out})
        }
        other => {
            return Err(bad_request(format!(
                "response_format type must be text, json_object or json_schema, not \"{other}\""
            )))
        }
    };
    body.insert("response_format".into(), wire);
    Ok(())
}

/// stop: at most 5 strings of at most 32 bytes.
fn stop(args: &Map<String, Value>, body: &mut Map<String, Value>) -> Result<(), ProviderError> {
    let list = match args.get("stop") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ProviderError::invalid_argument("'stop' must be a string or an array of strings")
            })?,
        Some(_) => {
            return Err(ProviderError::invalid_argument(
                "'stop' must be a string or an array of strings",
            ))
        }
    };
    if list.len() > 5 {
        return Err(bad_request(format!(
            "{} stop sequences given; Moonshot accepts at most 5",
            list.len()
        )));
    }
    if let Some(long) = list.iter().find(|s| s.is_empty() || s.len() > 32) {
        return Err(bad_request(format!(
            "stop sequence of {} bytes: each must be 1 to 32 bytes",
            long.len()
        )));
    }
    if !list.is_empty() {
        body.insert("stop".into(), json!(list));
    }
    Ok(())
}

fn resolve_error(err: ResolveError) -> ProviderError {
    let kind = match err {
        ResolveError::Retired { .. } => ErrorKind::ModelRetired,
        _ => ErrorKind::UnknownModel,
    };
    ProviderError::new(kind, err.to_string())
}

fn check_modalities(card: &ModelCard, conversation: &Conversation) -> Result<(), ProviderError> {
    use catalog::Modality;
    for (present, modality) in [
        (conversation.has_image, Modality::Image),
        (conversation.has_video, Modality::Video),
    ] {
        if present && !card.accepts(modality) {
            return Err(bad_request(format!(
                "model '{}' does not accept {} input",
                card.id,
                modality.as_str()
            )));
        }
    }
    Ok(())
}

/// The output limit: the caller's, validated, else the model's default,
/// lowered when the prompt's text would leave less room than that in the
/// context (Moonshot refuses prompt + limit > context, and reserves the
/// limit against the rate limit).
fn max_tokens(
    args: &Map<String, Value>,
    card: &ModelCard,
    messages: &[Value],
    adjustments: &mut Vec<String>,
) -> Result<u64, ProviderError> {
    let given = args
        .get("max_completion_tokens")
        .or_else(|| args.get("max_tokens"));
    match given {
        None | Some(Value::Null) => {
            let default = card.default_max_tokens.min(card.max_output);
            let room = card.context.saturating_sub(text_tokens(messages));
            if room >= default || room == 0 {
                return Ok(default);
            }
            adjustments.push(format!(
                "max_completion_tokens lowered to {room} so the prompt and the answer fit {}'s context of {}",
                card.id, card.context
            ));
            Ok(room)
        }
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= card.max_output => Ok(n),
            _ => Err(bad_request(format!(
                "'max_tokens' must be a whole number from 1 to {} for {}",
                card.max_output, card.id
            ))),
        },
    }
}

/// A cheap estimate of the prompt's text tokens (media not counted).
fn text_tokens(messages: &[Value]) -> u64 {
    let text = |v: &Value| v.as_str().map(metering::estimate_tokens).unwrap_or(0);
    messages
        .iter()
        .map(|m| match &m["content"] {
            Value::Array(parts) => parts.iter().map(|p| text(&p["text"])).sum(),
            content => text(content),
        })
        .sum()
}

/// temperature / top_p / n / penalties: omitted where the model pins them
/// (sending any other value is a 400 there), validated elsewhere.
fn sampling(
    args: &Map<String, Value>,
    card: &ModelCard,
    thinking_on: bool,
    stream: bool,
    body: &mut Map<String, Value>,
    adjustments: &mut Vec<String>,
) -> Result<(), ProviderError> {
    let number = |name: &str| -> Result<Option<f64>, ProviderError> {
        match args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                ProviderError::invalid_argument(format!("'{name}' must be a number"))
            }),
        }
    };
    let temperature = number("temperature")?;
    let top_p = number("top_p")?;
    let penalties = [
        ("presence_penalty", number("presence_penalty")?),
        ("frequency_penalty", number("frequency_penalty")?),
    ];
    let n = match args.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=5) => n,
            _ => return Err(bad_request("'n' must be a whole number from 1 to 5")),
        },
    };
    if n > 1 && stream {
        return Err(bad_request(
            "n > 1 cannot be streamed: ask without stream, or one at a time",
        ));
    }
    match card.sampling {
        Sampling::Free => {
            if let Some(t) = temperature {
                if !(0.0..=1.0).contains(&t) {
                    return Err(bad_request(format!(
                        "'temperature' must be between 0 and 1 for {}",
                        card.id
                    )));
                }
                body.insert("temperature".into(), json!(t));
            }
            if let Some(p) = top_p {
                if !(0.0..=1.0).contains(&p) {
                    return Err(bad_request("'top_p' must be between 0 and 1"));
                }
                body.insert("top_p".into(), json!(p));
            }
            for (name, value) in penalties {
                if let Some(v) = value {
                    if !(-2.0..=2.0).contains(&v) {
                        return Err(bad_request(format!("'{name}' must be between -2 and 2")));
                    }
                    body.insert(name.into(), json!(v));
                }
            }
            if n > 1 {
                if temperature.is_some_and(|t| t < 0.01) {
                    return Err(bad_request("n > 1 needs a temperature above 0: at temperature 0 Moonshot allows n = 1 only"));
                }
                body.insert("n".into(), json!(n));
            }
        }
        Sampling::PinnedByThinking | Sampling::PinnedOne => {
            if n > 1 {
                return Err(bad_request(format!(
                    "model '{}' allows n = 1 only",
                    card.id
                )));
            }
            let pinned = match (card.sampling, thinking_on, card.thinking) {
                (Sampling::PinnedByThinking, false, Thinking::Toggle | Thinking::ToggleKeep) => 0.6,
                _ => 1.0,
            };
            if let Some(t) = temperature {
                if (t - pinned).abs() > 1e-9 {
                    adjustments.push(format!(
                        "temperature {t} omitted: {} only allows {pinned} here",
                        card.id
                    ));
                }
            }
            if top_p.is_some_and(|p| (p - 0.95).abs() > 1e-9) {
                adjustments.push(format!("top_p omitted: {} pins it to 0.95", card.id));
            }
            for (name, value) in penalties {
                if value.is_some_and(|v| v != 0.0) {
                    adjustments.push(format!("{name} omitted: {} pins it to 0", card.id));
                }
            }
        }
    }
    Ok(())
}

/// A boolean request field: absent or null is false.
fn flag(args: &Map<String, Value>, field: &str) -> Result<bool, ProviderError> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ProviderError::invalid_argument(format!(
            "'{field}' must be true or false"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::{Clock, Date};

    fn config() -> Config {
        let mut c = Config::from_json(r#"{"apiKey":"sk-test"}"#).unwrap();
        c.clock = Clock::Fixed(Date::new(2026, 11, 25));
        c
    }

    #[test]
    fn plain_chat_body() {
        let p = prepare(
            &json!({"messages":[{"content":"Hello"}],"stream":true}),
            &config(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(p.body),
            json!({
                "model":"kimi-k2.6",
                "messages":[{"role":"user","content":"Hello"}],
                "max_completion_tokens":32768,
                "stream":true,
                "stream_options":{"include_usage":true}
            })
        );
        assert!(p.stream);
    }

    #[test]
    fn retired_model_is_migrated_and_reported() {
        let p = prepare(
            &json!({"messages":"hi","model":"moonshot-v1-8k"}),
            &config(),
        )
        .unwrap();
        assert_eq!(p.card.id, "kimi-k2.6");
        assert_eq!(p.migrated_from, Some("moonshot-v1-8k"));
        assert_eq!(p.body["model"], json!("kimi-k2.6"));
    }

    #[test]
    fn unknown_model_is_refused() {
        let err = prepare(&json!({"messages":"hi","model":"gpt-9"}), &config()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownModel);
    }

    #[test]
    fn pinned_temperature_is_omitted_and_said() {
        let p = prepare(&json!({"messages":"hi","temperature":0.2}), &config()).unwrap();
        assert!(!p.body.contains_key("temperature"));
        assert_eq!(
            p.adjustments,
            vec!["temperature 0.2 omitted: kimi-k2.6 only allows 1 here".to_string()]
        );
    }

    #[test]
    fn media_to_a_model_without_it_is_refused() {
        let err = prepare(
            &json!({"messages":[{"content":[{"video_url":"data:video/mp4;base64,AA"}]}],"model":"kimi-k2.7-code"}),
            &config(),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "model 'kimi-k2.7-code' does not accept video input"
        );
    }

    #[test]
    fn kimi_k26_takes_images() {
        let p = prepare(
            &json!({"messages":[{"content":[{"image_url":"data:image/png;base64,AA"}]}],"model":"kimi-k2.6"}),
            &config(),
        )
        .unwrap();
        assert_eq!(p.card.id, "kimi-k2.6");
        assert_eq!(
            p.body["messages"][0]["content"][0],
            json!({"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}})
        );
    }

    #[test]
    fn a_system_message_carrying_tools_passes_through_on_kimi_k3_only() {
        let tools = json!([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}]);
        let args = |model: &str| json!({"model": model, "messages":[{"role":"system","tools": tools}, {"role":"user","content":"hi"}]});
        let p = prepare(&args("kimi-k3"), &config()).unwrap();
        assert_eq!(
            p.body["messages"][0],
            json!({"role":"system","tools": tools})
        );
        let err = prepare(&args("kimi-k2.6"), &config()).unwrap_err();
        assert_eq!(
            err.message,
            "message 0: model 'kimi-k2.6' does not take tools in a system message; declare them in 'tools'"
        );
    }

    #[test]
    fn documented_fields_reach_the_body() {
        let p = prepare(
            &json!({"messages":"hi","model":"kimi-k3","prediction":{"type":"content","content":"hello"},"safety_identifier":"user-1"}),
            &config(),
        )
        .unwrap();
        assert_eq!(
            p.body["prediction"],
            json!({"type":"content","content":"hello"})
        );
        assert_eq!(p.body["safety_identifier"], json!("user-1"));
        let err = prepare(
            &json!({"messages":"hi","model":"kimi-k3","logprobs":true}),
            &config(),
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn max_tokens_is_sent_as_max_completion_tokens() {
        let p = prepare(&json!({"messages":"hi","max_tokens":100}), &config()).unwrap();
        assert_eq!(p.body["max_completion_tokens"], json!(100));
        assert!(prepare(&json!({"messages":"hi","max_tokens":0}), &config()).is_err());
    }

    #[test]
    fn the_default_limit_leaves_the_prompt_room() {
        // 8,192-token context on moonshot-v1-8k (served until 2026-08-31):
        // 30,000 ASCII bytes are about 7,500 tokens, leaving 692, less
        // than the 1,024 default.
        let mut c = config();
        c.clock = Clock::Fixed(Date::new(2026, 8, 1));
        let long = "x".repeat(30_000);
        let p = prepare(&json!({"messages": long, "model": "moonshot-v1-8k"}), &c).unwrap();
        assert_eq!(p.body["max_completion_tokens"], json!(692));
        assert!(p.adjustments[0].starts_with("max_completion_tokens lowered to 692"));
        let p = prepare(&json!({"messages": "short", "model": "moonshot-v1-8k"}), &c).unwrap();
        assert_eq!(p.body["max_completion_tokens"], json!(1024));
    }
}
