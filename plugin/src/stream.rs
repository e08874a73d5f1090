//! Moonshot's chat.completion(.chunk) JSON -> Puter's stream parts and the
//! final message (MOONSHOT-API.md §4).
//!
//! A `Turn` is fed either stream chunks (`apply_chunk`) or one whole
//! completion (`apply_completion`); it emits text and reasoning parts as they
//! come and assembles tool calls by index, emitting them whole at the end.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::DEFAULT_MAX_ANSWER_BYTES;
use crate::error::{ErrorKind, ProviderError};
use crate::metering::{Usage, WireUsage};

/// Most tool calls in one response. Models call a handful in parallel; a
/// stream naming thousands of indices is hostile or broken.
pub const MAX_TOOL_CALLS: usize = 256;

/// What a part's consumer wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Receives serialised stream parts, in order.
pub trait PartSink {
    fn part(&mut self, json: &str) -> Flow;
}

/// One stream part in Puter's NDJSON vocabulary.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part<'a> {
    Text {
        text: &'a str,
    },
    Reasoning {
        reasoning: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    Usage {
        usage: &'a Value,
    },
}

impl Part<'_> {
    pub fn to_json(&self) -> String {
        // Serialising these borrowed shapes cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Writes a text or reasoning part's JSON into `out` (cleared first),
/// exactly as `Part::to_json` would, without serde or an allocation: the
/// per-chunk path reuses one buffer for the whole stream.
fn write_text_part(out: &mut String, field: &str, text: &str) {
    out.clear();
    out.push_str("{\"type\":\"");
    out.push_str(field);
    out.push_str("\",\"");
    out.push_str(field);
    out.push_str("\":\"");
    push_escaped(out, text);
    out.push_str("\"}");
}

/// Appends `text` with serde_json's string escaping: `"` `\\` and control
/// characters only (the short forms where JSON has them); all else as is.
fn push_escaped(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Escapes are ASCII, so `i` is a char boundary.
        out.push_str(&text[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// A tool call being assembled from deltas.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolCall {
    pub index: usize,
    pub id: String,
    pub kind: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed, or `{}` when they are empty; a malformed string
    /// is kept as `{"_raw": "..."}` so nothing is lost.
    pub fn input(&self) -> Value {
        if self.arguments.trim().is_empty() {
            return json!({});
        }
        serde_json::from_str(&self.arguments).unwrap_or_else(|_| json!({"_raw": self.arguments}))
    }

    pub fn to_openai(&self) -> Value {
        json!({"id": self.id, "type": self.kind, "function": {"name": self.name, "arguments": self.arguments}})
    }
}

/// One model response (one round of a web-search loop), as it accumulates.
///
/// Bounded: text, reasoning and tool arguments together may not pass the
/// turn's byte budget, nor the tool calls `MAX_TOOL_CALLS`; past either the
/// chunk is refused with a protocol error and what came before is kept.
#[derive(Debug)]
pub struct Turn {
    pub content: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    /// The model the response names (moonshot-v1-auto names its tier).
    pub model: Option<String>,
    top_usage: Option<Usage>,
    choice_usage: Option<Usage>,
    /// A part callback asked to stop.
    pub stopped: bool,
    /// Non-stream answers with n > 1: choices after the first, as sent.
    pub extra_choices: Vec<Value>,
    /// Bytes of text, reasoning and tool arguments this turn may still take.
    budget: usize,
    /// Tool-call index -> position in `tool_calls` (a linear search made
    /// 100,000 indices cost 16.8 s of CPU).
    slots: HashMap<usize, usize>,
    /// The part being delivered, reused from chunk to chunk.
    part_buffer: String,
    /// Merge consecutive text (or reasoning) deltas into one part until
    /// `flush` (the request's `coalesce_parts`).
    coalesce: bool,
    /// Coalescing: text or reasoning kept but not yet delivered, the tail of
    /// `content` or `reasoning` from a byte offset.
    pending: Option<Pending>,
}

/// Which accumulated string a pending part is the tail of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingKind {
    Text,
    Reasoning,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: PendingKind,
    from: usize,
}

impl Default for Turn {
    fn default() -> Turn {
        Turn::with_budget(DEFAULT_MAX_ANSWER_BYTES)
    }
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "first_choices")]
    choices: Option<Choices<'a>>,
    // Boxed, like `error`: present once a stream, and every move of a
    // chunk during deserialisation copies what is inline.
    #[serde(default)]
    usage: Option<Box<WireUsage>>,
    /// An error reported inside the stream, Moonshot's envelope shape.
    #[serde(borrow, default)]
    error: Option<Box<StreamError<'a>>>,
}

