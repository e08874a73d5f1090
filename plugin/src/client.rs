//! The HTTP side: one ureq agent per instance, Moonshot's error envelope,
//! retries with backoff, and the mapping of transport failures to errors.

use std::io::Read;
use std::time::{Duration, Instant};

use ureq::http::Response;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectProxyConnector, Connector, NextTimeout, RustlsConnector,
};
use ureq::{Agent, Body, Timeout};

use crate::cancel::{self, CancelToken, CancellableTcpConnector, FirstByteConnector};
use crate::config::{ApiKey, Config, Retries, Timeouts};
use crate::error::{ErrorKind, ProviderError};
use crate::public_net::PublicOnlyConnector;
use crate::redact;

/// Largest error or non-stream body we read (a JSON completion is far smaller).
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Room for a response head and a burst of stream; bigger heads are refused.
/// Sized for 10,000 open streams: every connection holds both buffers,
/// zeroed (touched) when it opens, so each KiB here is 10 MB there.
/// Moonshot's heads are about 1 KB and SSE events a few hundred bytes: 6 KiB
/// holds a head padded by proxies and CDNs. The output buffer need only hold
/// the request's longest header line (the body goes through it in pieces):
/// the Authorization line, whence the config's cap on the key's length.
/// Measured (bench scale run, 10,000 streams): 8 and 4 KiB held 607 MB,
/// 6 and 2 KiB 564 MB; the fast stream's CPU per chunk moved less than
/// its run-to-run noise (three alternating runs each).
const INPUT_BUFFER_BYTES: usize = 6 * 1024;
const OUTPUT_BUFFER_BYTES: usize = 2 * 1024;

/// The media agent's buffers: its request line carries a caller's URL (a
/// pre-signed one runs to a few kilobytes, and ureq needs the longest line
/// to fit) and its answers come from any CDN. Fetches happen before a
/// stream starts and keep one idle connection, so the per-stream sizing
/// above does not apply.
const MEDIA_INPUT_BUFFER_BYTES: usize = 16 * 1024;
const MEDIA_OUTPUT_BUFFER_BYTES: usize = 8 * 1024;

pub struct Client {
    agent: Agent,
    /// A separate agent for media URLs: public addresses only (unless the
    /// operator allows private ones), no proxy, its own connection pool.
    media_agent: Agent,
    base_url: String,
    authorization: String,
    /// Kept to scrub it from anything an upstream sends back.
    api_key: ApiKey,
    timeouts: Timeouts,
    retries: Retries,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// ureq's resolver, minus its helper thread. Given a timeout, ureq's default
/// resolver spawns a detached thread per lookup and waits for it with that
/// timeout; the waiting pool thread is no more interruptible than a lookup
/// of its own, and the detached thread outlives `destroy`, which promises to
/// join every thread the instance started. So the lookup runs on the pool
/// thread (bounded by the system resolver's own timeouts).
#[derive(Debug, Default)]
struct ThreadlessResolver(DefaultResolver);

impl Resolver for ThreadlessResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // No deadline: DefaultResolver then resolves on the calling thread.
        self.0.resolve(uri, config, NextTimeout::default())
    }
}

