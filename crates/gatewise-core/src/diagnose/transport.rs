//! What only a live exchange shows: transport failures (DNS, connect, TLS,
//! timeouts), the proxy and the redirects that were used, and the
//! comparisons that need a second document or the local clock (the two
//! discovery forms agreeing, advertised algorithms having keys, JWKS caching,
//! clock skew).
//!
//! Pure like the rest of the core: the network layer (`gatewise-probe`)
//! classifies what happened into a [`Failure`] and hands documents, headers
//! and the local time in as values; this module turns them into findings.

use super::body::check;
use crate::capture::Headers;
use crate::finding::{Check, Finding, Severity};
use crate::jose::{Alg, Family, jwk, jwt};
use crate::secret;
use serde_json::{Map, Value};

check!(
    DNS_FAILED,
    "NET-01",
    "dns-failed",
    Error,
    "RFC 9110 §4.3.2",
    "The host name of the URL could not be resolved: nothing was sent."
);
check!(
    CONNECT_REFUSED,
    "NET-02",
    "connect-refused",
    Error,
    "RFC 9293 §3.5",
    "The TCP connection was refused: nothing listens on that address and port."
);
check!(
    CONNECT_TIMEOUT,
    "NET-03",
    "connect-timeout",
    Error,
    "RFC 9293 §3.5",
    "The TCP connection was not established within the timeout (a firewall drops the packets, or the host is down)."
);
check!(
    CONNECT_FAILED,
    "NET-04",
    "connect-failed",
    Error,
    "RFC 9293 §3.5",
    "The TCP connection failed for another reason (network unreachable, reset)."
);
check!(
    PROXY_FAILED,
    "NET-05",
    "proxy-connect-failed",
    Error,
    "RFC 9110 §9.3.6",
    "The HTTP proxy could not be reached or refused the CONNECT tunnel."
);
check!(
    RESPONSE_TIMEOUT,
    "NET-06",
    "response-timeout",
    Error,
    "RFC 9112 §9.5",
    "The request was sent but no response arrived within the timeout."
);
check!(
    CLOSED_WITHOUT_RESPONSE,
    "NET-07",
    "closed-without-response",
    Error,
    "RFC 9112 §9.5",
    "The server closed the connection before sending a complete response head."
);
check!(
    NOT_HTTP,
    "NET-08",
    "response-not-http",
    Error,
    "RFC 9112 §4",
    "What came back is not an HTTP/1.x response (wrong port or protocol, TLS spoken to plain HTTP)."
);
check!(
    BODY_TIMEOUT,
    "NET-09",
    "body-timeout",
    Error,
    "RFC 9112 §6.3",
    "The response head arrived but the body did not end within the timeout."
);
check!(
    BODY_TOO_LARGE,
    "NET-10",
    "body-too-large",
    Error,
    "RFC 9112 §6.3",
    "The response body exceeded the doctor's limit and was cut."
);
check!(
    PROXY_USED,
    "NET-11",
    "proxy-used",
    Info,
    "RFC 9110 §7.3, §9.3.6",
    "The exchange went through an HTTP proxy (from HTTPS_PROXY / HTTP_PROXY, not excluded by NO_PROXY)."
);
check!(
    TLS_EXPIRED,
    "TLS-01",
    "certificate-expired",
    Error,
    "RFC 5280 §4.1.2.5",
    "The server's certificate has expired."
);
check!(
    TLS_NOT_YET_VALID,
    "TLS-02",
    "certificate-not-yet-valid",
    Error,
    "RFC 5280 §4.1.2.5",
    "The server's certificate is not valid yet (or the local clock is behind)."
);
check!(
    TLS_HOSTNAME,
    "TLS-03",
    "certificate-hostname-mismatch",
    Error,
    "RFC 6125 §6; RFC 9110 §4.3.4",
    "The server's certificate does not name the host that was called."
);
check!(
    TLS_UNKNOWN_ISSUER,
    "TLS-04",
    "certificate-unknown-issuer",
    Error,
    "RFC 5280 §6",
    "The server's certificate chain does not lead to a trusted root (private CA, or a TLS-inspection proxy)."
);
check!(
    TLS_SELF_SIGNED,
    "TLS-05",
    "certificate-self-signed",
    Error,
    "RFC 5280 §6",
    "The server presents a self-signed certificate that is not trusted."
);
check!(
    TLS_FAILED,
    "TLS-06",
    "tls-handshake-failed",
    Error,
    "RFC 8446 §6",
    "The TLS handshake failed for another reason (protocol version, alert, bad certificate encoding)."
);
check!(
    REDIRECTS_FOLLOWED,
    "HT-08",
    "redirects-followed",
    Info,
    "RFC 9110 §15.4",
    "The request was redirected; every hop is listed."
);
check!(
    TOO_MANY_REDIRECTS,
    "HT-09",
    "too-many-redirects",
    Error,
    "RFC 9110 §15.4",
    "The redirect chain was longer than the limit (a loop, or a login flow)."
);
check!(
    FORM_MISSING,
    "MD-08",
    "discovery-form-missing",
    Info,
    "RFC 8414 §3.1; OpenID Connect Discovery §4",
    "Only one of the two well-known metadata URLs serves a document; clients built for the other form fail."
);
check!(
    FORMS_DISAGREE,
    "MD-09",
    "discovery-forms-disagree",
    Warn,
    "RFC 8414 §3.3; OpenID Connect Discovery §4.3",
    "The RFC 8414 and OpenID Connect metadata documents disagree on issuer, token_endpoint or jwks_uri."
);
check!(
    ALG_WITHOUT_KEY,
    "JK-10",
    "jwks-alg-without-key",
    Warn,
    "RFC 8414 §2; RFC 7517 §4",
    "An algorithm the server says it signs with has no key of the matching type in its JWK Set."
);
check!(
    JWKS_CACHE_HEADERS,
    "JK-11",
    "jwks-cache-headers",
    Info,
    "RFC 9111 §5.2; OpenID Connect Core §10.1.1",
    "How long clients may cache the JWK Set (Cache-Control, Expires, ETag), or that nothing says so."
);
check!(
    DATE_SKEW,
    "CK-02",
    "clock-skew-date",
    Info,
    "RFC 9110 §6.6.1",
    "The server's Date header compared with the local clock."
);
check!(
    DATE_SKEW_LARGE,
    "CK-02",
    "clock-skew-date-large",
    Warn,
    "RFC 9110 §6.6.1; RFC 7519 §4.1.6",
    "The server's clock differs from the local clock by more than a minute."
);
check!(
    IAT_SKEW,
    "CK-02",
    "clock-skew-iat",
    Info,
    "RFC 7519 §4.1.6",
    "The issued token's iat compared with the local clock."
);
check!(
    IAT_SKEW_LARGE,
    "CK-02",
    "clock-skew-iat-large",
    Warn,
    "RFC 7519 §4.1.6",
    "The issued token's iat differs from the local clock by more than a minute."
);

