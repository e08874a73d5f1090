//! The `proxy` config field: an HTTP CONNECT proxy between the plugin and
//! Moonshot.
//!
//! `"proxy":"http://user:pass@host:port"` names one; `"proxy":""` turns
//! proxies off; without the field the conventional variables apply, as ureq
//! reads them: `ALL_PROXY`, then `HTTPS_PROXY`, then `HTTP_PROXY` (or their
//! lower-case forms), with `NO_PROXY` listing hosts that go direct. They are
//! read once, when the instance is created. Credentials in the URL are sent
//! to the proxy only (`Proxy-Authorization` on CONNECT) and never printed.

use std::fmt;

use ureq::Proxy;

use crate::error::ProviderError;

/// The proxy an instance uses, if any.
#[derive(Clone, Default, PartialEq)]
pub struct ProxyChoice(Option<Proxy>);

impl ProxyChoice {
    /// From the config field: `None` when absent (the environment decides).
    pub(crate) fn from_setting(setting: Option<&str>) -> Result<ProxyChoice, ProviderError> {
        match setting.map(str::trim) {
            None => Ok(ProxyChoice(Proxy::try_from_env())),
            Some("") => Ok(ProxyChoice(None)),
            Some(url) => {
                // ureq would take "host:port" as http://host:port; say the scheme.
                if !url.contains("://") {
                    return Err(ProviderError::invalid_argument(
                        "config 'proxy' must be a URL such as http://host:port",
                    ));
                }
                // ureq's error does not echo the URL; ours names only the field.
                let proxy = Proxy::new(url).map_err(|_| {
                    ProviderError::invalid_argument(
                        "config 'proxy' is not a valid proxy URL (http://[user:password@]host:port)",
                    )
                })?;
                use ureq::ProxyProtocol::{Http, Https};
                if !matches!(proxy.protocol(), Http | Https) {
                    return Err(ProviderError::invalid_argument(
                        "config 'proxy' must be an http:// or https:// (CONNECT) proxy",
                    ));
                }
                Ok(ProxyChoice(Some(proxy)))
            }
        }
    }

    pub fn proxy(&self) -> Option<&Proxy> {
        self.0.as_ref()
    }
}

impl fmt::Debug for ProxyChoice {
    // Scheme, host and port only: never the user name or password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("ProxyChoice(none)"),
            Some(p) => write!(
                f,
                "ProxyChoice({}://{}:{}{})",
                p.protocol(),
                p.host(),
                p.port(),
                if p.is_from_env() { ", from env" } else { "" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_kept_but_never_printed() {
        let choice =
            ProxyChoice::from_setting(Some("http://alice:pa55-w0rd@proxy.local:3128")).unwrap();
        let proxy = choice.proxy().unwrap();
        assert_eq!(proxy.username(), Some("alice"));
        assert_eq!(proxy.password(), Some("pa55-w0rd"));
        let shown = format!("{choice:?}");
        assert!(shown.contains("proxy.local:3128"), "{shown}");
        assert!(
            !shown.contains("alice") && !shown.contains("pa55"),
            "{shown}"
        );
    }

    #[test]
    fn empty_turns_proxies_off() {
        assert_eq!(ProxyChoice::from_setting(Some("")).unwrap().proxy(), None);
    }

    #[test]
    fn bad_urls_are_refused_without_echo() {
        for bad in [
            "proxy.local:3128",
            "http://sk-secret@",
            "socks5://sk-secret@h:1",
            "ftp://sk-secret@h:1",
        ] {
            let err = ProxyChoice::from_setting(Some(bad)).unwrap_err();
            assert!(err.message.contains("'proxy'"), "{}", err.message);
            assert!(!err.message.contains("sk-secret"), "{}", err.message);
        }
    }
}
