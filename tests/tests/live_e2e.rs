//! ABI 1.1 through the C table: the live model list with the catalog's
//! verdicts and the balance in microcents, against the simulator; and what a
//! refused key looks like.

use moonshot_abi as abi;
use moonshot_simulator::Simulator;
use moonshot_tests::harness::{instance, TEST_KEY};
use serde_json::{json, Value};

fn verdicts(live: &Value) -> Vec<(String, String)> {
    live["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_live_list_agrees_with_the_catalog_today() {
    let sim = Simulator::start().unwrap();
    let live: Value =
        serde_json::from_str(&instance(&sim, json!({})).live_models().unwrap()).unwrap();
    assert_eq!(live["drift"], false, "{live}");
    assert!(verdicts(&live).iter().all(|(_, v)| v == "served_and_known"));
    assert_eq!(live["models"][0]["upstream"]["context_length"], 1_048_576);
    let asked = &sim.requests()[0];
    assert_eq!(
        (asked.method.as_str(), asked.route()),
        ("GET", "/v1/models")
    );
    assert_eq!(
        asked.header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
}

#[test]
fn drift_is_named_id_by_id() {
    let sim = Simulator::start().unwrap();
    // On 2026-08-01 the catalog still serves kimi-k2.5 and moonshot-v1-*,
    // which today's service no longer lists.
    let live: Value = serde_json::from_str(
        &instance(&sim, json!({"today": "2026-08-01"}))
            .live_models()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(live["drift"], true);
    let v = verdicts(&live);
    assert!(
        v.contains(&("kimi-k2.5".into(), "known_but_absent".into())),
        "{v:?}"
    );
    assert!(v.contains(&("moonshot-v1-8k".into(), "known_but_absent".into())));
    // Before kimi-k3's release the catalog does not expect it upstream.
    let early: Value = serde_json::from_str(
        &instance(&sim, json!({"today": "2026-07-01"}))
            .live_models()
            .unwrap(),
    )
    .unwrap();
    assert!(verdicts(&early).contains(&("kimi-k3".into(), "served_but_not_expected".into())));
}

#[test]
fn the_balance_comes_in_moonshots_figures_and_microcents() {
    let sim = Simulator::start().unwrap();
    let balance: Value =
        serde_json::from_str(&instance(&sim, json!({})).balance().unwrap()).unwrap();
    assert_eq!(
        balance,
        json!({"currency": "USD",
            "available_balance": 49.58894, "available_balance_ucents": 4_958_894_000_i64,
            "voucher_balance": 46.58893, "voucher_balance_ucents": 4_658_893_000_i64,
            "cash_balance": 3.00001, "cash_balance_ucents": 300_001_000})
    );
    assert_eq!(sim.requests()[0].route(), "/v1/users/me/balance");
}

#[test]
fn a_refused_key_is_an_upstream_error_without_the_key() {
    let sim = Simulator::start().unwrap();
    sim.require_key(Some("sk-the-right-one"));
    let inst = instance(&sim, json!({}));
    for (status, error) in [inst.live_models().unwrap_err(), inst.balance().unwrap_err()] {
        assert_eq!(status, abi::MOONSHOT_ERR_UPSTREAM);
        let error: Value = serde_json::from_str(&error).unwrap();
        assert_eq!(error["code"], "invalid_authentication_error");
        assert_eq!(error["http_status"], 401);
        assert!(!error.to_string().contains(TEST_KEY));
    }
    assert_eq!(sim.requests().len(), 2, "one attempt each, no retry");
}
