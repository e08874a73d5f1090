//! The answer the bench upstream streams: a Kimi-shaped reply of about 500
//! SSE chunks of a few tokens each, reasoning first, then content, then a
//! finishing chunk carrying `choices[0].usage`, then `data: [DONE]`.
//!
//! Everything is computed once: the text, each chunk's JSON, and the exact
//! bytes on the wire (HTTP/1.1 chunked encoding, one HTTP chunk per SSE
//! event, as a streaming server that flushes per event sends them).

use serde_json::json;

/// The model every bench request names and every chunk reports.
pub const MODEL: &str = "kimi-k2.6";

/// The user message every client sends.
pub const PROMPT: &str =
    "Explain, step by step, how a shared library can expose a stable C ABI to many hosts.";

/// Tokens reported in the finishing chunk's usage.
pub const PROMPT_TOKENS: u64 = 21;

/// How many chunk JSONs go to reasoning; the rest (but the last) to content.
const REASONING_SHARE: f64 = 0.3;

/// Words the text is made of: mostly ASCII, some punctuation, a line break,
/// a quote and some CJK, so that escaping and UTF-8 are exercised as in a
/// real answer.
const WORDS: &[&str] = &[
    " the",
    " library",
    " exports",
    " one",
    " entry",
    " point",
    ",",
    " and",
    " a",
    " host",
    " calls",
    " it",
    " with",
    " its",
    " version",
    ".",
    " Each",
    " table",
    " only",
    " grows",
    " at",
    " its",
    " end",
    ";",
    " callbacks",
    " run",
    " on",
    " plugin",
    " threads",
    " \"borrowed\"",
    " data",
    "\n",
    " 稳定",
    "的",
    "接口",
    " so",
    " that",
    " nothing",
    " breaks",
    ":",
    " layout",
    " checks",
    " matter",
    "!",
];

/// A precomputed streamed answer and everything needed to check a client's
/// view of it.
pub struct CannedStream {
    /// The JSON text of each SSE data payload, in order, `[DONE]` excluded.
    pub chunks: Vec<String>,
    /// How many of `chunks` carry reasoning (they come first).
    pub reasoning_chunks: usize,
    /// How many carry content (after the reasoning ones).
    pub content_chunks: usize,
    /// The whole reasoning and content texts.
    pub reasoning: String,
    pub content: String,
    pub completion_tokens: u64,
    /// Response status line and headers, ending with the blank line.
    pub head: Vec<u8>,
    /// Each SSE event (the chunks then `[DONE]`) framed as one HTTP chunk.
    pub frames: Vec<Vec<u8>>,
    /// The terminating zero-length HTTP chunk.
    pub trailer: &'static [u8],
    /// `head`, every frame and the trailer: one fast response.
    pub response: Vec<u8>,
    /// The body bytes alone (frames and trailer), for the wire floor's check.
    pub body_len: usize,
}

impl CannedStream {
    /// An answer of `total_chunks` chunk JSONs (at least 3).
    pub fn new(total_chunks: usize) -> CannedStream {
        let total_chunks = total_chunks.max(3);
        let text_chunks = total_chunks - 1;
        let reasoning_chunks = ((text_chunks as f64) * REASONING_SHARE).round() as usize;
        let reasoning_chunks = reasoning_chunks.clamp(1, text_chunks - 1);
        let content_chunks = text_chunks - reasoning_chunks;

        let mut seed: u64 = 0x5eed_cafe_f00d_1234;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        let mut piece = || {
            // A few tokens: 1 to 4 words.
            let words = 1 + next() % 4;
            (0..words)
                .map(|_| WORDS[next() % WORDS.len()])
                .collect::<String>()
        };

        let mut chunks = Vec::with_capacity(total_chunks);
        let mut reasoning = String::new();
        let mut content = String::new();
        // Every chunk of the answer around its one choice.
        let chunk = |choice: serde_json::Value| {
            json!({
                "id": "chatcmpl-bench-0123456789abcdef",
                "object": "chat.completion.chunk",
                "created": 1_767_225_600u64,
                "model": MODEL,
                "choices": [choice],
            })
            .to_string()
        };
        for i in 0..text_chunks {
            let text = piece();
            let delta = if i < reasoning_chunks {
                reasoning.push_str(&text);
                if i == 0 {
                    json!({"role": "assistant", "reasoning_content": text})
                } else {
                    json!({"reasoning_content": text})
                }
            } else {
                content.push_str(&text);
                json!({"content": text})
            };
            chunks.push(chunk(
                json!({"index": 0, "delta": delta, "finish_reason": null}),
            ));
        }
        let completion_tokens = text_chunks as u64 * 2;
        chunks.push(chunk(json!({
            "index": 0,
            "delta": {},
            "finish_reason": "stop",
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": completion_tokens,
                "total_tokens": PROMPT_TOKENS + completion_tokens,
                "cached_tokens": 0,
            },
        })));

        let head = b"HTTP/1.1 200 OK\r\n\
            Content-Type: text/event-stream; charset=utf-8\r\n\
            Cache-Control: no-cache\r\n\
            Transfer-Encoding: chunked\r\n\
            Connection: keep-alive\r\n\r\n"
            .to_vec();
        let mut frames: Vec<Vec<u8>> = chunks
            .iter()
            .map(|c| frame(format!("data: {c}\n\n").as_bytes()))
            .collect();
        frames.push(frame(b"data: [DONE]\n\n"));
        let trailer: &'static [u8] = b"0\r\n\r\n";
        let body_len = frames.iter().map(Vec::len).sum::<usize>() + trailer.len();
        let mut response = head.clone();
        for f in &frames {
            response.extend_from_slice(f);
        }
        response.extend_from_slice(trailer);

        CannedStream {
            chunks,
            reasoning_chunks,
            content_chunks,
            reasoning,
            content,
            completion_tokens,
            head,
            frames,
            trailer,
            response,
            body_len,
        }
    }

    /// Chunk JSONs per response (what "chunks/s" counts).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

/// One HTTP/1.1 chunk: hex size, CRLF, data, CRLF.
fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The Moonshot request body the floors and the node client send; the
/// plugin builds its own from [`puter_request`].
pub fn moonshot_request() -> String {
    json!({
        "model": MODEL,
        "stream": true,
        "messages": [{"role": "user", "content": PROMPT}],
    })
    .to_string()
}

/// The request the plugin gets through `complete` (ICompleteArguments).
pub fn puter_request() -> String {
    moonshot_request()
}