/// The media fetches' agent. Its first connector refuses non-public
/// addresses (public_net.rs) unless `media.allow_private_networks`; there is
/// no proxy, so the addresses checked are the ones connected to. Media
/// fetches are short: one idle connection is plenty.
fn media_agent(config: &Config) -> Agent {
    let t = config.timeouts;
    let agent_config = Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(5)
        .timeout_connect(Some(t.connect))
        .timeout_recv_response(Some(t.first_byte))
        .timeout_per_read(Some(t.idle))
        .user_agent(concat!("moonshot-provider/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .input_buffer_size(MEDIA_INPUT_BUFFER_BYTES)
        .output_buffer_size(MEDIA_OUTPUT_BUFFER_BYTES)
        .build();
    let chain = |guard| {
        ().chain(guard)
            .chain(CancellableTcpConnector::default())
            .chain(RustlsConnector::default())
            .chain(FirstByteConnector)
    };
    let guard = PublicOnlyConnector {
        allow_private: config.media.allow_private_networks,
        allowed: config.media.allow_addresses.clone(),
    };
    Agent::with_parts(agent_config, chain(guard), ThreadlessResolver::default())
}

/// A response whose status was 2xx, with its request id.
pub struct Upstream {
    pub response: Response<Body>,
    pub request_id: Option<String>,
}

impl Client {
    pub fn new(config: &Config) -> Client {
        let t = config.timeouts;
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(t.connect))
            .timeout_recv_response(Some(t.first_byte))
            .timeout_per_read(Some(t.idle))
            .user_agent(concat!("moonshot-provider/", env!("CARGO_PKG_VERSION")))
            // Every pool thread may hold one Moonshot connection for reuse.
            .max_idle_connections(config.max_concurrency.max(4))
            .max_idle_connections_per_host(config.max_concurrency.max(4))
            // ureq's 128 KiB defaults, zeroed per connection, cost 285 KB per
            // open stream; SSE chunks are a few hundred bytes and request
            // bodies stream through the output buffer in pieces.
            .input_buffer_size(INPUT_BUFFER_BYTES)
            .output_buffer_size(OUTPUT_BUFFER_BYTES)
            .tls_config(config.tls.tls_config())
            .proxy(config.proxy.proxy().cloned())
            .build();
        // With a proxy, the CONNECT connector runs this same chain to reach
        // the proxy, then hands the tunnel on: TLS to Moonshot runs inside
        // it, so the proxy sees neither the key nor the bodies.
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(CancellableTcpConnector::default())
                .chain(RustlsConnector::default())
                .chain(FirstByteConnector);
        Client {
            agent: Agent::with_parts(agent_config, connector, ThreadlessResolver::default()),
            media_agent: media_agent(config),
            base_url: config.base_url.clone(),
            authorization: format!("Bearer {}", config.api_key.expose()),
            api_key: config.api_key.clone(),
            timeouts: t,
            retries: config.retries,
        }
    }

    /// The agent for media URLs (it never carries the API key).
    pub fn media_agent(&self) -> &Agent {
        &self.media_agent
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// POSTs JSON to `path`, retrying retryable failures with backoff until
    /// `deadline`. Returns the first 2xx response, its body unread.
    pub fn post_json(
        &self,
        path: &str,
        body: &[u8],
        cancel: &CancelToken,
        deadline: Instant,
    ) -> Result<Upstream, ProviderError> {
        let mut attempt = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(ProviderError::cancelled());
            }
            let err = match self.post_once(path, body, deadline) {
                Ok(upstream) => return Ok(upstream),
                Err(err) => err,
            };
            let err = if cancel.is_cancelled() {
                ProviderError::cancelled()
            } else {
                err
            };
            if !err.retryable || attempt >= self.retries.max {
                return Err(err);
            }
            let wait = backoff(&self.retries, attempt, err.retry_after_secs);
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            if cancel.sleep(wait) {
                return Err(ProviderError::cancelled());
            }
            attempt += 1;
        }
    }

    /// Asks Moonshot's tokenizer how many prompt tokens `messages` are, for
    /// streams that ended without usage. None when it cannot answer.
    pub fn estimate_prompt_tokens(
        &self,
        model: serde_json::Value,
        messages: &serde_json::Value,
        cancel: &CancelToken,
        deadline: Instant,
    ) -> Option<u64> {
        let body = serde_json::json!({"model": model, "messages": messages}).to_string();
        // One short attempt: this is a courtesy, not worth retries.
        let deadline =
            deadline.min(Instant::now() + self.timeouts.first_byte.min(Duration::from_secs(10)));
        if cancel.is_cancelled() {
            return None;
        }
        let upstream = self
            .post_once(
                "/tokenizers/estimate-token-count",
                body.as_bytes(),
                deadline,
            )
            .ok()?;
        let text = read_body_text(upstream.response.into_body(), &self.timeouts).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        value["data"]["total_tokens"].as_u64()
    }

    fn post_once(
        &self,
        path: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Upstream, ProviderError> {
        let remaining = self.remaining(deadline)?;
        cancel::begin_attempt();
        let result = self
            .agent
            .post(self.url(path))
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .config()
            .timeout_global(Some(remaining))
            .build()
            .send(body);
        self.answer(result)
    }

    /// GETs `path` once (the live model list, the balance): no retry, so an
    /// operator sees the service as it is. Returns the 2xx response, body unread.
    pub fn get_once(&self, path: &str, deadline: Instant) -> Result<Upstream, ProviderError> {
        let remaining = self.remaining(deadline)?;
        cancel::begin_attempt();
        let result = self
            .agent
            .get(self.url(path))
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(remaining))
            .build()
            .call();
        self.answer(result)
    }

    /// Time left before `deadline`, or the total timeout's error.
    fn remaining(&self, deadline: Instant) -> Result<Duration, ProviderError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timeout_error(Timeout::Global, &self.timeouts));
        }
        Ok(remaining)
    }

    /// One exchange's outcome: a 2xx response with its body unread, or the
    /// error its status and body describe (Moonshot's id and wait kept).
    fn answer(
        &self,
        result: Result<Response<Body>, ureq::Error>,
    ) -> Result<Upstream, ProviderError> {
        let stage = if cancel::request_written() {
            Stage::RequestSent
        } else {
            Stage::NothingSent
        };
        let response = result.map_err(|e| transport_error(e, &self.timeouts, stage))?;
        let request_id = request_id(&response).map(|id| self.scrub(id));
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Upstream {
                response,
                request_id,
            });
        }
        let retry_after =
            header(&response, "retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let text = read_body_text(response.into_body(), &self.timeouts).unwrap_or_default();
        // Before the message is cut to a snippet, which could keep half a key.
        let text = self.scrub(text);
        let mut err = upstream_error(status, &text);
        err.request_id = request_id;
        err.retry_after_secs = retry_after.or(err.retry_after_secs);
        Err(err)
    }

    /// An upstream that echoes the key (a misconfigured proxy, a hostile
    /// server) does not get it into the host's logs through us.
    fn scrub(&self, text: String) -> String {
        let key = self.api_key.expose();
        if !key.is_empty() && text.contains(key) {
            text.replace(key, "[redacted]")
        } else {
            text
        }
    }
}

