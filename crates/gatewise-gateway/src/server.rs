//! Accepting connections: HTTP/1.1 and h2c on one port, a header-read
//! timeout against slow clients, and graceful shutdown that stops accepting
//! and lets in-flight requests finish within a deadline.
//!
//! A connection (plain TCP, or TLS unless ALPN chose h2) starts in
//! [`crate::inbound`], which serves ordinary HTTP/1.1 requests itself and
//! hands the connection to hyper at the first request that is anything
//! else ([`hand_over`]). TLS connections that chose h2 go to hyper after
//! the handshake.

use crate::proxy::{Gateway, Peer};
use crate::tls::CertStore;
use gatewise_config::model::StaticConfig;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves `listener` until `shutdown` resolves, then waits up to
/// `config.shutdown_grace` for open requests. With `tls`, every connection
/// is a TLS handshake first (bounded by the header-read timeout), then
/// HTTP/2 or HTTP/1.1 as ALPN chose.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    config: &StaticConfig,
    tls: Option<Arc<CertStore>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = match &tls {
        Some(store) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(
            store.server_config().map_err(std::io::Error::other)?,
        ))),
        None => None,
    };
    let handshake_timeout = config.header_read_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
    // For connections `inbound` served requests on: HTTP/1.1 only, set as
    // the auto builder's HTTP/1.1 side.
    let mut http1_only = hyper::server::conn::http1::Builder::new();
    http1_only
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192));
    let builders = Arc::new(Builders {
        auto: builder,
        http1_only,
    });
    let graceful = GracefulShutdown::new();
    // Tells the connections served by `inbound` to close between requests.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limits = crate::inbound::Limits {
        header_read_timeout: config.header_read_timeout,
        max_head: config.max_header_bytes.max(8192),
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gw = Arc::clone(&gateway);
                let builders = Arc::clone(&builders);
                // Counts the connection for the graceful shutdown from the
                // start, until it ends.
                let watcher = graceful.watcher();
                let stop = stop_rx.clone();
                match &acceptor {
                    None => {
                        tokio::spawn(async move {
                            let peer = Peer::new(addr, false);
                            let ended = match crate::inbound::serve(stream, Arc::clone(&gw), peer.clone(), limits, stop.clone()).await {
                                crate::inbound::Ended::Closed => Ok(()),
                                crate::inbound::Ended::HandOff { io, fresh } => {
                                    hand_over(io, fresh, gw, peer, &builders, stop).await
                                }
                            };
                            drop(watcher);
                            if let Err(e) = ended {
                                tracing::debug!(%addr, "connection ended: {e}");
                            }
                        });
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%addr, "TLS handshake failed: {e}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%addr, "TLS handshake timed out");
                                    return;
                                }
                            };
                            let peer = Peer::new(addr, true);
                            // HTTP/2 as ALPN chose goes to hyper; HTTP/1.1
                            // (or no ALPN) starts in `inbound` as on plain TCP.
                            let ended = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                                hand_over(crate::inbound::Prefixed::new(bytes::Bytes::new(), tls), true, gw, peer, &builders, stop).await
                            } else {
                                match crate::inbound::serve(tls, Arc::clone(&gw), peer.clone(), limits, stop.clone()).await {
                                    crate::inbound::Ended::Closed => Ok(()),
                                    crate::inbound::Ended::HandOff { io, fresh } => {
                                        hand_over(io, fresh, gw, peer, &builders, stop).await
                                    }
                                }
                            };
                            drop(watcher);
                            if let Err(e) = ended {
                                tracing::debug!(%addr, "connection ended: {e}");
                            }
                        });
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!("shutdown grace of {:?} passed with requests still open", config.shutdown_grace);
        }
    }
    Ok(())
}

/// hyper's connection builders, set once.
struct Builders {
    /// HTTP/1.1 or HTTP/2 (h2c prior knowledge, or ALPN's choice).
    auto: auto::Builder<TokioExecutor>,
    /// HTTP/1.1 only: for connections requests were served on already.
    http1_only: hyper::server::conn::http1::Builder,
}

