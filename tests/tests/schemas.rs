//! The three descriptions of the JSON that crosses the ABI (the header's
//! prose, include/schemas/, include/moonshot.d.ts) agree with each other
//! and with the plugin:
//! - every schema is a valid draft 2020-12 schema, and the validation the
//!   harness runs refuses a known-bad document of each kind;
//! - models()/list()/default_model()/reported_costs() and the synchronous
//!   errors of create/complete conform (the harness checks every part,
//!   result and error of the end-to-end tests);
//! - every error code the plugin's source can produce is in the schema's
//!   vocabulary and in the header, and nothing else is;
//! - each d.ts interface has exactly its schema's properties, optional
//!   exactly where the schema does not require them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use moonshot_tests::harness::{plugin, TEST_KEY};
use moonshot_tests::header::{header_path, workspace_root};
use moonshot_tests::schemas::{self, assert_valid, known_bad, schema, violations, Doc};
use serde_json::{json, Value};

#[test]
fn every_schema_is_valid_draft_2020_12_with_its_own_id() {
    for doc in Doc::ALL {
        let value = schema(doc);
        if let Err(e) = jsonschema::meta::validate(&value) {
            panic!("{} is not a valid JSON Schema: {e}", doc.file_name());
        }
        assert_eq!(
            value["$schema"],
            "https://json-schema.org/draft/2020-12/schema",
            "{}",
            doc.file_name()
        );
        let id = value["$id"].as_str().unwrap_or_default();
        assert!(
            id.ends_with(&format!("/{}", doc.file_name())),
            "{}: $id {id}",
            doc.file_name()
        );
    }
}

#[test]
fn the_validation_refuses_a_known_bad_document_of_each_kind() {
    for doc in Doc::ALL {
        let bad = known_bad(doc);
        let found = violations(doc, &bad);
        assert!(!found.is_empty(), "{} accepted {bad}", doc.file_name());
        // What the harness does with it: a failure that names the path.
        let panic = std::panic::catch_unwind(|| assert_valid(doc, &bad))
            .expect_err("assert_valid panics on a violation");
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains(doc.file_name()), "{text}");
        assert!(text.contains("at '"), "{text}");
    }
    // And the path points at the offending field.
    let found = violations(
        Doc::StreamPart,
        &json!({"type":"usage","usage":{"prompt_tokens":1}}),
    );
    assert!(
        found.iter().any(|v| v.starts_with("at '/usage'")),
        "{found:?}"
    );
}

#[test]
fn catalog_outputs_conform_on_every_day_of_the_catalog() {
    for today in [
        "2026-05-01",
        "2026-06-01",
        "2026-09-15",
        "2026-11-25",
        "2028-01-01",
    ] {
        let config =
            json!({"apiKey": TEST_KEY, "base_url": "http://127.0.0.1:9/v1", "today": today});
        assert_valid(Doc::Config, &config);
        let inst = plugin().create(&config.to_string()).expect("create");
        let parse = |text: String| -> Value { serde_json::from_str(&text).expect("JSON") };
        assert_valid(Doc::Models, &parse(inst.models()));
        assert_valid(Doc::List, &parse(inst.list()));
        assert_valid(Doc::DefaultModel, &parse(inst.default_model()));
        assert_valid(Doc::ReportedCosts, &parse(inst.reported_costs()));
    }
}

