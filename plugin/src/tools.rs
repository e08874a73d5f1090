//! Tools and tool_choice (MOONSHOT-API.md §3, §5): validated against
//! Moonshot's rules, schemas made acceptable to it, the built-in
//! `$web_search` declared, and tool_choice fitted to the model's thinking.

use serde_json::{json, Map, Value};

use crate::catalog::{ModelCard, Thinking};
use crate::error::ProviderError;
use crate::thinking::ThinkingPlan;

pub const MAX_TOOLS: usize = 128;
pub const WEB_SEARCH: &str = "$web_search";

/// Moonshot's documented steering message for a tool it cannot be forced to call.
pub const STEER_TO_TOOL: &str = "Please select a tool to handle the current issue.";

#[derive(Debug, Default, PartialEq)]
pub struct ToolPlan {
    pub tools: Vec<Value>,
    pub web_search: bool,
    pub tool_choice: Option<Value>,
    /// A user message to append (the steering fallback).
    pub steer: Option<String>,
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::invalid_request(message)
}

/// `^[a-zA-Z_][a-zA-Z0-9-_]{2,63}$`
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=64).contains(&bytes.len())
        && (bytes[0].is_ascii_alphabetic() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Plans `tools`, `web_search` and `tool_choice`. May turn thinking off.
pub fn plan(
    args: &Map<String, Value>,
    card: &ModelCard,
    thinking: &mut ThinkingPlan,
    adjust: &mut Vec<String>,
) -> Result<ToolPlan, ProviderError> {
    let mut plan = ToolPlan::default();
    let declared = match args.get("tools") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(tools)) => tools.as_slice(),
        Some(_) => return Err(ProviderError::invalid_argument("'tools' must be an array")),
    };
    if declared.len() > MAX_TOOLS {
        return Err(bad(format!(
            "{} tools declared; Moonshot accepts at most {MAX_TOOLS}",
            declared.len()
        )));
    }
    for (i, tool) in declared.iter().enumerate() {
        match convert_tool(tool, i, adjust)? {
            Some(function) => plan.tools.push(function),
            None => plan.web_search = true,
        }
    }
    if args.get("web_search").and_then(Value::as_bool) == Some(true) {
        plan.web_search = true;
    }
    if plan.web_search {
        plan.tools
            .push(json!({"type": "builtin_function", "function": {"name": WEB_SEARCH}}));
    }
    if !plan.tools.is_empty() && !card.tool_call {
        return Err(bad(format!(
            "model '{}' does not support tool calling",
            card.id
        )));
    }
    plan_choice(args.get("tool_choice"), card, thinking, &mut plan, adjust)?;
    Ok(plan)
}

/// One declared tool in Moonshot's form; None for the built-in web search.
fn convert_tool(
    tool: &Value,
    i: usize,
    adjust: &mut Vec<String>,
) -> Result<Option<Value>, ProviderError> {
    let object = tool
        .as_object()
        .ok_or_else(|| ProviderError::invalid_argument(format!("tool {i} must be an object")))?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("function");
    // OpenAI nests the definition under `function`; Claude-style and flat
    // definitions put name and schema at the top.
    let def = object
        .get("function")
        .and_then(Value::as_object)
        .unwrap_or(object);
    let name = def
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::invalid_argument(format!("tool {i} has no name")))?;
    if name == WEB_SEARCH || kind == "builtin_function" {
        if name != WEB_SEARCH {
            return Err(bad(format!(
                "tool {i}: the only built-in function is {WEB_SEARCH}, not '{name}'"
            )));
        }
        return Ok(None);
    }
    if kind != "function" {
        return Err(bad(format!(
            "tool {i}: type must be \"function\" or \"builtin_function\", not \"{kind}\""
        )));
    }
    if !valid_name(name) {
        return Err(bad(format!(
            "tool {i}: name '{name}' breaks Moonshot's rule: 3 to 64 characters, letters, digits, '_' or '-', not starting with a digit or '-'"
        )));
    }
    let schema = def
        .get("parameters")
        .or_else(|| def.get("input_schema"))
        .cloned();
    let parameters = fix_schema(schema, name, adjust)?;
    let mut function = json!({"name": name, "parameters": parameters});
    if let Some(description) = def.get("description").and_then(Value::as_str) {
        function["description"] = json!(description);
    }
    if let Some(strict) = def
        .get("strict")
        .or_else(|| object.get("strict"))
        .and_then(Value::as_bool)
    {
        function["strict"] = json!(strict);
    }
    Ok(Some(json!({"type": "function", "function": function})))
}

