//! The reasoning switch: Puter's `thinking` / `reasoning` / `reasoning_effort`
//! options -> each model's real parameter (MOONSHOT-API.md §3), never both
//! `thinking` and `reasoning_effort`.

use serde_json::{json, Map, Value};

use crate::catalog::{ModelCard, Thinking};
use crate::error::ProviderError;

/// What the request will say about reasoning.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinkingPlan {
    /// Whether the model will reason for this request.
    pub on: bool,
    /// Moonshot's `thinking` object, when one is sent.
    pub field: Option<Value>,
    /// kimi-k3's `reasoning_effort`, when sent.
    pub effort: Option<String>,
    /// Whether the caller asked for anything (else the model's default runs).
    pub requested: bool,
}

/// What the caller asked for, normalised across the option spellings.
#[derive(Debug, Clone, PartialEq)]
struct Ask {
    on: Option<bool>,
    keep: Option<Value>,
    effort: Option<String>,
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::invalid_request(message)
}

/// Reads `thinking` (true, false, or {type, keep}), `reasoning` (bool,
/// effort string or {effort}) and `reasoning_effort`.
fn ask(args: &Map<String, Value>) -> Result<Ask, ProviderError> {
    let mut ask = Ask {
        on: None,
        keep: None,
        effort: None,
    };
    match args.get("thinking") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(on)) => ask.on = Some(*on),
        Some(Value::Object(o)) => {
            ask.on = match o.get("type").and_then(Value::as_str) {
                Some("enabled") | None => Some(true),
                Some("disabled") => Some(false),
                Some(other) => {
                    return Err(bad(format!(
                        "thinking.type must be \"enabled\" or \"disabled\", not \"{other}\""
                    )))
                }
            };
            ask.keep = o.get("keep").cloned().filter(|k| !k.is_null());
        }
        Some(_) => {
            return Err(ProviderError::invalid_argument(
                "'thinking' must be true, false or {type, keep}",
            ))
        }
    }
    let effort = match args.get("reasoning") {
        Some(Value::Bool(on)) => {
            ask.on = ask.on.or(Some(*on));
            None
        }
        Some(Value::String(effort)) => Some(effort.clone()),
        Some(Value::Object(o)) => o.get("effort").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let effort = args
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(effort);
    if let Some(effort) = effort {
        let effort = effort.to_ascii_lowercase();
        match effort.as_str() {
            "none" | "minimal" | "off" => ask.on = ask.on.or(Some(false)),
            "low" | "medium" | "high" | "max" | "xhigh" => {
                ask.on = ask.on.or(Some(true));
                ask.effort = Some(effort);
            }
            other => {
                return Err(bad(format!(
                    "reasoning_effort must be low, medium, high or max, not \"{other}\""
                )))
            }
        }
    }
    Ok(ask)
}

/// Plans the reasoning parameters for `card`. `adjust` collects what was
/// changed to fit the model.
pub fn plan(
    card: &ModelCard,
    args: &Map<String, Value>,
    adjust: &mut Vec<String>,
) -> Result<ThinkingPlan, ProviderError> {
    let ask = ask(args)?;
    let requested = ask.on.is_some();
    let default_on = card.thinking.on_by_default();
    let id = card.id;
    let mut plan = ThinkingPlan {
        on: ask.on.unwrap_or(default_on),
        field: None,
        effort: None,
        requested,
    };
    match card.thinking {
        Thinking::None => {
            if ask.on == Some(true) {
                return Err(bad(format!("model '{id}' has no thinking mode")));
            }
            plan.on = false;
        }
        Thinking::Implicit => {
            if ask.on == Some(false) {
                return Err(bad(format!(
                    "model '{id}' always reasons; thinking cannot be disabled"
                )));
            }
            plan.on = true;
        }
        Thinking::Toggle | Thinking::ToggleKeep => {
            if let Some(on) = ask.on {
                let mut field = json!({"type": if on { "enabled" } else { "disabled" }});
                if let Some(keep) = ask.keep.filter(|_| on) {
                    if card.thinking == Thinking::Toggle {
                        return Err(bad(format!("model '{id}' does not accept thinking.keep")));
                    }
                    if keep != json!("all") {
                        return Err(bad("thinking.keep must be null or \"all\""));
                    }
                    field["keep"] = keep;
                }
                plan.field = Some(field);
            }
            if ask.effort.is_some() {
                adjust.push(format!(
                    "reasoning_effort has no levels on {id}: thinking turned on instead"
                ));
            }
        }
        Thinking::AlwaysOn => {
            if ask.on == Some(false) {
                return Err(bad(format!(
                    "model '{id}' always thinks: thinking.type must be \"enabled\""
                )));
            }
            if ask.keep.as_ref().is_some_and(|k| k != "all") {
                return Err(bad(format!(
                    "model '{id}' keeps all thinking: thinking.keep is fixed to \"all\""
                )));
            }
            plan.on = true;
            if requested {
                plan.field = Some(json!({"type": "enabled"}));
            }
            if ask.effort.is_some() {
                adjust.push(format!(
                    "reasoning_effort ignored: {id} has no effort levels"
                ));
            }
        }
        Thinking::Effort => {
            plan.on = true;
            if ask.on == Some(false) {
                adjust.push(format!(
                    "{id} always reasons: used reasoning_effort \"low\" for thinking off"
                ));
                plan.effort = Some("low".into());
            }
            if let Some(effort) = ask.effort {
                plan.effort = Some(match effort.as_str() {
                    "medium" => {
                        adjust.push(format!("reasoning_effort \"medium\" is \"high\" on {id}"));
                        "high".into()
                    }
                    "xhigh" => "max".into(),
                    _ => effort,
                });
            }
        }
    }
    Ok(plan)
}

