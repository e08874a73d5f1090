//! A minimal HTTP/1.1 reader and writer for loopback servers: one request
//! per connection (`Connection: close`), bounded sizes. Shared by the
//! simulator and the demo host's `serve`.

use std::io::{self, BufRead, Read, Write};

use crate::RecordedRequest;

/// Largest accepted request head (request line plus headers), in bytes.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest accepted request body, in bytes.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest accepted chunk-size line of a chunked request body.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed, timed out or failed before a full request: answer nothing.
    Gone,
    /// A malformed or oversized request: answer with this status and message.
    Reject(u16, String),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Gone
    }
}

fn reject(status: u16, message: &str) -> ReadError {
    ReadError::Reject(status, message.to_string())
}

/// Reads one line ending in `\n` (the terminator is stripped, with any `\r`), charging its
/// length to `budget`. `too_long` is the status used when the budget runs out.
fn read_line(
    r: &mut impl BufRead,
    budget: &mut usize,
    too_long: u16,
) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    let limit = (*budget as u64).saturating_add(1);
    r.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        if line.len() as u64 >= limit {
            return Err(reject(too_long, "request head or line too large"));
        }
        return Err(ReadError::Gone);
    }
    *budget = budget.saturating_sub(line.len());
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// Reads the request line, headers and body of one request.
///
/// `on_continue` is called once when the client sent `Expect: 100-continue`, before the body is read.
pub fn read_request(
    r: &mut impl BufRead,
    on_continue: impl FnOnce() -> io::Result<()>,
) -> Result<RecordedRequest, ReadError> {
    let mut budget = MAX_HEAD;
    let mut first = read_line(r, &mut budget, 431)?;
    // Tolerate stray empty lines before the request line (RFC 9112 section 2.2).
    while first.is_empty() {
        first = read_line(r, &mut budget, 431)?;
    }
    let first = String::from_utf8(first).map_err(|_| reject(400, "request line is not UTF-8"))?;
    let mut parts = first.split_whitespace();
    let (method, path, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), Some(v), None) => (m.to_string(), p.to_string(), v),
        _ => return Err(reject(400, "malformed request line")),
    };
    if !version.starts_with("HTTP/1.") {
        return Err(reject(400, "unsupported HTTP version"));
    }

    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget, 431)?;
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8(line).map_err(|_| reject(400, "header is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| reject(400, "malformed header line"))?;
        if name.is_empty() || name.ends_with(char::is_whitespace) {
            return Err(reject(400, "malformed header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }

    let mut request = RecordedRequest {
        method,
        path,
        headers,
        body: Vec::new(),
        received: std::time::Instant::now(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match request.header("content-length") {
        Some(v) if !chunked => Some(
            v.parse::<u64>()
                .map_err(|_| reject(400, "invalid Content-Length"))?,
        ),
        _ => None,
    };
    if length.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(reject(413, "request body too large"));
    }
    let expects_body = chunked || length.is_some_and(|n| n > 0);
    let wants_continue = request
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"));
    if expects_body && wants_continue {
        on_continue()?;
    }
    request.body = if chunked {
        read_chunked(r, &mut budget)?
    } else if let Some(n) = length {
        let mut body = Vec::new();
        r.by_ref().take(n).read_to_end(&mut body)?;
        if body.len() as u64 != n {
            return Err(ReadError::Gone);
        }
        body
    } else {
        Vec::new()
    };
    Ok(request)
}

/// Decodes a `Transfer-Encoding: chunked` body; trailers are charged to the head budget and dropped.
fn read_chunked(r: &mut impl BufRead, head_budget: &mut usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut line_budget = MAX_CHUNK_LINE;
        let line = read_line(r, &mut line_budget, 400)?;
        let line = String::from_utf8(line).map_err(|_| reject(400, "bad chunk size"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| reject(400, "bad chunk size"))?;
        if size == 0 {
            break;
        }
        if body.len() as u64 + size > MAX_BODY as u64 {
            return Err(reject(413, "request body too large"));
        }
        let before = body.len();
        r.by_ref().take(size).read_to_end(&mut body)?;
        if (body.len() - before) as u64 != size {
            return Err(ReadError::Gone);
        }
        let mut crlf_budget = 2;
        if !read_line(r, &mut crlf_budget, 400)?.is_empty() {
            return Err(reject(400, "chunk not followed by CRLF"));
        }
    }
    while !read_line(r, head_budget, 431)?.is_empty() {}
    Ok(body)
}

/// The reason phrase for a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
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

/// Writes a status line and headers, then `Connection: close` and the blank line.
pub fn write_head(
    w: &mut impl Write,
    status: u16,
    headers: &[(impl AsRef<str>, impl AsRef<str>)],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (name, value) in headers {
        head.push_str(name.as_ref());
        head.push_str(": ");
        head.push_str(value.as_ref());
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    w.write_all(head.as_bytes())
}

/// Writes one chunk of a chunked response body (`data` must not be empty).
pub fn write_chunk(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    w.write_all(&frame)?;
    w.flush()
}

/// Writes the last chunk that ends a chunked response body.
pub fn write_last_chunk(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"0\r\n\r\n")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<RecordedRequest, ReadError> {
        read_request(&mut &raw[..], || Ok(()))
    }

    #[test]
    fn reads_content_length_body() {
        let req = parse(b"POST /v1/x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Y:  z \r\n\r\nhelloEXTRA").unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/v1/x?a=1");
        assert_eq!(req.header("x-y"), Some("z"));
        assert_eq!(req.header("HOST"), Some("h"));
        assert_eq!(req.body, b"hello");
    }

    #[test]
    fn reads_chunked_body_and_trailers() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n";
        let req = parse(raw).unwrap();
        assert_eq!(req.body, b"abc0123456789");
    }

    #[test]
    fn rejects_bad_and_oversized_requests() {
        assert!(matches!(
            parse(b"garbage\r\n\r\n"),
            Err(ReadError::Reject(400, _))
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nnocolon\r\n\r\n"),
            Err(ReadError::Reject(400, _))
        ));
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            parse(big.as_bytes()),
            Err(ReadError::Reject(413, _))
        ));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend_from_slice(&vec![b'a'; MAX_HEAD]);
        huge.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse(&huge), Err(ReadError::Reject(431, _))));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost"),
            Err(ReadError::Gone)
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort"),
            Err(ReadError::Gone)
        ));
    }

    #[test]
    fn answers_expect_continue_before_body() {
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
        let mut called = false;
        let req = read_request(&mut &raw[..], || {
            called = true;
            Ok(())
        })
        .unwrap();
        assert!(called);
        assert_eq!(req.body, b"ok");
    }

    #[test]
    fn writes_head_and_chunks() {
        let mut out = Vec::new();
        write_head(&mut out, 404, &[("A", "b")]).unwrap();
        write_chunk(&mut out, b"hello, world!!!!").unwrap();
        write_last_chunk(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\nA: b\r\nConnection: close\r\n\r\n10\r\nhello, world!!!!\r\n0\r\n\r\n"
        );
    }
}
