//! Puter's driver protocol over the registry: what `POST /drivers/call` and
//! `GET /puterai/chat/models/details` answer, in the shapes Puter's backend
//! uses and puter.js reads.
//!
//! The arguments of `complete` go to the plugin as they came; only `model`
//! and `provider` are resolved here, as Puter's ChatCompletionDriver does.

use host_demo::plugin::Event;
use host_demo::registry::{self, Registered, Registry};
use http_body_util::BodyExt;
use hyper::Response;
use moonshot_abi as abi;
use serde::de;
use serde_json::{json, Map, Value};

use super::body::ReadBody;
use super::call::{self, Args, WireCall};
use super::http::{self, Body, Headers};
use super::relay::{Inflight, NdjsonLines};

/// The interface and driver puter.js addresses for chat.
pub const INTERFACE: &str = "puter-chat-completion";
pub const DRIVER: &str = "ai-chat";

/// The HTTP reply to one driver call: a status and a whole JSON body.
#[derive(Debug, PartialEq)]
pub struct DriverReply {
    pub status: u16,
    pub body: Value,
}

impl DriverReply {
    /// Puter's success envelope.
    pub fn ok(result: Value) -> DriverReply {
        DriverReply {
            status: 200,
            body: json!({"success": true, "service": {"name": DRIVER}, "result": result}),
        }
    }

    /// A failure of the host itself (bad call, unknown route, ...).
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> DriverReply {
        DriverReply {
            status,
            body: json!({"success": false,
                         "error": {"code": code, "message": message.into(), "status": status}}),
        }
    }

