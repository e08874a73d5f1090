//! Every Moonshot chat feature end to end through the C ABI against the
//! simulator: the exact body the plugin sent upstream and the full ordered
//! list of parts it returned. The simulator enforces Moonshot's request
//! rules, so a body the real API would refuse fails these tests with a 400.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator, ToolCallSpec, UsageSpec};
use moonshot_tests::harness::{instance, run, Outcome};
use serde_json::{json, Value};

fn ok(out: &Outcome) {
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
}

fn weather_tool() -> Value {
    json!({"type":"function","function":{"name":"get_weather","description":"Weather for a city",
        "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}})
}

fn usage(prompt: u64, completion: u64) -> Option<UsageSpec> {
    Some(UsageSpec {
        prompt_tokens: prompt,
        completion_tokens: completion,
        cached_tokens: 0,
    })
}

// ---- messages and media ------------------------------------------------

#[test]
fn images_and_video_pass_as_data_uris_and_ms_files() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"model":"kimi-k3","messages":[{"content":[
            {"text":"What is in these?"},
            {"image_url":"data:image/png;base64,iVBORw0KGgo="},
            {"type":"video_url","video_url":{"url":"ms://file-abc"}}
        ]}]}),
    );
    ok(&out);
    assert_eq!(
        sim.chat_bodies()[0]["messages"],
        json!([{"role":"user","content":[
            {"type":"text","text":"What is in these?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
            {"type":"video_url","video_url":{"url":"ms://file-abc"}}
        ]}])
    );
}

/// Serves one HTTP response on 127.0.0.1 and returns its URL.
fn serve_once(content_type: &'static str, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cat.png", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

#[test]
fn http_images_are_fetched_and_inlined() {
    let url = serve_once("image/png", b"\x89PNG-bytes".to_vec());
    let sim = Simulator::start().unwrap();
    // The test server is on loopback, which media fetches refuse by default.
    let inst = instance(&sim, json!({"media":{"allow_private_networks":true}}));
    let out = run(
        &inst,
        &json!({"model":"kimi-k3","messages":[{"content":[{"text":"Describe"},{"image_url":url}]}]}),
    );
    ok(&out);
    assert_eq!(
        sim.chat_bodies()[0]["messages"][0]["content"][1],
        json!({"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORy1ieXRlcw=="}})
    );
    let header = sim.requests()[0]
        .header("authorization")
        .map(str::to_string);
    assert!(header.is_some(), "Moonshot gets the key");
}

#[test]
fn a_fetched_file_of_the_wrong_type_is_a_clear_error() {
    let url = serve_once("text/html", b"<html>not an image</html>".to_vec());
    let sim = Simulator::start().unwrap();
    // The reason reaches the caller only when the operator asks for it.
    let inst = instance(
        &sim,
        json!({"media":{"allow_private_networks":true,"debug_errors":true}}),
    );
    let out = run(
        &inst,
        &json!({"model":"kimi-k3","messages":[{"content":[{"image_url":url}]}]}),
    );
    assert_eq!(out.status, abi::MOONSHOT_ERR_INVALID_REQUEST);
    assert_eq!(out.result["code"], "media_fetch_failed");
    assert!(out.result["message"]
        .as_str()
        .unwrap()
        .contains("content type \"text/html\" is not a supported image type"));
    assert!(sim.chat_bodies().is_empty(), "nothing was sent to Moonshot");
}