/// Checks defined in this module.
pub const CHECKS: &[&Check] = &[
    &DNS_FAILED,
    &CONNECT_REFUSED,
    &CONNECT_TIMEOUT,
    &CONNECT_FAILED,
    &PROXY_FAILED,
    &RESPONSE_TIMEOUT,
    &CLOSED_WITHOUT_RESPONSE,
    &NOT_HTTP,
    &BODY_TIMEOUT,
    &BODY_TOO_LARGE,
    &PROXY_USED,
    &TLS_EXPIRED,
    &TLS_NOT_YET_VALID,
    &TLS_HOSTNAME,
    &TLS_UNKNOWN_ISSUER,
    &TLS_SELF_SIGNED,
    &TLS_FAILED,
    &REDIRECTS_FOLLOWED,
    &TOO_MANY_REDIRECTS,
    &FORM_MISSING,
    &FORMS_DISAGREE,
    &ALG_WITHOUT_KEY,
    &JWKS_CACHE_HEADERS,
    &DATE_SKEW,
    &DATE_SKEW_LARGE,
    &IAT_SKEW,
    &IAT_SKEW_LARGE,
];

/// Skew beyond which the clock findings warn (seconds): the common
/// client leeway (Spring, Nimbus, Rust jsonwebtoken, Auth0 SDKs).
pub const SKEW_WARN_SECONDS: i64 = 60;

/// Why a TLS handshake failed, as told apart by the network layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate's `notAfter` is in the past.
    Expired {
        /// `notAfter` (Unix seconds), when known.
        not_after: Option<i64>,
        /// The validation time (Unix seconds), when known.
        now: Option<i64>,
    },
    /// The certificate's `notBefore` is in the future.
    NotYetValid {
        /// `notBefore` (Unix seconds), when known.
        not_before: Option<i64>,
        /// The validation time (Unix seconds), when known.
        now: Option<i64>,
    },
    /// The certificate does not name the host.
    HostnameMismatch {
        /// The names the certificate presents.
        presented: Vec<String>,
    },
    /// The chain does not lead to a trusted root.
    UnknownIssuer {
        /// The leaf's issuer name (CN and O), when it could be read.
        issuer: Option<String>,
        /// The leaf's subject name, when it could be read.
        subject: Option<String>,
    },
    /// The leaf is self-signed (issuer equals subject) and not trusted.
    SelfSigned {
        /// The leaf's subject name, when it could be read.
        subject: Option<String>,
    },
    /// Anything else: an alert, a protocol version, a bad encoding.
    Other {
        /// What the TLS library said.
        detail: String,
    },
}

