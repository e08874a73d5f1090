//! The one error type every module returns, and its JSON form for the host.

use std::fmt;

use serde_json::{json, Value};

/// What went wrong, in the words a host can act on. The ABI shim (`ffi`)
/// maps each kind 1:1 to a status code; the core knows nothing of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    InvalidRequest,
    UnknownModel,
    ModelRetired,
    Upstream,
    Protocol,
    Transport,
    Timeout,
    Cancelled,
    Busy,
    Internal,
}

impl ErrorKind {
    /// The `code` used when Moonshot gave none.
    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::UnknownModel => "unknown_model",
            ErrorKind::ModelRetired => "model_retired",
            ErrorKind::Upstream => "upstream_error",
            ErrorKind::Protocol => "protocol_error",
            ErrorKind::Transport => "transport_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal_error",
        }
    }
}

/// An error with the details the ABI promises:
/// `{"code","message","http_status","retryable","request_id"}`.
///
/// Never holds the API key: messages are built from our own words and from
/// what Moonshot said, and the client never echoes request headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// Moonshot's `error.type` where it gave one, else our own code.
    pub code: String,
    pub message: String,
    pub http_status: Option<u16>,
    pub retryable: bool,
    pub request_id: Option<String>,
    /// Seconds Moonshot asked us to wait (Retry-After or its message).
    pub retry_after_secs: Option<u64>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            code: kind.default_code().to_string(),
            message: message.into(),
            http_status: None,
            retryable: false,
            request_id: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::InvalidRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Internal, message)
    }

    pub fn cancelled() -> ProviderError {
        ProviderError::new(ErrorKind::Cancelled, "the request was cancelled")
    }

    pub fn with_code(mut self, code: impl Into<String>) -> ProviderError {
        self.code = code.into();
        self
    }

    pub fn retryable(mut self, retryable: bool) -> ProviderError {
        self.retryable = retryable;
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "http_status": self.http_status,
            "retryable": self.retryable,
            "request_id": self.request_id,
        })
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ProviderError {}

/// Turns a caught panic's payload into an internal error, keeping its text
/// (our own panic messages never contain the key).
pub fn from_panic(payload: Box<dyn std::any::Any + Send>) -> ProviderError {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    ProviderError::internal(format!("internal error (caught panic): {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_promised_fields() {
        let mut err = ProviderError::new(ErrorKind::Upstream, "Rate limit reached")
            .with_code("rate_limit_reached_error");
        err.http_status = Some(429);
        err.request_id = Some("req-1".into());
        err.retryable = true;
        assert_eq!(
            err.to_json(),
            json!({"code":"rate_limit_reached_error","message":"Rate limit reached","http_status":429,"retryable":true,"request_id":"req-1"})
        );
    }

    #[test]
    fn panic_payloads_become_internal_errors() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        let err = from_panic(caught);
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.message.contains("boom 7"));
    }
}
