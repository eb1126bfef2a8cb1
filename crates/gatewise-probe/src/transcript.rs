//! What happened on the wire: each hop's request and response, the timings
//! per phase, the proxy used and the failure, if any.
//!
//! A transcript keeps the real bytes so the core can judge them (client
//! authentication rules need the real `Authorization`, JWT checks the real
//! token). Before it is shown or saved, [`Transcript::masked`] replaces the
//! secrets with the core's fingerprints.

use crate::mask;
use base64::Engine as _;
use gatewise_core::Finding;
use gatewise_core::capture;
use gatewise_core::diagnose::transport::{self, Failure};
use serde::{Serialize, Serializer};

/// Milliseconds spent in each phase of one hop. A phase that did not happen
/// (TLS on `http://`, DNS for an IP literal still counts) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Name resolution.
    pub dns_ms: Option<f64>,
    /// TCP connect (to the server, or to the proxy).
    pub connect_ms: Option<f64>,
    /// The proxy's CONNECT tunnel.
    pub tunnel_ms: Option<f64>,
    /// The TLS handshake.
    pub tls_ms: Option<f64>,
    /// From sending the request to the response head (status and headers).
    pub first_byte_ms: Option<f64>,
    /// From the start of the hop to the end of the body (or the failure).
    pub total_ms: Option<f64>,
}

/// A request as it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The request target on the wire (origin form, or absolute form to a proxy).
    pub target: String,
    /// Header lines in the order sent.
    #[serde(serialize_with = "ser_headers")]
    pub headers: Vec<(String, String)>,
    /// Body.
    #[serde(serialize_with = "ser_body")]
    pub body: Vec<u8>,
}

/// A response as it was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Status code.
    pub status: u16,
    /// Reason phrase (the canonical one when the server's is not known).
    pub reason: String,
    /// Header lines (names lower-cased by the HTTP library).
    #[serde(serialize_with = "ser_headers")]
    pub headers: Vec<(String, String)>,
    /// The body after transfer decoding (chunked removed); content codings
    /// (gzip) are kept, as on the wire.
    #[serde(serialize_with = "ser_body")]
    pub body: Vec<u8>,
    /// False when the body ended early (closed, timed out, cut at the limit).
    pub complete: bool,
    /// What the HTTP layer said when the body ended early.
    pub body_error: Option<String>,
}

impl Received {
    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request and its response (absent when the hop failed before one).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    /// The request.
    pub request: SentRequest,
    /// The response.
    pub response: Option<Received>,
    /// The address connected to (`ip:port`, the proxy's when one was used).
    pub remote: Option<String>,
    /// Time per phase.
    pub timings: Timings,
}

/// The proxy an exchange went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyUse {
    /// The proxy URL, credentials removed.
    pub proxy: String,
    /// True for a CONNECT tunnel (https), false for an absolute-form request (http).
    pub tunnel: bool,
}

/// One logical exchange: the first request and every redirect hop after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// What this exchange was for (`token`, `discovery (OpenID Connect)`, ...).
    pub label: String,
    /// The URL first requested.
    pub url: String,
    /// The proxy used, if any.
    pub proxy: Option<ProxyUse>,
    /// The hops, in order; the last one has the final response.
    pub hops: Vec<Exchange>,
    /// The transport failure, if the exchange did not complete.
    #[serde(serialize_with = "ser_failure")]
    pub failure: Option<Failure>,
    /// True when secrets were masked.
    pub masked: bool,
}

impl Transcript {
    /// The last hop's response.
    pub fn response(&self) -> Option<&Received> {
        self.hops.last().and_then(|h| h.response.as_ref())
    }

    /// The URL of the last hop.
    pub fn final_url(&self) -> &str {
        self.hops.last().map_or(&self.url, |h| &h.request.url)
    }

    /// True when nothing came back at all (DNS, connect, proxy, TLS, no
    /// response before the timeout or the close): the verdict `unreachable`.
    pub fn unreachable(&self) -> bool {
        self.failure.as_ref().is_some_and(Failure::unreachable)
            && self.hops.iter().all(|h| h.response.is_none())
    }