#[test]
fn media_to_a_model_without_that_input_is_refused_before_sending() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let Err((status, error)) =
        inst.complete(&json!({"model":"kimi-k2.7-code","messages":[{"content":[{"video_url":"data:video/mp4;base64,AA"}]}]}).to_string(), None)
    else {
        panic!("accepted")
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST);
    assert!(
        error.contains("model 'kimi-k2.7-code' does not accept video input"),
        "{error}"
    );
    assert!(sim.chat_bodies().is_empty());
    // kimi-k2.6 reads images (Moonshot's kimi-k2.6 pricing page and chat reference).
    let out = run(
        &inst,
        &json!({"model":"kimi-k2.6","messages":[{"content":[{"text":"What is this?"},{"image_url":"data:image/png;base64,AA"}]}]}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(
        sim.chat_bodies()[0]["messages"][0]["content"][1],
        json!({"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}})
    );
}

#[test]
fn puter_tool_blocks_round_trip_with_reasoning_echoed() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        content: "It is 18C in Paris.".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"tools":[weather_tool()],"messages":[
            {"role":"user","content":"Weather in Paris?"},
            {"role":"assistant","reasoning":"Call the tool.","content":[
                {"type":"tool_use","id":"functions.get_weather:0","name":"get_weather","input":{"city":"Paris"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"functions.get_weather:0","content":"18C"}]}
        ]}),
    );
    ok(&out);
    assert_eq!(
        sim.chat_bodies()[0]["messages"],
        json!([
            {"role":"user","content":"Weather in Paris?"},
            {"role":"assistant","reasoning_content":"Call the tool.","tool_calls":[
                {"id":"functions.get_weather:0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"functions.get_weather:0","content":"18C"}
        ])
    );
}

// ---- tools -------------------------------------------------------------

#[test]
fn streamed_tool_calls_arrive_whole_and_the_next_turn_is_accepted() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    // Turn 1: the simulator calls the first tool with the user's words.
    let first = run(
        &inst,
        &json!({"stream":true,"tools":[weather_tool()],"messages":[{"content":"Paris"}]}),
    );
    ok(&first);
    let body = &sim.chat_bodies()[0];
    assert_eq!(body["tools"], json!([weather_tool()]));
    assert_eq!(first.kinds().last(), Some(&"usage"));
    let tool_uses = first.parts_of("tool_use");
    assert_eq!(tool_uses.len(), 1);
    assert_eq!(
        *tool_uses[0],
        json!({"type":"tool_use","id":"functions.get_weather:0","name":"get_weather","input":{"city":"Paris"}})
    );
    let kinds_before_tool: Vec<&str> = first
        .kinds()
        .into_iter()
        .take_while(|k| *k != "tool_use")
        .collect();
    assert!(
        kinds_before_tool.iter().all(|k| *k == "reasoning"),
        "reasoning streams before the call"
    );
    assert_eq!(first.result["finish_reason"], "tool_calls");

    // Turn 2: the host echoes the result message as it got it, plus the tool output.
    let second = run(
        &inst,
        &json!({"stream":true,"tools":[weather_tool()],"messages":[
            {"content":"Paris"},
            first.result["message"].clone(),
            {"role":"tool","tool_call_id":"functions.get_weather:0","content":"18C and sunny"}
        ]}),
    );
    ok(&second);
    assert_eq!(second.text(), "The tool answered: 18C and sunny");
    let echoed = &sim.chat_bodies()[1]["messages"][1];
    assert_eq!(
        echoed["reasoning_content"],
        first.result["message"]["reasoning"]
    );
    assert!(
        echoed.get("content").is_none(),
        "no empty content beside tool_calls"
    );
}

#[test]
fn non_stream_results_carry_tool_calls() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        content: String::new(),
        tool_calls: vec![ToolCallSpec {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Oslo\"}".into(),
        }],
        finish_reason: "tool_calls".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"tools":[weather_tool()],"messages":"Oslo?"}));
    ok(&out);
    assert!(out.parts.is_empty());
    assert_eq!(
        out.result["message"]["tool_calls"],
        json!([{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}])
    );
}

