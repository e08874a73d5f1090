//! Puter's driver protocol over the registry: what `POST /drivers/call` and
//! `GET /puterai/chat/models/details` answer, in the shapes Puter's backend
//! uses and puter.js reads.
//!
//! The arguments of `complete` go to the plugin as they came; only `model`
//! and `provider` are resolved here, as Puter's ChatCompletionDriver does.

use std::io::{self, Write};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use host_demo::plugin::Event;
use host_demo::registry::{self, Registered, Registry};
use moonshot_abi as abi;
use serde_json::{json, Map, Value};

use super::http::{self, Headers};

/// The interface and driver puter.js addresses for chat.
pub const INTERFACE: &str = "puter-chat-completion";
pub const DRIVER: &str = "ai-chat";

/// How long the host waits for the plugin's next word. The plugin's own
/// timeouts (first byte, idle, total) end a request long before this.
const EVENT_WAIT: Duration = Duration::from_secs(3600);

/// A whole JSON answer.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// Puter's success envelope.
    pub fn ok(result: Value) -> Answer {
        Answer {
            status: 200,
            body: json!({"success": true, "service": {"name": DRIVER}, "result": result}),
        }
    }

    /// A failure of the host itself (bad call, unknown route, ...).
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Answer {
        Answer {
            status,
            body: json!({"success": false,
                         "error": {"code": code, "message": message.into(), "status": status}}),
        }
    }

    /// A failure the plugin reported: its details
    /// (`{"code","message","http_status","retryable","request_id"}`) under
    /// `error`, with the status that fits them.
    pub fn from_plugin(status: abi::MoonshotStatus, details: &str) -> Answer {
        let mut error = match serde_json::from_str::<Value>(details) {
            Ok(Value::Object(map)) => map,
            _ => {
                let mut map = Map::new();
                map.insert("code".into(), json!("internal_error"));
                map.insert("message".into(), json!(details));
                map
            }
        };
        let http = http_status(status, &Value::Object(error.clone()));
        error.insert("status".into(), json!(http));
        Answer {
            status: http,
            body: json!({"success": false, "error": error}),
        }
    }
}

/// The HTTP status for a plugin error. Never 401 (or 403): puter.js takes
/// those for its own session and starts a sign-in; Moonshot refusing the
/// host's key is the host's failure, a 502.
pub fn http_status(status: abi::MoonshotStatus, details: &Value) -> u16 {
    match status {
        abi::MOONSHOT_ERR_INVALID_ARGUMENT
        | abi::MOONSHOT_ERR_INVALID_REQUEST
        | abi::MOONSHOT_ERR_UNKNOWN_MODEL
        | abi::MOONSHOT_ERR_MODEL_RETIRED => 400,
        abi::MOONSHOT_ERR_UPSTREAM => match details["http_status"].as_u64() {
            Some(401 | 403) => 502,
            // A rate limit is worth retrying; an empty balance is not.
            Some(429) if details["retryable"] == true => 429,
            Some(429) => 502,
            Some(400..=499) => 400,
            _ => 502,
        },
        abi::MOONSHOT_ERR_PROTOCOL | abi::MOONSHOT_ERR_TRANSPORT => 502,
        abi::MOONSHOT_ERR_TIMEOUT => 504,
        abi::MOONSHOT_ERR_BUSY | abi::MOONSHOT_ERR_CANCELLED => 503,
        _ => 500,
    }
}

/// The error line that ends a stream which failed after its first part:
/// Puter's `{"type":"error","message"}` plus the plugin's details.
pub fn error_line(details: &str) -> String {
    let mut line = Map::new();
    line.insert("type".into(), json!("error"));
    match serde_json::from_str::<Value>(details) {
        Ok(Value::Object(map)) => line.extend(map.into_iter().filter(|(k, _)| k != "partial")),
        _ => {
            line.insert("message".into(), json!(details));
        }
    }
    Value::Object(line).to_string()
}

