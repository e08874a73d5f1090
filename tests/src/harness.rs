//! End-to-end helpers: a plugin instance pointed at a simulator, and a way
//! to run one request through the C ABI and collect everything it reported.
//! Every part, result and error collected here is checked against
//! include/schemas/ (a violation fails the test with its path).

use std::sync::OnceLock;
use std::time::Duration;

use host_demo::plugin::{Event, Instance, Plugin};
use moonshot_simulator::Simulator;
use serde_json::{json, Value};

use crate::schemas;

/// The key every test instance uses; error sweeps look for it.
pub const TEST_KEY: &str = "sk-test-9f8e7d6c5b4a-secret";

/// The day tests stand on unless they say otherwise.
pub const TODAY: &str = "2026-11-25";

/// The plugin, loaded once per test binary (libraries are never unloaded).
pub fn plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| Plugin::load(&crate::plugin::plugin_path()).expect("load the plugin"))
}

/// An instance talking to `sim`, with fast retries; `extra` overrides fields.
pub fn instance(sim: &Simulator, extra: Value) -> Instance {
    instance_at(&sim.base_url(), extra)
}

/// An instance talking to the upstream at `base_url` (the simulator or a
/// third-party mock), with fast retries (`max_delay_ms` also caps a
/// `Retry-After`); `extra` overrides fields.
pub fn instance_at(base_url: &str, extra: Value) -> Instance {
    let mut config = json!({
        "apiKey": TEST_KEY,
        "base_url": base_url,
        "today": TODAY,
        "retries": {"max": 2, "base_delay_ms": 1, "max_delay_ms": 50},
    });
    merge(&mut config, extra);
    plugin().create(&config.to_string()).expect("create")
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        for (k, v) in extra {
            into.insert(k, v);
        }
    }
}

/// Everything one request reported, in order.
#[derive(Debug)]
pub struct Outcome {
    pub parts: Vec<Value>,
    pub status: i32,
    pub result: Value,
}

impl Outcome {
    /// The parts of one type, e.g. "text".
    pub fn parts_of(&self, kind: &str) -> Vec<&Value> {
        self.parts.iter().filter(|p| p["type"] == kind).collect()
    }

    /// The type of each part, in order, e.g. `["text", "usage"]`.
    pub fn kinds(&self) -> Vec<&str> {
        self.parts
            .iter()
            .map(|p| p["type"].as_str().expect("every part has a type"))
            .collect()
    }

    /// The streamed text joined.
    pub fn text(&self) -> String {
        self.parts_of("text")
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect()
    }

    pub fn reasoning(&self) -> String {
        self.parts_of("reasoning")
            .iter()
            .filter_map(|p| p["reasoning"].as_str())
            .collect()
    }
}

/// Runs `request` to its end (bounded by `timeout`).
pub fn run_with(
    instance: &Instance,
    request: &Value,
    stop_after: Option<usize>,
    timeout: Duration,
) -> Outcome {
    let (handle, events) = instance
        .complete(&request.to_string(), stop_after)
        .unwrap_or_else(|(status, err)| panic!("complete refused ({status}): {err}"));
    let mut parts = Vec::new();
    loop {
        match events.recv_timeout(timeout) {
            Ok(Event::Part(p)) => {
                let part = serde_json::from_str(&p).expect("parts are JSON");
                schemas::assert_part(&part);
                parts.push(part)
            }
            Ok(Event::Done(status, result)) => {
                let result = serde_json::from_str(&result).expect("the result is JSON");
                schemas::assert_final(status, &result);
                assert_eq!(
                    handle.wait(Duration::from_secs(5)),
                    Some(status),
                    "wait agrees with on_done"
                );
                return Outcome {
                    parts,
                    status,
                    result,
                };
            }
            Err(_) => panic!("no end within {timeout:?}; parts so far: {parts:?}"),
        }
    }
}

pub fn run(instance: &Instance, request: &Value) -> Outcome {
    run_with(instance, request, None, Duration::from_secs(30))
}
