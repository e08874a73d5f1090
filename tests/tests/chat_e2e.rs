//! Plain chat end to end: host -> C ABI -> plugin -> simulator and back.
//! Each test checks the exact body the plugin sent and the ordered parts.

use std::time::Duration;

use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator, UsageShape, UsageSpec};
use moonshot_tests::harness::{instance, plugin, run, TEST_KEY};
use serde_json::{json, Value};

#[test]
fn streaming_chat_sends_moonshots_body_and_returns_ordered_parts() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        reasoning: Some("Greet back.".into()),
        content: "Hello there!".into(),
        usage: Some(UsageSpec {
            prompt_tokens: 20,
            completion_tokens: 8,
            cached_tokens: 0,
        }),
        chunk_chars: 6,
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"messages":[{"content":"Hi Kimi"}],"stream":true}),
    );

    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(
        sim.chat_bodies(),
        vec![json!({
            "model":"kimi-k2.6",
            "messages":[{"role":"user","content":"Hi Kimi"}],
            "max_completion_tokens":32768,
            "stream":true,
            "stream_options":{"include_usage":true}
        })]
    );
    assert_eq!(
        out.kinds(),
        vec!["reasoning", "reasoning", "text", "text", "usage"]
    );
    assert_eq!(
        out.parts[0],
        json!({"type":"reasoning","reasoning":"Greet "})
    );
    assert_eq!(out.parts[2], json!({"type":"text","text":"Hello "}));
    assert_eq!(out.parts[3], json!({"type":"text","text":"there!"}));
    assert_eq!(out.parts[4]["usage"]["prompt_tokens"], 20);

    assert_eq!(
        out.result["message"],
        json!({
            "role":"assistant","content":"Hello there!","reasoning":"Greet back.","reasoning_content":"Greet back."
        })
    );
    assert_eq!(out.result["finish_reason"], "stop");
    assert_eq!(out.result["model"], "kimi-k2.6");
    assert_eq!(
        out.result["usage"], out.parts[4]["usage"],
        "the result carries the same bill"
    );
    assert!(out.result["request_id"]
        .as_str()
        .unwrap()
        .starts_with("sim-req-"));

    let auth = sim.requests()[0]
        .header("authorization")
        .map(str::to_string);
    assert_eq!(auth.as_deref(), Some(format!("Bearer {TEST_KEY}").as_str()));
}

#[test]
fn non_streaming_chat_returns_the_whole_message_and_no_parts() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        content: "Whole answer.".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"messages":"a bare string prompt","model":"kimi"}),
    );

    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert!(out.parts.is_empty());
    let body = &sim.chat_bodies()[0];
    assert_eq!(
        body["messages"],
        json!([{"role":"user","content":"a bare string prompt"}])
    );
    assert!(body.get("stream").is_none());
    assert_eq!(out.result["message"]["content"], "Whole answer.");
    assert_eq!(out.result["usage"]["prompt_tokens"], 10);
}

#[test]
fn puter_message_forms_are_converted() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"model":"moonshot/kimi-k2.6","messages":[
            {"role":"system","content":"Be brief."},
            {"content":[{"type":"text","text":"part one"},"part two",{"text":"part three"}]},
            {"role":"assistant","content":"earlier answer"},
            {"content":"follow-up","name":"alice"}
        ]}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(
        sim.chat_bodies()[0]["messages"],
        json!([
            {"role":"system","content":"Be brief."},
            {"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"},{"type":"text","text":"part three"}]},
            {"role":"assistant","content":"earlier answer"},
            {"role":"user","content":"follow-up","name":"alice"}
        ])
    );
    // The simulator's default reply echoes the last user text.
    assert!(out.result["message"]["content"]
        .as_str()
        .unwrap()
        .ends_with("You said: follow-up"));
}

#[test]
fn sse_framing_variants_decode_the_same() {
    // CR, CRLF, comments, multi-line data and a BOM, one byte per write.
    let chunk = |text: &str| json!({"choices":[{"index":0,"delta":{"content":text}}]}).to_string();
    let body = format!(
        "\u{feff}: keep-alive\r\ndata: {}\r\n\r\ndata: {}\r\rdata: {}\n\ndata: [DONE]\n\n",
        chunk("a"),
        chunk("b"),
        chunk("c")
    );
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Raw {
        head: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            .into(),
        body: body.bytes().map(|b| vec![b]).collect(),
        delay: Duration::ZERO,
        hold_open: Duration::ZERO,
    });
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"messages":"x","stream":true}));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.text(), "abc");
    assert_eq!(
        out.result["usage"]["estimated"], true,
        "no usage came, so it is estimated"
    );
}

#[test]
fn upstream_errors_reach_the_host_with_details() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::error(
        401,
        "invalid_authentication_error",
        "Invalid Authentication",
    ));
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"messages":"x","stream":true}));
    assert_eq!(out.status, abi::MOONSHOT_ERR_UPSTREAM);
    assert_eq!(out.result["code"], "invalid_authentication_error");
    assert_eq!(out.result["message"], "Invalid Authentication");
    assert_eq!(out.result["http_status"], 401);
    assert_eq!(out.result["retryable"], false);
    assert!(out.result["request_id"]
        .as_str()
        .unwrap()
        .starts_with("sim-req-"));
    assert_eq!(sim.chat_bodies().len(), 1, "401 is not retried");
}

