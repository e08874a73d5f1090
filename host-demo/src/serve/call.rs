//! Reads a `/drivers/call` body without building a JSON tree of the
//! caller's arguments.
//!
//! Small JSON values parse to some 34 times their text as `serde_json::Value`
//! (a 62 MiB `[0,0,...]` made 2.1 GB), and serve accepts bodies of up to 64
//! MiB. So the call's own fields are read into a struct (unknown fields are
//! skipped, not kept), and `args` only to its top level: each field's value
//! stays raw JSON text, which is what the plugin receives and parses under
//! its own limits (`max_request_values`, `max_inflight_request_bytes`).
//! Serve looks inside three fields only: `model` and `provider` (strings)
//! and `stream` (a boolean).

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Most top-level fields `args` may have. ICompleteArguments has about 30;
/// the bound keeps a body of a million tiny fields from costing a million
/// allocations.
pub const MAX_ARGS_FIELDS: usize = 256;

/// The top-level fields of a `complete` call's `args`, in the order sent,
/// each value as its raw JSON text.
#[derive(Debug, Default)]
pub struct Args(Vec<(String, Box<RawValue>)>);

impl Args {
    /// The value of `field` as raw JSON; the last one wins, as in a JSON
    /// object parsed by the plugin.
    fn raw(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.get())
    }

    /// `field` as a string: None when absent, null or blank; an error
    /// message when it is another JSON type.
    pub fn text(&self, field: &str) -> Result<Option<String>, String> {
        let must_be_a_string = || format!("'{field}' must be a string");
        match self.raw(field) {
            None | Some("null") => Ok(None),
            Some(raw) if raw.starts_with('"') => {
                let text: String = serde_json::from_str(raw).map_err(|_| must_be_a_string())?;
                Ok(Some(text).filter(|t| !t.trim().is_empty()))
            }
            Some(_) => Err(must_be_a_string()),
        }
    }

    /// Whether `field` is the JSON literal `true`.
    pub fn is_true(&self, field: &str) -> bool {
        self.raw(field) == Some("true")
    }

    /// Sets `field` to the string `value`, replacing every earlier value.
    pub fn set_text(&mut self, field: &str, value: &str) {
        self.0.retain(|(name, _)| name != field);
        self.push_text(field, value);
    }

    /// Sets `field` to the string `value` unless the call gave one.
    pub fn default_text(&mut self, field: &str, value: &str) {
        if self.raw(field).is_none() {
            self.push_text(field, value);
        }
    }

    fn push_text(&mut self, field: &str, value: &str) {
        let json = serde_json::Value::from(value).to_string();
        let raw = RawValue::from_string(json).expect("a JSON string is valid JSON");
        self.0.push((field.to_string(), raw));
    }

    /// The arguments as one JSON object, for the plugin.
    pub fn to_json(&self) -> String {
        let size = self
            .0
            .iter()
            .map(|(name, value)| name.len() + value.get().len() + 4)
            .sum::<usize>();
        let mut json = String::with_capacity(size + 2);
        json.push('{');
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&serde_json::Value::from(name.as_str()).to_string());
            json.push(':');
            json.push_str(value.get());
        }
        json.push('}');
        json
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((a, x), (b, y))| a == b && x.get() == y.get())
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Args, D::Error> {
        struct TopLevel;
        impl<'de> Visitor<'de> for TopLevel {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Args, M::Error> {
                let mut fields = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    if fields.len() == MAX_ARGS_FIELDS {
                        return Err(de::Error::custom(format!(
                            "more than {MAX_ARGS_FIELDS} fields"
                        )));
                    }
                    fields.push((name, value));
                }
                Ok(Args(fields))
            }
        }
        deserializer.deserialize_map(TopLevel)
    }
}

/// A driver call's own fields, borrowed from the body; anything else in it
/// is skipped without being kept.
#[derive(Deserialize)]
pub struct WireCall<'a> {
    #[serde(borrow, default)]
    pub interface: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub driver: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub service: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub args: Option<&'a RawValue>,
}

/// A raw value as a string, if it is one.
pub fn as_text(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

/// Whether a raw value is absent or JSON null.
pub fn is_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|raw| raw.get() == "null")
}

/// A raw value for an error message: its JSON text, cut short.
pub fn shown(raw: &RawValue) -> String {
    let text = raw.get();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: &str) -> Result<Args, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn args_keep_their_values_as_sent() {
        let a = args(r#"{"messages":[{"content":"Hi \u00e9"}],"n":1.50,"stream":true}"#).unwrap();
        assert_eq!(
            a.to_json(),
            r#"{"messages":[{"content":"Hi \u00e9"}],"n":1.50,"stream":true}"#
        );
        assert!(a.is_true("stream"));
        assert!(!a.is_true("n"));
    }

    #[test]
    fn text_fields_are_read_without_a_tree() {
        let a = args(r#"{"model":"kimi","provider":null,"blank":"  ","list":[1,2]}"#).unwrap();
        assert_eq!(a.text("model"), Ok(Some("kimi".to_string())));
        assert_eq!(a.text("provider"), Ok(None));
        assert_eq!(a.text("blank"), Ok(None));
        assert_eq!(a.text("absent"), Ok(None));
        assert_eq!(a.text("list"), Err("'list' must be a string".to_string()));
    }

    #[test]
    fn the_last_of_repeated_fields_wins_and_setting_replaces_all() {
        let mut a = args(r#"{"model":"a","x":0,"model":"b"}"#).unwrap();
        assert_eq!(a.text("model"), Ok(Some("b".to_string())));
        a.set_text("model", "kimi-k2.6");
        a.default_text("provider", "moonshot");
        a.default_text("x", "kept");
        assert_eq!(
            a.to_json(),
            r#"{"x":0,"model":"kimi-k2.6","provider":"moonshot"}"#
        );
        let written: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(written["model"], "kimi-k2.6");
    }

    #[test]
    fn field_names_are_escaped_when_written_back() {
        let a = args(r#"{"a\"b":1}"#).unwrap();
        assert_eq!(a.to_json(), r#"{"a\"b":1}"#);
    }

    #[test]
    fn too_many_fields_are_refused() {
        let many: String = (0..=MAX_ARGS_FIELDS)
            .map(|i| format!("\"f{i}\":0"))
            .collect::<Vec<_>>()
            .join(",");
        let err = args(&format!("{{{many}}}")).unwrap_err();
        assert!(err.to_string().contains("more than 256 fields"), "{err}");
        let fewer: String = (0..MAX_ARGS_FIELDS)
            .map(|i| format!("\"f{i}\":0"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(args(&format!("{{{fewer}}}")).is_ok());
    }

    #[test]
    fn the_calls_own_fields_are_borrowed_and_others_skipped() {
        let body = br#"{"interface":"puter-chat-completion","junk":[[[1]],{"a":2}],"method":"complete","args":{"x":1}}"#;
        let call: WireCall = serde_json::from_slice(body).unwrap();
        assert_eq!(
            as_text(call.interface).as_deref(),
            Some("puter-chat-completion")
        );
        assert_eq!(call.args.unwrap().get(), r#"{"x":1}"#);
        assert!(is_null(call.driver));
        let long = RawValue::from_string(format!("\"{}\"", "x".repeat(200))).unwrap();
        assert_eq!(shown(&long).len(), 83);
    }
}