#[test]
fn tool_schemas_are_repaired_and_the_129th_tool_refused() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let loose = json!({"name":"lookup","input_schema":{"$schema":"https://json-schema.org/draft/2020-12/schema",
        "properties":{"q":{"description":"query"},"n":{"enum":[1,2]}},"required":["q"]},"strict":true});
    let out = run(
        &inst,
        &json!({"tools":[loose],"tool_choice":"none","messages":"x"}),
    );
    ok(&out);
    assert_eq!(
        sim.chat_bodies()[0]["tools"],
        json!([{"type":"function","function":{"name":"lookup","strict":true,"parameters":{"type":"object",
            "properties":{"q":{"description":"query","type":"string"},"n":{"enum":[1,2],"type":"integer"}},"required":["q"]}}}])
    );
    assert_eq!(sim.chat_bodies()[0]["tool_choice"], "none");
    assert!(
        out.result["adjustments"][0]
            .as_str()
            .unwrap()
            .contains("properties.n, properties.q")
            || out.result["adjustments"][0]
                .as_str()
                .unwrap()
                .contains("properties.q, properties.n")
    );

    let many: Vec<Value> = (0..129)
        .map(|i| json!({"name": format!("tool_{i:03}")}))
        .collect();
    let Err((status, error)) =
        inst.complete(&json!({"tools":many,"messages":"x"}).to_string(), None)
    else {
        panic!()
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST);
    assert!(error.contains("129 tools declared; Moonshot accepts at most 128"));
}

#[test]
fn forcing_a_tool_on_k26_turns_thinking_off_and_says_so() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"tools":[weather_tool()],"tool_choice":{"type":"function","function":{"name":"get_weather"}},"messages":"Rome"}),
    );
    ok(&out);
    let body = &sim.chat_bodies()[0];
    assert_eq!(body["thinking"], json!({"type":"disabled"}));
    assert_eq!(
        body["tool_choice"],
        json!({"type":"function","function":{"name":"get_weather"}})
    );
    assert_eq!(
        out.result["adjustments"],
        json!([
            "thinking turned off for this request: kimi-k2.6 cannot force a tool while thinking"
        ])
    );
    assert!(out.result["message"].get("reasoning").is_none());
}

#[test]
fn forcing_a_tool_where_thinking_cannot_stop_steers_instead() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let other = json!({"type":"function","function":{"name":"other_tool","parameters":{"type":"object","properties":{}}}});
    let out = run(
        &inst,
        &json!({"model":"kimi-k2.7-code","tools":[weather_tool(), other],
                "tool_choice":{"type":"function","function":{"name":"get_weather"}},"messages":"Rome"}),
    );
    ok(&out);
    let body = &sim.chat_bodies()[0];
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"], json!([weather_tool()]));
    assert_eq!(
        body["messages"],
        json!([{"role":"user","content":"Rome"},{"role":"user","content":"Please select a tool to handle the current issue."}])
    );
    assert!(body.get("thinking").is_none());

    let out = run(
        &inst,
        &json!({"model":"kimi-k3","tools":[weather_tool()],"tool_choice":"required","messages":"Rome"}),
    );
    ok(&out);
    assert_eq!(sim.chat_bodies()[1]["tool_choice"], "required");
}

// ---- thinking ----------------------------------------------------------

#[test]
fn thinking_options_become_each_models_parameter() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let cases = [
        (
            json!({"thinking": true}),
            "kimi-k2.6",
            json!({"thinking":{"type":"enabled"}}),
        ),
        (
            json!({"thinking": false}),
            "kimi-k2.6",
            json!({"thinking":{"type":"disabled"}}),
        ),
        (
            json!({"thinking": {"type":"enabled","keep":"all"}}),
            "kimi-k2.6",
            json!({"thinking":{"type":"enabled","keep":"all"}}),
        ),
        (
            json!({"reasoning": {"effort":"high"}}),
            "kimi-k2.6",
            json!({"thinking":{"type":"enabled"}}),
        ),
        (
            json!({"thinking": true}),
            "kimi-k2.7-code",
            json!({"thinking":{"type":"enabled"}}),
        ),
        (
            json!({"reasoning_effort": "low"}),
            "kimi-k3",
            json!({"reasoning_effort":"low"}),
        ),
        (
            json!({"thinking": true, "reasoning_effort": "max"}),
            "kimi-k3",
            json!({"reasoning_effort":"max"}),
        ),
    ];
    for (i, (options, model, expected)) in cases.iter().enumerate() {
        let mut request = json!({"model": model, "messages": "hi", "stream": true});
        for (k, v) in options.as_object().unwrap() {
            request[k] = v.clone();
        }
        let out = run(&inst, &request);
        ok(&out);
        let body = &sim.chat_bodies()[i];
        for field in ["thinking", "reasoning_effort"] {
            assert_eq!(
                body.get(field),
                expected.get(field),
                "{options} on {model}: {field}"
            );
        }
        let thinks = body["thinking"]["type"] != "disabled";
        assert_eq!(!out.reasoning().is_empty(), thinks, "{options} on {model}");
    }
}

