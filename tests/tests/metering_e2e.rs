//! Metering end to end: every result carries the bill, computed in integer
//! microcents from the catalog entry of the model that actually served.
//! Prices are ucents per token ($0.95 per 1M tokens = 95).

use std::time::Duration;

use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator, UsageShape, UsageSpec};
use moonshot_tests::harness::{instance, run};
use serde_json::{json, Value};

fn spec(prompt: u64, completion: u64, cached: u64) -> ReplySpec {
    ReplySpec {
        usage: Some(UsageSpec {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
        }),
        ..ReplySpec::default()
    }
}

fn line<'a>(usage: &'a Value, kind: &str) -> &'a Value {
    usage["cost"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["usageType"].as_str().unwrap().ends_with(kind))
        .unwrap_or_else(|| panic!("no {kind} line in {usage}"))
}

#[test]
fn non_stream_bill_by_kind() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&spec(10_000, 500, 8_000)));
    let inst = instance(&sim, json!({}));
    let usage = run(&inst, &json!({"messages":"x"})).result["usage"].clone();
    assert_eq!(
        line(&usage, "input-tokens"),
        &json!({"usageType":"moonshot:kimi-k2.6:input-tokens","units":2000,"ucentsPerUnit":95,"ucents":190000})
    );
    assert_eq!(
        line(&usage, "cached-tokens"),
        &json!({"usageType":"moonshot:kimi-k2.6:cached-tokens","units":8000,"ucentsPerUnit":16,"ucents":128000})
    );
    assert_eq!(
        line(&usage, "output-tokens"),
        &json!({"usageType":"moonshot:kimi-k2.6:output-tokens","units":500,"ucentsPerUnit":400,"ucents":200000})
    );
    // 190,000 + 128,000 + 200,000 = 518,000 ucents = 0.518 cents.
    assert_eq!(usage["cost"]["total_ucents"], 518_000);
    assert_eq!(usage["cost"]["usd_cents"], 0.518);
    assert_eq!(usage["uncached_prompt_tokens"], 2_000);
}

#[test]
fn a_million_uncached_tokens_on_k3() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        model: "kimi-k3".into(),
        ..spec(1_000_000, 0, 0)
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"model":"kimi-k3","stream":true,"messages":"x"}),
    );
    // 1,000,000 x 300 = 300,000,000 ucents = $3.00.
    assert_eq!(out.result["usage"]["cost"]["total_ucents"], 300_000_000);
}

#[test]
fn a_migrated_request_is_billed_at_the_model_that_served() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&spec(1_000, 100, 0)));
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"model":"moonshot-v1-8k","messages":"x"}));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.result["migrated_from"], "moonshot-v1-8k");
    assert_eq!(out.result["model"], "kimi-k2.6");
    assert_eq!(sim.chat_bodies()[0]["model"], "kimi-k2.6");
    // At kimi-k2.6 prices, not v1-8k's 20 / 200: 1,000 x 95 + 100 x 400.
    assert_eq!(out.result["usage"]["cost"]["model"], "kimi-k2.6");
    assert_eq!(out.result["usage"]["cost"]["total_ucents"], 135_000);
}

#[test]
fn moonshot_v1_auto_is_billed_at_the_tier_the_response_names() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::completion(&ReplySpec {
        model: "moonshot-v1-32k".into(),
        ..spec(10_000, 100, 0)
    }));
    let inst = instance(&sim, json!({"today":"2026-08-01"}));
    let out = run(&inst, &json!({"model":"moonshot-v1-auto","messages":"x"}));
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert_eq!(out.result["model"], "moonshot-v1-32k");
    // 10,000 x 100 + 100 x 300 = 1,030,000 (not the 128k tier's 2,050,000).
    assert_eq!(out.result["usage"]["cost"]["total_ucents"], 1_030_000);
}

#[test]
fn a_stream_without_usage_is_billed_from_the_tokenizer() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        content: "abcdefgh".into(),
        usage: None,
        ..ReplySpec::default()
    }));
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"stream":true,"messages":[{"content":"0123456789ab"}]}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    let usage = &out.result["usage"];
    assert_eq!(usage["estimated"], true);
    // The simulator's tokenizer: ceil(12 chars / 4) + 8 per message = 11.
    assert_eq!(usage["prompt_tokens"], 11);
    // Output estimated from what streamed: 8 ASCII bytes / 4 = 2.
    assert_eq!(usage["completion_tokens"], 2);
    assert_eq!(usage["cost"]["total_ucents"], 11 * 95 + 2 * 400);
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "/v1/chat/completions",
            "/v1/tokenizers/estimate-token-count"
        ]
    );
}

#[test]
fn a_cut_stream_is_an_error_that_keeps_and_bills_the_partial_answer() {
    let chunk = |text: &str| json!({"choices":[{"index":0,"delta":{"content":text}}]}).to_string();
    let sim = Simulator::start().unwrap();
    sim.push(Reply::Sse {
        events: vec![chunk("Half an "), chunk("answer")],
        delay: Duration::ZERO,
        done: false,
    });
    let inst = instance(&sim, json!({}));
    let out = run(
        &inst,
        &json!({"stream":true,"messages":[{"content":"0123456789ab"}]}),
    );
    assert_eq!(out.status, abi::MOONSHOT_ERR_TRANSPORT);
    assert_eq!(out.result["code"], "stream_cut");
    let partial = &out.result["partial"];
    assert_eq!(partial["message"]["content"], "Half an answer");
    assert_eq!(partial["finish_reason"], Value::Null);
    assert_eq!(partial["usage"]["estimated"], true);
    assert_eq!(partial["usage"]["prompt_tokens"], 11);
    // "Half an answer" is 14 bytes -> 4 tokens.
    assert_eq!(partial["usage"]["cost"]["total_ucents"], 11 * 95 + 4 * 400);
    assert_eq!(out.text(), "Half an answer");
    assert!(
        out.parts_of("usage").is_empty(),
        "no usage part for a failed stream"
    );
}

#[test]
fn usage_in_a_trailing_empty_choices_chunk_counts() {
    let sim = Simulator::start().unwrap();
    sim.push(Reply::stream(&ReplySpec {
        usage_shape: UsageShape::TopLevel,
        ..spec(40, 4, 10)
    }));
    let inst = instance(&sim, json!({}));
    let out = run(&inst, &json!({"stream":true,"messages":"x"}));
    // 30 x 95 + 10 x 16 + 4 x 400 = 2,850 + 160 + 1,600.
    assert_eq!(out.result["usage"]["cost"]["total_ucents"], 4_610);
    assert_eq!(
        out.parts.last().unwrap()["usage"]["cost"]["total_ucents"],
        4_610
    );
}

#[test]
fn reported_costs_rows_for_the_served_models() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let rows: Vec<Value> = serde_json::from_str(&inst.reported_costs()).unwrap();
    // 4 models served on 2026-11-25, three rows each, plus web search.
    assert_eq!(rows.len(), 13);
    assert!(rows.contains(&json!({"usageType":"moonshot:kimi-k2.6:input-tokens","ucentsPerUnit":95,"unit":"token","source":"driver:aiChat/moonshot"})));
    assert!(rows.contains(&json!({"usageType":"moonshot:kimi-k3:output-tokens","ucentsPerUnit":1500,"unit":"token","source":"driver:aiChat/moonshot"})));
    assert_eq!(
        rows.last().unwrap(),
        &json!({"usageType":"moonshot:web-search:calls","ucentsPerUnit":500000,"unit":"call","source":"driver:aiChat/moonshot"})
    );
}
