//! Just enough HTTP/1.1 for a local endpoint: one request per connection
//! (`Connection: close`), a bounded head and body, JSON answers with a
//! `Content-Length`, and chunked answers whose every chunk is written (and
//! so flushed) at once.

use std::io::{self, BufRead, Read, Write};

/// Largest accepted request head (request line plus headers), in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body, in bytes: room for inlined images, as
/// puter.js sends a `File` as a data URI.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Longest chunk-size line of a chunked request body.
const MAX_CHUNK_LINE: usize = 1024;

/// One request as read.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent, query included.
    pub target: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Why no request came out of a connection.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed, stalled or failed: answer nothing.
    Gone,
    /// Malformed or too large: answer with this status and message.
    Reject(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

/// Reads one line, charging it to `budget`; the terminator (and any `\r`)
/// is stripped.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let limit = *budget as u64 + 1;
    r.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 >= limit {
            ReadError::Reject(431, "request head too large")
        } else {
            ReadError::Gone
        });
    }
    *budget -= line.len();
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// Reads the request line, the headers and the body (Content-Length or
/// chunked). `on_continue` runs once, before the body, when the client sent
/// `Expect: 100-continue`.
pub fn read_request(
    r: &mut impl BufRead,
    on_continue: impl FnOnce() -> io::Result<()>,
) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD;
    let mut first = read_line(r, &mut budget)?;
    while first.is_empty() {
        first = read_line(r, &mut budget)?;
    }
    let first = String::from_utf8(first).map_err(|_| ReadError::Reject(400, "bad request line"))?;
    let mut words = first.split(' ');
    let (method, target) = match (words.next(), words.next(), words.next(), words.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && v.starts_with("HTTP/1.") => {
            (m.to_string(), t.to_string())
        }
        _ => return Err(ReadError::Reject(400, "bad request line")),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8(line).map_err(|_| ReadError::Reject(400, "bad header"))?;
        let (name, value) = line
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.ends_with([' ', '\t']))
            .ok_or(ReadError::Reject(400, "bad header"))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        Some(v) if !chunked => Some(
            v.parse::<u64>()
                .map_err(|_| ReadError::Reject(400, "bad Content-Length"))?,
        ),
        _ => None,
    };
    if length.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ReadError::Reject(413, "request body too large"));
    }
    let wants_continue = request
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    if wants_continue && (chunked || length.is_some_and(|n| n > 0)) {
        on_continue()?;
    }
    if chunked {
        request.body = read_chunked(r, &mut budget)?;
    } else if let Some(n) = length {
        r.by_ref().take(n).read_to_end(&mut request.body)?;
        if request.body.len() as u64 != n {
            return Err(ReadError::Gone);
        }
    }
    Ok(request)
}

/// Decodes a chunked body; trailers are charged to the head budget and dropped.
fn read_chunked(r: &mut impl BufRead, head_budget: &mut usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut line_budget = MAX_CHUNK_LINE;
        let line = read_line(r, &mut line_budget)?;
        let size = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| u64::from_str_radix(l.split(';').next()?.trim(), 16).ok())
            .ok_or(ReadError::Reject(400, "bad chunked body"))?;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > MAX_BODY as u64 {
            return Err(ReadError::Reject(413, "request body too large"));
        }
        let before = body.len();
        r.by_ref().take(size).read_to_end(&mut body)?;
        if (body.len() - before) as u64 != size {
            return Err(ReadError::Gone);
        }
        if !read_line(r, &mut 2)?.is_empty() {
            return Err(ReadError::Reject(400, "bad chunked body"));
        }
    }
    while !read_line(r, head_budget)?.is_empty() {}
    Ok(body)
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Headers added to one answer (CORS, Allow, ...).
pub type Headers = Vec<(&'static str, String)>;

/// Writes the status line, the headers and `Connection: close`.
fn write_head(w: &mut impl Write, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    w.write_all(head.as_bytes())
}

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
    let mut frame = format!("{:x}\r\n", json.len() + 1).into_bytes();
    frame.extend_from_slice(json.as_bytes());
    frame.extend_from_slice(b"\n\r\n");
    w.write_all(&frame)?;
    w.flush()
}

/// Ends a chunked answer.
pub fn write_end(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
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
        assert_eq!(req.path(), "/drivers/call");
        assert_eq!(req.header("content-type"), Some("text/plain;actually=json"));
        assert_eq!(req.body, body);
    }

    #[test]
    fn reads_chunked_bodies_and_answers_expect_continue() {
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: t\r\n\r\n";
        let mut continued = false;
        let req = read_request(&mut &raw[..], || {
            continued = true;
            Ok(())
        })
        .unwrap();
        assert!(continued);
        assert_eq!(req.body, b"abcde");
    }

    #[test]
    fn refuses_bad_and_oversized_requests() {
        let reject = |raw: &[u8]| match parse(raw) {
            Err(ReadError::Reject(status, _)) => status,
            other => panic!("expected a rejection, got {other:?}"),
        };
        assert_eq!(reject(b"nonsense\r\n\r\n"), 400);
        assert_eq!(reject(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(reject(b"GET / HTTP/1.1\r\nX : y\r\n\r\n"), 400);
        assert_eq!(
            reject(
                format!(
                    "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                    MAX_BODY + 1
                )
                .as_bytes()
            ),
            413
        );
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        huge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(reject(&huge), 431);
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort"),
            Err(ReadError::Gone)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost"),
            Err(ReadError::Gone)
        ));
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
