//! What the live service says, beside what the catalog believes: the model
//! list (`GET /models`) with a verdict per id, and the account balance
//! (`GET /users/me/balance`, MOONSHOT-API.md §7) with amounts in integer
//! microcents. Both run once on the calling thread, no retry: an operator
//! checking drift wants the service as it is.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::catalog::{self, Lifecycle};
use crate::client::{read_body_text, Client};
use crate::date::Date;
use crate::error::{ErrorKind, ProviderError};

/// Verdict: the service lists the id and the catalog serves it today.
pub const SERVED_AND_KNOWN: &str = "served_and_known";
/// Verdict: the service lists an id the catalog does not know.
pub const SERVED_BUT_UNKNOWN: &str = "served_but_unknown";
/// Verdict: the service lists an id the catalog holds retired or not yet released.
pub const SERVED_BUT_NOT_EXPECTED: &str = "served_but_not_expected";
/// Verdict: the catalog serves the id today but the service does not list it.
pub const KNOWN_BUT_ABSENT: &str = "known_but_absent";

fn protocol(what: &str) -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        format!("the upstream's {what} could not be understood"),
    )
}

fn get_json(client: &Client, path: &str, deadline: Instant) -> Result<Value, ProviderError> {
    let upstream = client.get_once(path, deadline)?;
    let request_id = upstream.request_id;
    let text = read_body_text(upstream.response.into_body(), client.timeouts())?;
    serde_json::from_str(&text).map_err(|_| {
        let mut err = protocol(path);
        err.request_id = request_id;
        err
    })
}

/// `GET /models` compared with the catalog on `today`:
/// `{"models":[{"id","verdict","upstream"?,"catalog"?}],"drift":bool}`.
pub fn model_list(client: &Client, today: Date, deadline: Instant) -> Result<Value, ProviderError> {
    let listed = get_json(client, "/models", deadline)?;
    let items = listed["data"]
        .as_array()
        .ok_or_else(|| protocol("model list"))?;
    Ok(compare(items, today))
}

/// The verdicts for the items of a model list (pure, for tests).
pub fn compare(items: &[Value], today: Date) -> Value {
    let mut seen = BTreeSet::new();
    let mut models = Vec::new();
    for item in items {
        let Some(id) = item["id"].as_str() else {
            continue;
        };
        seen.insert(id.to_string());
        let card = catalog::by_id(id);
        let verdict = match card.map(|c| c.lifecycle(today)) {
            None => SERVED_BUT_UNKNOWN,
            Some(Lifecycle::Served) => SERVED_AND_KNOWN,
            Some(_) => SERVED_BUT_NOT_EXPECTED,
        };
        let mut entry = json!({"id": id, "verdict": verdict, "upstream": item});
        if let Some(card) = card {
            entry["catalog"] = catalog_view(card, today);
        }
        models.push(entry);
    }
    for card in catalog::served(today).filter(|c| !seen.contains(c.id)) {
        models.push(json!({"id": card.id, "verdict": KNOWN_BUT_ABSENT,
                           "catalog": catalog_view(card, today)}));
    }
    let drift = models.iter().any(|m| m["verdict"] != SERVED_AND_KNOWN);
    json!({"models": models, "drift": drift})
}

fn catalog_view(card: &catalog::ModelCard, today: Date) -> Value {
    let lifecycle = match card.lifecycle(today) {
        Lifecycle::Served => json!("served"),
        Lifecycle::NotYetReleased(from) => json!(format!("served from {from}")),
        Lifecycle::Retired(on) => json!(format!("retired on {on}")),
    };
    json!({"context": card.context, "lifecycle": lifecycle,
           "input": card.input.iter().map(|m| m.as_str()).collect::<Vec<_>>()})
}

/// Moonshot's three balance figures, in its order.
const BALANCE_FIELDS: [&str; 3] = ["available_balance", "voucher_balance", "cash_balance"];

/// `GET /users/me/balance`: Moonshot's figures as given, plus each in integer
/// microcents (`<field>_ucents`; 1 unit of the currency = 100,000,000) and
/// the currency (USD on api.moonshot.ai, CNY on api.moonshot.cn).
pub fn balance(client: &Client, deadline: Instant) -> Result<Value, ProviderError> {
    let answer = get_json(client, "/users/me/balance", deadline)?;
    let currency = if client.url("").contains("moonshot.cn") {
        "CNY"
    } else {
        "USD"
    };
    convert_balance(&answer, currency)
}

/// The balance JSON for Moonshot's answer (pure, for tests).
pub fn convert_balance(answer: &Value, currency: &str) -> Result<Value, ProviderError> {
    let data = answer["data"]
        .as_object()
        .ok_or_else(|| protocol("balance"))?;
    let mut out = Map::new();
    out.insert("currency".into(), json!(currency));
    for field in BALANCE_FIELDS {
        let figure = data.get(field).ok_or_else(|| protocol("balance"))?;
        let ucents = figure
            .as_number()
            .and_then(|n| decimal_to_ucents(&n.to_string()))
            .ok_or_else(|| protocol("balance"))?;
        out.insert(field.into(), figure.clone());
        out.insert(format!("{field}_ucents"), json!(ucents));
    }
    Ok(Value::Object(out))
}

