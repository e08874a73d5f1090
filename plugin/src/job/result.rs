//! What a request has received so far, across the rounds of a web-search
//! loop, and the result JSON built from it.

use serde_json::{json, Map, Value};

use crate::catalog::ModelCard;
use crate::config::Config;
use crate::error::ProviderError;
use crate::metering::{self, Bill, Usage};
use crate::request::Prepared;
use crate::stream::{ToolCall, Turn};

/// The answer as it accumulates over the rounds of a web-search loop (one
/// round's answer is a `stream::Turn`).
#[derive(Default)]
pub(super) struct Accumulated {
    pub content: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    /// The model the last response named.
    pub model: Option<String>,
    pub usage: Usage,
    pub rounds: u32,
    pub request_id: Option<String>,
    pub extra_choices: Vec<Value>,
}

impl Accumulated {
    pub fn absorb(&mut self, turn: &mut Turn) {
        append_or_take(&mut self.content, &mut turn.content);
        append_or_take(&mut self.reasoning, &mut turn.reasoning);
        self.tool_calls = std::mem::take(&mut turn.tool_calls);
        self.finish_reason = turn.finish_reason.take().or(self.finish_reason.take());
        self.model = turn.model.take().or(self.model.take());
        self.extra_choices = std::mem::take(&mut turn.extra_choices);
    }

    pub fn received_anything(&self) -> bool {
        !self.content.is_empty() || !self.reasoning.is_empty() || !self.tool_calls.is_empty()
    }

    /// Bytes counted against `max_answer_bytes`.
    pub fn bytes(&self) -> usize {
        let arguments: usize = self.tool_calls.iter().map(|c| c.arguments.len()).sum();
        self.content.len() + self.reasoning.len() + arguments
    }

    /// The card that served `prepared` and so sets the price.
    fn served_card(&self, prepared: &Prepared) -> &'static ModelCard {
        let max = prepared
            .body
            .get("max_completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        metering::served_card(
            prepared.card,
            self.model.as_deref(),
            self.usage.prompt_tokens,
            max,
        )
    }

    /// The bill for what was used so far; an overflow is an error, never a
    /// wrong bill.
    pub fn bill(&self, prepared: &Prepared, config: &Config) -> Result<Bill, ProviderError> {
        metering::bill(
            self.served_card(prepared),
            &self.usage,
            config.web_search.fee_ucents,
        )
    }
}

/// Appends `more` to `to`, or moves it there when `to` is empty (one round,
/// the usual case): a long answer's text is not copied.
fn append_or_take(to: &mut String, more: &mut String) {
    if to.is_empty() {
        std::mem::swap(to, more);
    } else {
        to.push_str(more);
    }
}

/// Puter's IChatMessageResult, plus what the host needs to explain it.
/// `complete` is false for the partial result of a failed request, whose
/// finish_reason stays null unless Moonshot sent one. The answer's text
/// moves into the result (a long answer is the largest thing a request
/// holds, and thousands can end at once).
pub(super) fn result_json(
    prepared: &Prepared,
    mut answer: Accumulated,
    usage: Value,
    complete: bool,
) -> Value {
    let mut content = prepared.partial_prefix.clone().unwrap_or_default();
    append_or_take(&mut content, &mut answer.content);
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), Value::String(content));
    if !answer.reasoning.is_empty() {
        message.insert("reasoning".into(), json!(answer.reasoning));
        let reasoning = std::mem::take(&mut answer.reasoning);
        message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !answer.tool_calls.is_empty() {
        message.insert(
            "tool_calls".into(),
            Value::Array(answer.tool_calls.iter().map(|c| c.to_openai()).collect()),
        );
    }
    let served = answer.served_card(prepared);
    let mut result = json!({
        "message": Value::Object(message),
        "finish_reason": match (&answer.finish_reason, complete) {
            (Some(reason), _) => json!(reason),
            (None, true) => json!("stop"),
            (None, false) => Value::Null,
        },
        "usage": usage,
        "model": served.id,
    });
    if !answer.extra_choices.is_empty() {
        let first = json!({"index": 0, "message": result["message"].clone(), "finish_reason": result["finish_reason"].clone()});
        let mut choices = vec![first];
        choices.extend(answer.extra_choices.iter().cloned());
        result["choices"] = Value::Array(choices);
    }
    if let Some(from) = prepared.migrated_from {
        result["migrated_from"] = json!(from);
        result["migration_reason"] = json!(prepared.migration_reason);
    }
    if !prepared.adjustments.is_empty() {
        result["adjustments"] = json!(prepared.adjustments);
    }
    // Always present: null only when no response came (nothing to quote).
    result["request_id"] = json!(answer.request_id);
    result
}
