//! Issue 13's request items through the C ABI against the simulator: every
//! documented field reaches Moonshot's body or is refused before sending,
//! and kimi-k3's tools-in-a-system-message pass through as they are.

use moonshot_abi as abi;
use moonshot_simulator::Simulator;
use moonshot_tests::harness::{instance, run};
use serde_json::{json, Value};

#[test]
fn logprobs_prediction_and_logit_bias_reach_the_body() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let fields = json!({"logprobs": true, "top_logprobs": 2,
        "prediction": {"type": "content", "content": "Hello"},
        "logit_bias": {"1734": -5}, "safety_identifier": "user-7"});
    let mut args = json!({"model": "kimi-k2.6", "messages": "Hi"});
    for (k, v) in fields.as_object().unwrap() {
        args[k] = v.clone();
    }
    let out = run(&inst, &args);
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    let body = &sim.chat_bodies()[0];
    for (k, v) in fields.as_object().unwrap() {
        assert_eq!(&body[k], v, "{k}");
    }
}

#[test]
fn kimi_k3_refuses_what_it_answers_400_to_and_sends_nothing() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    for extra in [
        json!({"logprobs": true}),
        json!({"logprobs": true, "top_logprobs": 3}),
        json!({"top_logprobs": 3}),
        json!({"logit_bias": {"1734": 5}}),
    ] {
        let mut args = json!({"model": "kimi-k3", "messages": "Hi"});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        let Err((status, error)) = inst.complete(&args.to_string(), None) else {
            panic!("{extra} accepted")
        };
        assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST, "{extra}");
        let error: Value = serde_json::from_str(&error).unwrap();
        assert_eq!(error["code"], "invalid_request", "{extra}: {error}");
    }
    assert!(sim.chat_bodies().is_empty());
}

#[test]
fn a_system_message_with_tools_passes_through_on_kimi_k3() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let system = json!({"role": "system", "tools": [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
    let out = run(
        &inst,
        &json!({"model": "kimi-k3", "messages": [system, {"role": "user", "content": "Weather in Paris?"}]}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(sim.chat_bodies()[0]["messages"][0], system);

    let Err((status, error)) = inst.complete(
        &json!({"model": "kimi-k2.6", "messages": [system, "Hi"]}).to_string(),
        None,
    ) else {
        panic!("kimi-k2.6 accepted tools in a system message")
    };
    assert_eq!(status, abi::MOONSHOT_ERR_INVALID_REQUEST);
    assert!(
        error.contains("does not take tools in a system message"),
        "{error}"
    );
    assert_eq!(sim.chat_bodies().len(), 1);
}
