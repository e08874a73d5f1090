//! Moonshot's `$web_search` round trip (MOONSHOT-API.md §5): while the
//! answer is a search call, echo the call's arguments as the tool message
//! and ask again. The loop is independent of HTTP: each request/response
//! is one `Round`, so tests can script them.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::error::{ErrorKind, ProviderError};
use crate::metering::Usage;
use crate::stream::{ToolCall, Turn};
use crate::tools;

use super::result::Accumulated;
use super::StopGuard;

/// One request/response with the upstream.
pub(super) trait Round {
    /// Sends `body` and reads the answer into `turn`, its parts into
    /// `sink`; returns the request id the upstream gave.
    fn send(
        &mut self,
        body: &Map<String, Value>,
        turn: &mut Turn,
        sink: &mut StopGuard,
    ) -> Result<Option<String>, ProviderError>;

    /// Usage for a round whose answer carried none.
    fn estimate(&mut self, body: &Map<String, Value>, turn: &Turn) -> Usage;
}

/// The settings the search loop runs under.
pub(super) struct SearchLoop {
    /// The request enabled `$web_search`: only then are its calls answered.
    pub web_search: bool,
    /// Thinking models need `reasoning_content` on the echoed call.
    pub thinking_on: bool,
    pub max_rounds: u32,
    /// The answer's byte cap, across all rounds together.
    pub max_answer_bytes: usize,
    /// Text and reasoning deltas of one socket read go out as one part.
    pub coalesce_parts: bool,
}

impl SearchLoop {
    /// Sends `body` and runs search rounds until the answer is not a search
    /// call; what arrives accumulates in `answer`.
    pub fn run(
        &self,
        mut body: Cow<'_, Map<String, Value>>,
        round: &mut dyn Round,
        guard: &mut StopGuard,
        answer: &mut Accumulated,
    ) -> Result<(), ProviderError> {
        loop {
            answer.rounds += 1;
            let mut turn = Turn::with_budget(self.max_answer_bytes.saturating_sub(answer.bytes()))
                .coalescing(self.coalesce_parts);
            let sent = round.send(&body, &mut turn, guard);
            let usage = match turn.usage() {
                Some(usage) if sent.is_ok() || usage.prompt_tokens > 0 => Some(usage),
                // Nothing came (a refused request): nothing to bill.
                _ if sent.is_err() && !turn.received_anything() => None,
                _ => Some(round.estimate(&body, &turn)),
            };
            let added = usage.map_or(Ok(()), |usage| answer.usage.add(&usage));
            // What this round said starts where the earlier rounds' ended.
            let said_from = (answer.content.len(), answer.reasoning.len());
            answer.absorb(&mut turn);
            answer.request_id = sent?;
            added?;
            if guard.stopped || guard.cancel.is_cancelled() {
                return Err(ProviderError::cancelled());
            }
            let (searches, calls): (Vec<ToolCall>, Vec<ToolCall>) =
                std::mem::take(&mut answer.tool_calls)
                    .into_iter()
                    .partition(|c| c.name == tools::WEB_SEARCH);
            answer.tool_calls = calls;
            let searching = self.web_search
                && answer.finish_reason.as_deref() == Some("tool_calls")
                && !searches.is_empty()
                && answer.tool_calls.is_empty();
            if !searching {
                // A user tool call ends the turn; searches asked beside it are dropped.
                return Ok(());
            }
            answer.usage.web_search_calls += searches.len() as u64;
            if answer.rounds >= self.max_rounds {
                return Err(ProviderError::new(
                    ErrorKind::Upstream,
                    format!(
                        "web search did not finish within {} rounds",
                        self.max_rounds
                    ),
                )
                .with_code("web_search_rounds_exceeded"));
            }
            let said = (
                &answer.content[said_from.0..],
                &answer.reasoning[said_from.1..],
            );
            append_search_round(body.to_mut(), self.thinking_on, said, &searches);
        }
    }
}