#[test]
fn synchronous_refusals_start_nothing() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    for (request, status, needle) in [
        (
            "{not json",
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "not valid JSON",
        ),
        (
            r#"{"messages":"x","model":"gpt-4o"}"#,
            abi::MOONSHOT_ERR_UNKNOWN_MODEL,
            "unknown model 'gpt-4o'",
        ),
        (
            r#"{"messages":[]}"#,
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "'messages' is empty",
        ),
        (
            r#"{"messages":"x","stream":"yes"}"#,
            abi::MOONSHOT_ERR_INVALID_ARGUMENT,
            "'stream'",
        ),
    ] {
        let Err((got, error)) = inst.complete(request, None) else {
            panic!("{request} was accepted")
        };
        assert_eq!(got, status, "{request}");
        moonshot_tests::schemas::assert_error_text(&error);
        let error: Value = serde_json::from_str(&error).unwrap();
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{request}: {error}"
        );
    }
    assert!(sim.requests().is_empty());
}

#[test]
fn null_pointers_are_refused_not_crashed_on() {
    let api = plugin().api();
    unsafe {
        let mut instance = std::ptr::null_mut();
        assert_eq!(
            (api.create)(std::ptr::null(), &mut instance, std::ptr::null_mut()),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        assert!(instance.is_null());
        assert_eq!(
            (api.create)(c"{}".as_ptr(), std::ptr::null_mut(), std::ptr::null_mut()),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        let mut out = std::ptr::null_mut();
        assert_eq!(
            (api.models)(std::ptr::null(), &mut out),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        assert!(out.is_null());
        assert_eq!(
            (api.cancel)(std::ptr::null()),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            (api.wait)(std::ptr::null(), 0),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        let mut request = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        assert_eq!(
            (api.complete)(
                std::ptr::null_mut(),
                c"{}".as_ptr(),
                std::ptr::null(),
                std::ptr::null_mut(),
                &mut request,
                &mut error
            ),
            abi::MOONSHOT_ERR_INVALID_ARGUMENT
        );
        assert!(!error.is_null());
        (api.free_string)(error);
        (api.release)(std::ptr::null_mut());
        (api.destroy)(std::ptr::null_mut());
        (api.free_string)(std::ptr::null_mut());
    }
}

#[test]
fn non_utf8_input_is_refused() {
    let api = plugin().api();
    let bad = [b'{', 0xff, 0xfe, b'}', 0];
    let mut instance = std::ptr::null_mut();
    let mut error = std::ptr::null_mut();
    let status = unsafe { (api.create)(bad.as_ptr() as *const _, &mut instance, &mut error) };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT);
    let text = unsafe { std::ffi::CStr::from_ptr(error) }
        .to_str()
        .unwrap()
        .to_string();
    unsafe { (api.free_string)(error) };
    assert!(text.contains("not UTF-8"), "{text}");
}

#[test]
fn create_errors_never_contain_the_key() {
    let api = plugin().api();
    for config in [
        format!(r#"{{"apiKey":"{TEST_KEY}","max_queue":"{TEST_KEY}"}}"#),
        format!(r#"{{"apiKey":"{TEST_KEY}","base_url":"gopher://{TEST_KEY}"}}"#),
        format!(r#"{{"apiKey":["{TEST_KEY}"]}}"#),
        format!(r#"{{"apiKey":"{TEST_KEY}""#),
    ] {
        let config = std::ffi::CString::new(config).unwrap();
        let mut instance = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        let status = unsafe { (api.create)(config.as_ptr(), &mut instance, &mut error) };
        assert_eq!(status, abi::MOONSHOT_ERR_INVALID_ARGUMENT);
        let text = unsafe { std::ffi::CStr::from_ptr(error) }
            .to_str()
            .unwrap()
            .to_string();
        unsafe { (api.free_string)(error) };
        assert!(!text.contains(TEST_KEY), "{text}");
    }
}

#[test]
fn usage_inside_the_choice_and_top_level_both_count() {
    for shape in [
        UsageShape::Choice,
        UsageShape::TopLevel,
        UsageShape::Both,
        UsageShape::PromptDetails,
    ] {
        let sim = Simulator::start().unwrap();
        sim.push(Reply::stream(&ReplySpec {
            usage: Some(UsageSpec {
                prompt_tokens: 10_000,
                completion_tokens: 500,
                cached_tokens: 8_000,
            }),
            usage_shape: shape,
            ..ReplySpec::default()
        }));
        let inst = instance(&sim, json!({}));
        let out = run(&inst, &json!({"messages":"x","stream":true}));
        let usage = &out.result["usage"];
        assert_eq!(
            (
                usage["prompt_tokens"].as_u64(),
                usage["cached_tokens"].as_u64()
            ),
            (Some(10_000), Some(8_000)),
            "{shape:?}"
        );
        // 2,000 x 95 + 8,000 x 16 + 500 x 400 = 190,000 + 128,000 + 200,000.
        assert_eq!(usage["cost"]["total_ucents"], 518_000, "{shape:?}");
        assert_eq!(usage["estimated"], false);
    }
}

#[test]
fn a_stream_answered_with_a_whole_completion_is_replayed_as_parts() {
    // Some gateways ignore `stream: true` and answer application/json.
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        reasoning: Some("Short.".into()),
        content: "Whole, not streamed.".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"messages":"x","stream":true}));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(
        out.parts[..2],
        [
            json!({"type":"reasoning","reasoning":"Short."}),
            json!({"type":"text","text":"Whole, not streamed."})
        ]
    );
    assert_eq!(out.parts[2]["type"], "usage");
    assert_eq!(out.result["message"]["content"], "Whole, not streamed.");
}