/// A classified transport failure: what went wrong before (or while) a
/// response was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The host name did not resolve.
    Dns {
        /// The host name.
        host: String,
        /// What the resolver said.
        detail: String,
    },
    /// Connection refused.
    Refused {
        /// `host:port` (or the address tried).
        addr: String,
    },
    /// No connection within the timeout.
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// Another connect error.
    Connect {
        /// `host:port`.
        addr: String,
        /// The operating system's message.
        detail: String,
    },
    /// The proxy failed or refused the tunnel.
    Proxy {
        /// The proxy URL (credentials removed).
        proxy: String,
        /// The status the proxy answered the CONNECT with, when it answered.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
    },
    /// The TLS handshake failed.
    Tls {
        /// The host name the certificate was checked against.
        host: String,
        /// Why.
        kind: TlsFailure,
    },
    /// No response head within the timeout.
    ResponseTimeout {
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// The connection closed before a complete response head.
    Closed {
        /// What the HTTP layer said.
        detail: String,
    },
    /// The bytes that came back are not HTTP/1.x.
    NotHttp {
        /// What the HTTP layer said.
        detail: String,
    },
    /// The body did not end within the timeout.
    BodyTimeout {
        /// The timeout, in milliseconds.
        after_ms: u64,
        /// Body bytes received before giving up.
        received: usize,
    },
    /// The body exceeded the limit.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The redirect chain exceeded the limit.
    TooManyRedirects {
        /// The limit.
        max: usize,
        /// The last Location seen.
        last: String,
    },
}

impl Failure {
    /// True when no response came back at all (DNS, TCP, proxy, TLS, or
    /// nothing before the timeout or the close): the verdict is then
    /// `unreachable`.
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            Failure::Dns { .. }
                | Failure::Refused { .. }
                | Failure::ConnectTimeout { .. }
                | Failure::Connect { .. }
                | Failure::Proxy { .. }
                | Failure::Tls { .. }
                | Failure::ResponseTimeout { .. }
                | Failure::Closed { .. }
        )
    }

    /// The check this failure is an occurrence of.
    pub fn check(&self) -> &'static Check {
        match self {
            Failure::Dns { .. } => &DNS_FAILED,
            Failure::Refused { .. } => &CONNECT_REFUSED,
            Failure::ConnectTimeout { .. } => &CONNECT_TIMEOUT,
            Failure::Connect { .. } => &CONNECT_FAILED,
            Failure::Proxy { .. } => &PROXY_FAILED,
            Failure::Tls { kind, .. } => match kind {
                TlsFailure::Expired { .. } => &TLS_EXPIRED,
                TlsFailure::NotYetValid { .. } => &TLS_NOT_YET_VALID,
                TlsFailure::HostnameMismatch { .. } => &TLS_HOSTNAME,
                TlsFailure::UnknownIssuer { .. } => &TLS_UNKNOWN_ISSUER,
                TlsFailure::SelfSigned { .. } => &TLS_SELF_SIGNED,
                TlsFailure::Other { .. } => &TLS_FAILED,
            },
            Failure::ResponseTimeout { .. } => &RESPONSE_TIMEOUT,
            Failure::Closed { .. } => &CLOSED_WITHOUT_RESPONSE,
            Failure::NotHttp { .. } => &NOT_HTTP,
            Failure::BodyTimeout { .. } => &BODY_TIMEOUT,
            Failure::BodyTooLarge { .. } => &BODY_TOO_LARGE,
            Failure::TooManyRedirects { .. } => &TOO_MANY_REDIRECTS,
        }
    }
}

/// Names of products that intercept TLS (corporate inspection proxies),
/// matched case-insensitively against a certificate's issuer name.
pub const INSPECTION_PROXY_NAMES: &[&str] = &[
    "zscaler",
    "netskope",
    "blue coat",
    "bluecoat",
    "fortinet",
    "fortigate",
    "palo alto",
    "forcepoint",
    "proxy",
    "inspection",
];

/// The inspection product an issuer name points to, if any.
pub fn inspection_proxy(issuer: &str) -> Option<&'static str> {
    let lower = issuer.to_ascii_lowercase();
    INSPECTION_PROXY_NAMES
        .iter()
        .copied()
        .find(|n| lower.contains(n))
}