#[test]
fn k25_thinking_has_no_keep() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        model: "kimi-k2.5".into(),
        ..ReplySpec::default()
    }));
    // kimi-k2.5 is served until 2026-08-31.
    let inst = instance(&sim, json!({"today": "2026-08-01"}));
    let out = run(
        &inst,
        &json!({"model":"kimi-k2.5","thinking":true,"messages":"hi"}),
    );
    ok(&out);
    assert_eq!(sim.chat_bodies()[0]["thinking"], json!({"type":"enabled"}));
    let Err((status, error)) = inst.complete(
        &json!({"model":"kimi-k2.5","thinking":{"type":"enabled","keep":"all"},"messages":"hi"})
            .to_string(),
        None,
    ) else {
        panic!()
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST);
    assert!(error.contains("does not accept thinking.keep"));
}

#[test]
fn non_stream_reasoning_is_returned_as_reasoning() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"model":"kimi-k3","messages":"hi"}));
    ok(&out);
    assert_eq!(
        out.result["message"]["reasoning"],
        "The user said \"hi\". I should answer briefly."
    );
}

// ---- the rest of the request -------------------------------------------

#[test]
fn response_formats() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    run(
        &inst,
        &json!({"messages":"colors","response_format":{"type":"json_object"}}),
    );
    run(
        &inst,
        &json!({"messages":"colors","response_format":{"type":"json_schema","json_schema":{"name":"colors",
            "schema":{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"c":{"type":"array"}}}}}}),
    );
    let bodies = sim.chat_bodies();
    assert_eq!(bodies[0]["response_format"], json!({"type":"json_object"}));
    assert_eq!(
        bodies[1]["response_format"],
        json!({"type":"json_schema","json_schema":{"name":"colors","schema":{"type":"object","properties":{"c":{"type":"array"}}}}})
    );
}