/// The id Moonshot gives a request: `Msh-Request-Id`, else its trace id;
/// the generic `x-request-id` (proxies, compatible servers) as a fallback.
fn request_id(response: &Response<Body>) -> Option<String> {
    [
        "msh-request-id",
        "x-msh-trace-id",
        "x-request-id",
        "x-trace-id",
    ]
    .iter()
    .find_map(|name| header(response, name).filter(|id| !id.trim().is_empty()))
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Reads a whole (bounded) body as UTF-8 text.
pub fn read_body_text(body: Body, timeouts: &Timeouts) -> Result<String, ProviderError> {
    let mut text = String::new();
    body.into_with_config()
        .limit(MAX_BODY_BYTES)
        .reader()
        .read_to_string(&mut text)
        .map_err(|e| io_error(e, timeouts))?;
    Ok(text)
}

/// Maps Moonshot's error envelope `{"error":{"type","message"}}` (or any
/// other body, such as a proxy's HTML page) to an error, deciding
/// retryability per MOONSHOT-API.md §8.
pub fn upstream_error(status: u16, body: &str) -> ProviderError {
    let envelope: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let error = envelope.as_ref().and_then(|v| v.get("error"));
    let error_type = error
        .and_then(|e| e.get("type"))
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let snippet: String = body.chars().take(200).collect();
            format!("HTTP {status} from upstream: {}", snippet.trim())
        });
    let quota = error_type.as_deref() == Some("exceeded_current_quota_error");
    let retryable = match status {
        429 => !quota,
        500 | 502 | 503 | 504 => true,
        _ => false,
    };
    let mut err = ProviderError::new(ErrorKind::Upstream, message.clone())
        .with_code(error_type.unwrap_or_else(|| format!("http_{status}")))
        .retryable(retryable);
    err.http_status = Some(status);
    // Read the wait before the account ids go: the hint must still count.
    err.retry_after_secs = seconds_in_message(&message);
    err.message = redact::account_ids(&message);
    err
}

