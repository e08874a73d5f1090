//! The catalog through the C ABI: what models(), list() and
//! default_model() advertise on either side of each lifecycle date, and
//! what a retired id does under each policy.

use moonshot_abi as abi;
use moonshot_simulator::{Reply, ReplySpec, Simulator};
use moonshot_tests::harness::{instance, run};
use serde_json::{json, Value};

fn ids(models: &str) -> Vec<String> {
    let models: Vec<Value> = serde_json::from_str(models).unwrap();
    models
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn models_follow_the_calendar() {
    let sim = Simulator::start().unwrap();
    let on = |day: &str| ids(&instance(&sim, json!({"today": day})).models());
    // Release dates: kimi-k2.6 from 2026-04-21, kimi-k3 from 2026-07-16.
    assert!(!on("2026-04-20").contains(&"kimi-k2.6".to_string()));
    assert!(on("2026-04-21").contains(&"kimi-k2.6".to_string()));
    assert!(!on("2026-07-15").contains(&"kimi-k3".to_string()));
    assert!(on("2026-07-16").contains(&"kimi-k3".to_string()));
    let before_k2 = on("2026-05-24");
    assert!(before_k2.contains(&"kimi-k2-thinking".to_string()));
    assert!(!before_k2.contains(&"kimi-k2.7-code".to_string()));
    assert!(!on("2026-05-25").contains(&"kimi-k2-thinking".to_string()));
    assert!(on("2026-06-12").contains(&"kimi-k2.7-code".to_string()));
    assert!(on("2026-08-30").contains(&"moonshot-v1-auto".to_string()));
    assert_eq!(
        on("2026-08-31"),
        vec![
            "kimi-k3",
            "kimi-k2.7-code",
            "kimi-k2.7-code-highspeed",
            "kimi-k2.6"
        ]
    );
}

#[test]
fn models_are_puters_ichatmodel() {
    let sim = Simulator::start().unwrap();
    let inst = instance(&sim, json!({}));
    let models: Vec<Value> = serde_json::from_str(&inst.models()).unwrap();
    let k26 = models.iter().find(|m| m["id"] == "kimi-k2.6").unwrap();
    assert_eq!(k26["puterId"], "moonshot:moonshot/kimi-k2.6");
    assert_eq!(k26["name"], "Kimi K2.6");
    assert_eq!(
        k26["aliases"],
        json!(["kimi-k26", "kimi", "moonshot/kimi-k2.6"])
    );
    assert_eq!(
        k26["modalities"],
        json!({"input":["text","image","video"],"output":["text"]})
    );
    assert_eq!(k26["costs_currency"], "usd-cents");
    assert_eq!(k26["input_cost_key"], "prompt_tokens");
    assert_eq!(k26["output_cost_key"], "completion_tokens");
    assert_eq!(
        k26["costs"],
        json!({"tokens":1_000_000,"prompt_tokens":95,"completion_tokens":400,"cached_tokens":16})
    );
    assert_eq!(
        (k26["context"].as_u64(), k26["max_tokens"].as_u64()),
        (Some(262_144), Some(262_144))
    );
    assert_eq!(k26["tool_call"], true);
    assert_eq!(k26["knowledge"], "2025-01");
    assert_eq!(inst.default_model(), "\"kimi-k2.6\"");
    let list: Vec<String> = serde_json::from_str(&inst.list()).unwrap();
    for name in [
        "kimi-k2.6",
        "kimi",
        "kimi-k26",
        "moonshot/kimi-k2.6",
        "kimi-k3",
    ] {
        assert!(list.contains(&name.to_string()), "{name}");
    }
    assert!(
        !list.contains(&"moonshot-v1-8k".to_string()),
        "retired ids are not advertised"
    );
}

#[test]
fn a_retired_id_migrates_or_errors_by_config() {
    let sim = Simulator::start().unwrap();
    let migrate = instance(&sim, json!({}));
    let out = run(
        &migrate,
        &json!({"model":"kimi-k2-turbo-preview","messages":"x"}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK);
    assert_eq!(out.result["model"], "kimi-k2.6");
    assert_eq!(out.result["migrated_from"], "kimi-k2-turbo-preview");
    assert_eq!(
        out.result["migration_reason"],
        "kimi-k2-turbo-preview was retired on 2026-05-25; served by its successor kimi-k2.6"
    );

    let strict = instance(&sim, json!({"retired_models": "error"}));
    let Err((status, error)) = strict.complete(
        &json!({"model":"kimi-k2-turbo-preview","messages":"x"}).to_string(),
        None,
    ) else {
        panic!("accepted")
    };
    assert_eq!(status, abi::MOONSHOT_ERR_MODEL_RETIRED);
    moonshot_tests::schemas::assert_error_text(&error);
    let error: Value = serde_json::from_str(&error).unwrap();
    assert_eq!(
        error["message"],
        "model 'kimi-k2-turbo-preview' was retired on 2026-05-25; use 'kimi-k2.6' instead"
    );
    assert_eq!(
        sim.chat_bodies().len(),
        1,
        "the refused request sent nothing"
    );

    // The day before retirement the id is served as itself.
    let before = instance(
        &sim,
        json!({"today": "2026-05-24", "retired_models": "error"}),
    );
    sim.push(Reply::completion(&ReplySpec {
        model: "kimi-k2-turbo-preview".into(),
        ..ReplySpec::default()
    }));
    let out = run(
        &before,
        &json!({"model":"kimi-k2-turbo-preview","messages":"x"}),
    );
    assert_eq!(out.status, abi::MOONSHOT_OK, "{}", out.result);
    assert!(out.result.get("migrated_from").is_none());
    assert_eq!(out.result["model"], "kimi-k2-turbo-preview");
    assert_eq!(sim.chat_bodies()[1]["model"], "kimi-k2-turbo-preview");
}
