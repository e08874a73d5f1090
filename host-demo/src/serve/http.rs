//! The answers serve sends through hyper: JSON with a length, an empty
//! preflight answer, an NDJSON stream.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

/// Headers added to one answer (CORS, Allow, ...).
pub type Headers = Vec<(&'static str, String)>;

/// Every answer's body: whole, or streamed part by part.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// An answer with a body and the given extra headers. A header value that
/// is not valid HTTP is left out rather than sent.
pub fn answer(
    status: u16,
    base: &[(&'static str, &str)],
    extra: &Headers,
    body: Body,
) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let all = base
        .iter()
        .map(|(n, v)| (*n, *v))
        .chain(extra.iter().map(|(n, v)| (*n, v.as_str())));
    for (name, value) in all {
        // hyper writes names title-cased on the wire (`title_case_headers`).
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A whole JSON answer. Every answer carries a Content-Type: puter.js's
/// Node transport hangs on a response without one. (hyper adds the length.)
pub fn json(status: u16, extra: &Headers, body: &serde_json::Value) -> Response<Body> {
    let payload = Full::new(Bytes::from(body.to_string())).boxed_unsync();
    let base = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Cache-Control", "no-store"),
    ];
    answer(status, &base, extra, payload)
}

/// An answer without a body (a CORS preflight).
pub fn empty(status: u16, extra: &Headers) -> Response<Body> {
    answer(
        status,
        &[("Content-Type", "text/plain")],
        extra,
        Full::new(Bytes::new()).boxed_unsync(),
    )
}

/// A 200 NDJSON stream whose body delivers one line per frame; hyper sends
/// each frame as one chunk, so a chunk always ends on a line (so on a
/// character) boundary, which matters to puter.js, whose Node transport
/// re-decodes the whole body on every network read.
pub fn ndjson(extra: &Headers, lines: Body) -> Response<Body> {
    let base = [
        ("Content-Type", "application/x-ndjson"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ];
    answer(200, &base, extra, lines)
}

/// One NDJSON line.
pub fn line(json: &str) -> Bytes {
    let mut line = Vec::with_capacity(json.len() + 1);
    line.extend_from_slice(json.as_bytes());
    line.push(b'\n');
    Bytes::from(line)
}

/// An answer's body that holds something (the connection's in-request
/// mark) until hyper is done with it: written to the end, or dropped.
pub struct Guarded<G> {
    body: Body,
    _guard: G,
}

impl<G: Send + Unpin + 'static> Guarded<G> {
    pub fn boxed(body: Body, guard: G) -> Body {
        Guarded {
            body,
            _guard: guard,
        }
        .boxed_unsync()
    }
}

impl<G: Unpin> hyper::body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_carry_their_headers_and_drop_invalid_values() {
        let cors: Headers = vec![
            (
                "Access-Control-Allow-Origin",
                "http://localhost:5173".into(),
            ),
            ("Vary", "bad\rvalue".into()),
        ];
        let response = json(400, &cors, &serde_json::json!({"a": "é"}));
        assert_eq!(response.status(), 400);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://localhost:5173"
        );
        assert!(headers.get("vary").is_none());
        assert_eq!(line(r#"{"t":"你"}"#), Bytes::from("{\"t\":\"你\"}\n"));
    }
}
