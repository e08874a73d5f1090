//! Writes a [`Reply`] to a connection, pausing interruptibly between pieces.

use std::io::{self, Write};

use crate::http;
use crate::script::{next_request_id, Reply};
use crate::state::Shared;

/// Headers a scripted JSON reply may not set: they would break the framing.
const FRAMING: &[&str] = &["content-length", "transfer-encoding", "connection"];

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Writes `reply`; stops early (returning Ok) when shutdown interrupts a pause.
pub(crate) fn send(w: &mut impl Write, reply: Reply, shared: &Shared) -> io::Result<()> {
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let payload = body.to_string().into_bytes();
            let mut all: Vec<(String, String)> = Vec::new();
            if !has_header(&headers, "content-type") {
                all.push(("Content-Type".into(), "application/json".into()));
            }
            if !has_header(&headers, "x-request-id") {
                all.push(("x-request-id".into(), next_request_id()));
            }
            all.extend(
                headers
                    .into_iter()
                    .filter(|(n, _)| !FRAMING.iter().any(|f| n.eq_ignore_ascii_case(f))),
            );
            all.push(("Content-Length".into(), payload.len().to_string()));
            http::write_head(w, status, &all)?;
            w.write_all(&payload)?;
            w.flush()
        }
        Reply::Sse {
            events,
            delay,
            done,
        } => {
            let headers = [
                ("Content-Type".to_string(), "text/event-stream".to_string()),
                ("Cache-Control".to_string(), "no-cache".to_string()),
                ("Transfer-Encoding".to_string(), "chunked".to_string()),
                ("x-request-id".to_string(), next_request_id()),
            ];
            http::write_head(w, 200, &headers)?;
            w.flush()?;
            for event in events {
                if !delay.is_zero() && !shared.pause(delay) {
                    return Ok(());
                }
                http::write_chunk(w, format!("data: {event}\n\n").as_bytes())?;
            }
            if done {
                http::write_chunk(w, b"data: [DONE]\n\n")?;
            }
            http::write_last_chunk(w)
        }
        Reply::Raw {
            head,
            body,
            delay,
            hold_open,
        } => {
            w.write_all(head.as_bytes())?;
            w.flush()?;
            for piece in body {
                if !delay.is_zero() && !shared.pause(delay) {
                    return Ok(());
                }
                w.write_all(&piece)?;
                w.flush()?;
            }
            if !hold_open.is_zero() {
                shared.pause(hold_open);
            }
            Ok(())
        }
    }
}