/// The choices with index 0 (the only ones followed), without a `Vec` per
/// chunk: a stream chunk has one choice; anything after the first is kept
/// in `more` (allocated only then).
#[derive(Default)]
struct Choices<'a> {
    first: Option<ChunkChoice<'a>>,
    more: Vec<ChunkChoice<'a>>,
    /// Choices there were in all, any index.
    count: usize,
}

impl<'a> Choices<'a> {
    fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn len(&self) -> usize {
        self.count
    }

    fn into_followed(self) -> impl Iterator<Item = ChunkChoice<'a>> {
        self.first.into_iter().chain(self.more)
    }
}

fn first_choices<'de, D>(deserializer: D) -> Result<Option<Choices<'de>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Option<Choices<'de>>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of choices or null")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut choices = Choices::default();
            while let Some(choice) = seq.next_element::<ChunkChoice<'de>>()? {
                choices.count += 1;
                if choice.index.unwrap_or(0) != 0 {
                    continue;
                }
                if choices.first.is_none() {
                    choices.first = Some(choice);
                } else {
                    choices.more.push(choice);
                }
            }
            Ok(Some(choices))
        }
    }
    deserializer.deserialize_option(Visit)
}

#[derive(Deserialize)]
struct StreamError<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    /// A whole completion's message (non-stream answers): boxed to keep
    /// stream chunks small.
    #[serde(borrow, default)]
    message: Option<Box<Delta<'a>>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Box<WireUsage>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: Option<usize>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

fn malformed(what: &str, e: serde_json::Error) -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        format!("upstream sent a malformed {what}: {e}"),
    )
}

fn answer_too_large() -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        "the answer's text, reasoning and tool arguments passed the max_answer_bytes limit: the rest was not read",
    )
    .with_code("answer_too_large")
}

fn too_many_tool_calls() -> ProviderError {
    ProviderError::new(
        ErrorKind::Protocol,
        format!("upstream sent more than {MAX_TOOL_CALLS} tool calls in one answer"),
    )
    .with_code("too_many_tool_calls")
}

impl Turn {
    /// A turn that may accumulate at most `budget` bytes of text, reasoning
    /// and tool arguments.
    pub fn with_budget(budget: usize) -> Turn {
        Turn {
            content: String::new(),
            reasoning: String::new(),
            tool_calls: Vec::new(),
            finish_reason: None,
            model: None,
            top_usage: None,
            choice_usage: None,
            stopped: false,
            extra_choices: Vec::new(),
            budget,
            slots: HashMap::new(),
            part_buffer: String::new(),
            coalesce: false,
            pending: None,
        }
    }

    /// Delivers consecutive text (or reasoning) deltas as one part, at the
    /// next `flush`, instead of one part per delta: a host whose callback
    /// costs a thread switch pays it once per socket read, not per token.
    pub fn coalescing(mut self, on: bool) -> Turn {
        self.coalesce = on;
        self
    }

