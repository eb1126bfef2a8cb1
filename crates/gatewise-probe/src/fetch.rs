//! One HTTP exchange, phase by phase: DNS (`lookup_host`), TCP connect, the
//! proxy's CONNECT tunnel, the TLS handshake, then hyper's low-level
//! HTTP/1.1 client (`client::conn::http1`) on the connection made here, so
//! each phase is timed and each failure is told apart. Redirects are
//! followed (at most [`Options::max_redirects`]), each hop recorded.
//!
//! Nothing here decides whether the exchange is *right*: the core does.

use crate::ProbeError;
use crate::proxy::{Proxy, ProxySettings};
use crate::tls::{self, Trust};
use crate::transcript::{Exchange, ProxyUse, Received, SentRequest, Timings, Transcript};
use bytes::Bytes;
use gatewise_core::capture::DEFAULT_MAX_INPUT;
use gatewise_core::diagnose::transport::{Failure, TlsFailure};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use url::Url;

/// How exchanges are made.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each hop must finish (connect, TLS, response and body) within this.
    pub timeout: Duration,
    /// Follow redirects at all.
    pub follow_redirects: bool,
    /// The most redirects followed (5 by default).
    pub max_redirects: usize,
    /// The largest body read (16 MiB by default, like the offline doctor).
    pub max_body: usize,
    /// The proxies to use.
    pub proxy: ProxySettings,
    /// Trusted roots.
    pub trust: Trust,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Options {
    /// Defaults: 10 s per hop, 5 redirects, 16 MiB, no proxy.
    pub fn new(trust: Trust) -> Options {
        Options {
            timeout: Duration::from_secs(10),
            follow_redirects: true,
            max_redirects: 5,
            max_body: DEFAULT_MAX_INPUT,
            proxy: ProxySettings::none(),
            trust,
            user_agent: concat!("gatewise-doctor/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A request to make. `Host`, `User-Agent` and `Content-Length` are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Absolute `http://` or `https://` URL.
    pub url: Url,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// A GET that accepts JSON.
    pub fn get(url: Url) -> Request {
        Request {
            method: "GET".into(),
            url,
            headers: vec![("Accept".into(), "application/json".into())],
            body: Vec::new(),
        }
    }
}

/// Performs the exchange, following redirects. Transport failures are in
/// the transcript; an `Err` means the request itself cannot be made (a bad
/// URL, header or proxy setting).
pub async fn fetch(label: &str, req: Request, opts: &Options) -> Result<Transcript, ProbeError> {
    let mut t = Transcript {
        label: label.to_string(),
        url: req.url.to_string(),
        proxy: None,
        hops: Vec::new(),
        failure: None,
        masked: false,
    };
    let mut current = req;
    loop {
        check_url(&current.url)?;
        let proxy = opts.proxy.for_url(&current.url)?;
        if let (None, Some(p)) = (&t.proxy, &proxy) {
            t.proxy = Some(ProxyUse {
                proxy: p.display.clone(),
                tunnel: current.url.scheme() == "https",
            });
        }
        let (exchange, failure) = hop(&current, opts, proxy.as_ref()).await?;
        let next = match (&failure, &exchange.response) {
            (None, Some(resp)) if opts.follow_redirects => redirect(&current, resp),
            _ => None,
        };
        t.hops.push(exchange);
        if let Some(f) = failure {
            t.failure = Some(f);
            break;
        }
        let Some(next) = next else { break };
        if t.hops.len() > opts.max_redirects {
            t.failure = Some(Failure::TooManyRedirects {
                max: opts.max_redirects,
                last: next.url.to_string(),
            });
            break;
        }
        current = next;
    }
    Ok(t)
}

fn check_url(url: &Url) -> Result<(), ProbeError> {
    let bad = |reason: &str| ProbeError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// URLs can be probed"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    Ok(())
}

/// The next request when `resp` is a redirect, as browsers and most HTTP
/// clients build it: 303 (and 301/302 after a POST) become a GET without
/// body; 307/308 repeat the request; credentials are not sent to another origin.
fn redirect(current: &Request, resp: &Received) -> Option<Request> {
    if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = resp.header("location")?;
    let url = current.url.join(location.trim()).ok()?;
    let to_get = resp.status == 303
        || (matches!(resp.status, 301 | 302) && current.method.eq_ignore_ascii_case("POST"));
    let same_origin = url.origin() == current.url.origin();
    let headers = current
        .headers
        .iter()
        .filter(|(n, _)| {
            let n = n.to_ascii_lowercase();
            let body_header = matches!(n.as_str(), "content-type" | "content-length");
            let credential = matches!(n.as_str(), "authorization" | "cookie");
            !(to_get && body_header) && (same_origin || !credential)
        })
        .cloned()
        .collect();
    Some(Request {
        method: if to_get {
            "GET".into()
        } else {
            current.method.clone()
        },
        url,
        headers,
        body: if to_get {
            Vec::new()
        } else {
            current.body.clone()
        },
    })
}

/// A connection, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The host as the URL names it, without IPv6 brackets.
fn bare_host(url: &Url) -> String {
    url.host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string()
}

/// One hop: the exchange as far as it got, and the failure that stopped it.
async fn hop(
    req: &Request,
    opts: &Options,
    proxy: Option<&Proxy>,
) -> Result<(Exchange, Option<Failure>), ProbeError> {
    let https = req.url.scheme() == "https";
    let host = bare_host(&req.url);
    let port = req
        .url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let authority = match req.url.port() {
        Some(p) => format!("{}:{p}", req.url.host_str().unwrap_or("")),
        None => req.url.host_str().unwrap_or("").to_string(),
    };
    let absolute_form = proxy.is_some() && !https;
    let target = if absolute_form {
        let mut u = req.url.clone();
        u.set_fragment(None);
        u.to_string()
    } else {
        match req.url.query() {
            Some(q) => format!("{}?{q}", req.url.path()),
            None => req.url.path().to_string(),
        }
    };
    let mut headers = vec![
        ("Host".to_string(), authority.clone()),
        ("User-Agent".to_string(), opts.user_agent.clone()),
    ];
    headers.extend(
        req.headers
            .iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("host") && !n.eq_ignore_ascii_case("content-length")
            })
            .cloned(),
    );
    if !req.body.is_empty() || matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        headers.push(("Content-Length".into(), req.body.len().to_string()));
    }
    if absolute_form && let Some(auth) = proxy.and_then(|p| p.authorization.clone()) {
        headers.push(("Proxy-Authorization".into(), auth));
    }
    let mut exchange = Exchange {
        request: SentRequest {
            method: req.method.clone(),
            url: req.url.to_string(),
            target: target.clone(),
            headers,
            body: req.body.clone(),
        },
        response: None,
        remote: None,
        timings: Timings::default(),
    };
    // Build the wire request first: a header the HTTP library refuses is
    // the caller's mistake, not the server's.
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(target.as_str());
    for (n, v) in &exchange.request.headers {
        builder = builder.header(n.as_str(), v.as_str());
    }
    let wire = builder
        .body(Full::new(Bytes::from(req.body.clone())))
        .map_err(|e| ProbeError::Url {
            url: req.url.to_string(),
            reason: format!("the request cannot be built: {e}"),
        })?;

    let start = Instant::now();
    let deadline = start + opts.timeout;
    let timeout_ms = duration_ms(opts.timeout);
    let outcome = connect_and_send(
        &mut exchange,
        wire,
        ConnectPlan {
            https,
            host: &host,
            port,
            connect_authority: format!("{}:{port}", req.url.host_str().unwrap_or("")),
            proxy,
        },
        opts,
        start,
        deadline,
        timeout_ms,
    )
    .await;
    exchange.timings.total_ms = Some(ms(start.elapsed()));
    Ok((exchange, outcome.err()))
}

