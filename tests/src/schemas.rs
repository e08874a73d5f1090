//! The JSON Schemas of `include/schemas/`, compiled once per test binary,
//! and the checks the shared harness runs on every JSON the plugin emits:
//! a part, a result or an error that breaks its schema fails the test with
//! the path of what is wrong.

use std::path::PathBuf;
use std::sync::OnceLock;

use jsonschema::{Registry, Validator};
use serde_json::{json, Value};

/// One kind of JSON that crosses the ABI, and its schema file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doc {
    Config,
    Request,
    StreamPart,
    Usage,
    Result,
    Error,
    Models,
    List,
    DefaultModel,
    ReportedCosts,
}

impl Doc {
    pub const ALL: [Doc; 10] = [
        Doc::Config,
        Doc::Request,
        Doc::StreamPart,
        Doc::Usage,
        Doc::Result,
        Doc::Error,
        Doc::Models,
        Doc::List,
        Doc::DefaultModel,
        Doc::ReportedCosts,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Doc::Config => "config.schema.json",
            Doc::Request => "request.schema.json",
            Doc::StreamPart => "stream-part.schema.json",
            Doc::Usage => "usage.schema.json",
            Doc::Result => "result.schema.json",
            Doc::Error => "error.schema.json",
            Doc::Models => "models.schema.json",
            Doc::List => "list.schema.json",
            Doc::DefaultModel => "default-model.schema.json",
            Doc::ReportedCosts => "reported-costs.schema.json",
        }
    }

    fn index(self) -> usize {
        Doc::ALL
            .iter()
            .position(|d| *d == self)
            .expect("every Doc is in ALL")
    }
}

pub fn schema_dir() -> PathBuf {
    crate::kit::workspace_root().join("include/schemas")
}

/// The parsed schema file of `doc`.
pub fn schema(doc: Doc) -> Value {
    let path = schema_dir().join(doc.file_name());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

struct Compiled {
    validators: Vec<Validator>,
}

/// Every schema registered under its `$id`, so the files' relative `$ref`s
/// resolve to each other and nothing is ever fetched.
fn registry() -> &'static Registry<'static> {
    static REGISTRY: OnceLock<Registry<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let resources = Doc::ALL.iter().map(|doc| {
            let value = schema(*doc);
            let id = value["$id"]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no $id", doc.file_name()))
                .to_string();
            (id, value)
        });
        Registry::new()
            .extend(resources)
            .and_then(|b| b.prepare())
            .unwrap_or_else(|e| panic!("the schemas do not register: {e}"))
    })
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| Compiled {
        validators: Doc::ALL
            .iter()
            .map(|doc| {
                jsonschema::draft202012::options()
                    .with_registry(registry())
                    .build(&schema(*doc))
                    .unwrap_or_else(|e| panic!("{} does not compile: {e}", doc.file_name()))
            })
            .collect(),
    })
}

/// Every way `value` breaks `doc`'s schema, one line each with the path
/// inside the document; empty when it conforms.
pub fn violations(doc: Doc, value: &Value) -> Vec<String> {
    compiled().validators[doc.index()]
        .iter_errors(value)
        .map(|e| format!("at '{}': {e}", e.instance_path()))
        .collect()
}

/// Panics, naming the schema and each path, unless `value` conforms.
pub fn assert_valid(doc: Doc, value: &Value) {
    let found = violations(doc, value);
    assert!(
        found.is_empty(),
        "{} breaks include/schemas/{}:\n  {}\nin {}",
        match doc {
            Doc::StreamPart => "a stream part",
            Doc::Result => "a result",
            Doc::Error => "an error",
            _ => "a document",
        },
        doc.file_name(),
        found.join("\n  "),
        truncated(value)
    );
}

/// What `on_done` (or `request_result`) delivered with `status`: a result
/// on MOONSHOT_OK, the error details otherwise.
pub fn assert_final(status: i32, value: &Value) {
    let doc = if status == 0 { Doc::Result } else { Doc::Error };
    assert_valid(doc, value);
}

/// An error JSON the plugin returned through an `out_error` parameter.
pub fn assert_error_text(text: &str) {
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the error is not JSON ({e}): {text}"));
    assert_valid(Doc::Error, &value);
}

/// A stream part's text, as `on_chunk` delivered it.
pub fn assert_part(value: &Value) {
    assert_valid(Doc::StreamPart, value);
}

fn truncated(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(2000) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// A document every validator must refuse, so a test can prove the
/// validation is live (a schema that accepts everything would pass it).
pub fn known_bad(doc: Doc) -> Value {
    match doc {
        Doc::Config => json!({"apiKey": "sk-x", "max_concurrency": 0}),
        Doc::Request => json!({"model": "kimi-k2.6"}),
        Doc::StreamPart => json!({"type": "text", "text": 42}),
        Doc::Usage => json!({"prompt_tokens": -1}),
        Doc::Result => {
            json!({"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"})
        }
        Doc::Error => {
            json!({"code": "busy", "message": "full", "http_status": null, "retryable": "no", "request_id": null})
        }
        Doc::Models => json!([{"id": "kimi-k2.6"}]),
        Doc::List => json!(["kimi-k2.6", "kimi-k2.6"]),
        Doc::DefaultModel => json!(""),
        Doc::ReportedCosts => {
            json!([{"usageType": "moonshot:x:input-tokens", "ucentsPerUnit": 1.5, "unit": "token", "source": "driver:aiChat/moonshot"}])
        }
    }
}