/// The finding for a transport failure; `url` is what was being fetched.
pub fn finding(url: &str, failure: &Failure) -> Finding {
    let check = failure.check();
    match failure {
        Failure::Dns { host, detail } => Finding::new(check, format!("the host name {host} does not resolve"))
            .evidence(format!("{url}: lookup of {host} failed: {detail}"))
            .cause("a typo in the URL, an internal name used outside its network, or a DNS server (VPN, split horizon) that does not know the name")
            .fix(format!("check the host in the URL; try `getent hosts {host}` or `dig {host}` on the machine that runs the client")),
        Failure::Refused { addr } => Finding::new(check, format!("the connection to {addr} was refused"))
            .evidence(format!("{url}: connect to {addr}: connection refused"))
            .cause("nothing listens on that port (the service is down, or the port or scheme in the URL is wrong: https on 80, http on 443)")
            .fix("check the port and scheme against the server's published URL, and that the service is running"),
        Failure::ConnectTimeout { addr, after_ms } => Finding::new(check, format!("no connection to {addr} within {}", human_ms(*after_ms)))
            .evidence(format!("{url}: connect to {addr} timed out after {}", human_ms(*after_ms)))
            .cause("a firewall drops the packets silently, the host is down, or this network needs a proxy to reach it")
            .fix("check firewall rules and whether HTTPS_PROXY must be set for this destination; try from the client's own host"),
        Failure::Connect { addr, detail } => Finding::new(check, format!("the connection to {addr} failed"))
            .evidence(format!("{url}: connect to {addr}: {detail}"))
            .cause("the network path to the host is broken (no route, reset by a middlebox)")
            .fix("check routing, VPN and proxy settings on the client's host"),
        Failure::Proxy { proxy, status, detail } => {
            let title = match status {
                Some(s) => format!("the proxy {proxy} refused the tunnel ({s})"),
                None => format!("the proxy {proxy} could not be used"),
            };
            Finding::new(check, title)
                .evidence(format!("{url} via {proxy}: {detail}"))
                .cause(match status {
                    Some(407) => "the proxy wants credentials (407 Proxy Authentication Required)",
                    Some(403) => "the proxy's policy forbids this destination",
                    Some(_) => "the proxy could not open a tunnel to the destination",
                    None => "the proxy address is wrong or the proxy is down",
                })
                .fix("check HTTPS_PROXY/HTTP_PROXY (and NO_PROXY for internal hosts); credentials go in the proxy URL as http://user:pass@proxy:port")
        }
        Failure::Tls { host, kind } => tls_finding(check, url, host, kind),
        Failure::ResponseTimeout { after_ms } => Finding::new(check, format!("no response within {}", human_ms(*after_ms)))
            .evidence(format!("{url}: connected and sent the request; no status line after {}", human_ms(*after_ms)))
            .cause("the server (or something in front of it) hangs on the request: an overloaded endpoint, a backend call that never returns, or a proxy that swallows the request")
            .fix("look at the server's logs for the request; raise --timeout to see whether it answers at all"),
        Failure::Closed { detail } => Finding::new(check, "the server closed the connection without a response")
            .evidence(format!("{url}: {detail}"))
            .cause("the server or a load balancer dropped the request (a crash, a request-size limit, or HTTP spoken to a TLS port)")
            .fix("check the URL's scheme and port, and the server's logs"),
        Failure::NotHttp { detail } => Finding::new(check, "what came back is not an HTTP response")
            .evidence(format!("{url}: {detail}"))
            .cause("the port speaks another protocol (TLS where http:// was used, SSH, a database), or a middlebox injected bytes")
            .fix("use the scheme and port the server really serves HTTP on"),
        Failure::BodyTimeout { after_ms, received } => Finding::new(check, format!("the response body did not end within {}", human_ms(*after_ms)))
            .evidence(format!("{url}: {received} body bytes received, then nothing until the timeout"))
            .cause("the server streams a body it never finishes (a missing final chunk, a Content-Length larger than what it sends, a keep-alive bug), so the client waits forever")
            .fix("the server must end the message (terminating chunk or exact Content-Length); clients need a read timeout"),
        Failure::BodyTooLarge { limit } => Finding::new(check, format!("the response body is larger than {limit} bytes and was cut"))
            .evidence(format!("{url}: more than {limit} bytes"))
            .cause("the URL serves a file or a page, not an OAuth document")
            .fix("check the URL against the server's metadata"),
        Failure::TooManyRedirects { max, last } => Finding::new(check, format!("more than {max} redirects"))
            .evidence(format!("{url}: still redirected after {max} hops; last Location: {last}"))
            .cause("a redirect loop (http ⇄ https, trailing slash), or a login flow that never ends for a machine client")
            .fix("call the final URL directly, from the server's metadata"),
    }
}