#[test]
fn partial_mode_prefix_appears_exactly_once() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        content: " upon a time.".into(),
        chunk_chars: 7,
        ..ReplySpec::default()
    }));
    sim.push(Reply::completion(&ReplySpec {
        content: " upon a time.".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let messages =
        json!([{"content":"Tell a story"},{"role":"assistant","content":"Once","partial":true}]);
    let streamed = run(&inst, &json!({"stream":true,"messages":messages}));
    ok(&streamed);
    assert_eq!(
        sim.chat_bodies()[0]["messages"][1],
        json!({"role":"assistant","content":"Once","partial":true})
    );
    assert_eq!(
        streamed.parts_of("text"),
        vec![
            &json!({"type":"text","text":"Once"}),
            &json!({"type":"text","text":" upon a"}),
            &json!({"type":"text","text":" time."})
        ]
    );
    assert_eq!(streamed.result["message"]["content"], "Once upon a time.");
    let whole = run(&inst, &json!({"messages":messages}));
    assert_eq!(whole.result["message"]["content"], "Once upon a time.");

    let Err((status, error)) = inst.complete(
        &json!({"messages":messages,"response_format":{"type":"json_object"}}).to_string(),
        None,
    ) else {
        panic!()
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST);
    assert!(error.contains("partial mode cannot be combined with response_format json_object"));
}

#[test]
fn prompt_cache_key_is_sent_and_cache_hits_are_billed_cheaper() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let request = json!({"messages":"a long shared system prompt, then a question","prompt_cache_key":"session-42"});
    let first = run(&inst, &request);
    let second = run(&inst, &request);
    assert_eq!(sim.chat_bodies()[0]["prompt_cache_key"], "session-42");
    assert_eq!(first.result["usage"]["cached_tokens"], 0);
    let cached = second.result["usage"]["cached_tokens"].as_u64().unwrap();
    assert_eq!(
        cached,
        second.result["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert!(
        second.result["usage"]["cost"]["total_ucents"].as_u64()
            < first.result["usage"]["cost"]["total_ucents"].as_u64()
    );
}

#[test]
fn stop_n_and_sampling_rules() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let refused = |request: Value, needle: &str| {
        let Err((status, error)) = inst.complete(&request.to_string(), None) else {
            panic!("{request} accepted")
        };
        assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST, "{request}");
        assert!(error.contains(needle), "{error}");
    };
    refused(
        json!({"messages":"x","stop":["a","b","c","d","e","f"]}),
        "6 stop sequences given; Moonshot accepts at most 5",
    );
    refused(
        json!({"messages":"x","stop":["x".repeat(33)]}),
        "stop sequence of 33 bytes",
    );
    refused(
        json!({"messages":"x","n":2}),
        "model 'kimi-k2.6' allows n = 1 only",
    );
    refused(
        json!({"messages":"x","n":9}),
        "'n' must be a whole number from 1 to 5",
    );

    let out = run(
        &inst,
        &json!({"messages":"x","stop":["\n\n","END"],"temperature":0.2,"top_p":0.5}),
    );
    ok(&out);
    let body = &sim.chat_bodies()[0];
    assert_eq!(body["stop"], json!(["\n\n", "END"]));
    assert!(body.get("temperature").is_none() && body.get("top_p").is_none());
    assert_eq!(
        out.result["adjustments"],
        json!([
            "temperature 0.2 omitted: kimi-k2.6 only allows 1 here",
            "top_p omitted: kimi-k2.6 pins it to 0.95"
        ])
    );
}