/// What a `/drivers/call` body asks for.
#[derive(Debug, PartialEq)]
pub enum Call {
    Complete(Map<String, Value>),
    Models,
    List,
}

/// Reads a driver call. The body is JSON whatever its Content-Type says
/// (puter.js sends `text/plain;actually=json`).
pub fn parse_call(body: &[u8]) -> Result<Call, Answer> {
    let bad = |message: String| Answer::error(400, "bad_request", message);
    let call: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not a JSON driver call: {e}")))?;
    let call = call
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object".into()))?;
    let interface = call.get("interface").and_then(Value::as_str).unwrap_or("");
    if interface != INTERFACE {
        return Err(Answer::error(
            404,
            "no_implementation_available",
            format!("this host serves the interface '{INTERFACE}' only, not '{interface}'"),
        ));
    }
    let mut args = match call.get("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => args.clone(),
        Some(_) => return Err(bad("'args' must be an object".into())),
    };
    // `driver` (or the older `service`) picks the implementation; older
    // clients named the provider there.
    match call.get("driver").or_else(|| call.get("service")) {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) if d == DRIVER => {}
        Some(Value::String(d)) if registry::normalize_provider(d).is_some() => {
            args.entry("provider").or_insert_with(|| json!(d));
        }
        Some(other) => {
            return Err(Answer::error(
                404,
                "no_implementation_available",
                format!("this host serves the driver '{DRIVER}' only, not {other}"),
            ))
        }
    }
    match call.get("method").and_then(Value::as_str) {
        Some("complete") => Ok(Call::Complete(args)),
        Some("models") => Ok(Call::Models),
        Some("list") => Ok(Call::List),
        other => Err(bad(format!(
            "'{INTERFACE}' has the methods complete, models and list, not {}",
            other.map_or("none".to_string(), |m| format!("'{m}'"))
        ))),
    }
}

/// The driver's `models()`: every model with its provider.
pub fn models(registry: &Registry) -> Value {
    let models = registry
        .provider(registry::PROVIDER)
        .map(|p| p.models.clone())
        .unwrap_or_default();
    Value::Array(
        models
            .into_iter()
            .map(|mut model| {
                if model.get("provider").is_none() {
                    model["provider"] = json!(registry::PROVIDER);
                }
                model
            })
            .collect(),
    )
}

/// The driver's `list()`: `puterId || id` of every model, sorted.
pub fn list(registry: &Registry) -> Value {
    let mut names: Vec<String> = models(registry)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("puterId").or(m.get("id")).and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    names.sort();
    json!(names)
}

/// Picks provider and model as Puter's driver does: the model decides; a
/// provider decides only without a model (and then gets its default); a
/// provider name this host does not serve is no obstacle when the model is
/// one it serves.
pub fn resolve<'r>(
    registry: &'r Registry,
    args: &Map<String, Value>,
) -> Result<(&'r Registered, String), Answer> {
    let text = |field: &str| match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(Answer::error(
            400,
            "bad_request",
            format!("'{field}' must be a string"),
        )),
    };
    let model = text("model")?;
    let provider = match text("provider")? {
        Some(p) if registry::normalize_provider(p).is_none() && model.is_some() => None,
        other => other,
    };
    registry
        .resolve(provider, model)
        .map_err(|message| Answer::error(400, "model_not_found", message))
}

/// What one request came to, for the log line.
pub struct Served {
    pub status: u16,
    pub note: String,
}

/// Writes an answer.
pub fn send(w: &mut impl Write, answer: &Answer, headers: &Headers) -> io::Result<u16> {
    http::write_json(w, answer.status, headers, &answer.body)?;
    Ok(answer.status)
}

