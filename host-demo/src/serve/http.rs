//! Just enough HTTP/1.1 for a local endpoint: the request reader and the
//! head / chunk writers are the simulator's (one request per connection,
//! bounded head and body); here are the answers serve writes: JSON with a
//! `Content-Length`, and NDJSON whose every line is one chunk, written (and
//! so flushed) at once.

use std::io::{self, Write};

pub use moonshot_simulator::http::{read_request, ReadError};
use moonshot_simulator::http::{write_chunk, write_head, write_last_chunk};
/// One request as read (the simulator's loopback HTTP plumbing is shared).
pub use moonshot_simulator::RecordedRequest as Request;

/// Headers added to one answer (CORS, Allow, ...).
pub type Headers = Vec<(&'static str, String)>;

fn with_extra<'a>(base: &[(&'a str, &'a str)], extra: &'a Headers) -> Vec<(&'a str, &'a str)> {
    let mut all = base.to_vec();
    all.extend(extra.iter().map(|(n, v)| (*n, v.as_str())));
    all
}

/// A whole JSON answer. Every answer carries a Content-Type: puter.js's
/// Node transport hangs on a response without one.
pub fn write_json(
    w: &mut impl Write,
    status: u16,
    extra: &Headers,
    body: &serde_json::Value,
) -> io::Result<()> {
    let payload = body.to_string();
    let length = payload.len().to_string();
    let base = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Content-Length", length.as_str()),
    ];
    write_head(w, status, &with_extra(&base, extra))?;
    w.write_all(payload.as_bytes())?;
    w.flush()
}

/// An answer without a body (a CORS preflight).
pub fn write_empty(w: &mut impl Write, status: u16, extra: &Headers) -> io::Result<()> {
    write_head(
        w,
        status,
        &with_extra(
            &[("Content-Type", "text/plain"), ("Content-Length", "0")],
            extra,
        ),
    )?;
    w.flush()
}

/// The head of a 200 NDJSON stream; lines follow with [`write_line`].
pub fn write_ndjson_head(w: &mut impl Write, extra: &Headers) -> io::Result<()> {
    let base = [
        ("Content-Type", "application/x-ndjson"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Transfer-Encoding", "chunked"),
    ];
    write_head(w, 200, &with_extra(&base, extra))?;
    w.flush()
}

/// One NDJSON line as one HTTP chunk, in one write: a chunk always ends on
/// a line (so on a character) boundary, which matters to puter.js, whose
/// Node transport re-decodes the whole body on every network read.
pub fn write_line(w: &mut impl Write, json: &str) -> io::Result<()> {
    let mut line = Vec::with_capacity(json.len() + 1);
    line.extend_from_slice(json.as_bytes());
    line.push(b'\n');
    write_chunk(w, &line)
}

/// Ends a chunked answer.
pub fn write_end(w: &mut impl Write) -> io::Result<()> {
    write_last_chunk(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut &raw[..], || Ok(()))
    }

    #[test]
    fn reads_what_puter_js_sends() {
        let body = br#"{"interface":"puter-chat-completion"}"#;
        let mut raw = format!(
            "POST /drivers/call?x=1 HTTP/1.1\r\nHost: 127.0.0.1:4100\r\nContent-Type: text/plain;actually=json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        raw.extend_from_slice(b"trailing garbage is not read");
        let req = parse(&raw).unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.route(), "/drivers/call");
        assert_eq!(req.header("content-type"), Some("text/plain;actually=json"));
        assert_eq!(req.body, body);
    }

    #[test]
    fn writes_json_and_chunked_lines() {
        let mut out = Vec::new();
        let cors: Headers = vec![(
            "Access-Control-Allow-Origin",
            "http://localhost:5173".into(),
        )];
        write_json(&mut out, 400, &cors, &serde_json::json!({"a": "é"})).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: 10\r\nAccess-Control-Allow-Origin: http://localhost:5173\r\nConnection: close\r\n\r\n{\"a\":\"é\"}"
        );
        let mut out = Vec::new();
        write_ndjson_head(&mut out, &Vec::new()).unwrap();
        write_line(&mut out, r#"{"t":"你"}"#).unwrap();
        write_end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"));
        assert!(
            text.ends_with("\r\n\r\nc\r\n{\"t\":\"你\"}\n\r\n0\r\n\r\n"),
            "{text}"
        );
    }
}