fn tls_finding(check: &'static Check, url: &str, host: &str, kind: &TlsFailure) -> Finding {
    match kind {
        TlsFailure::Expired { not_after, now } => {
            let when = match (not_after, now) {
                (Some(na), Some(n)) => format!("expired at {} ({} ago)", jwt::iso(*na), human_secs(n.saturating_sub(*na))),
                (Some(na), None) => format!("expired at {}", jwt::iso(*na)),
                _ => "has expired".to_string(),
            };
            Finding::new(check, format!("the certificate of {host} has expired"))
                .evidence(format!("{url}: the certificate {when}"))
                .cause("the server's certificate was not renewed (or the local clock is far ahead)")
                .fix("renew the certificate on the server; check the local clock if the date looks wrong")
        }
        TlsFailure::NotYetValid { not_before, now } => {
            let when = match (not_before, now) {
                (Some(nb), Some(n)) => format!("valid from {} ({} from now)", jwt::iso(*nb), human_secs(nb.saturating_sub(*n))),
                (Some(nb), None) => format!("valid from {}", jwt::iso(*nb)),
                _ => "is not valid yet".to_string(),
            };
            Finding::new(check, format!("the certificate of {host} is not valid yet"))
                .evidence(format!("{url}: the certificate is {when}"))
                .cause("the local clock is behind, or the server installed a certificate dated in the future")
                .fix("check the local clock (NTP) first, then the certificate's notBefore")
        }
        TlsFailure::HostnameMismatch { presented } => {
            let names = if presented.is_empty() {
                "no DNS or IP names".to_string()
            } else {
                presented.join(", ")
            };
            Finding::new(check, format!("the certificate does not name {host}"))
                .evidence(format!("{url}: certificate names: {names}"))
                .cause("the URL uses another name than the certificate (an IP address, an internal alias, a load balancer's default certificate), or SNI routed to the wrong site")
                .fix(format!("call the server by a name its certificate lists ({names}), or add {host} to the certificate"))
        }
        TlsFailure::UnknownIssuer { issuer, subject } => {
            let issuer_text = issuer.clone().unwrap_or_else(|| "(unreadable)".to_string());
            let proxy = issuer.as_deref().and_then(inspection_proxy);
            let title = match proxy {
                Some(_) => format!("the certificate of {host} is issued by \"{issuer_text}\": this looks like a TLS-inspection proxy"),
                None => format!("the certificate of {host} is issued by an unknown authority"),
            };
            let mut ev = format!("{url}: issuer \"{issuer_text}\"");
            if let Some(s) = subject {
                ev.push_str(&format!("; subject \"{s}\""));
            }
            let f = Finding::new(check, title).evidence(ev);
            match proxy {
                Some(_) => f
                    .cause("a corporate TLS-inspection proxy re-signs HTTPS traffic with its own CA; the browser trusts it (installed by IT) but the client's runtime (Java, Node, Python) uses its own trust store")
                    .fix("add the proxy's root CA to the client's trust store (--ca-file here; NODE_EXTRA_CA_CERTS, the Java cacerts, REQUESTS_CA_BUNDLE), or exempt the authorization server from inspection"),
                None => f
                    .cause("the server uses a private CA, or omits an intermediate certificate from its chain")
                    .fix("serve the full chain (leaf and intermediates) on the server; for a private CA, give the client its root (--ca-file here)"),
            }
        }
        TlsFailure::SelfSigned { subject } => {
            let s = subject.clone().unwrap_or_else(|| "(unreadable)".to_string());
            Finding::new(check, format!("{host} presents a self-signed certificate"))
                .evidence(format!("{url}: subject and issuer \"{s}\""))
                .cause("a development or appliance default certificate is deployed")
                .fix("install a certificate from a trusted CA on the server; for tests, give the client this certificate as a trust anchor (--ca-file)")
        }
        TlsFailure::Other { detail } => Finding::new(check, format!("the TLS handshake with {host} failed"))
            .evidence(format!("{url}: {detail}"))
            .cause("the server and client share no protocol version or cipher suite, the server sent an alert, or its certificate is malformed")
            .fix("test with `openssl s_client -connect host:443 -servername host` to see the handshake"),
    }
}

fn human_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn human_secs(s: i64) -> String {
    let a = s.unsigned_abs();
    match a {
        0..=119 => format!("{a} s"),
        120..=7199 => format!("{} min", a / 60),
        7200..=172_799 => format!("{} h", a / 3600),
        _ => format!("{} days", a / 86_400),
    }
}

/// NET-11: the exchange used a proxy.
pub fn proxy_used(url: &str, proxy: &str, tunnel: bool) -> Finding {
    Finding::new(&PROXY_USED, format!("the request went through the proxy {proxy}"))
        .evidence(format!(
            "{url} via {proxy} ({})",
            if tunnel {
                "CONNECT tunnel"
            } else {
                "absolute-form request"
            }
        ))
        .cause("HTTPS_PROXY or HTTP_PROXY is set and NO_PROXY does not exclude this host; the client sees what the proxy lets through")
        .fix("none needed; to compare with a direct call, add the host to NO_PROXY")
}

