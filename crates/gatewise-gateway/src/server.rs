//! Accepting connections: HTTP/1.1 and h2c on one port (hyper-util's auto
//! builder), a header-read timeout against slow clients, and graceful
//! shutdown that stops accepting and lets in-flight requests finish within
//! a deadline.

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
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
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
                let peer = Peer { addr, tls: acceptor.is_some() };
                let service = service_fn(move |req| {
                    let gw = Arc::clone(&gw);
                    async move { Ok::<_, std::convert::Infallible>(gw.handle(req, peer).await) }
                });
                match &acceptor {
                    None => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        let conn = graceful.watch(conn.into_owned());
                        tokio::spawn(async move {
                            if let Err(e) = conn.await {
                                tracing::debug!(%addr, "connection ended: {e}");
                            }
                        });
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        let builder = Arc::clone(&builder);
                        let watcher = graceful.watcher();
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
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                            if let Err(e) = watcher.watch(conn.into_owned()).await {
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
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!("shutdown grace of {:?} passed with requests still open", config.shutdown_grace);
        }
    }
    Ok(())
}