/// Serves with hyper a connection [`crate::inbound`] handed over (or one it
/// never saw: HTTP/2 by ALPN). Only a connection nothing was served on
/// (`fresh`) may turn out to be HTTP/2; [`drive`] polls it before any
/// shutdown, so the auto builder has read the bytes handed over and chosen.
async fn hand_over<IO>(
    io: crate::inbound::Prefixed<IO>,
    fresh: bool,
    gw: Arc<Gateway>,
    peer: Peer,
    builders: &Builders,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let gw = Arc::clone(&gw);
        let peer = peer.clone();
        // Boxed: hyper keeps and moves the service's future; a pointer
        // moves cheaper than the whole request state.
        Box::pin(async move { Ok::<_, std::convert::Infallible>(gw.handle(req, peer).await) })
    });
    let io = TokioIo::new(io);
    if fresh {
        let conn = builders
            .auto
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        drive(conn, |c| c.graceful_shutdown(), stop).await
    } else {
        let conn = builders
            .http1_only
            .serve_connection(io, service)
            .with_upgrades();
        drive(conn, |c| c.graceful_shutdown(), stop)
            .await
            .map_err(Into::into)
    }
}

/// Drives a connection handed over by [`crate::inbound`] until it ends,
/// starting its graceful shutdown once `stop` turns true. Unlike hyper-util's
/// watcher, the connection is polled before it is told to shut down: the
/// request handed over with it is read and answered (with `Connection:
/// close`), not dropped unread.
async fn drive<C, E>(
    conn: C,
    shutdown: impl Fn(std::pin::Pin<&mut C>),
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    let mut stopping = std::pin::pin!(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    let mut signalled = false;
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(r) = conn.as_mut().poll(cx) {
            return std::task::Poll::Ready(r);
        }
        if !signalled && stopping.as_mut().poll(cx).is_ready() {
            signalled = true;
            shutdown(conn.as_mut());
            return conn.as_mut().poll(cx);
        }
        std::task::Poll::Pending
    })
    .await
}

/// A gateway serving in this process, for embedding (the demo, tests).
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The gateway itself (counters, state, reload).
    pub gateway: Arc<Gateway>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Starts serving `listener` with `config` (its `listen` is ignored:
    /// the listener is already bound).
    pub fn spawn(
        listener: TcpListener,
        gateway: Arc<Gateway>,
        config: StaticConfig,
        tls: Option<Arc<CertStore>>,
    ) -> std::io::Result<Running> {
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let gw = Arc::clone(&gateway);
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.await;
            };
            serve(listener, gw, &config, tls, stop).await
        });
        Ok(Running {
            addr,
            gateway,
            stop: Some(tx),
            task,
        })
    }

    /// Builds a gateway for `dynamic` and serves it on 127.0.0.1 on a free port.
    pub async fn local(
        dynamic: gatewise_config::model::DynamicConfig,
        clock: Arc<dyn crate::Clock>,
    ) -> Result<Running, crate::GatewayError> {
        Running::local_gateway(Gateway::new(dynamic, clock)?).await
    }

    /// Serves an already built gateway (with a call log, say) on 127.0.0.1
    /// on a free port.
    pub async fn local_gateway(gateway: Gateway) -> Result<Running, crate::GatewayError> {
        let gateway = Arc::new(gateway);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| crate::GatewayError::Listen(format!("cannot listen on 127.0.0.1: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| crate::GatewayError::Listen(e.to_string()))?;
        let mut config = StaticConfig::local(addr);
        config.header_read_timeout = std::time::Duration::from_secs(2);
        config.shutdown_grace = std::time::Duration::from_secs(1);
        Running::spawn(listener, gateway, config, None)
            .map_err(|e| crate::GatewayError::Listen(e.to_string()))
    }

    /// Stops accepting and waits for open requests (up to the shutdown grace).
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
