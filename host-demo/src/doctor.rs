//! `host-demo doctor`: checks the operator's setup against the live service
//! through the plugin (ABI 1.1): does the key work, has the model list
//! drifted from the catalog, what is the balance, and how fast does one tiny
//! completion answer. One readable line per check, then a verdict.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::plugin::{Event, Instance};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Works, but something differs from what the plugin expects.
    Warn,
    Fail,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok  ",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        }
    }
}

#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: &'static str, outcome: Outcome, detail: impl Into<String>) {
        self.checks.push(Check {
            name,
            outcome,
            detail: detail.into(),
        });
    }

    /// Every check passed without a warning.
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.outcome == Outcome::Ok)
    }

    /// The check of that name.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!(
                "{}  {:<10} {}\n",
                c.outcome.label(),
                c.name,
                c.detail
            ));
        }
        let problems: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.outcome != Outcome::Ok)
            .map(|c| c.name)
            .collect();
        if problems.is_empty() {
            out.push_str("verdict: healthy\n");
        } else {
            out.push_str(&format!("verdict: NOT healthy ({})\n", problems.join(", ")));
        }
        out
    }
}

/// The error JSON's words: `code (HTTP n): message`.
fn describe_error(status: i32, error: &str) -> String {
    let e: Value = serde_json::from_str(error).unwrap_or(Value::Null);
    let code = e["code"].as_str().unwrap_or("error");
    let message = e["message"].as_str().unwrap_or(error);
    match e["http_status"].as_u64() {
        Some(http) => format!("{code} (HTTP {http}): {message}"),
        None => format!("{code} (status {status}): {message}"),
    }
}

/// Dollars (or yuan) from integer microcents, for reading only.
fn money(ucents: i64) -> String {
    format!("{:.2}", ucents as f64 / 100_000_000.0)
}

/// Runs every check. `model` picks the completion's model (default: the
/// provider's); `timeout` bounds the completion.
pub fn examine(instance: &Instance, model: Option<&str>, timeout: Duration) -> Report {
    let mut report = Report::default();
    key_and_catalog(instance, &mut report);
    balance(instance, &mut report);
    completion(instance, model, timeout, &mut report);
    report
}

fn key_and_catalog(instance: &Instance, report: &mut Report) {
    let live = match instance.live_models() {
        Ok(json) => serde_json::from_str::<Value>(&json).unwrap_or(Value::Null),
        Err((status, error)) => {
            let refused = serde_json::from_str::<Value>(&error)
                .ok()
                .and_then(|e| e["http_status"].as_u64())
                .is_some_and(|s| s == 401 || s == 403);
            let what = if refused {
                "refused"
            } else {
                "could not be checked"
            };
            report.add(
                "key",
                Outcome::Fail,
                format!("{what}: {}", describe_error(status, &error)),
            );
            report.add(
                "catalog",
                Outcome::Fail,
                "not compared: the model list could not be read",
            );
            return;
        }
    };
    let models = live["models"].as_array().cloned().unwrap_or_default();
    report.add(
        "key",
        Outcome::Ok,
        "accepted (GET /models answered)".to_string(),
    );
    let with = |verdict: &str| -> Vec<String> {
        models
            .iter()
            .filter(|m| m["verdict"] == verdict)
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect()
    };
    let known = with("served_and_known");
    let mut drift = Vec::new();
    for (verdict, words) in [
        ("served_but_unknown", "served but unknown to the catalog"),
        (
            "served_but_not_expected",
            "served though the catalog has it retired or unreleased",
        ),
        ("known_but_absent", "in the catalog but not served"),
    ] {
        let ids = with(verdict);
        if !ids.is_empty() {
            drift.push(format!("{words}: {}", ids.join(", ")));
        }
    }
    if drift.is_empty() {
        report.add(
            "catalog",
            Outcome::Ok,
            format!(
                "no drift: {} models served and known ({})",
                known.len(),
                known.join(", ")
            ),
        );
    } else {
        report.add(
            "catalog",
            Outcome::Warn,
            format!("drift: {}", drift.join("; ")),
        );
    }
}

fn balance(instance: &Instance, report: &mut Report) {
    let balance = match instance.balance() {
        Ok(json) => serde_json::from_str::<Value>(&json).unwrap_or(Value::Null),
        Err((status, error)) => {
            report.add("balance", Outcome::Fail, describe_error(status, &error));
            return;
        }
    };
    let ucents = |field: &str| balance[format!("{field}_ucents")].as_i64().unwrap_or(0);
    let currency = balance["currency"].as_str().unwrap_or("USD");
    let available = ucents("available_balance");
    let detail = format!(
        "{} {currency} available (voucher {}, cash {}; {available} microcents)",
        money(available),
        money(ucents("voucher_balance")),
        money(ucents("cash_balance")),
    );
    if available > 0 {
        report.add("balance", Outcome::Ok, detail);
    } else {
        report.add(
            "balance",
            Outcome::Fail,
            format!("{detail}: requests will be refused (exceeded_current_quota_error)"),
        );
    }
}

fn completion(instance: &Instance, model: Option<&str>, timeout: Duration, report: &mut Report) {
    let mut request = json!({
        "messages": "Reply with one word: ok",
        "stream": true,
        "max_tokens": 64,
        "thinking": false,
    });
    if let Some(model) = model {
        request["model"] = json!(model);
    }
    let started = Instant::now();
    // The handle lives until the end: releasing it would cancel the request.
    let (_handle, events) = match instance.complete(&request.to_string(), None) {
        Ok(started) => started,
        Err((status, error)) => {
            report.add("completion", Outcome::Fail, describe_error(status, &error));
            return;
        }
    };
    let mut first = None;
    let deadline = started + timeout;
    let (status, result) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Part(_)) => {
                first.get_or_insert_with(|| started.elapsed());
            }
            Ok(Event::Done(status, result)) => break (status, result),
            Err(_) => {
                report.add(
                    "completion",
                    Outcome::Fail,
                    format!("no answer within {} s", timeout.as_secs()),
                );
                return;
            }
        }
    };
    let total = started.elapsed();
    if status != moonshot_abi::MOONSHOT_OK {
        report.add("completion", Outcome::Fail, describe_error(status, &result));
        return;
    }
    let result: Value = serde_json::from_str(&result).unwrap_or(Value::Null);
    let ms = |d: Duration| d.as_millis();
    report.add(
        "completion",
        Outcome::Ok,
        format!(
            "{}: first token after {} ms, done after {} ms, {} tokens out, {} microcents",
            result["model"].as_str().unwrap_or("?"),
            first.map_or("(none)".to_string(), |d| ms(d).to_string()),
            ms(total),
            result["usage"]["completion_tokens"],
            result["usage"]["cost"]["total_ucents"],
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_names_every_problem() {
        let mut r = Report::default();
        r.add("key", Outcome::Ok, "accepted");
        assert!(r.healthy());
        assert!(r.render().ends_with("verdict: healthy\n"));
        r.add("catalog", Outcome::Warn, "drift: x");
        r.add("balance", Outcome::Fail, "y");
        assert!(!r.healthy());
        let text = r.render();
        assert!(text.contains("WARN  catalog    drift: x\n"), "{text}");
        assert!(
            text.ends_with("verdict: NOT healthy (catalog, balance)\n"),
            "{text}"
        );
    }

    #[test]
    fn money_reads_microcents() {
        assert_eq!(money(4_958_894_000), "49.59");
        assert_eq!(money(-250_000_000), "-2.50");
    }
}
