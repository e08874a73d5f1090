//! The offline Moonshot simulator as a process, for hosts that are not Rust
//! (bindings/node's tests): binds 127.0.0.1:0, prints
//! `{"base_url","addr"}` as its first stdout line, then obeys one JSON
//! command per stdin line and answers each with one JSON line. It stops
//! when stdin closes (its parent died or is done).
//!
//! Commands:
//! - `{"op":"push","reply":R}` queues a scripted reply, R being one of
//!   `{"error":{"status","type","message"}}`, `{"completion":SPEC}`,
//!   `{"stream":SPEC}` or `{"raw":{"head","body":[..],"delay_ms","hold_open_ms"}}`,
//!   SPEC holding `ReplySpec` fields (`model`, `reasoning`, `content`,
//!   `tool_calls`: [{id,name,arguments}], `finish_reason`, `usage`:
//!   {prompt_tokens,completion_tokens,cached_tokens} or null, `chunk_chars`,
//!   `delay_ms`); answers `{"ok":true}`.
//! - `{"op":"bodies"}` answers `{"bodies":[...]}`, every chat request body so far.
//! - `{"op":"shutdown"}` stops serving (open connections are closed); answers `{"ok":true}`.

use std::io::{BufRead, Write};
use std::time::Duration;

use moonshot_simulator::{Reply, ReplySpec, Simulator, ToolCallSpec, UsageSpec};
use serde_json::{json, Value};

fn main() {
    let mut sim = Simulator::start().expect("start the simulator");
    let mut out = std::io::stdout().lock();
    say(
        &mut out,
        json!({"base_url": sim.base_url(), "addr": sim.addr().to_string()}),
    );
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(command) => obey(&mut sim, &command),
            Err(e) => json!({"error": format!("not JSON: {e}")}),
        };
        say(&mut out, answer);
    }
}

fn say(out: &mut impl Write, value: Value) {
    // A parent that stopped reading is gone: nothing left to tell.
    let _ = writeln!(out, "{value}").and_then(|()| out.flush());
}

fn obey(sim: &mut Simulator, command: &Value) -> Value {
    match command["op"].as_str() {
        Some("push") => match reply(&command["reply"]) {
            Ok(reply) => {
                sim.push(reply);
                json!({"ok": true})
            }
            Err(e) => json!({"error": e}),
        },
        Some("bodies") => json!({"bodies": sim.chat_bodies()}),
        Some("shutdown") => {
            sim.shutdown();
            json!({"ok": true})
        }
        _ => json!({"error": format!("unknown command {command}")}),
    }
}

fn reply(r: &Value) -> Result<Reply, String> {
    if let Some(e) = r.get("error") {
        return Ok(Reply::error(
            e["status"].as_u64().unwrap_or(500) as u16,
            e["type"].as_str().unwrap_or("server_error"),
            e["message"].as_str().unwrap_or("simulated error"),
        ));
    }
    if let Some(s) = r.get("completion") {
        return Ok(Reply::completion(&spec(s)));
    }
    if let Some(s) = r.get("stream") {
        return Ok(Reply::stream(&spec(s)));
    }
    if let Some(raw) = r.get("raw") {
        let body = raw["body"]
            .as_array()
            .map(|pieces| {
                pieces
                    .iter()
                    .map(|p| p.as_str().unwrap_or_default().as_bytes().to_vec())
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Reply::Raw {
            head: raw["head"].as_str().unwrap_or_default().to_string(),
            body,
            delay: millis(&raw["delay_ms"]),
            hold_open: millis(&raw["hold_open_ms"]),
        });
    }
    Err(format!("unknown reply {r}"))
}

fn millis(v: &Value) -> Duration {
    Duration::from_millis(v.as_u64().unwrap_or(0))
}

fn spec(s: &Value) -> ReplySpec {
    let mut spec = ReplySpec::default();
    let text = |key: &str| s.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(model) = text("model") {
        spec.model = model;
    }
    spec.reasoning = text("reasoning");
    if let Some(content) = text("content") {
        spec.content = content;
    }
    if let Some(finish) = text("finish_reason") {
        spec.finish_reason = finish;
    }
    if let Some(calls) = s.get("tool_calls").and_then(Value::as_array) {
        spec.tool_calls = calls
            .iter()
            .map(|c| ToolCallSpec {
                id: c["id"].as_str().unwrap_or_default().to_string(),
                name: c["name"].as_str().unwrap_or_default().to_string(),
                arguments: c["arguments"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
    }
    match s.get("usage") {
        Some(Value::Null) => spec.usage = None,
        Some(u) => {
            spec.usage = Some(UsageSpec {
                prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
                cached_tokens: u["cached_tokens"].as_u64().unwrap_or(0),
            })
        }
        None => {}
    }
    if let Some(n) = s.get("chunk_chars").and_then(Value::as_u64) {
        spec.chunk_chars = n as usize;
    }
    spec.delay = millis(&s["delay_ms"]);
    spec
}