    /// Delivers the pending text or reasoning part, if any (coalescing).
    /// The stream reader calls it after each socket read's events, before it
    /// blocks on the next read.
    pub fn flush(&mut self, sink: &mut dyn PartSink) {
        let Some(Pending { kind, from }) = self.pending.take() else {
            return;
        };
        if self.stopped {
            return;
        }
        let (field, text) = match kind {
            PendingKind::Text => ("text", &self.content[from..]),
            PendingKind::Reasoning => ("reasoning", &self.reasoning[from..]),
        };
        write_text_part(&mut self.part_buffer, field, text);
        if sink.part(&self.part_buffer) == Flow::Stop {
            self.stopped = true;
        }
    }

    /// Coalescing: delivers what is pending unless it is of `kind` (then the
    /// next delta joins it). Returns whether delivery goes on.
    fn flush_unless(&mut self, kind: Option<PendingKind>, sink: &mut dyn PartSink) -> bool {
        if self.pending.is_some_and(|p| Some(p.kind) != kind) {
            self.flush(sink);
        }
        !self.stopped
    }

    /// Takes `n` bytes from the budget, or refuses them.
    fn spend(&mut self, n: usize) -> Result<(), ProviderError> {
        self.budget = self.budget.checked_sub(n).ok_or_else(answer_too_large)?;
        Ok(())
    }

