//! Who may use the endpoint: the request's Host, the page's Origin, the
//! optional token, and the CORS headers an allowed page gets. Pure checks
//! on header text; nothing here reads a body.

/// The header list a preflight is answered with when the one asked for is
/// absent or not a clean list of header names.
const DEFAULT_ALLOW_HEADERS: &str = "Content-Type, Authorization";
/// At most this many names are echoed back from a preflight.
const MAX_ALLOW_HEADERS: usize = 32;

/// The access policy of one `serve` run.
#[derive(Debug, Default)]
pub struct Policy {
    /// Origins allowed besides loopback pages, normalised by [`parse_origin`].
    pub extra_origins: Vec<String>,
    /// When set, driver calls must carry this token.
    pub token: Option<String>,
}

impl Policy {
    /// From `--allow-origin` values and `--auth-token` (or its variable).
    pub fn new(origins: &[String], token: Option<String>) -> Result<Policy, String> {
        let extra_origins = origins
            .iter()
            .map(|o| parse_origin(o).ok_or_else(|| format!("--allow-origin takes an origin like https://app.example or http://host:8080 (no path, no wildcard), not '{o}'")))
            .collect::<Result<Vec<_>, _>>()?;
        let token = match token {
            Some(t) if t.trim().is_empty() => return Err("the serve token is empty".into()),
            Some(t) if !t.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err("the serve token must be printable ASCII without spaces".into())
            }
            other => other,
        };
        Ok(Policy {
            extra_origins,
            token,
        })
    }

    /// Loopback pages (any port, http or https) and the origins given.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let loopback = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(is_loopback_host);
        loopback || parse_origin(origin).is_some_and(|o| self.extra_origins.contains(&o))
    }

    /// Whether a driver call carrying this token (if any) may run.
    pub fn accepts_token(&self, offered: Option<&str>) -> bool {
        match (&self.token, offered) {
            (None, _) => true,
            (Some(want), Some(got)) => same_secret(want.as_bytes(), got.trim().as_bytes()),
            (Some(_), None) => false,
        }
    }
}

/// `scheme://host[:port]`, lower-cased, http or https only: the form a
/// browser sends in `Origin`. None for anything else.
pub fn parse_origin(origin: &str) -> Option<String> {
    let lower = origin.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))?;
    let host_port_ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    host_port_ok.then_some(lower)
}

/// The token in `Authorization: Bearer <token>`, if that is the header's form.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn same_secret(want: &[u8], got: &[u8]) -> bool {
    let mut differ = want.len() ^ got.len();
    for (i, w) in want.iter().enumerate() {
        differ |= usize::from(w ^ got.get(i).copied().unwrap_or(!w));
    }
    differ == 0
}

/// `localhost`, `127.0.0.1` or `[::1]`, with an optional numeric port.
pub fn is_loopback_host(host_port: &str) -> bool {
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, rest)) => match rest {
                "" => (host, None),
                _ => match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return false,
                },
            },
            None => return false,
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok
        && matches!(
            host.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "::1"
        )
}

/// What lets an allowed page read the answer (puter.js sends credentials).
pub fn cors_headers(origin: Option<&str>) -> super::http::Headers {
    match origin {
        Some(origin) => vec![
            ("Access-Control-Allow-Origin", origin.to_string()),
            ("Access-Control-Allow-Credentials", "true".into()),
            ("Vary", "Origin".into()),
        ],
        None => Vec::new(),
    }
}

/// The `Access-Control-Allow-Headers` answer to a preflight: the names the
/// page asked for when every one is a clean header name, else a fixed list.
/// Never the request's text as it came.
pub fn allow_headers(requested: Option<&str>) -> String {
    let Some(requested) = requested else {
        return DEFAULT_ALLOW_HEADERS.into();
    };
    let names: Vec<&str> = requested.split(',').map(str::trim).collect();
    let clean = names.len() <= MAX_ALLOW_HEADERS
        && names
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(is_token_byte));
    if clean {
        names.join(", ")
    } else {
        DEFAULT_ALLOW_HEADERS.into()
    }
}

/// RFC 9110 `tchar`: what a header name is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_only() {
        for host in [
            "127.0.0.1:4100",
            "localhost",
            "LOCALHOST:80",
            "[::1]:4100",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:4100",
            "localhost.evil.example",
            "127.0.0.1.nip.io:4100",
            "127.0.0.1:41x",
            "127.0.0.1:",
            "[::1",
            "[::1]x",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn origins_from_loopback_pages_and_those_given_only() {
        let policy = Policy::new(&["HTTPS://App.Example:8443".into()], None).unwrap();
        for origin in [
            "http://localhost:5173",
            "https://127.0.0.1",
            "http://[::1]:8080",
            "https://app.example:8443",
        ] {
            assert!(policy.allows_origin(origin), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "http://localhost.evil.example",
            "null",
            "file://",
            // Nothing is built in: puter.js under Node needs --allow-origin.
            "https://puter.work",
            "https://app.example",
            "http://app.example:8443",
        ] {
            assert!(!policy.allows_origin(origin), "{origin}");
        }
        for bad in ["*", "https://a.example/path", "ftp://a.example", "https://"] {
            assert!(Policy::new(&[bad.into()], None).is_err(), "{bad}");
        }
        assert!(cors_headers(None).is_empty());
        assert_eq!(
            cors_headers(Some("http://localhost:5173"))[0],
            (
                "Access-Control-Allow-Origin",
                "http://localhost:5173".into()
            )
        );
    }

    #[test]
    fn tokens_must_match_exactly() {
        let open = Policy::new(&[], None).unwrap();
        assert!(open.accepts_token(None) && open.accepts_token(Some("x")));
        let guarded = Policy::new(&[], Some("s3cret".into())).unwrap();
        assert!(guarded.accepts_token(Some("s3cret")));
        for wrong in [
            None,
            Some(""),
            Some("s3cre"),
            Some("s3crett"),
            Some("S3cret"),
        ] {
            assert!(!guarded.accepts_token(wrong), "{wrong:?}");
        }
        assert!(Policy::new(&[], Some(" ".into())).is_err());
        assert!(Policy::new(&[], Some("a b".into())).is_err());
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
    }

    #[test]
    fn preflight_headers_are_never_reflected_raw() {
        assert_eq!(
            allow_headers(Some("authorization, content-type")),
            "authorization, content-type"
        );
        assert_eq!(allow_headers(None), DEFAULT_ALLOW_HEADERS);
        for hostile in [
            "x\rSet-Cookie: a=b",
            "x\r\nSet-Cookie: a=b",
            "x\nY: z",
            "a b",
            "a,,b",
            "é",
        ] {
            assert_eq!(
                allow_headers(Some(hostile)),
                DEFAULT_ALLOW_HEADERS,
                "{hostile:?}"
            );
        }
        let many = vec!["x"; MAX_ALLOW_HEADERS + 1].join(",");
        assert_eq!(allow_headers(Some(&many)), DEFAULT_ALLOW_HEADERS);
    }
}