#[test]
fn create_errors_conform_and_the_config_schema_agrees_on_refusals() {
    let refused = [
        json!({}),
        json!({"apiKey": "  "}),
        json!({"apiKey": 7}),
        json!({"apiKey": "sk-x", "base_url": "ftp://x"}),
        json!({"apiKey": "sk-x", "max_concurrency": 0}),
        json!({"apiKey": "sk-x", "max_concurrency": 16385}),
        json!({"apiKey": "sk-x", "max_queue": -1}),
        json!({"apiKey": "sk-x", "retired_models": "keep"}),
        json!({"apiKey": "sk-x", "today": "soon"}),
        json!({"apiKey": "sk-x", "timeouts": {"idle_ms": "fast"}}),
        json!({"apiKey": "sk-x", "timeouts": null}),
        json!({"apiKey": "sk-x", "retries": {"max": -1}}),
    ];
    for config in refused {
        let err = plugin()
            .create(&config.to_string())
            .err()
            .unwrap_or_else(|| panic!("create accepted {config}"));
        schemas::assert_error_text(&err);
        assert!(
            !schemas::violations(Doc::Config, &config).is_empty(),
            "config.schema.json accepts {config}, which create refuses"
        );
    }
    for text in ["not json", "[1]"] {
        schemas::assert_error_text(&plugin().create(text).err().expect("refused"));
    }
    let accepted = json!({
        "secret_key": "sk-x", "baseURL": "http://127.0.0.1:9/v1",
        "timeouts": {"connect_ms": 0, "first_byte_ms": 1, "idle_ms": null, "total_ms": 5},
        "retries": {"max": 50, "base_delay_ms": 1, "max_delay_ms": 2},
        "max_concurrency": 1024, "max_queue": 0, "max_request_bytes": 10,
        "retired_models": "error", "web_search": {"fee_ucents": 0, "max_rounds": 0},
        "today": "2026-11-25", "unknown_field": {"x": 1}
    });
    let nulls = json!({
        "apiKey": "sk-x", "base_url": null, "max_concurrency": null, "max_queue": null,
        "max_request_bytes": null, "retired_models": null, "today": null,
        "retries": {"max": null}, "web_search": {"fee_ucents": null}
    });
    for config in [accepted, nulls] {
        assert_valid(Doc::Config, &config);
        plugin().create(&config.to_string()).unwrap_or_else(|e| {
            panic!("the plugin refuses {config}, which the schema accepts: {e}")
        });
    }
}

#[test]
fn synchronous_complete_refusals_conform() {
    let inst = plugin()
        .create(&json!({"apiKey": TEST_KEY, "base_url": "http://127.0.0.1:9/v1", "today": "2026-11-25", "max_request_bytes": 4000}).to_string())
        .expect("create");
    let refused = [
        "{",
        "[]",
        r#"{"model":"kimi-k2.6"}"#,
        r#"{"messages":"hi","model":"gpt-9"}"#,
        r#"{"messages":"hi","stream":"yes"}"#,
        r#"{"messages":"hi","n":9}"#,
        r#"{"messages":"hi","tools":[{"type":"function","function":{"name":"1bad"}}]}"#,
    ];
    for request in refused {
        let (status, error) = match inst.complete(request, None) {
            Err(refusal) => refusal,
            Ok(_) => panic!("complete accepted {request}"),
        };
        assert_ne!(status, 0);
        schemas::assert_error_text(&error);
    }
    let too_big = json!({"messages": "x".repeat(5000)}).to_string();
    let (_, error) = inst.complete(&too_big, None).err().expect("refused");
    schemas::assert_error_text(&error);
    assert_valid(Doc::Request, &json!({"messages": "x".repeat(5000)}));
}

#[test]
fn the_request_schema_accepts_what_the_tests_send_and_refuses_no_messages() {
    let good = [
        json!({"messages": "Hello"}),
        json!({"prompt": "Hello"}),
        json!({"messages": [{"content": "q"}, {"role": "assistant", "content": "Once", "partial": true}]}),
        json!({"messages": [{"role": "user", "content": [{"image_url": "data:image/png;base64,AA"}, "text"]}],
               "model": "kimi-k3", "stream": true, "max_tokens": 10, "stop": ["a"],
               "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
                         {"type": "builtin_function", "function": {"name": "$web_search"}},
                         {"name": "flat_tool", "input_schema": {"type": "object"}}],
               "tool_choice": "auto", "thinking": {"type": "enabled", "keep": "all"},
               "reasoning_effort": "HIGH", "response_format": {"type": "json_object"}}),
    ];
    for request in good {
        assert_valid(Doc::Request, &request);
    }
    for bad in [
        json!({}),
        json!({"messages": null}),
        json!({"messages": []}),
        json!({"messages": "hi", "n": 6}),
    ] {
        assert!(!violations(Doc::Request, &bad).is_empty(), "{bad}");
    }
}

