//! HTTP proxies: which one (if any) a URL goes through, from the settings
//! the caller read from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.
//!
//! `https://` URLs are tunnelled with `CONNECT` (RFC 9110 §9.3.6); `http://`
//! URLs are sent to the proxy in absolute form (RFC 9112 §3.2.2). Only
//! `http://` proxies are supported. `NO_PROXY` follows curl: a
//! comma-separated list of host names (matching the host and its
//! subdomains; a leading dot is optional), IP addresses, optional `:port`,
//! or `*` for every host.

use crate::ProbeError;
use base64::Engine as _;
use url::Url;

/// The proxy settings, as the environment gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// `HTTPS_PROXY`: used for `https://` URLs.
    pub https: Option<String>,
    /// `HTTP_PROXY`: used for `http://` URLs.
    pub http: Option<String>,
    /// `NO_PROXY`: hosts reached directly.
    pub no_proxy: Option<String>,
}

/// A proxy chosen for one URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Proxy host.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// `Proxy-Authorization` value from the proxy URL's user info.
    pub authorization: Option<String>,
    /// The proxy URL with credentials removed, for reports.
    pub display: String,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("display", &self.display)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .finish()
    }
}

impl ProxySettings {
    /// No proxy at all.
    pub fn none() -> ProxySettings {
        ProxySettings::default()
    }

    /// The proxy `url` goes through, or `None` for a direct connection.
    pub fn for_url(&self, url: &Url) -> Result<Option<Proxy>, ProbeError> {
        let setting = match url.scheme() {
            "https" => self.https.as_deref(),
            "http" => self.http.as_deref(),
            _ => None,
        };
        let Some(setting) = setting.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default().unwrap_or(0);
        if self
            .no_proxy
            .as_deref()
            .is_some_and(|np| excluded(np, host, port))
        {
            return Ok(None);
        }
        parse_proxy(setting).map(Some)
    }
}

fn parse_proxy(setting: &str) -> Result<Proxy, ProbeError> {
    let with_scheme = if setting.contains("://") {
        setting.to_string()
    } else {
        format!("http://{setting}")
    };
    let err = |reason: &str| ProbeError::Proxy {
        proxy: strip_credentials(setting),
        reason: reason.to_string(),
    };
    let u = Url::parse(&with_scheme).map_err(|e| err(&e.to_string()))?;
    if u.scheme() != "http" {
        return Err(err(
            "only http:// proxies are supported (https:// and socks proxies are not)",
        ));
    }
    let host = u
        .host_str()
        .ok_or_else(|| err("no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = u.port().unwrap_or(80);
    let authorization = if u.username().is_empty() {
        None
    } else {
        let user = percent_decode(u.username());
        let pass = percent_decode(u.password().unwrap_or(""));
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ))
    };
    let display = format!("http://{}:{port}", u.host_str().unwrap_or(&host));
    Ok(Proxy {
        host,
        port,
        authorization,
        display,
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The proxy setting with any `user:password@` removed.
pub fn strip_credentials(setting: &str) -> String {
    match (setting.find("://"), setting.rfind('@')) {
        (Some(i), Some(at)) if at > i => format!(
            "{}{}",
            setting.get(..i + 3).unwrap_or(""),
            setting.get(at + 1..).unwrap_or("")
        ),
        (None, Some(at)) => setting.get(at + 1..).unwrap_or("").to_string(),
        _ => setting.to_string(),
    }
}

/// True when `NO_PROXY` excludes `host:port`.
fn excluded(no_proxy: &str, host: &str, port: u16) -> bool {
    let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            // An optional port: `host:8080`, `[::1]:8080`.
            let (name, want_port) = split_port(&entry);
            if want_port.is_some_and(|p| p != port) {
                return false;
            }
            let name = name.trim_matches(['[', ']']);
            let name = name.strip_prefix("*.").unwrap_or(name);
            let name = name.strip_prefix('.').unwrap_or(name);
            host == name || host.ends_with(&format!(".{name}"))
        })
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        // [v6]:port
        if let Some((addr, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (addr, port);
        }
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address.
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(no_proxy: &str) -> ProxySettings {
        ProxySettings {
            https: Some("http://user:p%40ss@proxy.corp:3128".into()),
            http: Some("proxy.corp:8080".into()),
            no_proxy: Some(no_proxy.into()),
        }
    }

    #[test]
    fn chooses_by_scheme_and_no_proxy() {
        let s = settings("localhost, .internal.test,10.0.0.1,api.test:8443");
        let p = s
            .for_url(&Url::parse("https://as.example.com/token").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(p.display, "http://proxy.corp:3128");
        assert_eq!(p.port, 3128);
        // user:p@ss
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjpwQHNz"));
        let p = s
            .for_url(&Url::parse("http://as.example.com/").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(p.port, 8080);
        for direct in [
            "https://localhost:9000/",
            "https://as.internal.test/",
            "https://internal.test/",
            "http://10.0.0.1/",
            "https://api.test:8443/",
        ] {
            assert!(
                s.for_url(&Url::parse(direct).unwrap()).unwrap().is_none(),
                "{direct}"
            );
        }
        assert!(
            s.for_url(&Url::parse("https://api.test/").unwrap())
                .unwrap()
                .is_some()
        );
        assert!(
            settings("*")
                .for_url(&Url::parse("https://x.test/").unwrap())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(
            strip_credentials("http://u:secret@proxy:1"),
            "http://proxy:1"
        );
        let s = ProxySettings {
            https: Some("socks5://u:secret@proxy:1".into()),
            ..ProxySettings::default()
        };
        let e = s
            .for_url(&Url::parse("https://x.test/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}
