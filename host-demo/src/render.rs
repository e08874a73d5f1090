//! What the demo prints: streamed parts, the models table, the cost line.

use std::io::Write;

use serde_json::Value;

use crate::args::Output;

/// Prints stream parts as they arrive.
pub struct Stream {
    output: Output,
    in_reasoning: bool,
    /// Any part arrived, so the answer was streamed and is not printed again.
    streamed: bool,
}

impl Stream {
    pub fn new(output: Output) -> Stream {
        Stream {
            output,
            in_reasoning: false,
            streamed: false,
        }
    }

    pub fn part(&mut self, out: &mut impl Write, part: &str) {
        if self.output == Output::Ndjson {
            let _ = writeln!(out, "{part}");
            let _ = out.flush();
            return;
        }
        let Ok(part) = serde_json::from_str::<Value>(part) else {
            return;
        };
        self.streamed = true;
        match part["type"].as_str() {
            Some("reasoning") => {
                // Reasoning goes to stderr so stdout holds only the answer.
                if !self.in_reasoning {
                    eprint!("[thinking] ");
                    self.in_reasoning = true;
                }
                eprint!("{}", part["reasoning"].as_str().unwrap_or(""));
            }
            Some("text") => {
                if self.in_reasoning {
                    eprintln!();
                    self.in_reasoning = false;
                }
                let _ = write!(out, "{}", part["text"].as_str().unwrap_or(""));
            }
            Some("tool_use") => {
                if self.in_reasoning {
                    eprintln!();
                    self.in_reasoning = false;
                }
                let _ = writeln!(
                    out,
                    "\n[tool call] {}({})",
                    part["name"].as_str().unwrap_or("?"),
                    part["input"]
                );
            }
            _ => {}
        }
        let _ = out.flush();
    }

    /// After the end: the non-streamed answer, or the result line in ndjson.
    pub fn finish(&mut self, out: &mut impl Write, status: i32, result: &Value) {
        match self.output {
            Output::Ndjson => {
                let _ = writeln!(out, "{result}");
            }
            Output::Text => {
                if !self.streamed && status == moonshot_abi::MOONSHOT_OK {
                    if let Some(reasoning) = result["message"]["reasoning"].as_str() {
                        eprintln!("[thinking] {reasoning}");
                    }
                    let _ = write!(
                        out,
                        "{}",
                        result["message"]["content"].as_str().unwrap_or("")
                    );
                }
                let _ = writeln!(out);
            }
        }
    }
}

/// $ per 1M tokens from ucents per token (which is cents per 1M): 95 -> "0.95".
fn dollars_per_million(cents: Option<u64>) -> String {
    match cents {
        Some(c) => format!("{}.{:02}", c / 100, c % 100),
        None => "-".into(),
    }
}

pub fn models_table(models: &[Value]) -> String {
    let mut text = format!(
        "{:<26} {:>9}  {:<17} {:>8} {:>8} {:>8}  {}\n",
        "model", "context", "input", "$in/1M", "$hit/1M", "$out/1M", "status"
    );
    for m in models {
        let costs = &m["costs"];
        let status = match m["retired_on"].as_str() {
            Some(day) => format!("served until {day}"),
            None => "served".into(),
        };
        let modalities: Vec<&str> = m["modalities"]["input"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        text.push_str(&format!(
            "{:<26} {:>9}  {:<17} {:>8} {:>8} {:>8}  {}\n",
            m["id"].as_str().unwrap_or("?"),
            m["context"],
            modalities.join("+"),
            dollars_per_million(costs["prompt_tokens"].as_u64()),
            dollars_per_million(costs["cached_tokens"].as_u64()),
            dollars_per_million(costs["completion_tokens"].as_u64()),
            status
        ));
    }
    text
}

/// "cost: 8 input + 4 cached + 6 output tokens on kimi-k2.6 = $0.00003224"
pub fn cost_line(result: &Value) -> Option<String> {
    let usage = result.get("usage")?;
    let total = usage["cost"]["total_ucents"].as_u64()?;
    // 1 USD = 100,000,000 microcents.
    let dollars = format!("{}.{:08}", total / 100_000_000, total % 100_000_000);
    let mut line = format!(
        "cost: {} input + {} cached + {} output tokens",
        usage["uncached_prompt_tokens"], usage["cached_tokens"], usage["completion_tokens"]
    );
    if let Some(calls) = usage["web_search_calls"].as_u64().filter(|c| *c > 0) {
        line.push_str(&format!(" + {calls} web searches"));
    }
    line.push_str(&format!(
        " on {} = ${dollars}",
        usage["cost"]["model"].as_str().unwrap_or("?")
    ));
    if usage["estimated"].as_bool() == Some(true) {
        line.push_str(" (estimated)");
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cost_line_in_dollars() {
        let result = json!({"usage":{"uncached_prompt_tokens":8,"cached_tokens":4,"completion_tokens":6,
            "web_search_calls":0,"estimated":false,"cost":{"model":"kimi-k2.6","total_ucents":3224}}});
        assert_eq!(
            cost_line(&result).unwrap(),
            "cost: 8 input + 4 cached + 6 output tokens on kimi-k2.6 = $0.00003224"
        );
    }

    #[test]
    fn prices_per_million() {
        assert_eq!(dollars_per_million(Some(95)), "0.95");
        assert_eq!(dollars_per_million(Some(1500)), "15.00");
        assert_eq!(dollars_per_million(None), "-");
    }
}