/// Answers one `/drivers/call`.
pub fn call(
    w: &mut impl Write,
    body: &[u8],
    registry: &Registry,
    headers: &Headers,
) -> io::Result<Served> {
    let served = |status, note: &str| Served {
        status,
        note: note.to_string(),
    };
    match parse_call(body) {
        Err(answer) => Ok(served(send(w, &answer, headers)?, "refused")),
        Ok(Call::Models) => Ok(served(
            send(w, &Answer::ok(models(registry)), headers)?,
            "models",
        )),
        Ok(Call::List) => Ok(served(
            send(w, &Answer::ok(list(registry)), headers)?,
            "list",
        )),
        Ok(Call::Complete(args)) => complete(w, args, registry, headers),
    }
}

fn complete(
    w: &mut impl Write,
    mut args: Map<String, Value>,
    registry: &Registry,
    headers: &Headers,
) -> io::Result<Served> {
    let (registered, model) = match resolve(registry, &args) {
        Ok(found) => found,
        Err(answer) => {
            return Ok(Served {
                status: send(w, &answer, headers)?,
                note: "complete: no such model".into(),
            })
        }
    };
    let stream = args.get("stream") == Some(&Value::Bool(true));
    let note = format!("complete {model}{}", if stream { " stream" } else { "" });
    args.insert("model".into(), json!(model));
    args.insert("provider".into(), json!(registry::PROVIDER));
    let request = Value::Object(args).to_string();
    let (handle, events) = match registered.instance.complete(&request, None) {
        Ok(started) => started,
        Err((status, details)) => {
            let answer = Answer::from_plugin(status, &details);
            return Ok(Served {
                status: send(w, &answer, headers)?,
                note,
            });
        }
    };
    let status = if stream {
        relay_stream(w, &events, headers, || handle.cancel())?
    } else {
        let answer = wait_for_result(&events);
        if answer.status == 504 {
            handle.cancel();
        }
        send(w, &answer, headers)?
    };
    Ok(Served { status, note })
}

/// The end of a non-streamed request as an answer.
pub fn wait_for_result(events: &Receiver<Event>) -> Answer {
    loop {
        match events.recv_timeout(EVENT_WAIT) {
            Ok(Event::Part(_)) => continue,
            Ok(Event::Done(abi::MOONSHOT_OK, result)) => {
                return match serde_json::from_str::<Value>(&result) {
                    Ok(Value::Object(mut result)) => {
                        result.insert("via_ai_chat_service".into(), json!(true));
                        Answer::ok(Value::Object(result))
                    }
                    _ => Answer::error(502, "internal_error", "the plugin's result is not JSON"),
                }
            }
            Ok(Event::Done(status, details)) => return Answer::from_plugin(status, &details),
            Err(_) => return Answer::error(504, "response_timeout", "the plugin did not finish"),
        }
    }
}

