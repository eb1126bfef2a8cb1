//! TLS termination: SNI picks the certificate, ALPN offers h2, and changed
//! certificate files are picked up without a restart.

use gatewise_config::model::*;
use gatewise_gateway::server::Running;
use gatewise_gateway::tls::CertStore;
use gatewise_gateway::{FixedClock, Gateway};
use gatewise_test_support::servers;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "gatewise-tls-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Pki { ca, dir }
    }

    /// Issues a leaf for `name`, writes `<name>.pem` and `<name>.key`; returns its DER.
    fn leaf(&self, name: &str) -> (CertificateFiles, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let files = CertificateFiles {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        (files, cert.der().clone())
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn peer_cert(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    sni: &str,
) -> (CertificateDer<'static>, Option<Vec<u8>>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
        .unwrap();
    let (_, session) = conn.get_ref();
    let cert = session.peer_certificates().unwrap()[0].clone().into_owned();
    (cert, session.alpn_protocol().map(<[u8]>::to_vec))
}

#[tokio::test]
async fn sni_alpn_and_reload() {
    let pki = Pki::new();
    let (a_files, a_der) = pki.leaf("a.test");
    let (b_files, b_der) = pki.leaf("b.test");
    let store = Arc::new(
        CertStore::load(&TlsConfig {
            certificates: vec![a_files.clone(), b_files],
        })
        .unwrap(),
    );

    let echo = servers::echo().await;
    let config = route_all(Upstream {
        host_header: HostHeader::Preserve,
        ..upstream(format!("http://{echo}"), None)
    });
    let running = start(config, Some(Arc::clone(&store))).await;
    let addr = running.addr;

    let ca_der = pki.ca.der().clone();
    // SNI chooses; an unknown name gets the first (default) certificate; ALPN picks h2.
    let (got, alpn) = peer_cert(addr, &ca_der, "b.test").await;
    assert_eq!(got, b_der);
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(peer_cert(addr, &ca_der, "a.test").await.0, a_der);

    // A real HTTP/2 request over TLS, proxied to the HTTP/1.1 upstream.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&ca_der).unwrap())
        .resolve("a.test", addr)
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://a.test:{}/x", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // HTTP/1.1 over TLS (ALPN http/1.1): kept alive over several requests,
    // a body-less one and one with a body on the same connection.
    let h1 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&ca_der).unwrap())
        .resolve("a.test", addr)
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for (i, body) in [None, Some("posted"), None].into_iter().enumerate() {
        let url = format!("https://a.test:{}/h1/{i}", addr.port());
        let req = match body {
            Some(b) => h1.post(url).body(b),
            None => h1.get(url),
        };
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), reqwest::Version::HTTP_11);
        let got: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(got["path"], format!("/h1/{i}"));
        assert_eq!(got["body"], body.unwrap_or(""));
        assert_eq!(got["headers"]["x-forwarded-proto"], "https");
    }

    // Replace a.test's files: the next handshake serves the new certificate.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (_, a2_der) = pki.leaf("a.test");
    assert!(store.reload_if_changed().unwrap());
    assert_eq!(peer_cert(addr, &ca_der, "a.test").await.0, a2_der);
    // A broken file keeps the previous certificates.
    std::fs::write(&a_files.key, "not a key").unwrap();
    assert!(store.reload_if_changed().is_err());
    assert_eq!(peer_cert(addr, &ca_der, "a.test").await.0, a2_der);
    let _ = std::fs::remove_dir_all(&pki.dir);
}

fn route_all(upstream: Upstream) -> DynamicConfig {
    DynamicConfig {
        routes: vec![Route::new(
            "all",
            PathMatch::Prefix("/".into()),
            &upstream.name,
        )],
        upstreams: vec![upstream],
        max_body_bytes: 1 << 20,
        ..DynamicConfig::default()
    }
}

fn upstream(target: String, ca_file: Option<PathBuf>) -> Upstream {
    Upstream {
        connect_timeout: Duration::from_secs(1),
        first_byte_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        retries: 0,
        ca_file,
        host_header: HostHeader::Target,
        ..Upstream::new("up", vec![target])
    }
}