struct ConnectPlan<'a> {
    https: bool,
    /// The host, without IPv6 brackets (for DNS and the TLS name).
    host: &'a str,
    port: u16,
    /// `host:port` for CONNECT (always with the port, RFC 9110 §9.3.6).
    connect_authority: String,
    proxy: Option<&'a Proxy>,
}

/// Resolves, connects, tunnels, shakes hands, sends and reads; fills in the
/// exchange as it goes. `Err` is the failure that stopped it.
#[allow(clippy::too_many_arguments)]
async fn connect_and_send(
    exchange: &mut Exchange,
    wire: http::Request<Full<Bytes>>,
    plan: ConnectPlan<'_>,
    opts: &Options,
    start: Instant,
    deadline: Instant,
    timeout_ms: u64,
) -> Result<(), Failure> {
    let (connect_host, connect_port) = match plan.proxy {
        Some(p) => (p.host.as_str(), p.port),
        None => (plan.host, plan.port),
    };
    let via_proxy = |detail: String, status: Option<u16>| Failure::Proxy {
        proxy: plan.proxy.map(|p| p.display.clone()).unwrap_or_default(),
        status,
        detail,
    };

    // DNS.
    let t = Instant::now();
    let resolved = timeout_at(
        deadline,
        tokio::net::lookup_host((connect_host, connect_port)),
    )
    .await;
    exchange.timings.dns_ms = Some(ms(t.elapsed()));
    let addrs: Vec<SocketAddr> = match resolved {
        Ok(Ok(it)) => it.collect(),
        Ok(Err(e)) => {
            let detail = e.to_string();
            return Err(match plan.proxy {
                Some(_) => via_proxy(
                    format!("the proxy host {connect_host} does not resolve: {detail}"),
                    None,
                ),
                None => Failure::Dns {
                    host: connect_host.to_string(),
                    detail,
                },
            });
        }
        Err(_) => {
            return Err(Failure::Dns {
                host: connect_host.to_string(),
                detail: format!("no answer within {timeout_ms} ms"),
            });
        }
    };
    if addrs.is_empty() {
        return Err(Failure::Dns {
            host: connect_host.to_string(),
            detail: "no addresses".into(),
        });
    }

    // TCP: each address in turn, as curl does.
    let t = Instant::now();
    let addr_text = format!("{connect_host}:{connect_port}");
    let mut last: Option<Failure> = None;
    let mut stream = None;
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                exchange.remote = Some(addr.to_string());
                stream = Some(s);
                break;
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Some(Failure::Refused {
                    addr: addr_text.clone(),
                });
            }
            Ok(Err(e)) => {
                last = Some(Failure::Connect {
                    addr: addr_text.clone(),
                    detail: e.to_string(),
                });
            }
            Err(_) => {
                last = Some(Failure::ConnectTimeout {
                    addr: addr_text.clone(),
                    after_ms: timeout_ms,
                });
                break;
            }
        }
    }
    exchange.timings.connect_ms = Some(ms(t.elapsed()));
    let Some(tcp) = stream else {
        let f = last.unwrap_or(Failure::Connect {
            addr: addr_text,
            detail: "no address could be tried".into(),
        });
        return Err(match plan.proxy {
            Some(_) => via_proxy(
                format!(
                    "cannot connect to the proxy: {}",
                    gatewise_core::diagnose::transport::finding("", &f).title
                ),
                None,
            ),
            None => f,
        });
    };
    let _ = tcp.set_nodelay(true);
    let mut tcp = tcp;

    // The proxy tunnel for https.
    if let (Some(p), true) = (plan.proxy, plan.https) {
        let t = Instant::now();
        let r = timeout_at(
            deadline,
            tunnel(&mut tcp, plan.connect_authority.clone(), p),
        )
        .await;
        exchange.timings.tunnel_ms = Some(ms(t.elapsed()));
        match r {
            Ok(Ok(())) => {}
            Ok(Err((status, detail))) => return Err(via_proxy(detail, status)),
            Err(_) => {
                return Err(via_proxy(
                    format!("no answer to CONNECT within {timeout_ms} ms"),
                    None,
                ));
            }
        }
    }

    // TLS.
    let io: Box<dyn Io> = if plan.https {
        let t = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tls_failure = |kind: TlsFailure| Failure::Tls {
            host: plan.host.to_string(),
            kind,
        };
        let cfg = opts
            .trust
            .client_config(Arc::clone(&seen))
            .map_err(|detail| tls_failure(TlsFailure::Other { detail }))?;
        let name = rustls_pki_types::ServerName::try_from(plan.host.to_string()).map_err(|e| {
            tls_failure(TlsFailure::Other {
                detail: format!("{} is not a valid TLS server name: {e}", plan.host),
            })
        })?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let r = timeout_at(deadline, connector.connect(name, tcp)).await;
        exchange.timings.tls_ms = Some(ms(t.elapsed()));
        match r {
            Ok(Ok(s)) => Box::new(s),
            Ok(Err(e)) => {
                let chain = seen.lock().map(|g| g.clone()).unwrap_or_default();
                return Err(tls_failure(tls::classify(&e, &chain)));
            }
            Err(_) => {
                return Err(tls_failure(TlsFailure::Other {
                    detail: format!("no TLS handshake within {timeout_ms} ms"),
                }));
            }
        }
    } else {
        Box::new(tcp)
    };

    // HTTP/1.1 on this connection.
    let t_send = Instant::now();
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| Failure::Closed {
            detail: gatewise_core::error_chain(&e),
        })?;
    let conn_task = tokio::spawn(conn);
    let result = exchange_on(
        exchange,
        &mut sender,
        wire,
        opts,
        t_send,
        start,
        deadline,
        timeout_ms,
    )
    .await;
    conn_task.abort();
    result
}