/// Microcents in one unit of currency (1 USD = 100 cents = 10^8 ucents).
const UCENTS_PER_UNIT: i64 = 100_000_000;

/// "49.58894" -> 4_958_894_000, from the decimal text so no float rounding
/// creeps in; digits past the 8th decimal are rounded half away from zero.
/// None for anything but a plain decimal or on overflow.
pub fn decimal_to_ucents(text: &str) -> Option<i64> {
    if text.contains(['e', 'E']) {
        // serde_json writes tiny or huge floats in exponent form.
        let scaled = text.parse::<f64>().ok()? * UCENTS_PER_UNIT as f64;
        return (scaled.is_finite() && scaled.abs() < i64::MAX as f64)
            .then(|| scaled.round() as i64);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let mut ucents = whole.parse::<i64>().ok()?.checked_mul(UCENTS_PER_UNIT)?;
    let mut scale = UCENTS_PER_UNIT;
    for (i, digit) in fraction.bytes().enumerate() {
        let digit = i64::from(digit - b'0');
        if i < 8 {
            scale /= 10;
            ucents = ucents.checked_add(digit.checked_mul(scale)?)?;
        } else {
            if i == 8 && digit >= 5 {
                ucents = ucents.checked_add(1)?;
            }
            break;
        }
    }
    Some(if negative { -ucents } else { ucents })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date::new(2026, 12, 1);

    #[test]
    fn each_id_gets_its_verdict() {
        let items = [
            json!({"id": "kimi-k3", "context_length": 1_048_576}),
            json!({"id": "kimi-k2.6"}),
            json!({"id": "kimi-k9"}),
            json!({"id": "moonshot-v1-8k"}),
        ];
        let out = compare(&items, TODAY);
        let verdicts: Vec<(String, String)> = out["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let s = |v: &Value| v.as_str().unwrap().to_string();
                (s(&m["id"]), s(&m["verdict"]))
            })
            .collect();
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            verdicts,
            vec![
                pair("kimi-k3", SERVED_AND_KNOWN),
                pair("kimi-k2.6", SERVED_AND_KNOWN),
                pair("kimi-k9", SERVED_BUT_UNKNOWN),
                pair("moonshot-v1-8k", SERVED_BUT_NOT_EXPECTED),
                pair("kimi-k2.7-code", KNOWN_BUT_ABSENT),
                pair("kimi-k2.7-code-highspeed", KNOWN_BUT_ABSENT),
            ]
        );
        assert_eq!(out["drift"], true);
        assert_eq!(out["models"][0]["upstream"]["context_length"], 1_048_576);
        assert_eq!(
            out["models"][3]["catalog"]["lifecycle"],
            "retired on 2026-08-31"
        );
    }

    #[test]
    fn the_same_list_is_no_drift() {
        let items: Vec<Value> = catalog::served(TODAY)
            .map(|c| json!({"id": c.id}))
            .collect();
        assert_eq!(compare(&items, TODAY)["drift"], false);
    }

    #[test]
    fn balance_figures_become_exact_microcents() {
        let answer: Value = serde_json::from_str(
            r#"{"code":0,"data":{"available_balance":49.58894,"voucher_balance":46.58893,"cash_balance":3.00001},"scode":"0x0","status":true}"#,
        )
        .unwrap();
        let out = convert_balance(&answer, "USD").unwrap();
        assert_eq!(
            out,
            json!({"currency":"USD",
                "available_balance":49.58894,"available_balance_ucents":4_958_894_000_i64,
                "voucher_balance":46.58893,"voucher_balance_ucents":4_658_893_000_i64,
                "cash_balance":3.00001,"cash_balance_ucents":300_001_000})
        );
        assert!(convert_balance(&json!({"code":0}), "USD").is_err());
    }

    #[test]
    fn decimals_convert_without_float_error() {
        assert_eq!(decimal_to_ucents("0"), Some(0));
        assert_eq!(decimal_to_ucents("0.1"), Some(10_000_000));
        assert_eq!(decimal_to_ucents("-2.5"), Some(-250_000_000));
        assert_eq!(decimal_to_ucents("0.000000015"), Some(2));
        assert_eq!(decimal_to_ucents("0.000000014"), Some(1));
        assert_eq!(decimal_to_ucents("1e-7"), Some(10));
        assert_eq!(decimal_to_ucents("1x3"), None);
        assert_eq!(
            decimal_to_ucents("92233720369"),
            None,
            "overflow is refused"
        );
    }
}