    /// Applies one stream chunk (an SSE data payload other than `[DONE]`).
    pub fn apply_chunk(
        &mut self,
        data: &str,
        sink: &mut dyn PartSink,
    ) -> Result<(), ProviderError> {
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| malformed("stream chunk", e))?;
        if let Some(error) = chunk.error {
            let message = error
                .message
                .as_deref()
                .unwrap_or("upstream reported an error mid-stream");
            return Err(ProviderError::new(ErrorKind::Upstream, message.to_string())
                .with_code(error.kind.as_deref().unwrap_or("stream_error").to_string()));
        }
        self.apply(chunk, sink, true)
    }

    /// Applies a whole non-stream chat.completion; emits no parts.
    pub fn apply_completion(&mut self, body: &str) -> Result<(), ProviderError> {
        let chunk: Chunk = serde_json::from_str(body).map_err(|e| malformed("completion", e))?;
        if chunk.choices.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ProviderError::new(
                ErrorKind::Protocol,
                "upstream completion has no choices",
            ));
        }
        let several = chunk.choices.as_ref().is_some_and(|c| c.len() > 1);
        self.apply(chunk, &mut NoParts, false)?;
        if several {
            // Rare (n > 1): keep the other choices as Moonshot sent them.
            let whole: Value =
                serde_json::from_str(body).map_err(|e| malformed("completion", e))?;
            self.extra_choices = whole["choices"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["index"].as_u64().unwrap_or(0) != 0)
                .map(|c| json!({"index": c["index"], "message": c["message"], "finish_reason": c["finish_reason"]}))
                .collect();
        }
        Ok(())
    }

    fn apply(
        &mut self,
        chunk: Chunk,
        sink: &mut dyn PartSink,
        streaming: bool,
    ) -> Result<(), ProviderError> {
        if let Some(model) = chunk.model {
            if self.model.as_deref() != Some(&model) {
                self.model = Some(model.into_owned());
            }
        }
        if let Some(usage) = chunk.usage {
            self.top_usage = Some(usage.to_usage()?);
        }
        // Only the first choice is followed (n > 1 is not streamed).
        for choice in chunk.choices.into_iter().flat_map(Choices::into_followed) {
            if let Some(delta) = choice.delta.or(choice.message.map(|m| *m)) {
                self.apply_delta(delta, sink, streaming)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
            }
            if let Some(usage) = choice.usage {
                self.choice_usage = Some(usage.to_usage()?);
            }
        }
        Ok(())
    }

    fn apply_delta(
        &mut self,
        delta: Delta,
        sink: &mut dyn PartSink,
        streaming: bool,
    ) -> Result<(), ProviderError> {
        // After a STOP nothing more is delivered, so nothing more is kept:
        // the partial result is exactly what the host received.
        if self.stopped {
            return Ok(());
        }
        if let Some(reasoning) = delta.reasoning_content.filter(|r| !r.is_empty()) {
            // A different pending kind goes first; a STOP on it keeps this
            // delta out, as it was never delivered.
            if !self.flush_unless(Some(PendingKind::Reasoning), sink) {
                return Ok(());
            }
            self.spend(reasoning.len())?;
            self.reasoning.push_str(&reasoning);
            if streaming {
                self.emit_text(PendingKind::Reasoning, &reasoning, sink);
            }
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            if !self.flush_unless(Some(PendingKind::Text), sink) {
                return Ok(());
            }
            self.spend(text.len())?;
            self.content.push_str(&text);
            if streaming {
                self.emit_text(PendingKind::Text, &text, sink);
            }
        }
        if delta.tool_calls.as_ref().is_some_and(|c| !c.is_empty())
            && !self.flush_unless(None, sink)
        {
            return Ok(());
        }
        match delta.tool_calls {
            Some(calls) if !calls.is_empty() => self.apply_tool_call_deltas(calls),
            _ => Ok(()),
        }
    }

    /// Out of line: rare next to text deltas, and inlined it would widen the
    /// stack frame every chunk runs through (stack.rs: pages held per stream).
    #[inline(never)]
    fn apply_tool_call_deltas(&mut self, calls: Vec<ToolCallDelta>) -> Result<(), ProviderError> {
        for (position, call) in calls.into_iter().enumerate() {
            let index = call.index.unwrap_or(position);
            let added = call
                .function
                .as_ref()
                .and_then(|f| f.arguments.as_ref())
                .map_or(0, |a| a.len());
            self.spend(added)?;
            let next = self.tool_calls.len();
            let at = *self.slots.entry(index).or_insert(next);
            if at == next {
                if next >= MAX_TOOL_CALLS {
                    self.slots.remove(&index);
                    return Err(too_many_tool_calls());
                }
                self.tool_calls.push(ToolCall {
                    index,
                    kind: "function".into(),
                    ..ToolCall::default()
                });
            }
            let slot = &mut self.tool_calls[at];
            if let Some(id) = call.id.filter(|id| !id.is_empty()) {
                slot.id = id.into_owned();
            }
            if let Some(kind) = call.kind {
                slot.kind = kind.into_owned();
            }
            if let Some(function) = call.function {
                if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                    slot.name = name.into_owned();
                }
                if let Some(arguments) = function.arguments {
                    slot.arguments.push_str(&arguments);
                }
            }
        }
        Ok(())
    }

    /// Bytes of text, reasoning and tool arguments received so far.
    pub fn received_bytes(&self) -> usize {
        let arguments: usize = self.tool_calls.iter().map(|c| c.arguments.len()).sum();
        self.content.len() + self.reasoning.len() + arguments
    }

    /// Delivers a text or reasoning part, written into the reused buffer;
    /// coalescing, marks it pending instead (`text` was just appended).
    fn emit_text(&mut self, kind: PendingKind, text: &str, sink: &mut dyn PartSink) {
        if self.stopped {
            return;
        }
        if self.coalesce {
            if self.pending.is_none() {
                let whole = match kind {
                    PendingKind::Text => self.content.len(),
                    PendingKind::Reasoning => self.reasoning.len(),
                };
                self.pending = Some(Pending {
                    kind,
                    from: whole - text.len(),
                });
            }
            return;
        }
        let field = match kind {
            PendingKind::Text => "text",
            PendingKind::Reasoning => "reasoning",
        };
        write_text_part(&mut self.part_buffer, field, text);
        if sink.part(&self.part_buffer) == Flow::Stop {
            self.stopped = true;
        }
    }

    /// Whether any text, reasoning or tool call arrived.
    pub fn received_anything(&self) -> bool {
        !self.content.is_empty() || !self.reasoning.is_empty() || !self.tool_calls.is_empty()
    }

    /// Usage as Moonshot reported it: top-level first, else the choice's.
    pub fn usage(&self) -> Option<Usage> {
        self.top_usage.or(self.choice_usage)
    }
}