/// Sends CONNECT and reads the proxy's answer. `Err((status, detail))`.
async fn tunnel(
    tcp: &mut TcpStream,
    authority: String,
    proxy: &Proxy,
) -> Result<(), (Option<u16>, String)> {
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(a) = &proxy.authorization {
        req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| (None, format!("cannot send CONNECT: {e}")))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| (None, format!("reading the proxy's answer: {e}")))?;
        if n == 0 {
            return Err((None, "the proxy closed the connection after CONNECT".into()));
        }
        head.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        if head.len() > 64 * 1024 {
            return Err((None, "the proxy's answer to CONNECT has no end".into()));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("").trim().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(s) if (200..300).contains(&s) => Ok(()),
        Some(s) => Err((
            Some(s),
            format!("CONNECT {authority} answered \"{status_line}\""),
        )),
        None => Err((
            None,
            format!("CONNECT {authority}: not an HTTP answer: \"{status_line}\""),
        )),
    }
}

/// Sends the request and reads the response on an established connection.
#[allow(clippy::too_many_arguments)]
async fn exchange_on(
    exchange: &mut Exchange,
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    wire: http::Request<Full<Bytes>>,
    opts: &Options,
    t_send: Instant,
    start: Instant,
    deadline: Instant,
    timeout_ms: u64,
) -> Result<(), Failure> {
    let resp = match timeout_at(deadline, sender.send_request(wire)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let detail = gatewise_core::error_chain(&e);
            return Err(if e.is_parse() || e.is_parse_status() {
                Failure::NotHttp { detail }
            } else {
                Failure::Closed { detail }
            });
        }
        Err(_) => {
            return Err(Failure::ResponseTimeout {
                after_ms: timeout_ms,
            });
        }
    };
    exchange.timings.first_byte_ms = Some(ms(t_send.elapsed()));
    let status = resp.status();
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
    let version = match resp.version() {
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut received = Received {
        version: version.to_string(),
        status: status.as_u16(),
        reason,
        headers,
        body: Vec::new(),
        complete: true,
        body_error: None,
    };
    let mut body = resp.into_body();
    let mut failure = None;
    loop {
        match timeout_at(deadline, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = opts.max_body.saturating_sub(received.body.len());
                if data.len() > room {
                    received
                        .body
                        .extend_from_slice(data.get(..room).unwrap_or(&[]));
                    received.complete = false;
                    received.body_error = Some(format!("cut at {} bytes", opts.max_body));
                    failure = Some(Failure::BodyTooLarge {
                        limit: opts.max_body,
                    });
                    break;
                }
                received.body.extend_from_slice(&data);
            }
            Ok(Some(Err(e))) => {
                received.complete = false;
                received.body_error = Some(gatewise_core::error_chain(&e));
                break;
            }
            Err(_) => {
                received.complete = false;
                received.body_error = Some(format!(
                    "no end of body within {timeout_ms} ms (started {} ms ago)",
                    duration_ms(start.elapsed())
                ));
                failure = Some(Failure::BodyTimeout {
                    after_ms: timeout_ms,
                    received: received.body.len(),
                });
                break;
            }
        }
    }
    exchange.response = Some(received);
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}
