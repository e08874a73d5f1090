//! Registration the way Puter's ChatCompletionDriver does it:
//! `#registerProviders()` (a provider only when its key is present) and
//! `#buildModelMap()` (ids, aliases and puterIds, lower-cased), plus the
//! provider-name normalisation of puter.js.

use std::collections::HashMap;

use serde_json::Value;

use crate::plugin::{Instance, Plugin};

/// The one name every spelling of the provider normalises to.
pub const PROVIDER: &str = "moonshot";

/// `moonshot`, `moonshot-ai`, `moonshotai` and `kimi` (any case) are one provider.
pub fn normalize_provider(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "moonshot" | "moonshot-ai" | "moonshotai" | "kimi" => Some(PROVIDER),
        _ => None,
    }
}

/// Puter's provider block for moonshot: `providers[<any spelling>]`.
pub fn provider_block(config: &Value) -> Option<&Value> {
    config
        .get("providers")?
        .as_object()?
        .iter()
        .find(|(name, _)| normalize_provider(name).is_some())
        .map(|(_, block)| block)
}

/// `apiKey ?? secret_key ?? key`, as #registerProviders reads it.
pub fn api_key(block: &Value) -> Option<&str> {
    ["apiKey", "secret_key", "key"].iter().find_map(|field| {
        block
            .get(field)
            .and_then(Value::as_str)
            .filter(|k| !k.trim().is_empty())
    })
}

pub struct Registered {
    pub instance: Instance,
    pub models: Vec<Value>,
    pub default_model: String,
}

#[derive(Default)]
pub struct Registry {
    providers: HashMap<&'static str, Registered>,
    /// lower-cased id / alias / puterId -> (provider, model id)
    model_map: HashMap<String, (&'static str, String)>,
}

impl Registry {
    /// Registers the provider when `block` carries a key; returns whether it did.
    pub fn register(&mut self, plugin: &Plugin, block: &Value) -> Result<bool, String> {
        if api_key(block).is_none() {
            return Ok(false);
        }
        let instance = plugin.create(&block.to_string())?;
        let models: Vec<Value> =
            serde_json::from_str(&instance.models()).map_err(|e| e.to_string())?;
        let default_model: String =
            serde_json::from_str(&instance.default_model()).map_err(|e| e.to_string())?;
        for model in &models {
            let id = model["id"].as_str().unwrap_or_default().to_string();
            let names = std::iter::once(model.get("id"))
                .chain(std::iter::once(model.get("puterId")))
                .chain(model["aliases"].as_array().into_iter().flatten().map(Some));
            for name in names.flatten().filter_map(Value::as_str) {
                self.model_map
                    .insert(name.to_ascii_lowercase(), (PROVIDER, id.clone()));
            }
        }
        self.providers.insert(
            PROVIDER,
            Registered {
                instance,
                models,
                default_model,
            },
        );
        Ok(true)
    }

    pub fn provider(&self, name: &str) -> Option<&Registered> {
        self.providers.get(normalize_provider(name)?)
    }

    /// Picks provider and model as Puter's driver does: a model found in the
    /// map wins; a provider without a model gets its default; a model the
    /// map does not know goes to the named (or only) provider as written, so
    /// the provider itself can migrate a retired id or explain the error.
    pub fn resolve(
        &self,
        provider: Option<&str>,
        model: Option<&str>,
    ) -> Result<(&Registered, String), String> {
        let wanted_provider = match provider {
            Some(name) => {
                Some(normalize_provider(name).ok_or_else(|| format!("unknown provider '{name}'"))?)
            }
            None => None,
        };
        let pick = |name: &'static str| {
            self.providers
                .get(name)
                .ok_or_else(|| format!("provider '{name}' is not registered (no API key)"))
        };
        match model.map(str::trim).filter(|m| !m.is_empty()) {
            None => {
                let registered = pick(wanted_provider.unwrap_or(PROVIDER))?;
                Ok((registered, registered.default_model.clone()))
            }
            Some(model) => match self.model_map.get(&model.to_ascii_lowercase()) {
                Some((name, id)) if wanted_provider.is_none_or(|p| p == *name) => {
                    Ok((pick(name)?, id.clone()))
                }
                _ => Ok((
                    pick(wanted_provider.unwrap_or(PROVIDER))?,
                    model.to_string(),
                )),
            },
        }
    }

    pub fn model_map_len(&self) -> usize {
        self.model_map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_spellings() {
        for name in ["moonshot", "Moonshot-AI", "moonshotai", "KIMI"] {
            assert_eq!(normalize_provider(name), Some("moonshot"));
        }
        assert_eq!(normalize_provider("openai"), None);
    }

    #[test]
    fn key_lookup_order() {
        assert_eq!(api_key(&json!({"apiKey":"a","secret_key":"b"})), Some("a"));
        assert_eq!(api_key(&json!({"secret_key":"b","key":"c"})), Some("b"));
        assert_eq!(api_key(&json!({"key":"c"})), Some("c"));
        assert_eq!(api_key(&json!({"apiKey":""})), None);
        let config = json!({"providers":{"moonshotai":{"key":"k"}}});
        assert_eq!(provider_block(&config).and_then(api_key), Some("k"));
    }
}