/// Finds N in Moonshot's "please try again after N seconds".
fn seconds_in_message(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("after ")? + "after ".len();
    let digits: String = lower[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let rest = lower[at + digits.len()..].trim_start();
    if rest.starts_with("second") || rest.starts_with('s') {
        digits.parse().ok()
    } else {
        None
    }
}

/// Jittered exponential backoff, or what Moonshot asked for; capped.
fn backoff(retries: &Retries, attempt: u32, asked_secs: Option<u64>) -> Duration {
    if let Some(secs) = asked_secs {
        return Duration::from_secs(secs).min(retries.max_delay);
    }
    let exp = retries.base_delay.saturating_mul(1u32 << attempt.min(16));
    // Jitter in [50%, 100%] from the clock's low bits: enough to spread a herd.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
        ^ std::process::id() as u64;
    let spread = 50 + (nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 51;
    (exp * spread as u32 / 100).min(retries.max_delay)
}

fn timeout_error(which: Timeout, t: &Timeouts) -> ProviderError {
    let (code, message) = match which {
        Timeout::Connect | Timeout::Resolve => (
            "connect_timeout",
            format!("could not connect within {} ms", t.connect.as_millis()),
        ),
        Timeout::RecvResponse | Timeout::SendRequest | Timeout::SendBody => (
            "first_byte_timeout",
            format!(
                "no response within {} ms of sending the request",
                t.first_byte.as_millis()
            ),
        ),
        Timeout::PerRead => (
            "idle_timeout",
            format!("upstream sent nothing for {} ms", t.idle.as_millis()),
        ),
        _ => (
            "total_timeout",
            format!(
                "the request took longer than its total timeout of {} ms",
                t.total.as_millis()
            ),
        ),
    };
    ProviderError::new(ErrorKind::Timeout, message).with_code(code)
}

/// How far an attempt had got when it failed: whether sending it again
/// could make Moonshot answer (and bill) the same request twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// No byte of the HTTP request reached the connection (resolving,
    /// connecting, the TLS handshake, a proxy's tunnel): safe to repeat.
    NothingSent,
    /// The request was being written or awaited its response: Moonshot may
    /// have read it, so it is never sent again (RFC 9110 §9.2.2).
    RequestSent,
    /// The response had started.
    Responding,
}

/// Maps a ureq error met at `stage`. Transient failures are retryable only
/// when nothing was sent.
pub fn transport_error(e: ureq::Error, t: &Timeouts, stage: Stage) -> ProviderError {
    let before_response = stage != Stage::Responding;
    let repeatable = stage == Stage::NothingSent;
    match e {
        // Waiting for headers, a per-read expiry means the first byte is late.
        ureq::Error::Timeout(Timeout::PerRead) if before_response => {
            timeout_error(Timeout::RecvResponse, t)
        }
        ureq::Error::Timeout(which @ (Timeout::Connect | Timeout::Resolve)) => {
            timeout_error(which, t).retryable(repeatable)
        }
        ureq::Error::Timeout(which) => timeout_error(which, t),
        ureq::Error::Io(io) => match crate::tls::failure(&io) {
            Some(tls) => tls,
            None => {
                let mut err = io_error(io, t);
                if stage == Stage::RequestSent && err.kind == ErrorKind::Transport {
                    err.message.push_str(
                        "; the request may have reached the upstream, so it was not retried",
                    );
                }
                err.retryable(repeatable)
            }
        },
        ureq::Error::Rustls(tls) => crate::tls::describe(&tls),
        // ureq's reason is the proxy's status line, never its URL.
        ureq::Error::ConnectProxyFailed(reason) => ProviderError::new(
            ErrorKind::Transport,
            format!("the proxy refused to open a tunnel to the upstream: {reason}"),
        )
        .with_code("proxy_refused"),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            ProviderError::new(ErrorKind::Transport, format!("could not connect: {e}"))
                .retryable(repeatable)
        }
        other => ProviderError::new(ErrorKind::Transport, format!("HTTP failure: {other}"))
            .retryable(false),
    }
}

