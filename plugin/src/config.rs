//! The instance configuration: Puter's provider block plus our own settings.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::catalog::RetiredPolicy;
use crate::date::{Clock, Date};
use crate::error::ProviderError;
use crate::proxy::ProxyChoice;
use crate::tls::{TlsSettings, Trust};

pub const DEFAULT_BASE_URL: &str = "https://api.moonshot.ai/v1";

/// Media defaults: 10 URLs, 48 MiB inlined (64 MiB once base64-encoded,
/// inside Moonshot's 100 MB body cap), 60 s for all fetches together.
pub const DEFAULT_MEDIA_MAX_ITEMS: usize = 10;
pub const DEFAULT_MEDIA_MAX_TOTAL_BYTES: u64 = 48 * 1024 * 1024;
pub const DEFAULT_MEDIA_DEADLINE_MS: u64 = 60_000;
/// 16 MiB of text, reasoning and tool arguments: far above any context
/// window's output (256k tokens are about 1 MiB), far below what hurts.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// A long conversation with tools is tens of thousands of values; a
/// million parse to at most ~64 MB beyond the request's own bytes.
pub const DEFAULT_MAX_REQUEST_VALUES: usize = 1_000_000;
/// Room for one request of the largest default size (110 MiB) with a
/// million values, or many ordinary ones; see admission.rs.
pub const DEFAULT_MAX_INFLIGHT_REQUEST_BYTES: usize = 256 * 1024 * 1024;
/// Most pool threads one instance may run: a thread a stream, with small
/// stacks (pool.rs), 10,000 streams fit in a few hundred megabytes.
pub const MAX_CONCURRENCY: usize = 16_384;

/// Pool threads' stacks, instead of std's 2 MiB. Measured: a plain stream
/// needs about 28 KiB in a release build (ureq's connect and run frames are
/// most of it); the deepest request the tests make (TLS handshake, tools,
/// a schema nested to serde_json's limit) needs more than 128 KiB and at
/// most 256 KiB in a debug build (network_tls's small-stack test). Twice
/// that leaves room for the host's callbacks, which run on these threads.
/// Only touched pages cost memory; the reservation is what 10,000 threads
/// must fit in (5 GiB of address space, not of RAM).
pub const DEFAULT_WORKER_STACK_KIB: usize = 512;
pub const MIN_WORKER_STACK_KIB: usize = 128;

/// The API key. Its Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The four clocks a request runs against; each ends it with its own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// From sending the request to the response's status line and headers.
    pub first_byte: Duration,
    /// Longest silence between two reads of a stream.
    pub idle: Duration,
    /// The whole request, retries included.
    pub total: Duration,
}

/// Retry policy for retryable failures (MOONSHOT-API.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retries {
    /// Retries after the first attempt.
    pub max: u32,
    pub base_delay: Duration,
    /// Cap on any single wait, including one Moonshot asked for.
    pub max_delay: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebSearch {
    /// Fee per `$web_search` tool-call response, in microcents ($0.005 default).
    pub fee_ucents: u64,
    /// Most search round trips in one completion.
    pub max_rounds: u32,
}

/// What media fetches may reach and consume (README "What the plugin
/// fetches and keeps").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// Fetch from loopback, private, link-local... addresses too.
    pub allow_private_networks: bool,
    /// Non-public addresses allowed one by one (an internal image server).
    pub allow_addresses: Vec<std::net::IpAddr>,
    /// Put the reason a fetch failed in the error message (operators only:
    /// it tells a caller which addresses answer).
    pub debug_errors: bool,
    /// Most http(s) media URLs in one request.
    pub max_items: usize,
    /// Most bytes inlined over all of a request's media.
    pub max_total_bytes: u64,
    /// One deadline for all of a request's fetches.
    pub deadline: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub api_key: ApiKey,
    pub base_url: String,
    pub timeouts: Timeouts,
    pub retries: Retries,
    /// Pool threads, i.e. requests running at once.
    pub max_concurrency: usize,
    /// Requests waiting for a thread before `complete` answers busy.
    pub max_queue: usize,
    pub retired_models: RetiredPolicy,
    pub clock: Clock,
    pub web_search: WebSearch,
    /// Largest request JSON `complete` accepts from the host.
    pub max_request_bytes: usize,
    pub media: Media,
    /// Most JSON values in one request (counted before parsing).
    pub max_request_values: usize,
    /// Most request bytes (plus a parse cost per value) the instance holds
    /// at once, queued and running requests together.
    pub max_inflight_request_bytes: usize,
    /// Most bytes of text, reasoning and tool arguments one answer may
    /// accumulate (all rounds together).
    pub max_answer_bytes: usize,
    /// The certificates HTTPS connections trust (the `tls` block).
    pub tls: Trust,
    /// The CONNECT proxy, from `proxy` or the environment.
    pub proxy: ProxyChoice,
    /// Stack of each pool thread (`worker_stack_kib`).
    pub worker_stack_bytes: usize,
}