#[test]
fn n_choices_on_a_model_that_allows_them() {
    let sim = Simulator::start().unwrap();
    let two = json!({"id":"x","object":"chat.completion","model":"moonshot-v1-8k","choices":[
        {"index":0,"message":{"role":"assistant","content":"one"},"finish_reason":"stop"},
        {"index":1,"message":{"role":"assistant","content":"two"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":5,"completion_tokens":2}});
    sim.push(Reply::Json {
        status: 200,
        headers: vec![],
        body: two,
    });
    let inst = instance(&sim, json!({"today":"2026-08-01"}));
    let out = run(
        &inst,
        &json!({"model":"moonshot-v1-8k","messages":"x","n":2,"temperature":0.7}),
    );
    ok(&out);
    assert_eq!(sim.chat_bodies()[0]["n"], 2);
    assert_eq!(sim.chat_bodies()[0]["temperature"], 0.7);
    assert_eq!(out.result["message"]["content"], "one");
    assert_eq!(out.result["choices"][1]["message"]["content"], "two");
}

#[test]
fn max_tokens_becomes_max_completion_tokens() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    run(&inst, &json!({"messages":"x","max_tokens":123}));
    run(&inst, &json!({"messages":"x","model":"kimi-k3"}));
    let bodies = sim.chat_bodies();
    assert_eq!(bodies[0]["max_completion_tokens"], 123);
    assert!(bodies[0].get("max_tokens").is_none());
    assert_eq!(
        bodies[1]["max_completion_tokens"], 32768,
        "room to answer after thinking"
    );
}

// ---- web search --------------------------------------------------------

#[test]
fn web_search_round_trip_streams_across_rounds() {
    let sim = Simulator::start().unwrap();
    let search_args = r#"{"search_result":{"search_id":"s-1"},"usage":{"total_tokens":120}}"#;
    sim.push(Reply::stream(&ReplySpec {
        reasoning: Some("Search first.".into()),
        content: String::new(),
        tool_calls: vec![ToolCallSpec {
            id: "web_search:0".into(),
            name: "$web_search".into(),
            arguments: search_args.into(),
        }],
        finish_reason: "tool_calls".into(),
        usage: usage(100, 20),
        ..ReplySpec::default()
    }));
    sim.push(Reply::stream(&ReplySpec {
        reasoning: Some("Found it.".into()),
        content: "Kimi K3 shipped.".into(),
        usage: usage(250, 30),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"stream":true,"web_search":true,"messages":"What's new?"}),
    );
    ok(&out);

    let bodies = sim.chat_bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[0]["tools"],
        json!([{"type":"builtin_function","function":{"name":"$web_search"}}])
    );
    assert_eq!(
        bodies[1]["messages"],
        json!([
            {"role":"user","content":"What's new?"},
            {"role":"assistant","reasoning_content":"Search first.","tool_calls":[
                {"id":"web_search:0","type":"function","function":{"name":"$web_search","arguments":search_args}}]},
            {"role":"tool","tool_call_id":"web_search:0","name":"$web_search","content":search_args}
        ])
    );
    assert!(
        out.parts_of("tool_use").is_empty(),
        "the search is the plugin's business"
    );
    assert_eq!(out.reasoning(), "Search first.Found it.");
    assert_eq!(out.text(), "Kimi K3 shipped.");
    assert_eq!(out.kinds().last(), Some(&"usage"));
    let usage = &out.result["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(350), Some(50))
    );
    assert_eq!(usage["web_search_calls"], 1);
    // 350 x 95 + 50 x 400 + 1 x 500,000 = 33,250 + 20,000 + 500,000.
    assert_eq!(usage["cost"]["total_ucents"], 553_250);
}

#[test]
fn web_search_declared_among_the_tools_with_a_user_tool_call_ending_the_turn() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        content: String::new(),
        tool_calls: vec![ToolCallSpec {
            id: "functions.get_weather:0".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Oslo\"}".into(),
        }],
        finish_reason: "tool_calls".into(),
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"tools":[{"type":"builtin_function","function":{"name":"$web_search"}}, weather_tool()],"messages":"Oslo weather"}),
    );
    ok(&out);
    assert_eq!(
        sim.chat_bodies().len(),
        1,
        "a user tool call goes back to the host"
    );
    assert_eq!(
        sim.chat_bodies()[0]["tools"],
        json!([weather_tool(), {"type":"builtin_function","function":{"name":"$web_search"}}])
    );
    assert_eq!(
        out.result["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(out.result["usage"]["web_search_calls"], 0);
}

#[test]
fn the_default_simulator_search_loop_end_to_end() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({"web_search":{"fee_ucents":400_000}}));
    let out = run(
        &inst,
        &json!({"stream":true,"web_search":true,"messages":"Moonshot news"}),
    );
    ok(&out);
    assert_eq!(sim.chat_bodies().len(), 2);
    assert!(out.text().contains("Moonshot news"));
    let lines = out.result["usage"]["cost"]["lines"].as_array().unwrap();
    assert_eq!(
        lines[3],
        json!({"usageType":"moonshot:web-search:calls","units":1,"ucentsPerUnit":400000,"ucents":400000})
    );
}

#[test]
fn a_tool_call_echoed_without_reasoning_still_passes_with_thinking_on() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    // An OpenAI-shaped history from a host that dropped the reasoning.
    let out = run(
        &inst,
        &json!({"tools":[weather_tool()],"messages":[
            {"role":"user","content":"Paris?"},
            {"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
            {"role":"tool","tool_call_id":"c1","content":"18C"}
        ]}),
    );
    ok(&out);
    assert_eq!(
        sim.chat_bodies()[0]["messages"][1],
        json!({"role":"assistant","reasoning_content":"","tool_calls":[
            {"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]})
    );
}