/// One redirect: the status, where it was and where it pointed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The 3xx status.
    pub status: u16,
    /// The URL that answered with the redirect.
    pub from: String,
    /// The Location it pointed to (resolved).
    pub to: String,
}

/// HT-08: the redirects followed, each hop listed. `None` when there were none.
pub fn redirects(hops: &[Hop]) -> Option<Finding> {
    let first = hops.first()?;
    let chain: Vec<String> = hops
        .iter()
        .map(|h| format!("{} {} → {}", h.status, h.from, h.to))
        .collect();
    let cross = hops.iter().any(|h| origin(&h.from) != origin(&h.to));
    Some(
        Finding::new(
            &REDIRECTS_FOLLOWED,
            format!(
                "{} redirect{} followed from {}",
                hops.len(),
                if hops.len() == 1 { "" } else { "s" },
                first.from
            ),
        )
        .evidence(chain.join("; "))
        .cause(if cross {
            "the URL moved to another origin; clients drop the Authorization header there, and many do not follow redirects for OAuth calls at all"
        } else {
            "the URL moved (http to https, a trailing slash, a renamed path); clients that do not follow redirects fail here"
        })
        .fix("configure the final URL directly"),
    )
}

fn origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.port_or_known_default().unwrap_or(0)
    ))
}

/// MD-08: only one of the two well-known forms serves metadata.
pub fn form_missing(missing_url: &str, status: Option<u16>, present_url: &str) -> Finding {
    let got = status.map_or_else(|| "no response".to_string(), |s| format!("HTTP {s}"));
    Finding::new(&FORM_MISSING, format!("no metadata at {missing_url}"))
        .evidence(format!("{missing_url}: {got}; {present_url} serves the metadata"))
        .cause("the server publishes one well-known form only; a client library that builds the other URL (RFC 8414 inserts the suffix before the issuer's path, OpenID Connect appends it) fails to discover the server")
        .fix(format!("configure clients with the metadata URL that works ({present_url}), or publish the document at both"))
}

/// MD-09: the two metadata documents disagree on what matters.
pub fn forms_disagree(
    rfc8414: &Map<String, Value>,
    oidc: &Map<String, Value>,
    rfc8414_url: &str,
    oidc_url: &str,
) -> Option<Finding> {
    let diffs: Vec<String> = ["issuer", "token_endpoint", "jwks_uri"]
        .iter()
        .filter_map(|k| {
            let a = rfc8414.get(*k);
            let b = oidc.get(*k);
            (a != b).then(|| format!("{k}: {} vs {}", show(a), show(b)))
        })
        .collect();
    if diffs.is_empty() {
        return None;
    }
    Some(
        Finding::new(&FORMS_DISAGREE, "the two metadata documents disagree")
            .evidence(format!("{rfc8414_url} vs {oidc_url}: {}", diffs.join("; ")))
            .cause("two configurations (or two deployments) answer for the same issuer; which one a client sees depends on the URL form its library builds")
            .fix("serve one document at both URLs, or make their issuer, token_endpoint and jwks_uri identical"),
    )
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".to_string(), Value::to_string)
}

/// Metadata members listing algorithms the server itself signs with, whose
/// keys must be in the server's JWK Set. (`token_endpoint_auth_signing_alg_values_supported`
/// and the request-object algorithms are the client's keys and do not belong here.)
pub const SERVER_SIGNING_ALG_MEMBERS: &[&str] = &[
    "id_token_signing_alg_values_supported",
    "userinfo_signing_alg_values_supported",
    "introspection_signing_alg_values_supported",
    "authorization_signing_alg_values_supported",
];