impl ThinkingPlan {
    /// Turns thinking off for this request (a forced tool on kimi-k2.6).
    pub fn disable(&mut self) {
        self.on = false;
        self.field = Some(json!({"type": "disabled"}));
    }

    pub fn write(&self, body: &mut Map<String, Value>) {
        if let Some(field) = &self.field {
            body.insert("thinking".into(), field.clone());
        }
        if let Some(effort) = &self.effort {
            body.insert("reasoning_effort".into(), json!(effort));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::by_id;

    fn plan_for(model: &str, args: Value) -> Result<(ThinkingPlan, Vec<String>), ProviderError> {
        let mut adjust = Vec::new();
        let plan = plan(
            by_id(model).unwrap(),
            args.as_object().unwrap(),
            &mut adjust,
        )?;
        Ok((plan, adjust))
    }

    fn body(model: &str, args: Value) -> Value {
        let (plan, _) = plan_for(model, args).unwrap();
        let mut body = Map::new();
        plan.write(&mut body);
        Value::Object(body)
    }

    #[test]
    fn k26_takes_thinking_with_keep() {
        assert_eq!(
            body("kimi-k2.6", json!({"thinking": true})),
            json!({"thinking":{"type":"enabled"}})
        );
        assert_eq!(
            body("kimi-k2.6", json!({"thinking": false})),
            json!({"thinking":{"type":"disabled"}})
        );
        assert_eq!(
            body(
                "kimi-k2.6",
                json!({"thinking": {"type":"enabled","keep":"all"}})
            ),
            json!({"thinking":{"type":"enabled","keep":"all"}})
        );
        assert_eq!(
            body("kimi-k2.6", json!({"reasoning_effort":"high"})),
            json!({"thinking":{"type":"enabled"}})
        );
        assert_eq!(
            body("kimi-k2.6", json!({"reasoning":{"effort":"none"}})),
            json!({"thinking":{"type":"disabled"}})
        );
        assert_eq!(
            body("kimi-k2.6", json!({})),
            json!({}),
            "nothing asked, nothing sent"
        );
        assert!(
            plan_for("kimi-k2.6", json!({})).unwrap().0.on,
            "k2.6 thinks by default"
        );
    }

    #[test]
    fn k25_rejects_keep() {
        let err = plan_for(
            "kimi-k2.5",
            json!({"thinking": {"type":"enabled","keep":"all"}}),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "model 'kimi-k2.5' does not accept thinking.keep"
        );
        assert_eq!(
            body("kimi-k2.5", json!({"thinking": true})),
            json!({"thinking":{"type":"enabled"}})
        );
    }

    #[test]
    fn k27_is_always_on() {
        assert_eq!(
            body("kimi-k2.7-code", json!({"thinking": true})),
            json!({"thinking":{"type":"enabled"}})
        );
        assert_eq!(body("kimi-k2.7-code", json!({})), json!({}));
        let err = plan_for("kimi-k2.7-code", json!({"thinking": false})).unwrap_err();
        assert!(err.message.contains("always thinks"));
    }

    #[test]
    fn k3_takes_reasoning_effort_never_thinking() {
        assert_eq!(
            body("kimi-k3", json!({"reasoning_effort":"low"})),
            json!({"reasoning_effort":"low"})
        );
        assert_eq!(body("kimi-k3", json!({"thinking": true})), json!({}));
        assert_eq!(
            body(
                "kimi-k3",
                json!({"thinking": true, "reasoning_effort":"max"})
            ),
            json!({"reasoning_effort":"max"})
        );
        let (plan, adjust) = plan_for("kimi-k3", json!({"reasoning_effort":"medium"})).unwrap();
        assert_eq!(plan.effort.as_deref(), Some("high"));
        assert_eq!(adjust.len(), 1);
        assert_eq!(
            body("kimi-k3", json!({"thinking": false})),
            json!({"reasoning_effort":"low"})
        );
    }

    #[test]
    fn models_without_thinking_refuse_it() {
        let err = plan_for("moonshot-v1-8k", json!({"thinking": true})).unwrap_err();
        assert_eq!(err.message, "model 'moonshot-v1-8k' has no thinking mode");
        assert!(!plan_for("moonshot-v1-8k", json!({})).unwrap().0.on);
        assert!(plan_for("kimi-k2-thinking", json!({"thinking": false})).is_err());
    }

    #[test]
    fn bad_values_are_clear() {
        assert!(plan_for("kimi-k2.6", json!({"thinking": "yes"})).is_err());
        assert!(
            plan_for("kimi-k2.6", json!({"reasoning_effort": "extreme"}))
                .unwrap_err()
                .message
                .contains("low, medium, high or max")
        );
        assert!(plan_for(
            "kimi-k2.6",
            json!({"thinking": {"type":"enabled","keep":"some"}})
        )
        .is_err());
    }
}