/// Makes a parameter schema acceptable: an object root, `$schema` removed,
/// every nested property with a `type`.
fn fix_schema(
    schema: Option<Value>,
    tool: &str,
    adjust: &mut Vec<String>,
) -> Result<Value, ProviderError> {
    let mut schema = match schema {
        None | Some(Value::Null) => return Ok(json!({"type": "object", "properties": {}})),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(bad(format!(
                "tool '{tool}': parameters must be a JSON schema object"
            )))
        }
    };
    schema.remove("$schema");
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {}
        None => {
            schema.insert("type".into(), json!("object"));
        }
        Some(other) => {
            return Err(bad(format!(
                "tool '{tool}': the parameters root must be an object schema, not \"{other}\""
            )))
        }
    }
    let mut filled = Vec::new();
    fill_types(&mut schema, "", &mut filled);
    if !filled.is_empty() {
        adjust.push(format!(
            "tool '{tool}': added the missing type of {}",
            filled.join(", ")
        ));
    }
    Ok(Value::Object(schema))
}

/// The JSON type a schema without `type` most plausibly means.
fn implied_type(schema: &Map<String, Value>) -> Option<&'static str> {
    if schema.contains_key("properties") {
        return Some("object");
    }
    if schema.contains_key("items") {
        return Some("array");
    }
    if ["anyOf", "oneOf", "allOf", "$ref"]
        .iter()
        .any(|k| schema.contains_key(*k))
    {
        return None;
    }
    let from_value = |v: &Value| match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        _ => "string",
    };
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Some(from_value(first));
    }
    if let Some(constant) = schema.get("const") {
        return Some(from_value(constant));
    }
    Some("string")
}

fn fill_types(schema: &mut Map<String, Value>, path: &str, filled: &mut Vec<String>) {
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            let Value::Object(property) = property else {
                continue;
            };
            let here = if path.is_empty() {
                format!("properties.{name}")
            } else {
                format!("{path}.properties.{name}")
            };
            if !property.contains_key("type") {
                if let Some(kind) = implied_type(property) {
                    property.insert("type".into(), json!(kind));
                    filled.push(here.clone());
                }
            }
            fill_types(property, &here, filled);
        }
    }
    if let Some(Value::Object(items)) = schema.get_mut("items") {
        let here = format!("{path}.items");
        if !items.contains_key("type") {
            if let Some(kind) = implied_type(items) {
                items.insert("type".into(), json!(kind));
                filled.push(here.clone());
            }
        }
        fill_types(items, &here, filled);
    }
}

/// Which tool a tool_choice forces: None for auto / none.
enum Choice {
    Pass(Value),
    Required,
    Named(String),
}

fn read_choice(choice: &Value) -> Result<Choice, ProviderError> {
    match choice {
        Value::String(s) if s == "auto" || s == "none" => Ok(Choice::Pass(choice.clone())),
        Value::String(s) if s == "required" || s == "any" => Ok(Choice::Required),
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| ProviderError::invalid_argument("tool_choice object needs function.name"))?;
            Ok(Choice::Named(name.to_string()))
        }
        _ => Err(ProviderError::invalid_argument(
            "tool_choice must be \"auto\", \"none\", \"required\" or {type:\"function\",function:{name}}",
        )),
    }
}