/// Appends the search call (with what the round said before it, usually
/// nothing) and the tool messages echoing each call's arguments.
// Out of line: keeps the frames a stream reads under small (stack.rs).
#[inline(never)]
fn append_search_round(
    body: &mut Map<String, Value>,
    thinking_on: bool,
    (content, reasoning): (&str, &str),
    searches: &[ToolCall],
) {
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    let mut assistant = json!({
        "role": "assistant",
        "tool_calls": searches.iter().map(ToolCall::to_openai).collect::<Vec<_>>(),
    });
    if !content.is_empty() {
        assistant["content"] = json!(content);
    }
    if thinking_on || !reasoning.is_empty() {
        assistant["reasoning_content"] = json!(reasoning);
    }
    messages.push(assistant);
    for call in searches {
        messages.push(json!({
            "role": "tool",
            "tool_call_id": call.id,
            "name": tools::WEB_SEARCH,
            "content": call.arguments,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::stream::{Flow, PartSink};

    /// Rounds answered from a script of whole completions; records the
    /// bodies it was sent.
    struct Scripted {
        answers: Vec<&'static str>,
        sent: Vec<Map<String, Value>>,
        estimates: u32,
    }

    impl Scripted {
        fn new(answers: &[&'static str]) -> Scripted {
            Scripted {
                answers: answers.to_vec(),
                sent: Vec::new(),
                estimates: 0,
            }
        }
    }

    impl Round for Scripted {
        fn send(
            &mut self,
            body: &Map<String, Value>,
            turn: &mut Turn,
            _sink: &mut StopGuard,
        ) -> Result<Option<String>, ProviderError> {
            let answer = *self
                .answers
                .get(self.sent.len())
                .expect("the loop asked for more rounds than were scripted");
            self.sent.push(body.clone());
            turn.apply_completion(answer)?;
            Ok(Some(format!("req-{}", self.sent.len())))
        }

        fn estimate(&mut self, _body: &Map<String, Value>, _turn: &Turn) -> Usage {
            self.estimates += 1;
            Usage {
                prompt_tokens: 7,
                estimated: true,
                ..Usage::default()
            }
        }
    }

    struct Parts;

    impl PartSink for Parts {
        fn part(&mut self, _json: &str) -> Flow {
            Flow::Continue
        }
    }

    const SEARCH: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"s1","type":"function","function":{"name":"$web_search","arguments":"{\"q\":\"rust\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}"#;
    const TEXT: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"found it"},"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":3,"total_tokens":33}}"#;
    const USER_TOOL_AND_SEARCH: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"s1","type":"function","function":{"name":"$web_search","arguments":"{}"}},{"id":"u1","type":"function","function":{"name":"lookup","arguments":"{\"k\":1}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}"#;
    const NO_USAGE: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

    fn search_loop(web_search: bool, max_rounds: u32) -> SearchLoop {
        SearchLoop {
            web_search,
            thinking_on: false,
            max_rounds,
            max_answer_bytes: 1 << 20,
            coalesce_parts: false,
        }
    }

    fn run(
        settings: &SearchLoop,
        round: &mut Scripted,
    ) -> (Result<(), ProviderError>, Accumulated) {
        let cancel = CancelToken::default();
        let mut parts = Parts;
        let mut guard = StopGuard {
            inner: &mut parts,
            cancel: &cancel,
            stopped: false,
        };
        let body = json!({"model": "kimi-k2", "messages": [{"role": "user", "content": "q"}]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let mut answer = Accumulated::default();
        let outcome = settings.run(Cow::Owned(body), round, &mut guard, &mut answer);
        (outcome, answer)
    }

    #[test]
    fn a_search_call_is_echoed_and_asked_again() {
        let mut round = Scripted::new(&[SEARCH, TEXT]);
        let (outcome, answer) = run(&search_loop(true, 5), &mut round);
        outcome.unwrap();
        assert_eq!(answer.rounds, 2);
        assert_eq!(answer.content, "found it");
        assert!(answer.tool_calls.is_empty());
        assert_eq!(answer.usage.web_search_calls, 1);
        assert_eq!(answer.usage.prompt_tokens, 40);
        assert_eq!(answer.usage.completion_tokens, 5);
        assert_eq!(answer.request_id.as_deref(), Some("req-2"));
        // The second request carries the call and the tool message echoing it.
        let messages = round.sent[1]["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["role"], "assistant");
        assert_eq!(messages[1]["tool_calls"][0]["id"], "s1");
        assert!(messages[1].get("reasoning_content").is_none());
        assert_eq!(messages[2]["role"], "tool");
        assert_eq!(messages[2]["tool_call_id"], "s1");
        assert_eq!(messages[2]["name"], "$web_search");
        assert_eq!(messages[2]["content"], r#"{"q":"rust"}"#);
    }

    #[test]
    fn thinking_models_get_reasoning_content_on_the_echoed_call() {
        let mut round = Scripted::new(&[SEARCH, TEXT]);
        let settings = SearchLoop {
            thinking_on: true,
            ..search_loop(true, 5)
        };
        run(&settings, &mut round).0.unwrap();
        assert_eq!(round.sent[1]["messages"][1]["reasoning_content"], "");
    }

    #[test]
    fn rounds_are_bounded() {
        let mut round = Scripted::new(&[SEARCH, SEARCH, SEARCH]);
        let (outcome, answer) = run(&search_loop(true, 3), &mut round);
        let err = outcome.unwrap_err();
        assert_eq!(err.code, "web_search_rounds_exceeded");
        assert_eq!(round.sent.len(), 3);
        assert_eq!(answer.usage.web_search_calls, 3);
    }

    #[test]
    fn a_user_tool_call_ends_the_turn_and_drops_the_search() {
        let mut round = Scripted::new(&[USER_TOOL_AND_SEARCH]);
        let (outcome, answer) = run(&search_loop(true, 5), &mut round);
        outcome.unwrap();
        assert_eq!(round.sent.len(), 1);
        let names: Vec<&str> = answer.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lookup"]);
        assert_eq!(answer.usage.web_search_calls, 0);
    }

    #[test]
    fn without_web_search_a_search_call_is_not_answered() {
        let mut round = Scripted::new(&[SEARCH]);
        let (outcome, answer) = run(&search_loop(false, 5), &mut round);
        outcome.unwrap();
        assert_eq!(round.sent.len(), 1);
        assert!(answer.tool_calls.is_empty());
        assert_eq!(answer.usage.web_search_calls, 0);
    }

    #[test]
    fn a_round_without_usage_is_estimated() {
        let mut round = Scripted::new(&[NO_USAGE]);
        let (outcome, answer) = run(&search_loop(true, 5), &mut round);
        outcome.unwrap();
        assert_eq!(round.estimates, 1);
        assert_eq!(answer.usage.prompt_tokens, 7);
        assert!(answer.usage.estimated);
    }
}