/// Relays a streamed completion as NDJSON, one part per line, each written
/// at once. The head goes out with the first part, so a request that fails
/// before any part (an upstream refusal, say) is still a JSON answer with a
/// fitting status; a failure after it is an error line. Returns the status
/// sent; a client gone mid-stream cancels the request.
pub fn relay_stream(
    w: &mut impl Write,
    events: &Receiver<Event>,
    headers: &Headers,
    cancel: impl Fn(),
) -> io::Result<u16> {
    let first = match events.recv_timeout(EVENT_WAIT) {
        Ok(Event::Done(status, details)) if status != abi::MOONSHOT_OK => {
            return send(w, &Answer::from_plugin(status, &details), headers);
        }
        Ok(event) => event,
        Err(_) => {
            cancel();
            let answer = Answer::error(504, "response_timeout", "the plugin did not answer");
            return send(w, &answer, headers);
        }
    };
    let written = (|| {
        http::write_ndjson_head(w, headers)?;
        let mut next = Some(first);
        loop {
            let event = match next.take() {
                Some(event) => event,
                None => match events.recv_timeout(EVENT_WAIT) {
                    Ok(event) => event,
                    Err(_) => {
                        cancel();
                        let line = error_line(
                            &json!({"code": "response_timeout", "message": "the plugin did not finish"})
                                .to_string(),
                        );
                        http::write_line(w, &line)?;
                        return http::write_end(w);
                    }
                },
            };
            match event {
                Event::Part(part) => http::write_line(w, &part)?,
                Event::Done(abi::MOONSHOT_OK, _) => return http::write_end(w),
                Event::Done(_, details) => {
                    http::write_line(w, &error_line(&details))?;
                    return http::write_end(w);
                }
            }
        }
    })();
    if written.is_err() {
        cancel();
    }
    written.map(|()| 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::mpsc;

    fn body_of(call: Value) -> Vec<u8> {
        call.to_string().into_bytes()
    }

    #[test]
    fn reads_the_call_puter_js_sends() {
        let call = body_of(
            json!({"interface":"puter-chat-completion","driver":"ai-chat","test_mode":false,
            "method":"complete","args":{"messages":[{"content":"Hi"}],"reasoning_effort":"high"},"auth_token":null}),
        );
        let Ok(Call::Complete(args)) = parse_call(&call) else {
            panic!("not a complete call")
        };
        assert_eq!(
            Value::Object(args),
            json!({"messages":[{"content":"Hi"}],"reasoning_effort":"high"})
        );
        // puter.drivers.call sends no driver; older clients named the provider there.
        let models = body_of(json!({"interface":"puter-chat-completion","method":"models"}));
        assert_eq!(parse_call(&models), Ok(Call::Models));
        let legacy = body_of(
            json!({"interface":"puter-chat-completion","driver":"kimi","method":"complete","args":{}}),
        );
        assert_eq!(
            parse_call(&legacy),
            Ok(Call::Complete(
                json!({"provider":"kimi"}).as_object().unwrap().clone()
            ))
        );
    }

    #[test]
    fn refuses_other_calls_clearly() {
        for (call, status, needle) in [
            (b"{nope".to_vec(), 400, "not a JSON driver call"),
            (body_of(json!(["x"])), 400, "JSON object"),
            (
                body_of(json!({"interface":"puter-kvstore","method":"get"})),
                404,
                "'puter-kvstore'",
            ),
            (
                body_of(
                    json!({"interface":"puter-chat-completion","driver":"openai-completion","method":"complete"}),
                ),
                404,
                "\"openai-completion\"",
            ),
            (
                body_of(json!({"interface":"puter-chat-completion","method":"chat"})),
                400,
                "not 'chat'",
            ),
            (
                body_of(
                    json!({"interface":"puter-chat-completion","method":"complete","args":"hi"}),
                ),
                400,
                "'args'",
            ),
        ] {
            let answer = parse_call(&call).unwrap_err();
            assert_eq!(answer.status, status, "{answer:?}");
            assert_eq!(answer.body["success"], false);
            let message = answer.body["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn plugin_errors_get_fitting_statuses() {
        let upstream = |http: u16, retryable: bool| json!({"code":"x","message":"m","http_status":http,"retryable":retryable});
        assert_eq!(
            http_status(abi::MOONSHOT_ERR_UNKNOWN_MODEL, &Value::Null),
            400
        );
        assert_eq!(
            http_status(abi::MOONSHOT_ERR_UPSTREAM, &upstream(400, false)),
            400
        );
        assert_eq!(
            http_status(abi::MOONSHOT_ERR_UPSTREAM, &upstream(401, false)),
            502
        );
        assert_eq!(
            http_status(abi::MOONSHOT_ERR_UPSTREAM, &upstream(429, true)),
            429
        );
        assert_eq!(
            http_status(abi::MOONSHOT_ERR_UPSTREAM, &upstream(429, false)),
            502
        );
        assert_eq!(
            http_status(abi::MOONSHOT_ERR_UPSTREAM, &upstream(503, true)),
            502
        );
        assert_eq!(http_status(abi::MOONSHOT_ERR_TIMEOUT, &Value::Null), 504);
        assert_eq!(http_status(abi::MOONSHOT_ERR_BUSY, &Value::Null), 503);
        assert_eq!(http_status(abi::MOONSHOT_ERR_INTERNAL, &Value::Null), 500);

        let answer = Answer::from_plugin(
            abi::MOONSHOT_ERR_UPSTREAM,
            r#"{"code":"content_filter","message":"high risk","http_status":400,"retryable":false,"request_id":"r1"}"#,
        );
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.body,
            json!({"success":false,"error":{"code":"content_filter","message":"high risk",
                "http_status":400,"retryable":false,"request_id":"r1","status":400}})
        );
    }

    #[test]
    fn error_lines_keep_the_details_but_not_the_partial_result() {
        let line = error_line(
            r#"{"code":"stream_cut","message":"cut","http_status":null,"partial":{"message":{}}}"#,
        );
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"type":"error","code":"stream_cut","message":"cut","http_status":null})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&error_line("plain words")).unwrap(),
            json!({"type":"error","message":"plain words"})
        );
    }

    fn relay(events: Vec<Event>) -> (String, u16, bool) {
        let (tx, rx) = mpsc::channel();
        for event in events {
            tx.send(event).unwrap();
        }
        let cancelled = Cell::new(false);
        let mut out = Vec::new();
        let status = relay_stream(&mut out, &rx, &Vec::new(), || cancelled.set(true)).unwrap();
        (String::from_utf8(out).unwrap(), status, cancelled.get())
    }

    #[test]
    fn streams_parts_as_lines_and_ends_cleanly() {
        let (out, status, cancelled) = relay(vec![
            Event::Part(r#"{"type":"text","text":"Hel"}"#.into()),
            Event::Part(r#"{"type":"text","text":"lo"}"#.into()),
            Event::Done(0, "{}".into()),
        ]);
        assert_eq!((status, cancelled), (200, false));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            body,
            "1d\r\n{\"type\":\"text\",\"text\":\"Hel\"}\n\r\n1c\r\n{\"type\":\"text\",\"text\":\"lo\"}\n\r\n0"
        );
    }

    #[test]
    fn an_error_before_any_part_is_plain_json_and_after_it_a_line() {
        let (out, status, _) = relay(vec![Event::Done(
            abi::MOONSHOT_ERR_UPSTREAM,
            r#"{"code":"rate_limit_reached_error","message":"slow down","http_status":429,"retryable":true}"#.into(),
        )]);
        assert_eq!(status, 429);
        assert!(out.starts_with("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json"));
        assert!(out.contains(r#""code":"rate_limit_reached_error""#));

        let (out, status, _) = relay(vec![
            Event::Part(r#"{"type":"text","text":"Hi"}"#.into()),
            Event::Done(
                abi::MOONSHOT_ERR_TRANSPORT,
                r#"{"code":"stream_cut","message":"cut"}"#.into(),
            ),
        ]);
        assert_eq!(status, 200);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson"));
        assert!(out.contains(
            "{\"code\":\"stream_cut\",\"message\":\"cut\",\"type\":\"error\"}\n\r\n0\r\n\r\n"
        ));
    }

    #[test]
    fn a_client_gone_mid_stream_cancels_the_request() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (tx, rx) = mpsc::channel();
        tx.send(Event::Part("{}".into())).unwrap();
        let cancelled = Cell::new(false);
        assert!(relay_stream(&mut Broken, &rx, &Vec::new(), || cancelled.set(true)).is_err());
        assert!(cancelled.get());
    }

    #[test]
    fn non_streamed_results_are_enveloped() {
        let (tx, rx) = mpsc::channel();
        tx.send(Event::Done(
            0,
            r#"{"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}"#.into(),
        ))
        .unwrap();
        assert_eq!(
            wait_for_result(&rx),
            Answer::ok(json!({"message":{"role":"assistant","content":"Hi"},
                "finish_reason":"stop","via_ai_chat_service":true}))
        );
        assert_eq!(
            Answer::ok(json!(1)).body,
            json!({"success":true,"service":{"name":"ai-chat"},"result":1})
        );
    }
}