    /// The redirects, as the core lists them.
    pub fn redirects(&self) -> Vec<transport::Hop> {
        self.hops
            .windows(2)
            .filter_map(|w| {
                let (a, b) = (w.first()?, w.get(1)?);
                Some(transport::Hop {
                    status: a.response.as_ref()?.status,
                    from: a.request.url.clone(),
                    to: b.request.url.clone(),
                })
            })
            .collect()
    }

    /// The transport findings: the failure, the proxy used, the redirects.
    pub fn transport_findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(f) = &self.failure {
            out.push(transport::finding(self.final_url(), f));
        }
        if let Some(p) = &self.proxy {
            out.push(transport::proxy_used(&self.url, &p.proxy, p.tunnel));
        }
        if let Some(f) = transport::redirects(&self.redirects()) {
            out.push(f);
        }
        out
    }

    /// A copy with secrets masked (idempotent on a masked transcript).
    #[must_use]
    pub fn masked(&self) -> Transcript {
        if self.masked {
            return self.clone();
        }
        let mut t = self.clone();
        t.masked = true;
        t.url = mask::url(&t.url);
        for hop in &mut t.hops {
            let r = &mut hop.request;
            r.url = mask::url(&r.url);
            r.target = mask::url(&r.target);
            r.headers = mask::headers(&r.headers);
            r.body = mask::body(&mut r.headers, &r.body);
            if let Some(resp) = &mut hop.response {
                resp.headers = mask::headers(&resp.headers);
                resp.body = mask::body(&mut resp.headers, &resp.body);
            }
        }
        t
    }

    /// Every hop as raw capture text, in the format `gatewise doctor
    /// response` reads (one exchange after the other).
    pub fn capture_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, hop) in self.hops.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(&hop.capture_text());
        }
        out
    }
}

impl Exchange {
    /// The hop as raw capture text: the request, then the response as it
    /// came (a chunked body is chunked again, without its last chunk when it
    /// never ended, so the capture shows the same defect).
    pub fn capture_text(&self) -> Vec<u8> {
        let r = &self.request;
        let mut out = format!("{} {} HTTP/1.1\r\n", r.method, r.target).into_bytes();
        for (n, v) in &r.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !r.body.is_empty() {
            out.extend_from_slice(&r.body);
            out.extend_from_slice(b"\r\n");
        }
        let Some(resp) = &self.response else {
            return out;
        };
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(
            format!("{} {} {}\r\n", resp.version, resp.status, resp.reason).as_bytes(),
        );
        for (n, v) in &resp.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        let chunked = resp.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        });
        if chunked {
            if !resp.body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", resp.body.len()).as_bytes());
                out.extend_from_slice(&resp.body);
                out.extend_from_slice(b"\r\n");
            }
            if resp.complete {
                out.extend_from_slice(b"0\r\n\r\n");
            }
        } else {
            out.extend_from_slice(&resp.body);
        }
        out
    }

    /// The hop as the core's capture exchange, ready to be judged.
    pub fn capture(&self) -> Option<capture::Exchange> {
        capture::parse(&self.capture_text())
            .exchanges
            .into_iter()
            .next()
    }
}

fn ser_headers<S: Serializer>(h: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let pairs: Vec<[&str; 2]> = h.iter().map(|(n, v)| [n.as_str(), v.as_str()]).collect();
    pairs.serialize(s)
}

#[derive(Serialize)]
struct BodyView<'a> {
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
}

fn ser_body<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let view = match std::str::from_utf8(b) {
        Ok(t) => BodyView {
            bytes: b.len(),
            text: Some(t),
            base64: None,
        },
        Err(_) => BodyView {
            bytes: b.len(),
            text: None,
            base64: Some(base64::engine::general_purpose::STANDARD.encode(b)),
        },
    };
    view.serialize(s)
}

#[derive(Serialize)]
struct FailureView {
    rule: &'static str,
    code: &'static str,
    title: String,
    unreachable: bool,
}

fn ser_failure<S: Serializer>(f: &Option<Failure>, s: S) -> Result<S::Ok, S::Error> {
    f.as_ref()
        .map(|f| FailureView {
            rule: f.check().rule,
            code: f.check().code,
            title: transport::finding("", f).title,
            unreachable: f.unreachable(),
        })
        .serialize(s)
}