fn plan_choice(
    choice: Option<&Value>,
    card: &ModelCard,
    thinking: &mut ThinkingPlan,
    plan: &mut ToolPlan,
    adjust: &mut Vec<String>,
) -> Result<(), ProviderError> {
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok(());
    };
    if plan.tools.is_empty() {
        return Err(bad("tool_choice given without any tools"));
    }
    let choice = read_choice(choice)?;
    if let Choice::Named(name) = &choice {
        let declared = plan
            .tools
            .iter()
            .any(|t| t["function"]["name"] == name.as_str());
        if !declared {
            return Err(bad(format!(
                "tool_choice names '{name}', which is not among the tools"
            )));
        }
    }
    let wire = |choice: &Choice| match choice {
        Choice::Pass(v) => v.clone(),
        Choice::Required => json!("required"),
        Choice::Named(name) => json!({"type": "function", "function": {"name": name}}),
    };
    let forced = !matches!(choice, Choice::Pass(_));
    if !forced || !thinking.on {
        plan.tool_choice = Some(wire(&choice));
        return Ok(());
    }
    let id = card.id;
    match (card.thinking, &choice) {
        (Thinking::Toggle | Thinking::ToggleKeep, _) => {
            thinking.disable();
            adjust.push(format!(
                "thinking turned off for this request: {id} cannot force a tool while thinking"
            ));
            plan.tool_choice = Some(wire(&choice));
        }
        (Thinking::Effort, Choice::Required) => plan.tool_choice = Some(wire(&choice)),
        _ => {
            if let Choice::Named(name) = &choice {
                plan.tools
                    .retain(|t| t["function"]["name"] == name.as_str());
                plan.web_search = false;
                adjust.push(format!(
                    "{id} cannot force a tool while thinking: sent only '{name}' with tool_choice \"auto\" and Moonshot's steering message"
                ));
            } else {
                adjust.push(format!(
                    "{id} cannot require a tool while thinking: sent tool_choice \"auto\" with Moonshot's steering message"
                ));
            }
            plan.tool_choice = Some(json!("auto"));
            plan.steer = Some(STEER_TO_TOOL.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::by_id;
    use crate::thinking;

    fn plan_for(
        model: &str,
        args: Value,
    ) -> Result<(ToolPlan, ThinkingPlan, Vec<String>), ProviderError> {
        let card = by_id(model).unwrap();
        let args = args.as_object().unwrap();
        let mut adjust = Vec::new();
        let mut thinking = thinking::plan(card, args, &mut adjust)?;
        let tools = plan(args, card, &mut thinking, &mut adjust)?;
        Ok((tools, thinking, adjust))
    }

    fn weather() -> Value {
        json!({"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{
            "$schema":"http://json-schema.org/draft-07/schema#",
            "properties":{"city":{"description":"City"},"days":{"enum":[1,2,3]},"opts":{"properties":{"unit":{"enum":["c","f"]}}}},
            "required":["city"]}}})
    }

    #[test]
    fn schemas_are_made_acceptable() {
        let (plan, _, adjust) = plan_for("kimi-k2.6", json!({"tools":[weather()]})).unwrap();
        assert_eq!(
            plan.tools,
            vec![
                json!({"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{
                "type":"object",
                "properties":{"city":{"description":"City","type":"string"},"days":{"enum":[1,2,3],"type":"integer"},
                              "opts":{"type":"object","properties":{"unit":{"enum":["c","f"],"type":"string"}}}},
                "required":["city"]}}})
            ]
        );
        assert_eq!(adjust.len(), 1);
        assert!(adjust[0].contains("properties.opts.properties.unit"));
    }

    #[test]
    fn claude_style_and_strict_tools() {
        let (plan, _, _) = plan_for(
            "kimi-k2.6",
            json!({"tools":[{"name":"add","description":"Add","input_schema":{"type":"object","properties":{"a":{"type":"number"}}},"strict":true}]}),
        )
        .unwrap();
        assert_eq!(plan.tools[0]["function"]["strict"], true);
        assert_eq!(
            plan.tools[0]["function"]["parameters"]["properties"]["a"]["type"],
            "number"
        );
    }

    #[test]
    fn limits_and_names() {
        let many: Vec<Value> = (0..129)
            .map(|i| json!({"name": format!("tool_{i}")}))
            .collect();
        let err = plan_for("kimi-k2.6", json!({"tools": many})).unwrap_err();
        assert_eq!(
            err.message,
            "129 tools declared; Moonshot accepts at most 128"
        );
        let ok: Vec<Value> = (0..128)
            .map(|i| json!({"name": format!("tool_{i}")}))
            .collect();
        assert_eq!(
            plan_for("kimi-k2.6", json!({"tools": ok}))
                .unwrap()
                .0
                .tools
                .len(),
            128
        );
        for name in ["ab", "1abc", "-abc", "has space", "x".repeat(65).as_str()] {
            assert!(
                plan_for("kimi-k2.6", json!({"tools":[{"name": name}]})).is_err(),
                "{name}"
            );
        }
        assert!(plan_for("kimi-k2.6", json!({"tools":[{"name":"a-b_c9"}]})).is_ok());
        let err = plan_for(
            "kimi-k2.6",
            json!({"tools":[{"name":"f","parameters":{"type":"array"}}]}),
        )
        .unwrap_err();
        assert!(err.message.contains("name 'f'"));
        let err = plan_for(
            "kimi-k2.6",
            json!({"tools":[{"name":"fff","parameters":{"type":"array"}}]}),
        )
        .unwrap_err();
        assert!(err.message.contains("root must be an object"));
    }

    #[test]
    fn web_search_is_declared_once() {
        let (plan, _, _) = plan_for(
            "kimi-k2.6",
            json!({"web_search": true, "tools":[{"type":"builtin_function","function":{"name":"$web_search"}}]}),
        )
        .unwrap();
        assert!(plan.web_search);
        assert_eq!(
            plan.tools,
            vec![json!({"type":"builtin_function","function":{"name":"$web_search"}})]
        );
    }

    #[test]
    fn forced_tool_on_k26_turns_thinking_off() {
        let (plan, thinking, adjust) = plan_for(
            "kimi-k2.6",
            json!({"tools":[weather()],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}),
        )
        .unwrap();
        assert_eq!(
            plan.tool_choice,
            Some(json!({"type":"function","function":{"name":"get_weather"}}))
        );
        assert_eq!(thinking.field, Some(json!({"type":"disabled"})));
        assert!(adjust[1].starts_with("thinking turned off"));
    }

    #[test]
    fn forced_tool_without_thinking_passes() {
        let (plan, thinking, _) = plan_for(
            "kimi-k2.6",
            json!({"thinking": false, "tools":[weather()],"tool_choice":"required"}),
        )
        .unwrap();
        assert_eq!(plan.tool_choice, Some(json!("required")));
        assert_eq!(thinking.field, Some(json!({"type":"disabled"})));
    }

    #[test]
    fn forced_tool_where_thinking_cannot_stop_steers() {
        let other = json!({"name":"other_tool"});
        let (plan, _, _) = plan_for(
            "kimi-k2.7-code",
            json!({"tools":[weather(), other],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}),
        )
        .unwrap();
        assert_eq!(plan.tool_choice, Some(json!("auto")));
        assert_eq!(plan.steer.as_deref(), Some(STEER_TO_TOOL));
        assert_eq!(plan.tools.len(), 1);
        let (plan, _, _) = plan_for(
            "kimi-k3",
            json!({"tools":[weather()],"tool_choice":"required"}),
        )
        .unwrap();
        assert_eq!(
            plan.tool_choice,
            Some(json!("required")),
            "k3 accepts required"
        );
    }

    #[test]
    fn tool_choice_mistakes_are_clear() {
        assert!(plan_for("kimi-k2.6", json!({"tool_choice":"auto"}))
            .unwrap_err()
            .message
            .contains("without any tools"));
        let err = plan_for(
            "kimi-k2.6",
            json!({"tools":[weather()],"tool_choice":{"function":{"name":"nope"}}}),
        )
        .unwrap_err();
        assert!(err.message.contains("'nope'"));
    }
}