/// JK-10: each asymmetric algorithm the metadata says the server signs with
/// has a signing key of its type (and curve) in the JWK Set.
pub fn alg_coverage(metadata: &Map<String, Value>, jwks: &Map<String, Value>) -> Vec<Finding> {
    let Some(keys) = jwk::set_keys(jwks) else {
        return Vec::new();
    };
    let usable: Vec<&jwk::SetKey<'_>> = keys.iter().filter(|k| k.use_ != Some("enc")).collect();
    let mut findings = Vec::new();
    for member in SERVER_SIGNING_ALG_MEMBERS {
        let Some(list) = metadata.get(*member).and_then(Value::as_array) else {
            continue;
        };
        for name in list.iter().filter_map(Value::as_str) {
            let Some(alg) = Alg::parse(name) else {
                continue;
            };
            // `none` needs no key; HS* use the client secret, not the JWKS.
            if matches!(alg.family(), Family::None | Family::Hmac) {
                continue;
            }
            let has = usable.iter().any(|k| {
                k.material.as_ref().is_ok_and(|m| m.fits(alg)) && k.alg.is_none_or(|a| a == name)
            });
            if !has {
                let kinds: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let kty = k.raw.get("kty").and_then(Value::as_str).unwrap_or("?");
                        let crv = k.raw.get("crv").and_then(Value::as_str);
                        let mut s = kty.to_string();
                        if let Some(c) = crv {
                            s.push_str(&format!("/{c}"));
                        }
                        if let Some(a) = k.alg {
                            s.push_str(&format!(" alg {a}"));
                        }
                        if let Some(u) = k.use_ {
                            s.push_str(&format!(" use {u}"));
                        }
                        s
                    })
                    .collect();
                let need = match alg.family() {
                    Family::Ec(crv) => format!("an EC key on {crv}"),
                    f => format!("a {} key", f.kty()),
                };
                findings.push(
                    Finding::new(&ALG_WITHOUT_KEY, format!("{member} lists {name} but the JWK Set has no key for it"))
                        .evidence(format!("{name} needs {need}; the JWK Set has: {}", if kinds.is_empty() { "no keys".to_string() } else { kinds.join(", ") }))
                        .cause("the server advertises an algorithm it has no published key for; a client that negotiates it (id_token_signed_response_alg) gets tokens it cannot verify")
                        .fix(format!("publish a key for {name}, or remove it from {member}")),
                );
            }
        }
    }
    findings
}

/// JK-11: what the JWK Set's caching headers tell clients.
pub fn jwks_caching(url: &str, headers: &Headers) -> Finding {
    let cc = headers.get("cache-control");
    let expires = headers.get("expires");
    let etag = headers.get("etag");
    let last_modified = headers.get("last-modified");
    let mut ev = Vec::new();
    for (n, v) in [
        ("Cache-Control", cc),
        ("Expires", expires),
        ("ETag", etag),
        ("Last-Modified", last_modified),
    ] {
        if let Some(v) = v {
            ev.push(format!("{n}: {v}"));
        }
    }
    let lower = cc.map(str::to_ascii_lowercase).unwrap_or_default();
    let max_age = lower.split(',').find_map(|d| {
        d.trim()
            .strip_prefix("max-age=")
            .and_then(|v| v.trim_matches('"').parse::<u64>().ok())
    });
    let (title, cause, fix) = if lower.contains("no-store") || max_age == Some(0) {
        (
            "the JWK Set must not be cached".to_string(),
            "clients re-fetch the keys for every token, or fall back to their own default; rate limits on the JWKS URL then break validation",
            "allow caching for minutes to hours (Cache-Control: max-age=3600) and keep retired keys published during rotation",
        )
    } else if let Some(s) = max_age {
        (
            format!(
                "the JWK Set may be cached for {}",
                human_secs(i64::try_from(s).unwrap_or(i64::MAX))
            ),
            "clients keep the keys that long; a new key must be published at least that long before tokens are signed with it",
            "none needed; refetch once on an unknown kid (OpenID Connect Core §10.1.1)",
        )
    } else if cc.is_some() || expires.is_some() {
        (
            "the JWK Set's caching is set without max-age".to_string(),
            "clients fall back to Expires or to their own default",
            "state the lifetime with Cache-Control: max-age",
        )
    } else {
        (
            "the JWK Set has no caching headers".to_string(),
            "clients choose their own lifetime (from minutes to forever); after a rotation, some keep old keys too long",
            "send Cache-Control: max-age=<seconds> on the JWKS response",
        )
    };
    Finding::new(&JWKS_CACHE_HEADERS, title)
        .evidence(format!(
            "{url}: {}",
            if ev.is_empty() {
                "no Cache-Control, Expires, ETag or Last-Modified".to_string()
            } else {
                ev.join("; ")
            }
        ))
        .cause(cause)
        .fix(fix)
}

/// CK-02: the server's `Date` against the local clock at the time the
/// response arrived (`local_now`, Unix seconds). `None` without a readable Date.
pub fn date_skew(url: &str, date: &str, local_now: u64) -> Option<Finding> {
    let server = i64::try_from(super::token::http_date(date)?).ok()?;
    let local = i64::try_from(local_now).ok()?;
    let skew = server - local;
    let dir = direction(skew, "the server's clock");
    let ev = format!(
        "{url}: Date: {date}; local clock {}; skew {skew:+} s",
        jwt::iso(local)
    );
    Some(if skew.abs() > SKEW_WARN_SECONDS {
        Finding::new(&DATE_SKEW_LARGE, format!("{dir} (by {})", human_secs(skew)))
            .evidence(ev)
            .cause("one of the two clocks is not synchronised; tokens then look issued in the future or already expired to clients with a small leeway (PyJWT 0 s, openid-client 30 s, Spring 60 s)")
            .fix("synchronise both clocks with NTP; meanwhile a client leeway larger than the skew hides it")
    } else {
        Finding::new(
            &DATE_SKEW,
            format!(
                "the server's clock is within {} of the local clock",
                human_secs(skew)
            ),
        )
        .evidence(ev)
        .cause("Date has one-second resolution; a skew this small is harmless")
        .fix("none needed")
    })
}