/// Serves `config` (with TLS when given) on 127.0.0.1 while the handle lives.
async fn start(config: DynamicConfig, tls: Option<Arc<CertStore>>) -> Running {
    let gateway = Arc::new(Gateway::new(config, Arc::new(FixedClock(0))).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut stat = StaticConfig::local(listener.local_addr().unwrap());
    stat.header_read_timeout = Duration::from_secs(2);
    stat.shutdown_grace = Duration::from_secs(1);
    Running::spawn(listener, gateway, stat, tls).unwrap()
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_configured_ca() {
    let pki = Pki::new();
    let (files, _) = pki.leaf("127.0.0.1");
    let ca_pem = pki.dir.join("ca.pem");
    std::fs::write(&ca_pem, pki.ca.pem()).unwrap();
    // A TLS front (a gateway itself) before the echo server plays the https upstream.
    let echo = servers::echo().await;
    let store = Arc::new(
        CertStore::load(&TlsConfig {
            certificates: vec![files],
        })
        .unwrap(),
    );
    let tls_front = start(
        route_all(upstream(format!("http://{echo}"), None)),
        Some(store),
    )
    .await;
    let tls_upstream = tls_front.addr;

    let trusted_gw = start(
        route_all(upstream(
            format!("https://{tls_upstream}"),
            Some(ca_pem.clone()),
        )),
        None,
    )
    .await;
    let resp = reqwest::get(format!("http://{}/via-tls", trusted_gw.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["path"], "/via-tls");
    // The first gateway saw TLS from the second (it set x-forwarded-proto=https
    // on its own hop, after the second set http).
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // Without the CA (system roots only) the upstream's certificate is unknown: 502.
    let untrusted_gw = start(
        route_all(upstream(format!("https://{tls_upstream}"), None)),
        None,
    )
    .await;
    let resp = reqwest::get(format!("http://{}/via-tls", untrusted_gw.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);

    // A ca_file that is not a certificate is refused when the gateway is built.
    let bogus = pki.dir.join("bogus.pem");
    std::fs::write(&bogus, "nothing here").unwrap();
    let err = Gateway::new(
        route_all(upstream(format!("https://{tls_upstream}"), Some(bogus))),
        Arc::new(FixedClock(0)),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("holds no usable CA certificate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&pki.dir);
}

/// Relays each accepted connection to `to`, counting them.
async fn counting_relay(
    to: std::net::SocketAddr,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn an_h2_upstream_shares_one_connection() {
    let pki = Pki::new();
    let (files, _) = pki.leaf("127.0.0.1");
    let ca_pem = pki.dir.join("ca.pem");
    std::fs::write(&ca_pem, pki.ca.pem()).unwrap();
    let echo = servers::echo().await;
    let store = Arc::new(
        CertStore::load(&TlsConfig {
            certificates: vec![files],
        })
        .unwrap(),
    );
    // A TLS front offering h2 by ALPN, behind a relay that counts connections.
    let tls_front = start(
        route_all(upstream(format!("http://{echo}"), None)),
        Some(store),
    )
    .await;
    let (relay, connections) = counting_relay(tls_front.addr).await;
    let gw = start(
        route_all(upstream(format!("https://{relay}"), Some(ca_pem))),
        None,
    )
    .await;
    let http = reqwest::Client::new();
    let get = |i: usize| {
        let http = http.clone();
        let url = format!("http://{}/h2/{i}", gw.addr);
        async move {
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["path"], format!("/h2/{i}"));
        }
    };
    get(0).await;
    // Then many at once: all multiplexed on the one connection.
    let mut all = tokio::task::JoinSet::new();
    for i in 1..=16 {
        all.spawn(get(i));
    }
    while let Some(done) = all.join_next().await {
        done.unwrap();
    }
    get(17).await;
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "h2 requests should share one connection"
    );
    let _ = std::fs::remove_dir_all(&pki.dir);
}

/// HTTP/1.1 over TLS served by `inbound`: a large answer to a client that
/// reads slowly at first arrives whole.
#[tokio::test]
async fn a_large_answer_over_tls_arrives_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SIZE: usize = 3 << 20;
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut u, _) = up.accept().await.unwrap();
        let mut b = [0u8; 4096];
        let _ = u.read(&mut b).await;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n");
        u.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 << 10];
        for _ in 0..SIZE / chunk.len() {
            if u.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let pki = Pki::new();
    let (files, _) = pki.leaf("a.test");
    let store = Arc::new(
        CertStore::load(&TlsConfig {
            certificates: vec![files],
        })
        .unwrap(),
    );
    let running = start(
        route_all(upstream(format!("http://{up_addr}"), None)),
        Some(store),
    )
    .await;
    let addr = running.addr;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(pki.ca.der()).unwrap())
        .resolve("a.test", addr)
        .http1_only()
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://a.test:{}/big", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    // Slowly at first, so that the socket fills and rustls holds the rest.
    let mut stream = resp;
    let mut got = 0;
    let mut first = true;
    while let Some(piece) = tokio::time::timeout(Duration::from_secs(8), stream.chunk())
        .await
        .expect("the rest of the answer in time")
        .unwrap()
    {
        got += piece.len();
        if first {
            tokio::time::sleep(Duration::from_millis(300)).await;
            first = false;
        }
    }
    assert_eq!(got, SIZE);
    let _ = std::fs::remove_dir_all(&pki.dir);
}