// ------------------------------------------------------- error vocabulary

/// Every error code the plugin's source can produce: the default code of
/// each kind, every literal handed to `with_code`, and the timeout codes.
fn codes_in_the_source() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for file in rust_files(&workspace_root().join("plugin/src")) {
        let text = std::fs::read_to_string(&file).expect("read");
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for (at, _) in text.match_indices(".with_code(") {
            let call = &text[at..];
            // Up to the call's own closing parenthesis.
            let mut depth = 0;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    c == ')' && depth == 0
                })
                .map_or(call.len(), |(i, _)| i);
            let call = &call[..end];
            codes.extend(literals(call));
        }
        for (at, _) in text.match_indices("pub fn default_code") {
            let body = &text[at..];
            let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
            codes.extend(literals(body));
        }
        for literal in literals(text) {
            if literal.ends_with("_timeout") {
                codes.insert(literal);
            }
        }
    }
    codes
}

/// The snake_case string literals in `text`.
fn literals(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !s.starts_with('_')
        })
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn every_local_error_code_is_documented_in_the_schema_and_the_header() {
    let listed: BTreeSet<String> = schema(Doc::Error)["$defs"]["localCode"]["enum"]
        .as_array()
        .expect("localCode enum")
        .iter()
        .map(|c| c.as_str().expect("string").to_string())
        .collect();
    let found = codes_in_the_source();
    let undocumented: Vec<_> = found.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "codes the plugin can emit but include/schemas/error.schema.json ($defs/localCode) does not list: {undocumented:?}"
    );
    let stale: Vec<_> = listed.difference(&found).collect();
    assert!(
        stale.is_empty(),
        "codes error.schema.json lists but no code in plugin/src emits: {stale:?}"
    );
    let header = std::fs::read_to_string(header_path()).expect("header");
    let missing: Vec<_> = listed
        .iter()
        .filter(|c| !header.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes the header does not name (write them in plugin/abi/src/lib.rs, then `make header`): {missing:?}"
    );
}

// ------------------------------------------------------------ d.ts agreement

/// One property of a TypeScript object type: optional, and its type text.
type Members = BTreeMap<String, (bool, String)>;

fn dts() -> String {
    let text = std::fs::read_to_string(workspace_root().join("include/moonshot.d.ts"))
        .expect("include/moonshot.d.ts");
    strip_comments(&text)
}

fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        rest = rest[at..]
            .find("*/")
            .map_or("", |end| &rest[at + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text between the brace at `open` and its match.
fn braced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced braces in include/moonshot.d.ts")
}

/// The members of an object type's body (between its braces).
fn members(body: &str) -> Members {
    let mut out = Members::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut pieces = Vec::new();
    for (i, c) in body.char_indices() {
        match c {
            '{' | '<' | '(' | '[' => depth += 1,
            '}' | '>' | ')' | ']' => depth -= 1,
            ';' if depth == 0 => {
                pieces.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&body[start..]);
    for piece in pieces.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (name, ty) = piece
            .split_once(':')
            .unwrap_or_else(|| panic!("cannot read d.ts member `{piece}`"));
        let name = name.trim();
        let optional = name.ends_with('?');
        let name = name.trim_end_matches('?').trim().to_string();
        out.insert(name, (optional, ty.trim().to_string()));
    }
    out
}

/// An interface's members, its `extends` parent's included.
fn interface(dts: &str, name: &str) -> Members {
    let head = format!("export interface {name} ");
    let at = dts
        .find(&head)
        .unwrap_or_else(|| panic!("include/moonshot.d.ts has no interface {name}"));
    let open = at + dts[at..].find('{').expect("interface body");
    let mut out = members(braced(dts, open));
    let declared = dts[at + head.len()..open].trim();
    if let Some(parent) = declared.strip_prefix("extends ") {
        out.extend(interface(dts, parent.trim()));
    }
    out
}

/// Compares a d.ts object type with a schema object, recursing into inline
/// object types; `skip` names d.ts-only members, or with a leading `?`
/// members whose optionality differs (with the reason beside).
fn agree(what: &str, ts: &Members, schema: &Value, skip: &[&str], problems: &mut Vec<String>) {
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for name in properties.keys() {
        if !ts.contains_key(name) {
            problems.push(format!(
                "{what}: the schema has '{name}', the d.ts does not"
            ));
        }
    }
    for (name, (optional, ty)) in ts {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let Some(property) = properties.get(name) else {
            problems.push(format!(
                "{what}: the d.ts has '{name}', the schema does not"
            ));
            continue;
        };
        let optionality_differs = skip.contains(&format!("?{name}").as_str());
        if *optional == required.contains(name.as_str()) && !optionality_differs {
            problems.push(format!(
                "{what}.{name}: optional in the d.ts: {optional}; required by the schema: {}",
                required.contains(name.as_str())
            ));
        }
        if ty.starts_with('{') && property.get("properties").is_some() {
            let open = 0;
            agree(
                &format!("{what}.{name}"),
                &members(braced(ty, open)),
                property,
                &[],
                problems,
            );
        }
    }
}

/// A schema, or one of its `$defs`.
fn def(doc: Doc, name: Option<&str>) -> Value {
    let value = schema(doc);
    match name {
        None => value,
        Some(name) => value["$defs"][name].clone(),
    }
}

#[test]
fn the_dts_interfaces_have_exactly_the_schemas_properties() {
    let dts = dts();
    let pairs: [(&str, Doc, Option<&str>, &[&str]); 10] = [
        ("MoonshotConfig", Doc::Config, None, &[]),
        // messages: TypeScript requires it; the schema also takes `prompt` instead.
        (
            "MoonshotCompleteArguments",
            Doc::Request,
            None,
            &["?messages"],
        ),
        ("MoonshotUsage", Doc::Usage, None, &[]),
        ("MoonshotCost", Doc::Usage, Some("cost"), &[]),
        ("MoonshotCostLine", Doc::Usage, Some("costLine"), &[]),
        // via_ai_chat_service: added by `host-demo serve`, as Puter's driver adds it.
        (
            "MoonshotChatResult",
            Doc::Result,
            None,
            &["via_ai_chat_service"],
        ),
        ("MoonshotResultMessage", Doc::Result, Some("message"), &[]),
        ("ResultToolCall", Doc::Result, Some("toolCall"), &[]),
        ("MoonshotErrorDetails", Doc::Error, None, &[]),
        ("MoonshotModel", Doc::Models, Some("model"), &[]),
    ];
    let mut problems = Vec::new();
    for (name, doc, sub, skip) in pairs {
        agree(
            name,
            &interface(&dts, name),
            &def(doc, sub),
            skip,
            &mut problems,
        );
    }
    // The stream parts: each member of the MoonshotStreamPart union.
    let at = dts
        .find("export type MoonshotStreamPart =")
        .expect("MoonshotStreamPart");
    let union = &dts[at..at + dts[at..].find(";\n").expect("end of the union")];
    let parts = schema(Doc::StreamPart);
    let mut seen = BTreeSet::new();
    for (at, _) in union.match_indices("{ type: '") {
        let ts = members(braced(union, at));
        let kind = ts["type"].1.trim_matches('\'').to_string();
        if kind == "error" {
            continue; // host-demo serve's error line, not a plugin part
        }
        agree(
            &format!("MoonshotStreamPart '{kind}'"),
            &ts,
            &parts["$defs"][&kind],
            &[],
            &mut problems,
        );
        seen.insert(kind);
    }
    let defined: BTreeSet<String> = parts["$defs"]
        .as_object()
        .expect("$defs")
        .keys()
        .cloned()
        .collect();
    if seen != defined {
        problems.push(format!(
            "MoonshotStreamPart has {seen:?}, the schema {defined:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "include/moonshot.d.ts and include/schemas/ disagree:\n  {}",
        problems.join("\n  ")
    );
}
