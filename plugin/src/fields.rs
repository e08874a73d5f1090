//! The optional request fields the plugin forwards as they are, once checked:
//! `logprobs`, `top_logprobs`, `prediction` and `logit_bias` (MOONSHOT-API.md
//! §3, §10). None is dropped in silence: each is sent on, or refused with the
//! reason the serving model gives (its catalog card's `fields`).
#![forbid(unsafe_code)]

use serde_json::{Map, Value};

use crate::catalog::{FieldSupport, ModelCard};
use crate::error::ProviderError;

/// OpenAI's and Moonshot's ceiling for `top_logprobs`.
const MAX_TOP_LOGPROBS: u64 = 20;

fn refused(card: &ModelCard, field: &str, reason: &str) -> ProviderError {
    ProviderError::invalid_request(format!(
        "model '{}' does not take '{field}' (Moonshot answers: {reason})",
        card.id
    ))
}

fn given<'a>(args: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    args.get(field).filter(|v| !v.is_null())
}

/// Checks the fields against the model and copies them into `body`.
pub fn forward(
    args: &Map<String, Value>,
    card: &ModelCard,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    logprobs(args, card, body)?;
    prediction(args, card, body)?;
    logit_bias(args, card, body)
}

fn logprobs(
    args: &Map<String, Value>,
    card: &ModelCard,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    let wanted = match given(args, "logprobs") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ProviderError::invalid_argument(
                "'logprobs' must be true or false",
            ))
        }
    };
    let top = match given(args, "top_logprobs") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n <= MAX_TOP_LOGPROBS => Some(n),
            _ => {
                return Err(ProviderError::invalid_argument(format!(
                    "'top_logprobs' must be a whole number from 0 to {MAX_TOP_LOGPROBS}"
                )))
            }
        },
    };
    if top.is_some() && wanted != Some(true) {
        // Moonshot's own rule, recorded: "logprobs must be set to true if
        // top_logprobs is used".
        return Err(ProviderError::invalid_request(
            "'top_logprobs' needs 'logprobs': true",
        ));
    }
    if wanted == Some(true) {
        if let FieldSupport::Refused(reason) = card.fields.logprobs {
            return Err(refused(card, "logprobs", reason));
        }
    }
    if let Some(wanted) = wanted {
        body.insert("logprobs".into(), Value::Bool(wanted));
    }
    if let Some(top) = top {
        body.insert("top_logprobs".into(), Value::from(top));
    }
    Ok(())
}

/// `prediction: {type: "content", content: string | [text parts]}`.
fn prediction(
    args: &Map<String, Value>,
    card: &ModelCard,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    let Some(prediction) = given(args, "prediction") else {
        return Ok(());
    };
    let content_ok = match prediction.get("content") {
        Some(Value::String(_)) => true,
        Some(Value::Array(parts)) => parts.iter().all(|p| p["text"].is_string()),
        _ => false,
    };
    if prediction.get("type").and_then(Value::as_str) != Some("content") || !content_ok {
        return Err(ProviderError::invalid_argument(
            "'prediction' must be {\"type\":\"content\",\"content\":<text>}",
        ));
    }
    if let FieldSupport::Refused(reason) = card.fields.prediction {
        return Err(refused(card, "prediction", reason));
    }
    body.insert("prediction".into(), prediction.clone());
    Ok(())
}

/// `logit_bias: {"<token id>": -100..=100}`.
fn logit_bias(
    args: &Map<String, Value>,
    card: &ModelCard,
    body: &mut Map<String, Value>,
) -> Result<(), ProviderError> {
    let Some(bias) = given(args, "logit_bias") else {
        return Ok(());
    };
    let well_formed = bias.as_object().is_some_and(|map| {
        map.iter().all(|(token, value)| {
            token.parse::<u64>().is_ok()
                && value
                    .as_f64()
                    .is_some_and(|v| (-100.0..=100.0).contains(&v))
        })
    });
    if !well_formed {
        return Err(ProviderError::invalid_argument(
            "'logit_bias' must map token ids to numbers from -100 to 100",
        ));
    }
    if let FieldSupport::Refused(reason) = card.fields.logit_bias {
        return Err(refused(card, "logit_bias", reason));
    }
    body.insert("logit_bias".into(), bias.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::by_id;
    use crate::error::ErrorKind;
    use serde_json::json;

    fn run(model: &str, args: Value) -> Result<Value, ProviderError> {
        let mut body = Map::new();
        forward(args.as_object().unwrap(), by_id(model).unwrap(), &mut body)?;
        Ok(Value::Object(body))
    }

    #[test]
    fn every_field_is_forwarded_where_the_model_takes_it() {
        let args = json!({"logprobs": true, "top_logprobs": 3,
            "prediction": {"type": "content", "content": "hello"},
            "logit_bias": {"1734": 5}});
        assert_eq!(run("kimi-k2.6", args.clone()).unwrap(), args);
    }

    #[test]
    fn kimi_k3_takes_prediction_and_refuses_what_it_answers_400_to() {
        let prediction = json!({"prediction": {"type": "content", "content": "hello"}});
        assert_eq!(run("kimi-k3", prediction.clone()).unwrap(), prediction);
        assert_eq!(
            run("kimi-k3", json!({"logprobs": false})).unwrap(),
            json!({"logprobs": false})
        );
        let err = run("kimi-k3", json!({"logprobs": true})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert_eq!(
            err.message,
            "model 'kimi-k3' does not take 'logprobs' (Moonshot answers: invalid logprobs: only false is allowed for this model)"
        );
        let err = run("kimi-k3", json!({"logit_bias": {"1734": 5}})).unwrap_err();
        assert!(
            err.message.contains("logit_bias is not supported yet"),
            "{}",
            err.message
        );
    }

    #[test]
    fn malformed_fields_are_refused_not_dropped() {
        for (args, words) in [
            (
                json!({"logprobs": "yes"}),
                "'logprobs' must be true or false",
            ),
            (
                json!({"top_logprobs": 21, "logprobs": true}),
                "from 0 to 20",
            ),
            (json!({"top_logprobs": 3}), "needs 'logprobs': true"),
            (json!({"prediction": "hello"}), "'prediction' must be"),
            (json!({"logit_bias": {"x": 5}}), "token ids"),
            (json!({"logit_bias": {"1": 500}}), "-100 to 100"),
        ] {
            let err = run("kimi-k2.6", args.clone()).unwrap_err();
            assert!(err.message.contains(words), "{args}: {}", err.message);
        }
        assert_eq!(
            run("kimi-k2.6", json!({"logprobs": null})).unwrap(),
            json!({})
        );
    }
}