/// The optional settings, as written in the JSON. Unknown fields are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Settings {
    base_url: Option<String>,
    #[serde(alias = "baseURL", alias = "baseUrl")]
    base_url_alt: Option<String>,
    timeouts: TimeoutSettings,
    retries: RetrySettings,
    max_concurrency: Option<usize>,
    max_queue: Option<usize>,
    retired_models: Option<String>,
    today: Option<String>,
    web_search: WebSearchSettings,
    max_request_bytes: Option<usize>,
    media: MediaSettings,
    max_answer_bytes: Option<usize>,
    max_request_values: Option<usize>,
    max_inflight_request_bytes: Option<usize>,
    tls: TlsSettings,
    proxy: Option<String>,
    worker_stack_kib: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MediaSettings {
    allow_private_networks: Option<bool>,
    allow_addresses: Vec<std::net::IpAddr>,
    debug_errors: Option<bool>,
    max_items: Option<usize>,
    max_total_bytes: Option<u64>,
    deadline_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TimeoutSettings {
    connect_ms: Option<u64>,
    first_byte_ms: Option<u64>,
    idle_ms: Option<u64>,
    total_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RetrySettings {
    max: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WebSearchSettings {
    fee_ucents: Option<u64>,
    max_rounds: Option<u32>,
}

/// Puter's key names, in #registerProviders' order of preference.
const KEY_FIELDS: [&str; 3] = ["apiKey", "secret_key", "key"];

/// Longest API key accepted (see `from_json`).
pub const MAX_API_KEY_BYTES: usize = 1024;

/// Longest `base_url` accepted (see `with_settings`).
pub const MAX_BASE_URL_BYTES: usize = 1024;

impl Config {
    /// Parses the provider block. Errors name the field but never echo a
    /// value, so a key put in the wrong place is not printed either.
    pub fn from_json(text: &str) -> Result<Config, ProviderError> {
        let mut root: Value = serde_json::from_str(text).map_err(|e| {
            ProviderError::invalid_argument(format!(
                "config is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let object = root
            .as_object_mut()
            .ok_or_else(|| ProviderError::invalid_argument("config must be a JSON object"))?;

        let mut api_key = None;
        for field in KEY_FIELDS {
            match object.remove(field) {
                Some(Value::String(key)) if api_key.is_none() && !key.trim().is_empty() => {
                    api_key = Some(ApiKey(key.trim().to_string()))
                }
                Some(Value::String(_)) | Some(Value::Null) | None => {}
                Some(_) => {
                    return Err(ProviderError::invalid_argument(format!(
                        "config field '{field}' must be a string"
                    )))
                }
            }
        }
        let api_key = api_key.ok_or_else(|| {
            ProviderError::invalid_argument(
                "config has no API key: set 'apiKey' (or 'secret_key' or 'key')",
            )
        })?;
        // The Authorization line must fit the connection's output buffer
        // (client.rs); Moonshot's keys are about 50 characters.
        if api_key.0.len() > MAX_API_KEY_BYTES {
            return Err(ProviderError::invalid_argument(format!(
                "the API key is longer than {MAX_API_KEY_BYTES} bytes: not a Moonshot key"
            )));
        }

        let settings: Settings = serde_json::from_value(root.clone()).map_err(|_| {
            // serde's message may quote the offending value: name the field instead.
            let field = root
                .as_object()
                .into_iter()
                .flatten()
                .find(|(name, value)| {
                    let alone =
                        Value::Object([((*name).clone(), (*value).clone())].into_iter().collect());
                    serde_json::from_value::<Settings>(alone).is_err()
                })
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            ProviderError::invalid_argument(format!(
                "config field '{field}' has a value of the wrong type"
            ))
        })?;
        Config::with_settings(api_key, settings)
    }

    fn with_settings(api_key: ApiKey, s: Settings) -> Result<Config, ProviderError> {
        let base_url = s
            .base_url
            .or(s.base_url_alt)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(ProviderError::invalid_argument(
                "config 'base_url' must start with https:// or http://",
            ));
        }
        // Its path goes into every request line, which must fit the
        // connection's output buffer like the Authorization line.
        if base_url.len() > MAX_BASE_URL_BYTES {
            return Err(ProviderError::invalid_argument(format!(
                "config 'base_url' is longer than {MAX_BASE_URL_BYTES} bytes"
            )));
        }
        let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default).max(1));
        let timeouts = Timeouts {
            connect: ms(s.timeouts.connect_ms, 10_000),
            first_byte: ms(s.timeouts.first_byte_ms, 120_000),
            idle: ms(s.timeouts.idle_ms, 90_000),
            total: ms(s.timeouts.total_ms, 900_000),
        };
        let retries = Retries {
            max: s.retries.max.unwrap_or(2).min(10),
            base_delay: ms(s.retries.base_delay_ms, 500),
            max_delay: ms(s.retries.max_delay_ms, 30_000),
        };
        let retired_models = match s.retired_models.as_deref() {
            None | Some("migrate") => RetiredPolicy::Migrate,
            Some("error") => RetiredPolicy::Error,
            Some(_) => {
                return Err(ProviderError::invalid_argument(
                    "config 'retired_models' must be \"migrate\" or \"error\"",
                ))
            }
        };
        let clock = match s.today.as_deref() {
            None => Clock::System,
            Some(day) => Clock::Fixed(Date::parse(day).ok_or_else(|| {
                ProviderError::invalid_argument("config 'today' must be a date YYYY-MM-DD")
            })?),
        };
        let max_concurrency = s.max_concurrency.unwrap_or(8);
        if max_concurrency == 0 || max_concurrency > MAX_CONCURRENCY {
            return Err(ProviderError::invalid_argument(format!(
                "config 'max_concurrency' must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        let tls = Trust::from_settings(s.tls)?;
        let proxy = ProxyChoice::from_setting(s.proxy.as_deref())?;
        let worker_stack_kib = s.worker_stack_kib.unwrap_or(DEFAULT_WORKER_STACK_KIB);
        if !(MIN_WORKER_STACK_KIB..=16 * 1024).contains(&worker_stack_kib) {
            return Err(ProviderError::invalid_argument(format!(
                "config 'worker_stack_kib' must be between {MIN_WORKER_STACK_KIB} and 16384"
            )));
        }
        Ok(Config {
            api_key,
            base_url,
            timeouts,
            retries,
            max_concurrency,
            max_queue: s.max_queue.unwrap_or(256),
            retired_models,
            clock,
            web_search: WebSearch {
                fee_ucents: s.web_search.fee_ucents.unwrap_or(500_000),
                max_rounds: s.web_search.max_rounds.unwrap_or(5).max(1),
            },
            max_request_bytes: s.max_request_bytes.unwrap_or(110 * 1024 * 1024),
            media: Media {
                allow_private_networks: s.media.allow_private_networks.unwrap_or(false),
                allow_addresses: s.media.allow_addresses,
                debug_errors: s.media.debug_errors.unwrap_or(false),
                max_items: s.media.max_items.unwrap_or(DEFAULT_MEDIA_MAX_ITEMS),
                max_total_bytes: s
                    .media
                    .max_total_bytes
                    .unwrap_or(DEFAULT_MEDIA_MAX_TOTAL_BYTES),
                deadline: ms(s.media.deadline_ms, DEFAULT_MEDIA_DEADLINE_MS),
            },
            max_answer_bytes: s.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES),
            max_request_values: s.max_request_values.unwrap_or(DEFAULT_MAX_REQUEST_VALUES),
            max_inflight_request_bytes: s
                .max_inflight_request_bytes
                .unwrap_or(DEFAULT_MAX_INFLIGHT_REQUEST_BYTES),
            tls,
            proxy,
            worker_stack_bytes: worker_stack_kib * 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_key_in_puters_order() {
        let c = Config::from_json(r#"{"secret_key":"sk-b","key":"sk-c"}"#).unwrap();
        assert_eq!(c.api_key.expose(), "sk-b");
        let c = Config::from_json(r#"{"apiKey":"sk-a","secret_key":"sk-b"}"#).unwrap();
        assert_eq!(c.api_key.expose(), "sk-a");
        let c = Config::from_json(r#"{"apiKey":"","key":"sk-c"}"#).unwrap();
        assert_eq!(c.api_key.expose(), "sk-c");
        let path = "p".repeat(MAX_BASE_URL_BYTES - "http://h/".len());
        let ok = format!(r#"{{"apiKey":"k","base_url":"http://h/{path}"}}"#);
        assert!(Config::from_json(&ok).is_ok());
        let long = format!(r#"{{"apiKey":"k","base_url":"http://h/{path}p"}}"#);
        let err = Config::from_json(&long).unwrap_err();
        assert!(
            err.message.contains("'base_url' is longer than 1024 bytes"),
            "{}",
            err.message
        );
        let longest = "k".repeat(MAX_API_KEY_BYTES);
        assert!(Config::from_json(&format!(r#"{{"apiKey":"{longest}"}}"#)).is_ok());
        let err = Config::from_json(&format!(r#"{{"apiKey":"{longest}k"}}"#)).unwrap_err();
        assert!(
            err.message.contains("longer than 1024 bytes"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("kkkk"), "the key is never quoted");
    }

    #[test]
    fn defaults() {
        let c = Config::from_json(r#"{"apiKey":"sk-a","unknown":{"x":1}}"#).unwrap();
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.retired_models, RetiredPolicy::Migrate);
        assert_eq!(c.clock, Clock::System);
        assert_eq!(c.web_search.fee_ucents, 500_000);
    }

    #[test]
    fn settings_are_read() {
        let c = Config::from_json(
            r#"{"apiKey":"k","base_url":"http://127.0.0.1:9/v1/","timeouts":{"idle_ms":250},
                "max_concurrency":2,"max_queue":3,"retired_models":"error","today":"2026-05-25"}"#,
        )
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.timeouts.idle, Duration::from_millis(250));
        assert_eq!((c.max_concurrency, c.max_queue), (2, 3));
        assert_eq!(c.retired_models, RetiredPolicy::Error);
        assert_eq!(c.clock, Clock::Fixed(Date::new(2026, 5, 25)));
    }

    #[test]
    fn errors_are_clear_and_never_echo_values() {
        let secret = "sk-very-secret-value";
        let cases = [
            format!(r#"{{"apiKey":{{"nested":"{secret}"}}}}"#),
            format!(r#"{{"apiKey":"{secret}","max_queue":"{secret}"}}"#),
            format!(r#"{{"apiKey":"{secret}","base_url":"ftp://{secret}"}}"#),
            format!(r#"{{"apiKey":"{secret}","today":"{secret}"}}"#),
            format!(r#"{{"apiKey":"{secret}" "#),
        ];
        for case in cases {
            let err = Config::from_json(&case).unwrap_err();
            assert!(!err.message.contains(secret), "{}", err.message);
            assert!(!format!("{err:?}").contains(secret));
        }
        assert!(Config::from_json("{}")
            .unwrap_err()
            .message
            .contains("no API key"));
        assert!(Config::from_json("[1]")
            .unwrap_err()
            .message
            .contains("JSON object"));
    }

    #[test]
    fn limits_on_what_callers_and_upstreams_can_cost() {
        let c = Config::from_json(r#"{"apiKey":"k"}"#).unwrap();
        assert_eq!(
            c.media,
            Media {
                allow_private_networks: false,
                allow_addresses: Vec::new(),
                debug_errors: false,
                max_items: 10,
                max_total_bytes: 48 * 1024 * 1024,
                deadline: Duration::from_secs(60),
            }
        );
        assert_eq!(c.max_answer_bytes, 16 * 1024 * 1024);
        assert_eq!(c.max_request_values, 1_000_000);
        assert_eq!(c.max_inflight_request_bytes, 256 * 1024 * 1024);
        let c = Config::from_json(
            r#"{"apiKey":"k","media":{"allow_private_networks":true,"allow_addresses":["10.0.0.5","::1"],
                "debug_errors":true,"max_items":2,"max_total_bytes":5,"deadline_ms":7},
                "max_answer_bytes":9,"max_request_values":11,"max_inflight_request_bytes":13}"#,
        )
        .unwrap();
        assert!(c.media.allow_private_networks && c.media.debug_errors);
        assert_eq!(c.media.allow_addresses.len(), 2);
        assert_eq!((c.media.max_items, c.media.max_total_bytes), (2, 5));
        assert_eq!(c.media.deadline, Duration::from_millis(7));
        assert_eq!(
            (
                c.max_answer_bytes,
                c.max_request_values,
                c.max_inflight_request_bytes
            ),
            (9, 11, 13)
        );
        let err = Config::from_json(r#"{"apiKey":"k","media":{"allow_addresses":["nope"]}}"#)
            .unwrap_err();
        assert!(err.message.contains("'media'"), "{}", err.message);
    }

    #[test]
    fn scale_settings_have_bounds() {
        let c = Config::from_json(r#"{"apiKey":"k","max_concurrency":10000}"#).unwrap();
        assert_eq!(c.max_concurrency, 10_000);
        assert_eq!(c.worker_stack_bytes, DEFAULT_WORKER_STACK_KIB * 1024);
        for bad in [
            r#"{"apiKey":"k","max_concurrency":16385}"#,
            r#"{"apiKey":"k","max_concurrency":0}"#,
            r#"{"apiKey":"k","worker_stack_kib":64}"#,
        ] {
            assert!(Config::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let c = Config::from_json(r#"{"apiKey":"sk-hidden"}"#).unwrap();
        assert!(!format!("{c:?}").contains("sk-hidden"));
    }
}
