//! An HTTP client for servers that behave: control APIs, health checks,
//! counters. Tests that need raw bytes or faults open a `TcpStream`.

use std::io::BufRead;
use std::time::Duration;

use serde_json::Value;

/// How long one request may take, end to end.
const LIMIT: Duration = Duration::from_secs(10);

/// One request to `url`; `body`, when given, is sent as JSON (POST, PUT);
/// the status and the whole body as text, whatever the status.
pub fn request(method: &str, url: &str, body: Option<&Value>) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(LIMIT))
        .build()
        .into();
    let json = body.map(Value::to_string).unwrap_or_default();
    let response = match method {
        "GET" => agent.get(url).call(),
        "DELETE" => agent.delete(url).call(),
        "POST" => agent
            .post(url)
            .header("content-type", "application/json")
            .send(json),
        "PUT" => agent
            .put(url)
            .header("content-type", "application/json")
            .send(json),
        _ => return Err(format!("{method} is not supported")),
    };
    let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
    Ok((status, text))
}

/// For hand-made upstreams on a raw socket: reads one request's head and
/// its `Content-Length` body from `reader`, and returns the body.
pub fn read_request(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}