    /// A failure the plugin reported: its details
    /// (`{"code","message","http_status","retryable","request_id"}`) under
    /// `error`, with the status that fits them.
    pub fn from_plugin(status: abi::MoonshotStatus, details: &str) -> DriverReply {
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
        DriverReply {
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
    Complete(Args),
    Models,
    List,
}

/// Reads a driver call. The body is JSON whatever its Content-Type says
/// (puter.js sends `text/plain;actually=json`). No JSON tree of the body is
/// built (see `call`).
pub fn parse_call(body: &[u8]) -> Result<Call, DriverReply> {
    let bad = |message: String| DriverReply::error(400, "bad_request", message);
    let starts_an_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{');
    if !starts_an_object && serde_json::from_slice::<de::IgnoredAny>(body).is_ok() {
        return Err(bad("the body must be a JSON object".into()));
    }
    let call: WireCall = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not a JSON driver call: {e}")))?;
    let interface = call::as_text(call.interface).unwrap_or_default();
    if interface != INTERFACE {
        return Err(DriverReply::error(
            404,
            "no_implementation_available",
            format!("this host serves the interface '{INTERFACE}' only, not '{interface}'"),
        ));
    }
    let mut args = match call.args {
        None => Args::default(),
        Some(raw) if raw.get() == "null" => Args::default(),
        Some(raw) if raw.get().starts_with('{') => serde_json::from_str(raw.get())
            .map_err(|e| bad(format!("'args' could not be read: {e}")))?,
        Some(_) => return Err(bad("'args' must be an object".into())),
    };
    // `driver` (or the older `service`) picks the implementation; older
    // clients named the provider there.
    let driver = call
        .driver
        .filter(|raw| raw.get() != "null")
        .or(call.service);
    if !call::is_null(driver) {
        match call::as_text(driver) {
            Some(d) if d == DRIVER => {}
            Some(d) if registry::normalize_provider(&d).is_some() => {
                args.default_text("provider", &d);
            }
            _ => {
                let shown = driver.map(call::shown).unwrap_or_default();
                return Err(DriverReply::error(
                    404,
                    "no_implementation_available",
                    format!("this host serves the driver '{DRIVER}' only, not {shown}"),
                ));
            }
        }
    }
    match call::as_text(call.method).as_deref() {
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
    args: &Args,
) -> Result<(&'r Registered, String), DriverReply> {
    let text = |field: &str| {
        args.text(field)
            .map_err(|message| DriverReply::error(400, "bad_request", message))
    };
    let model = text("model")?;
    let provider = match text("provider")? {
        Some(p) if registry::normalize_provider(&p).is_none() && model.is_some() => None,
        other => other,
    };
    registry
        .resolve(provider.as_deref(), model.as_deref())
        .map_err(|message| DriverReply::error(400, "model_not_found", message))
}

/// Writes an answer.
pub fn send(answer: &DriverReply, headers: &Headers) -> Response<Body> {
    http::json(answer.status, headers, &answer.body)
}

/// Answers one `/drivers/call`; the note says what it was, for the log.
/// The body (and its share of the body budget) goes once it is parsed.
pub async fn call(
    body: ReadBody,
    registry: &Registry,
    headers: &Headers,
) -> (Response<Body>, String) {
    let call = parse_call(&body.bytes);
    drop(body);
    match call {
        Err(answer) => (send(&answer, headers), "refused".into()),
        Ok(Call::Models) => (
            send(&DriverReply::ok(models(registry)), headers),
            "models".into(),
        ),
        Ok(Call::List) => (
            send(&DriverReply::ok(list(registry)), headers),
            "list".into(),
        ),
        Ok(Call::Complete(args)) => complete(args, registry, headers).await,
    }
}

async fn complete(
    mut args: Args,
    registry: &Registry,
    headers: &Headers,
) -> (Response<Body>, String) {
    let (registered, model) = match resolve(registry, &args) {
        Ok(found) => found,
        Err(answer) => return (send(&answer, headers), "complete: no such model".into()),
    };
    let stream = args.is_true("stream");
    let note = format!("complete {model}{}", if stream { " stream" } else { "" });
    args.set_text("model", &model);
    args.set_text("provider", registry::PROVIDER);
    let request = args.to_json();
    drop(args);
    let inflight = match registered.instance.complete(&request, None) {
        Ok((handle, events)) => Inflight::start(handle, events),
        Err((status, details)) => {
            return (
                send(&DriverReply::from_plugin(status, &details), headers),
                note,
            )
        }
    };
    let response = if stream {
        relay_stream(inflight, headers).await
    } else {
        let mut inflight = inflight;
        send(&wait_for_result(&mut inflight).await, headers)
    };
    (response, note)
}

/// The end of a non-streamed request as an answer.
pub async fn wait_for_result(inflight: &mut Inflight) -> DriverReply {
    loop {
        match inflight.next().await {
            Event::Part(_) => continue,
            Event::Done(abi::MOONSHOT_OK, result) => {
                return match serde_json::from_str::<Value>(&result) {
                    Ok(Value::Object(mut result)) => {
                        result.insert("via_ai_chat_service".into(), json!(true));
                        DriverReply::ok(Value::Object(result))
                    }
                    _ => {
                        DriverReply::error(502, "internal_error", "the plugin's result is not JSON")
                    }
                }
            }
            Event::Done(status, details) => return DriverReply::from_plugin(status, &details),
        }
    }
}

/// Relays a streamed completion as NDJSON, one part per line, each sent as
/// it comes. The head goes out with the first part, so a request that
/// fails before any part (an upstream refusal, say) is still a JSON answer
/// with a fitting status; a failure after it is an error line. A client
/// gone mid-stream drops the body, which cancels the request.
pub async fn relay_stream(mut inflight: Inflight, headers: &Headers) -> Response<Body> {
    match inflight.next().await {
        Event::Done(status, details) if status != abi::MOONSHOT_OK => {
            send(&DriverReply::from_plugin(status, &details), headers)
        }
        first => http::ndjson(headers, NdjsonLines::new(first, inflight).boxed_unsync()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};

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
            serde_json::from_str::<Value>(&args.to_json()).unwrap(),
            json!({"messages":[{"content":"Hi"}],"reasoning_effort":"high"})
        );
        // puter.drivers.call sends no driver; older clients named the provider there.
        let models = body_of(json!({"interface":"puter-chat-completion","method":"models"}));
        assert_eq!(parse_call(&models), Ok(Call::Models));
        let legacy = body_of(
            json!({"interface":"puter-chat-completion","driver":"kimi","method":"complete","args":{}}),
        );
        let Ok(Call::Complete(args)) = parse_call(&legacy) else {
            panic!("not a complete call")
        };
        assert_eq!(args.to_json(), r#"{"provider":"kimi"}"#);
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

        let answer = DriverReply::from_plugin(
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

    use crate::serve::on_test_runtime as on_runtime;

    /// A request made of these events; the flag tells whether it was cancelled.
    fn inflight(events: Vec<Event>) -> (Inflight, Arc<AtomicBool>, mpsc::Sender<Event>) {
        let (tx, rx) = mpsc::channel();
        for event in events {
            tx.send(event).unwrap();
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let inflight = Inflight::over(rx, move || flag.store(true, Ordering::SeqCst));
        (inflight, cancelled, tx)
    }

    fn relay(events: Vec<Event>) -> (u16, String, String, bool) {
        on_runtime(async {
            let (inflight, cancelled, _tx) = inflight(events);
            let response = relay_stream(inflight, &Vec::new()).await;
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8(body.to_vec()).unwrap();
            (status, content_type, body, cancelled.load(Ordering::SeqCst))
        })
    }

    #[test]
    fn streams_parts_as_lines_and_ends_cleanly() {
        let (status, content_type, body, cancelled) = relay(vec![
            Event::Part(r#"{"type":"text","text":"Hel"}"#.into()),
            Event::Part(r#"{"type":"text","text":"lo"}"#.into()),
            Event::Done(0, "{}".into()),
        ]);
        assert_eq!((status, cancelled), (200, false));
        assert_eq!(content_type, "application/x-ndjson");
        assert_eq!(
            body,
            "{\"type\":\"text\",\"text\":\"Hel\"}\n{\"type\":\"text\",\"text\":\"lo\"}\n"
        );
    }

    #[test]
    fn an_error_before_any_part_is_plain_json_and_after_it_a_line() {
        let (status, content_type, body, _) = relay(vec![Event::Done(
            abi::MOONSHOT_ERR_UPSTREAM,
            r#"{"code":"rate_limit_reached_error","message":"slow down","http_status":429,"retryable":true}"#.into(),
        )]);
        assert_eq!(status, 429);
        assert!(content_type.starts_with("application/json"));
        assert!(body.contains(r#""code":"rate_limit_reached_error""#));

        let (status, content_type, body, _) = relay(vec![
            Event::Part(r#"{"type":"text","text":"Hi"}"#.into()),
            Event::Done(
                abi::MOONSHOT_ERR_TRANSPORT,
                r#"{"code":"stream_cut","message":"cut"}"#.into(),
            ),
        ]);
        assert_eq!(
            (status, content_type.as_str()),
            (200, "application/x-ndjson")
        );
        assert!(
            body.ends_with("\n{\"code\":\"stream_cut\",\"message\":\"cut\",\"type\":\"error\"}\n")
        );
    }

    #[test]
    fn a_client_gone_mid_stream_cancels_the_request() {
        on_runtime(async {
            let (inflight, cancelled, _tx) = inflight(vec![Event::Part("{}".into())]);
            let response = relay_stream(inflight, &Vec::new()).await;
            assert!(!cancelled.load(Ordering::SeqCst));
            // hyper drops the body when the client's socket closes.
            drop(response);
            assert!(cancelled.load(Ordering::SeqCst));
        });
        on_runtime(async {
            let (inflight, cancelled, _tx) = inflight(vec![Event::Done(0, "{}".into())]);
            let response = relay_stream(inflight, &Vec::new()).await;
            drop(response);
            assert!(
                !cancelled.load(Ordering::SeqCst),
                "a finished request is not cancelled"
            );
        });
    }

    #[test]
    fn non_streamed_results_are_enveloped() {
        let answer = on_runtime(async {
            let (mut inflight, _, _tx) = inflight(vec![Event::Done(
                0,
                r#"{"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}"#.into(),
            )]);
            wait_for_result(&mut inflight).await
        });
        assert_eq!(
            answer,
            DriverReply::ok(json!({"message":{"role":"assistant","content":"Hi"},
                "finish_reason":"stop","via_ai_chat_service":true}))
        );
        assert_eq!(
            DriverReply::ok(json!(1)).body,
            json!({"success":true,"service":{"name":"ai-chat"},"result":1})
        );
    }
}
