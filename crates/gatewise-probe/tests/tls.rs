//! TLS failures told apart, against a rustls server on 127.0.0.1 with
//! certificates made here (rcgen): expired, not yet valid, wrong host,
//! unknown CA (and one whose name says TLS-inspection proxy), self-signed;
//! then a good chain, directly and through a CONNECT proxy.

use gatewise_probe::tls::Trust;
use gatewise_probe::{Options, ProxySettings, Request, Transcript, fetch};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "Test Org");
    params.distinguished_name = dn;
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// When a leaf certificate is valid (RFC 5280 §4.1.2.5).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validity {
    /// rcgen's default: from 1975 to 4096.
    Current,
    /// 2020-01-01 to 2021-01-01.
    Expired,
    /// 2099-01-01 to 2100-01-01.
    NotYetValid,
}

fn leaf(name: &str, issuer: Option<&CertifiedIssuer<'static, KeyPair>>, expired: bool) -> Leaf {
    let validity = if expired {
        Validity::Expired
    } else {
        Validity::Current
    };
    leaf_with(name, issuer, validity)
}

fn leaf_with(
    name: &str,
    issuer: Option<&CertifiedIssuer<'static, KeyPair>>,
    validity: Validity,
) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    match validity {
        Validity::Current => {}
        Validity::Expired => {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        Validity::NotYetValid => {
            params.not_before = date_time_ymd(2099, 1, 1);
            params.not_after = date_time_ymd(2100, 1, 1);
        }
    }
    let cert = match issuer {
        Some(ca) => params.signed_by(&key, ca).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A TLS server answering every request with 200 "ok".
async fn tls_server(leaf: Leaf) -> SocketAddr {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(leaf.chain, leaf.key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn opts(trusted: &[&CertifiedIssuer<'static, KeyPair>]) -> Options {
    let pem: String = trusted.iter().map(|c| c.pem()).collect();
    let trust = Trust::new(false, (!pem.is_empty()).then_some(pem.as_bytes())).unwrap();
    let mut o = Options::new(trust);
    o.timeout = Duration::from_secs(5);
    o
}

async fn get(addr: SocketAddr, opts: &Options) -> Transcript {
    let url = url::Url::parse(&format!("https://localhost:{}/token", addr.port())).unwrap();
    fetch("tls", Request::get(url), opts).await.unwrap()
}

fn failure(t: &Transcript) -> gatewise_core::Finding {
    assert!(t.unreachable(), "{t:?}");
    t.transport_findings().into_iter().next().unwrap()
}

#[tokio::test]
async fn expired_certificate() {
    let root = ca("Test Root CA");
    let addr = tls_server(leaf("localhost", Some(&root), true)).await;
    let t = get(addr, &opts(&[&root])).await;
    let f = failure(&t);
    assert_eq!((f.rule, f.code), ("TLS-01", "certificate-expired"));
    assert!(f.evidence.contains("2021-01-01"), "{}", f.evidence);
    assert!(t.hops[0].timings.tls_ms.is_some());
}

/// TLS-02 is told apart from TLS-01: a `notBefore` in the future (RFC 5280
/// §4.1.2.5) names the start of validity, and the cause points at the
/// local clock first.
#[tokio::test]
async fn not_yet_valid_certificate() {
    let root = ca("Test Root CA");
    let addr = tls_server(leaf_with("localhost", Some(&root), Validity::NotYetValid)).await;
    let t = get(addr, &opts(&[&root])).await;
    let f = failure(&t);
    assert_eq!((f.rule, f.code), ("TLS-02", "certificate-not-yet-valid"));
    assert!(f.evidence.contains("2099-01-01"), "{}", f.evidence);
    assert!(f.evidence.contains("from now"), "{}", f.evidence);
    assert!(f.cause.contains("clock"), "{}", f.cause);
    assert!(!f.title.contains("expired"), "{}", f.title);
    assert!(t.hops[0].timings.tls_ms.is_some());
    // The transcript's failure object says the same, and it is unreachable.
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["failure"]["code"], "certificate-not-yet-valid");
    assert_eq!(json["failure"]["unreachable"], true);
}

#[tokio::test]
async fn wrong_host() {
    let root = ca("Test Root CA");
    let addr = tls_server(leaf("as.other.test", Some(&root), false)).await;
    let f = failure(&get(addr, &opts(&[&root])).await);
    assert_eq!(
        (f.rule, f.code),
        ("TLS-03", "certificate-hostname-mismatch")
    );
    assert!(f.evidence.contains("as.other.test"), "{}", f.evidence);
}

#[tokio::test]
async fn unknown_ca() {
    let trusted = ca("Test Root CA");
    let private = ca("Acme Private Root");
    let addr = tls_server(leaf("localhost", Some(&private), false)).await;
    let f = failure(&get(addr, &opts(&[&trusted])).await);
    assert_eq!((f.rule, f.code), ("TLS-04", "certificate-unknown-issuer"));
    assert!(
        f.evidence.contains("CN=Acme Private Root"),
        "{}",
        f.evidence
    );
    assert!(!f.title.contains("inspection"), "{}", f.title);
}

#[tokio::test]
async fn tls_inspection_proxy_is_named() {
    let trusted = ca("Test Root CA");
    let zscaler = ca("Zscaler Intermediate Root CA");
    let addr = tls_server(leaf("localhost", Some(&zscaler), false)).await;
    let f = failure(&get(addr, &opts(&[&trusted])).await);
    assert_eq!(f.rule, "TLS-04");
    assert!(
        f.title.contains("looks like a TLS-inspection proxy"),
        "{}",
        f.title
    );
}

#[tokio::test]
async fn self_signed() {
    let trusted = ca("Test Root CA");
    let addr = tls_server(leaf("localhost", None, false)).await;
    let f = failure(&get(addr, &opts(&[&trusted])).await);
    assert_eq!((f.rule, f.code), ("TLS-05", "certificate-self-signed"));
}

#[tokio::test]
async fn plain_http_to_a_tls_port() {
    let root = ca("Test Root CA");
    let addr = tls_server(leaf("localhost", Some(&root), false)).await;
    let url = url::Url::parse(&format!("http://localhost:{}/token", addr.port())).unwrap();
    let t = fetch("http", Request::get(url), &opts(&[&root]))
        .await
        .unwrap();
    // The TLS server reads the request as a bad ClientHello and hangs up
    // (or answers an alert): nothing HTTP comes back.
    assert!(t.response().is_none(), "{t:?}");
    let f = t.transport_findings();
    assert!(
        f.iter().any(|x| x.rule == "NET-07" || x.rule == "NET-08"),
        "{:?}",
        f.iter().map(|x| x.code).collect::<Vec<_>>()
    );
}

/// A CONNECT-only proxy on 127.0.0.1.
async fn connect_proxy() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let target = text.split_whitespace().nth(1).unwrap_or("").to_string();
                // localhost:PORT → 127.0.0.1:PORT, as a proxy's resolver would.
                let Ok(mut up) = TcpStream::connect(target.replace("localhost", "127.0.0.1")).await
                else {
                    return;
                };
                let _ = c
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut c, &mut up).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn good_chain_directly_and_through_a_connect_proxy() {
    let root = ca("Test Root CA");
    let addr = tls_server(leaf("localhost", Some(&root), false)).await;
    let mut o = opts(&[&root]);
    let t = get(addr, &o).await;
    assert!(t.failure.is_none(), "{:?}", t.failure);
    assert_eq!(t.response().unwrap().body, b"ok");
    let tm = &t.hops[0].timings;
    for phase in [
        tm.dns_ms,
        tm.connect_ms,
        tm.tls_ms,
        tm.first_byte_ms,
        tm.total_ms,
    ] {
        assert!(phase.is_some(), "{tm:?}");
    }

    let p = connect_proxy().await;
    o.proxy = ProxySettings {
        https: Some(format!("http://{p}")),
        http: None,
        no_proxy: None,
    };
    let t = get(addr, &o).await;
    assert!(t.failure.is_none(), "{:?}", t.failure);
    assert_eq!(t.response().unwrap().status, 200);
    assert!(t.hops[0].timings.tunnel_ms.is_some());
    assert_eq!(t.hops[0].remote.as_deref(), Some(p.to_string().as_str()));
    let f = t.transport_findings();
    assert!(
        f.iter()
            .any(|x| x.code == "proxy-used" && x.evidence.contains("CONNECT"))
    );
}