struct NoParts;

impl PartSink for NoParts {
    fn part(&mut self, _json: &str) -> Flow {
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<Value>);

    impl PartSink for Collect {
        fn part(&mut self, json: &str) -> Flow {
            self.0.push(serde_json::from_str(json).unwrap());
            Flow::Continue
        }
    }

    #[test]
    fn deltas_become_parts_in_order() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        for data in [
            r#"{"model":"kimi-k2.6","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"Think"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":9,"completion_tokens":3,"cached_tokens":4}}]}"#,
        ] {
            turn.apply_chunk(data, &mut sink).unwrap();
        }
        assert_eq!(
            sink.0,
            vec![
                json!({"type":"reasoning","reasoning":"Think"}),
                json!({"type":"text","text":"Hel"}),
                json!({"type":"text","text":"lo"}),
            ]
        );
        assert_eq!(turn.content, "Hello");
        assert_eq!(turn.finish_reason.as_deref(), Some("stop"));
        assert_eq!(turn.usage().unwrap().cached_tokens, 4);
        assert_eq!(turn.model.as_deref(), Some("kimi-k2.6"));
    }

    fn text(t: &str) -> String {
        json!({"choices":[{"index":0,"delta":{"content":t}}]}).to_string()
    }

    fn reasoning(r: &str) -> String {
        json!({"choices":[{"index":0,"delta":{"reasoning_content":r}}]}).to_string()
    }

    #[test]
    fn coalescing_merges_deltas_of_one_kind_until_flushed() {
        let mut turn = Turn::default().coalescing(true);
        let mut sink = Collect::default();
        for data in [reasoning("Th"), reasoning("ink"), text("He\"l"), text("lo")] {
            turn.apply_chunk(&data, &mut sink).unwrap();
        }
        // The reasoning went out when text came; the text waits for flush.
        assert_eq!(
            sink.0,
            vec![json!({"type":"reasoning","reasoning":"Think"})]
        );
        turn.flush(&mut sink);
        turn.flush(&mut sink);
        assert_eq!(sink.0[1..], [json!({"type":"text","text":"He\"llo"})]);
        // A tool call delta delivers the pending text first.
        turn.apply_chunk(&text("!"), &mut sink).unwrap();
        let call = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{}"}}]}}]}"#;
        turn.apply_chunk(call, &mut sink).unwrap();
        assert_eq!(sink.0[2..], [json!({"type":"text","text":"!"})]);
        assert_eq!(turn.content, "He\"llo!");
        assert_eq!(turn.reasoning, "Think");
        assert_eq!(turn.tool_calls.len(), 1);
    }

    #[test]
    fn coalescing_off_is_one_part_per_delta() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        for data in [text("a"), text("b")] {
            turn.apply_chunk(&data, &mut sink).unwrap();
        }
        turn.flush(&mut sink);
        assert_eq!(
            sink.0,
            vec![
                json!({"type":"text","text":"a"}),
                json!({"type":"text","text":"b"})
            ]
        );
    }

    #[test]
    fn a_stop_on_a_coalesced_part_keeps_exactly_what_was_delivered() {
        #[derive(Default)]
        struct StopAtFirst(Vec<String>);
        impl PartSink for StopAtFirst {
            fn part(&mut self, json: &str) -> Flow {
                self.0.push(json.to_string());
                Flow::Stop
            }
        }
        // Stopped on reasoning flushed by a text delta: the text is not kept.
        let mut turn = Turn::default().coalescing(true);
        let mut sink = StopAtFirst::default();
        for data in [reasoning("R1"), reasoning("R2"), text("T1"), text("T2")] {
            turn.apply_chunk(&data, &mut sink).unwrap();
        }
        turn.flush(&mut sink);
        assert_eq!(sink.0, [r#"{"type":"reasoning","reasoning":"R1R2"}"#]);
        assert!(turn.stopped);
        assert_eq!(
            (turn.reasoning.as_str(), turn.content.as_str()),
            ("R1R2", "")
        );

        // Stopped on a flushed text part: later deltas are not kept.
        let mut turn = Turn::default().coalescing(true);
        let mut sink = StopAtFirst::default();
        turn.apply_chunk(&text("a"), &mut sink).unwrap();
        turn.apply_chunk(&text("b"), &mut sink).unwrap();
        turn.flush(&mut sink);
        turn.apply_chunk(&text("c"), &mut sink).unwrap();
        turn.flush(&mut sink);
        assert_eq!(sink.0, [r#"{"type":"text","text":"ab"}"#]);
        assert_eq!(turn.content, "ab");
    }

    #[test]
    fn top_level_usage_wins_over_the_choice() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        turn.apply_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":1}}]}"#, &mut sink)
            .unwrap();
        turn.apply_chunk(r#"{"choices":[],"usage":{"prompt_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}"#, &mut sink)
            .unwrap();
        assert_eq!(turn.usage().unwrap().prompt_tokens, 2);
        assert_eq!(turn.usage().unwrap().cached_tokens, 1);
    }

    #[test]
    fn tool_calls_assemble_by_index() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"functions.add:0","type":"function","function":{"name":"add","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"search:1","type":"function","function":{"name":"search","arguments":"{\"q\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1,"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"b\":2}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"kimi\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            turn.apply_chunk(data, &mut sink).unwrap();
        }
        assert!(
            sink.0.is_empty(),
            "tool calls are emitted whole, at the end"
        );
        let calls: Vec<(&str, &str, Value)> = turn
            .tool_calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.input()))
            .collect();
        assert_eq!(
            calls,
            vec![
                ("functions.add:0", "add", json!({"a":1,"b":2})),
                ("search:1", "search", json!({"q":"kimi"}))
            ]
        );
    }

    #[test]
    fn non_stream_completion() {
        let mut turn = Turn::default();
        turn.apply_completion(
            r#"{"model":"moonshot-v1-8k","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","reasoning_content":"R"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#,
        )
        .unwrap();
        assert_eq!(
            (turn.content.as_str(), turn.reasoning.as_str()),
            ("Hi", "R")
        );
        assert_eq!(turn.usage().unwrap().prompt_tokens, 5);
        assert_eq!(turn.model.as_deref(), Some("moonshot-v1-8k"));
    }

    #[test]
    fn malformed_chunks_are_protocol_errors() {
        let mut turn = Turn::default();
        let err = turn
            .apply_chunk("{not json", &mut Collect::default())
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert!(turn.apply_completion(r#"{"choices":[]}"#).is_err());
    }

    #[test]
    fn an_error_inside_the_stream_is_an_upstream_error() {
        let mut turn = Turn::default();
        let err = turn
            .apply_chunk(
                r#"{"error":{"type":"server_error","message":"overloaded mid-stream"}}"#,
                &mut Collect::default(),
            )
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str(), err.message.as_str()),
            (ErrorKind::Upstream, "server_error", "overloaded mid-stream")
        );
    }

    #[test]
    fn nothing_is_kept_after_a_stop() {
        struct StopAtOnce;
        impl PartSink for StopAtOnce {
            fn part(&mut self, _json: &str) -> Flow {
                Flow::Stop
            }
        }
        let mut turn = Turn::default();
        turn.apply_chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"ab"}}]}"#,
            &mut StopAtOnce,
        )
        .unwrap();
        turn.apply_chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"cd"}}]}"#,
            &mut StopAtOnce,
        )
        .unwrap();
        assert_eq!(turn.content, "ab");
    }

    #[test]
    fn the_byte_budget_covers_text_reasoning_and_tool_arguments() {
        let mut turn = Turn::with_budget(10);
        let mut sink = Collect::default();
        turn.apply_chunk(
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"abc","content":"def"}}]}"#,
            &mut sink,
        )
        .unwrap();
        turn.apply_chunk(
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]}}]}"#,
            &mut sink,
        )
        .unwrap();
        let err = turn
            .apply_chunk(
                r#"{"choices":[{"index":0,"delta":{"content":"ghi"}}]}"#,
                &mut sink,
            )
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str()),
            (ErrorKind::Protocol, "answer_too_large")
        );
        // What passed the budget was neither kept nor sent.
        assert_eq!(
            (turn.reasoning.as_str(), turn.content.as_str()),
            ("abc", "def")
        );
        assert_eq!(sink.0.len(), 2);
        assert_eq!(turn.received_bytes(), 8);
        let err = turn
            .apply_chunk(
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"123"}}]}}]}"#,
                &mut sink,
            )
            .unwrap_err();
        assert_eq!(err.code, "answer_too_large");
        assert_eq!(turn.tool_calls[0].arguments, "{}");
    }

    #[test]
    fn tool_calls_are_bounded_and_found_by_index() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        let call = |i: usize| {
            format!(
                r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":{i},"function":{{"arguments":"{i},"}}}}]}}}}]}}"#
            )
        };
        // Indices in any order, each seen twice: one call per index.
        for i in (0..MAX_TOOL_CALLS).rev().chain(0..MAX_TOOL_CALLS) {
            turn.apply_chunk(&call(i * 1000), &mut sink).unwrap();
        }
        assert_eq!(turn.tool_calls.len(), MAX_TOOL_CALLS);
        assert_eq!(turn.tool_calls[0].index, (MAX_TOOL_CALLS - 1) * 1000);
        assert_eq!(
            turn.tool_calls[5].arguments,
            format!("{0},{0},", (MAX_TOOL_CALLS - 6) * 1000)
        );
        let err = turn.apply_chunk(&call(usize::MAX), &mut sink).unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str()),
            (ErrorKind::Protocol, "too_many_tool_calls")
        );
        assert_eq!(turn.tool_calls.len(), MAX_TOOL_CALLS);
        // A known index still takes more arguments.
        turn.apply_chunk(&call(0), &mut sink).unwrap();
    }

    #[test]
    fn absurd_usage_is_refused_and_not_kept() {
        let mut turn = Turn::default();
        let err = turn
            .apply_chunk(
                r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":4611686018427387904}}"#,
                &mut Collect::default(),
            )
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str()),
            (ErrorKind::Protocol, "implausible_usage")
        );
        assert_eq!(turn.usage(), None);
    }

    #[test]
    fn parts_written_directly_match_serde() {
        let mut text: String = (0u8..=0x7f).map(char::from).collect();
        text.push_str("é 你好 🙂 \u{2028}");
        let mut out = String::from("stale");
        for sample in [text.as_str(), "", "plain", "\"", "end\\"] {
            write_text_part(&mut out, "text", sample);
            assert_eq!(out, Part::Text { text: sample }.to_json());
            write_text_part(&mut out, "reasoning", sample);
            assert_eq!(out, Part::Reasoning { reasoning: sample }.to_json());
        }
    }

    #[test]
    fn only_index_zero_choices_are_followed() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        turn.apply_chunk(
            r#"{"choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"a"}},{"delta":{"content":"b"}}]}"#,
            &mut sink,
        )
        .unwrap();
        turn.apply_chunk(r#"{"choices":null}"#, &mut sink).unwrap();
        assert_eq!(turn.content, "ab");
        assert_eq!(sink.0.len(), 2);
        assert!(turn.apply_chunk(r#"{"choices":7}"#, &mut sink).is_err());
    }

    #[test]
    fn escaped_text_survives() {
        let mut turn = Turn::default();
        let mut sink = Collect::default();
        turn.apply_chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"line\n\"q\" 你好"}}]}"#,
            &mut sink,
        )
        .unwrap();
        assert_eq!(
            sink.0,
            vec![json!({"type":"text","text":"line\n\"q\" 你好"})]
        );
    }
}