/// Maps an I/O error met while reading a body (ureq wraps its own errors,
/// timeouts included, inside io::Error).
pub fn io_error(e: std::io::Error, t: &Timeouts) -> ProviderError {
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>());
    match inner {
        Some(ureq::Error::Timeout(which)) => return timeout_error(*which, t),
        Some(ureq::Error::BodyExceedsLimit(limit)) => {
            return ProviderError::new(
                ErrorKind::Protocol,
                format!("the upstream's answer is larger than the {limit} bytes we accept"),
            )
            .with_code("response_too_large")
        }
        _ => {}
    }
    if e.kind() == std::io::ErrorKind::TimedOut {
        return timeout_error(Timeout::PerRead, t);
    }
    ProviderError::new(ErrorKind::Transport, format!("connection failed: {e}"))
}

/// The parts of a 2xx response the chat job reads, so that ureq's body type
/// stays inside this module.
impl Upstream {
    /// The response's content type, lower-cased; empty when absent.
    pub fn content_type(&self) -> String {
        header(&self.response, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// The whole (bounded) body as UTF-8 text.
    pub fn read_text(self, timeouts: &Timeouts) -> Result<String, ProviderError> {
        read_body_text(self.response.into_body(), timeouts)
    }

    /// The body as a reader, for an event stream read as it arrives.
    pub fn into_reader(self) -> BodyReader {
        BodyReader(self.response.into_body().into_reader())
    }
}

/// A response body read as it arrives; the agent's read timeouts apply.
/// Reading it to the end returns its connection to the agent's pool.
pub struct BodyReader(ureq::BodyReader<'static>);

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_identifiers_never_leave_an_upstream_message() {
        let err = upstream_error(
            429,
            r#"{"error":{"type":"rate_limit_reached_error","message":"Your account org-0123456789abcdef0123456789abcdef<ak-abcd1234efgh5678ijkl> request reached organization max RPM: 3, please try again after 1 seconds"}}"#,
        );
        assert_eq!(
            err.message,
            "Your account org-[redacted]<ak-[redacted]> request reached organization max RPM: 3, please try again after 1 seconds"
        );
        assert_eq!(err.retry_after_secs, Some(1));
    }

    #[test]
    fn rate_limit_is_retryable_and_reads_the_wait() {
        let err = upstream_error(
            429,
            r#"{"error":{"type":"rate_limit_reached_error","message":"Your account org-1 request reached max RPM: 3, please try again after 1 seconds"}}"#,
        );
        assert_eq!(err.code, "rate_limit_reached_error");
        assert!(err.retryable);
        assert_eq!(err.retry_after_secs, Some(1));
        assert_eq!(err.http_status, Some(429));
        assert!(err
            .message
            .starts_with("Your account org-[redacted] request"));
    }

    #[test]
    fn quota_is_never_retried() {
        let err = upstream_error(
            429,
            r#"{"error":{"type":"exceeded_current_quota_error","message":"Your account is suspended"}}"#,
        );
        assert!(!err.retryable);
    }

    #[test]
    fn client_errors_are_not_retried_and_server_errors_are() {
        for status in [400, 401, 403, 404] {
            assert!(!upstream_error(status, "{}").retryable, "{status}");
        }
        for status in [500, 502, 503, 504] {
            assert!(upstream_error(status, "{}").retryable, "{status}");
        }
    }

    #[test]
    fn html_error_pages_become_readable_errors() {
        let err = upstream_error(502, "<html><body>Bad Gateway</body></html>");
        assert_eq!(err.code, "http_502");
        assert!(err.message.contains("Bad Gateway"));
    }

    #[test]
    fn backoff_is_capped_and_honours_the_ask() {
        let r = Retries {
            max: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        assert_eq!(backoff(&r, 0, Some(1)), Duration::from_secs(1));
        assert_eq!(backoff(&r, 0, Some(60)), Duration::from_secs(2));
        let d = backoff(&r, 1, None);
        assert!(
            d >= Duration::from_millis(100) && d <= Duration::from_millis(200),
            "{d:?}"
        );
        assert!(backoff(&r, 15, None) <= Duration::from_secs(2));
    }

    fn timeouts() -> Timeouts {
        let ms = Duration::from_millis;
        Timeouts {
            connect: ms(1),
            first_byte: ms(2),
            idle: ms(3),
            total: ms(4),
        }
    }

    #[test]
    fn only_what_sent_nothing_is_retryable() {
        use std::io::ErrorKind as Io;
        let t = timeouts();
        for which in [Timeout::Connect, Timeout::Resolve] {
            let err = transport_error(ureq::Error::Timeout(which), &t, Stage::NothingSent);
            assert_eq!(err.code, "connect_timeout");
            assert!(err.retryable, "{which:?}");
        }
        // Refused, a failed DNS lookup (ureq's resolver gives an
        // uncategorised io error), a TLS handshake cut by a reset or a close:
        // no byte of the request was written, so all are safe to repeat.
        let dns = std::io::Error::other("failed to lookup address information");
        for io in [
            Io::ConnectionRefused.into(),
            dns,
            Io::ConnectionReset.into(),
            Io::UnexpectedEof.into(),
        ] {
            let kind = io.kind();
            let err = transport_error(ureq::Error::Io(io), &t, Stage::NothingSent);
            assert!(err.retryable, "{kind:?}");
            assert!(!err.message.contains("may have reached"), "{kind:?}");
        }
        // The same failures once the request was written may come after
        // Moonshot read it.
        for kind in [Io::ConnectionReset, Io::UnexpectedEof, Io::HostUnreachable] {
            let err = transport_error(ureq::Error::Io(kind.into()), &t, Stage::RequestSent);
            assert!(!err.retryable, "{kind:?}");
            assert!(
                err.message.contains("may have reached the upstream"),
                "{kind:?}"
            );
        }
        for which in [Timeout::RecvResponse, Timeout::Global] {
            let err = transport_error(ureq::Error::Timeout(which), &t, Stage::RequestSent);
            assert!(!err.retryable);
        }
        let cut = ureq::Error::Io(Io::ConnectionReset.into());
        assert!(!transport_error(cut, &t, Stage::Responding).retryable);
    }

    #[test]
    fn each_clock_has_its_code() {
        let t = timeouts();
        let code = |which| transport_error(ureq::Error::Timeout(which), &t, Stage::Responding).code;
        assert_eq!(code(Timeout::Connect), "connect_timeout");
        assert_eq!(code(Timeout::RecvResponse), "first_byte_timeout");
        assert_eq!(code(Timeout::PerRead), "idle_timeout");
        assert_eq!(code(Timeout::Global), "total_timeout");
    }

    #[test]
    fn an_oversized_body_is_a_protocol_error() {
        let io = ureq::Error::BodyExceedsLimit(64).into_io();
        let err = io_error(io, &timeouts());
        assert_eq!(err.kind, ErrorKind::Protocol);
        assert_eq!(err.code, "response_too_large");
        assert!(err.message.contains("64 bytes"), "{}", err.message);
    }

    #[test]
    fn the_key_is_scrubbed_from_what_upstream_sends() {
        let config = Config::from_json(r#"{"apiKey":"sk-scrub-me-123"}"#).unwrap();
        let client = Client::new(&config);
        assert_eq!(
            client.scrub("bad key sk-scrub-me-123!".into()),
            "bad key [redacted]!"
        );
        assert_eq!(client.scrub("nothing".into()), "nothing");
        assert!(!format!("{client:?}").contains("sk-scrub-me-123"));
    }

    #[test]
    fn seconds_in_messages() {
        assert_eq!(
            seconds_in_message("please try again after 7 seconds"),
            Some(7)
        );
        assert_eq!(seconds_in_message("try again after 3s"), Some(3));
        assert_eq!(seconds_in_message("after lunch"), None);
    }
}
