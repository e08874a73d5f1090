//! `host-demo doctor` against the offline simulator: a healthy setup, a
//! catalog that drifted from the service, and a key the service refuses.

use std::time::Duration;

use host_demo::doctor::{examine, Outcome};
use moonshot_simulator::Simulator;
use moonshot_tests::harness::{instance, TEST_KEY};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_healthy_setup_passes_every_check() {
    let sim = Simulator::start().unwrap();
    let report = examine(&instance(&sim, json!({})), None, TIMEOUT);
    let text = report.render();
    assert!(report.healthy(), "{text}");
    assert_eq!(
        report.checks.iter().map(|c| c.name).collect::<Vec<_>>(),
        ["key", "catalog", "balance", "completion"]
    );
    assert!(
        text.contains("key        accepted (GET /models answered)"),
        "{text}"
    );
    assert!(
        text.contains("no drift: 4 models served and known"),
        "{text}"
    );
    assert!(
        text.contains("49.59 USD available (voucher 46.59, cash 3.00; 4958894000 microcents)"),
        "{text}"
    );
    let completion = &report.check("completion").unwrap().detail;
    assert!(
        completion.starts_with("kimi-k2.6: first token after "),
        "{completion}"
    );
    assert!(completion.contains(" ms, done after "), "{completion}");
    assert!(text.ends_with("verdict: healthy\n"));
    // The completion was one small streamed request.
    let chats = sim.chat_bodies();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["stream"], true);
    assert_eq!(chats[0]["max_completion_tokens"], 64);
}

#[test]
fn drift_is_a_warning_that_fails_the_verdict() {
    let sim = Simulator::start().unwrap();
    let report = examine(
        &instance(&sim, json!({"today": "2026-08-01"})),
        None,
        TIMEOUT,
    );
    let catalog = report.check("catalog").unwrap();
    assert_eq!(catalog.outcome, Outcome::Warn);
    assert!(
        catalog
            .detail
            .contains("in the catalog but not served: kimi-k2.5"),
        "{}",
        catalog.detail
    );
    assert!(!report.healthy());
    assert!(report
        .render()
        .ends_with("verdict: NOT healthy (catalog)\n"));
}

#[test]
fn a_refused_key_fails_clearly_and_never_prints_the_key() {
    let sim = Simulator::start().unwrap();
    sim.require_key(Some("sk-a-different-key"));
    let report = examine(&instance(&sim, json!({})), Some("kimi-k3"), TIMEOUT);
    let text = report.render();
    assert_eq!(report.check("key").unwrap().outcome, Outcome::Fail);
    assert!(
        text.contains("refused: invalid_authentication_error (HTTP 401): Invalid Authentication"),
        "{text}"
    );
    for name in ["catalog", "balance", "completion"] {
        assert_eq!(report.check(name).unwrap().outcome, Outcome::Fail, "{name}");
    }
    assert!(text.ends_with("verdict: NOT healthy (key, catalog, balance, completion)\n"));
    assert!(!text.contains(TEST_KEY));
}