/// CK-02: a JWT's `iat` against the local clock when it was received.
/// `None` when the token is not a JWT or has no numeric `iat`.
pub fn iat_skew(what: &str, token: &str, local_now: u64) -> Option<Finding> {
    let j = jwt::decode(token).ok()?;
    let iat = j.claims.get("iat").and_then(Value::as_f64)? as i64;
    let local = i64::try_from(local_now).ok()?;
    let skew = iat - local;
    let ev = format!(
        "{what} {}: iat {iat} ({}); local clock {}; skew {skew:+} s",
        secret::mask(token),
        jwt::iso(iat),
        jwt::iso(local)
    );
    Some(if skew.abs() > SKEW_WARN_SECONDS {
        Finding::new(&IAT_SKEW_LARGE, format!("{what} iat says {}", direction(skew, "the issuer's clock")))
            .evidence(ev)
            .cause("the token signer's clock and the local clock disagree; clients with little leeway reject fresh tokens as issued in the future (or see them expire early)")
            .fix("synchronise the authorization server's and the client's clocks (NTP)")
    } else {
        Finding::new(
            &IAT_SKEW,
            format!(
                "{what} iat is within {} of the local clock",
                human_secs(skew)
            ),
        )
        .evidence(ev)
        .cause("a fresh token: iat is close to now")
        .fix("none needed")
    })
}

fn direction(skew: i64, whose: &str) -> String {
    if skew > 0 {
        format!("{whose} is {} ahead of the local clock", human_secs(skew))
    } else {
        format!("{whose} is {} behind the local clock", human_secs(skew))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspection_proxies_are_recognised() {
        assert_eq!(inspection_proxy("Zscaler Root CA"), Some("zscaler"));
        assert_eq!(
            inspection_proxy("FortiGate CA, Fortinet Ltd."),
            Some("fortinet")
        );
        assert_eq!(inspection_proxy("Let's Encrypt R11"), None);
    }

    #[test]
    fn unknown_issuer_names_the_proxy() {
        let f = finding(
            "https://as.test/token",
            &Failure::Tls {
                host: "as.test".into(),
                kind: TlsFailure::UnknownIssuer {
                    issuer: Some("Zscaler Intermediate Root CA".into()),
                    subject: Some("as.test".into()),
                },
            },
        );
        assert_eq!(f.rule, "TLS-04");
        assert!(f.title.contains("TLS-inspection proxy"), "{}", f.title);
    }

    #[test]
    fn every_failure_has_its_own_check() {
        let all = [
            Failure::Dns {
                host: "h".into(),
                detail: "d".into(),
            },
            Failure::Refused { addr: "a".into() },
            Failure::ConnectTimeout {
                addr: "a".into(),
                after_ms: 1500,
            },
            Failure::ResponseTimeout { after_ms: 1000 },
            Failure::BodyTimeout {
                after_ms: 1000,
                received: 3,
            },
        ];
        for f in &all {
            let x = finding("u", f);
            assert_eq!(x.code, f.check().code);
        }
        assert!(all[0].unreachable() && !all[4].unreachable());
    }

    #[test]
    fn alg_coverage_wants_a_key_of_the_right_curve() {
        let md: Map<String, Value> = serde_json::from_str(
            r#"{"id_token_signing_alg_values_supported":["RS256","ES384","HS256","none"]}"#,
        )
        .unwrap_or_default();
        let jwks: Map<String, Value> = serde_json::from_str(
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#,
        )
        .unwrap_or_default();
        let f = alg_coverage(&md, &jwks);
        let algs: Vec<&str> = f.iter().map(|x| x.title.as_str()).collect();
        assert_eq!(f.len(), 2, "{algs:?}");
        assert!(algs.iter().any(|t| t.contains("RS256")));
        assert!(algs.iter().any(|t| t.contains("ES384")));
    }

    #[test]
    fn skew_is_measured() {
        let f = date_skew("u", "Thu, 01 Jan 2026 00:02:00 GMT", 1_767_225_600);
        assert_eq!(f.map(|f| f.code), Some("clock-skew-date-large"));
        let f = date_skew("u", "Thu, 01 Jan 2026 00:00:05 GMT", 1_767_225_600);
        assert_eq!(f.map(|f| f.code), Some("clock-skew-date"));
    }
}
