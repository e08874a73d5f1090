//! The two floors: plain HTTP/1.1 keep-alive clients over a TcpStream.
//!
//! The wire floor only reads the response bytes off the socket (finding the
//! end of the chunked body); its time to first part is the first body byte.
//! The decode floor does what any client must: de-chunk the body, split SSE
//! lines, and parse every data payload into a `serde_json::Value`, done
//! plainly; its first part is the first parsed payload.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::canned_stream::{self, CannedStream};
use super::figures::Worker;

/// The request bytes both floors send (the same body the node client sends).
pub fn request_bytes(port: u16) -> Arc<[u8]> {
    let body = canned_stream::moonshot_request();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\n\
         Host: 127.0.0.1:{port}\r\n\
         Authorization: Bearer sk-bench\r\n\
         Content-Type: application/json\r\n\
         Accept: text/event-stream\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into()
}

/// Raw on purpose: the floors measure the bytes on the wire with no HTTP
/// client's work in between.
fn connect(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

const TERMINATOR: &[u8] = b"\r\n0\r\n\r\n";

pub struct WireFloor {
    port: u16,
    request: Arc<[u8]>,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    body_len: usize,
}

impl WireFloor {
    pub fn new(port: u16, answer: &CannedStream) -> WireFloor {
        WireFloor {
            port,
            request: request_bytes(port),
            stream: None,
            buffer: vec![0; 16 * 1024],
            body_len: answer.body_len,
        }
    }
}

impl Worker for WireFloor {
    fn request(&mut self) -> Result<Duration, String> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.port)?);
        }
        let result = self.exchange();
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

impl WireFloor {
    fn exchange(&mut self) -> Result<Duration, String> {
        let stream = self.stream.as_mut().expect("connected");
        let start = Instant::now();
        stream.write_all(&self.request).map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut in_body = false;
        let mut body = 0usize;
        let mut first = None;
        let mut tail = Vec::with_capacity(2 * TERMINATOR.len());
        loop {
            let n = stream.read(&mut self.buffer).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed mid-response".into());
            }
            let mut data = &self.buffer[..n];
            if !in_body {
                head.extend_from_slice(data);
                let Some(at) = find(&head, b"\r\n\r\n") else {
                    continue;
                };
                if !head.starts_with(b"HTTP/1.1 200") {
                    return Err(String::from_utf8_lossy(&head[..at]).into_owned());
                }
                in_body = true;
                let already = head.len() - (at + 4);
                data = &self.buffer[n - already..n];
            }
            if data.is_empty() {
                continue;
            }
            first.get_or_insert_with(|| start.elapsed());
            body += data.len();
            tail.extend_from_slice(&data[data.len().saturating_sub(TERMINATOR.len())..]);
            if tail.len() > TERMINATOR.len() {
                tail.drain(..tail.len() - TERMINATOR.len());
            }
            if tail == TERMINATOR {
                break;
            }
        }
        if body != self.body_len {
            return Err(format!("body of {body} bytes, expected {}", self.body_len));
        }
        Ok(first.unwrap_or_default())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub struct DecodeFloor {
    port: u16,
    request: Arc<[u8]>,
    conn: Option<(BufReader<TcpStream>, TcpStream)>,
    line: String,
    chunk: Vec<u8>,
    pending: Vec<u8>,
    chunks: usize,
    text_len: usize,
}

impl DecodeFloor {
    pub fn new(port: u16, answer: &CannedStream) -> DecodeFloor {
        DecodeFloor {
            port,
            request: request_bytes(port),
            conn: None,
            line: String::new(),
            chunk: Vec::new(),
            pending: Vec::new(),
            chunks: answer.chunk_count(),
            text_len: answer.reasoning.len() + answer.content.len(),
        }
    }
}

impl Worker for DecodeFloor {
    fn request(&mut self) -> Result<Duration, String> {
        if self.conn.is_none() {
            let stream = connect(self.port)?;
            let reader = stream.try_clone().map_err(|e| e.to_string())?;
            self.conn = Some((BufReader::with_capacity(16 * 1024, reader), stream));
        }
        let result = self.exchange();
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

impl DecodeFloor {
    fn exchange(&mut self) -> Result<Duration, String> {
        let (reader, writer) = self.conn.as_mut().expect("connected");
        let line = &mut self.line;
        let io = |e: std::io::Error| e.to_string();
        let start = Instant::now();
        writer.write_all(&self.request).map_err(io)?;

        line.clear();
        reader.read_line(line).map_err(io)?;
        if !line.starts_with("HTTP/1.1 200") {
            return Err(format!("status line {:?}", line.trim_end()));
        }
        let mut chunked = false;
        loop {
            line.clear();
            if reader.read_line(line).map_err(io)? == 0 {
                return Err("connection closed in the headers".into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        if !chunked {
            return Err("expected a chunked body".into());
        }

        let mut first = None;
        let mut parsed = 0usize;
        let mut text_len = 0usize;
        let mut done = false;
        self.pending.clear();
        loop {
            // One HTTP chunk: size line, data, CRLF.
            line.clear();
            reader.read_line(line).map_err(io)?;
            let size = usize::from_str_radix(line.trim_end(), 16)
                .map_err(|_| format!("bad chunk size line {:?}", line.trim_end()))?;
            if size == 0 {
                line.clear();
                reader.read_line(line).map_err(io)?;
                break;
            }
            self.chunk.resize(size + 2, 0);
            reader.read_exact(&mut self.chunk).map_err(io)?;
            self.pending.extend_from_slice(&self.chunk[..size]);

            // Every complete SSE line in what we have so far.
            let mut used = 0;
            while let Some(end) = self.pending[used..].iter().position(|&b| b == b'\n') {
                let raw = &self.pending[used..used + end];
                used += end + 1;
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let Some(payload) = raw.strip_prefix(b"data:") else {
                    continue;
                };
                let payload = std::str::from_utf8(payload)
                    .map_err(|e| e.to_string())?
                    .trim();
                if payload == "[DONE]" {
                    done = true;
                    continue;
                }
                let value: Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
                first.get_or_insert_with(|| start.elapsed());
                parsed += 1;
                let delta = &value["choices"][0]["delta"];
                for field in ["content", "reasoning_content"] {
                    text_len += delta[field].as_str().map_or(0, str::len);
                }
            }
            self.pending.drain(..used);
        }
        if !done || parsed != self.chunks || text_len != self.text_len {
            return Err(format!(
                "incomplete: done {done}, {parsed} of {} chunks, {text_len} of {} text bytes",
                self.chunks, self.text_len
            ));
        }
        Ok(first.unwrap_or_default())
    }
}
