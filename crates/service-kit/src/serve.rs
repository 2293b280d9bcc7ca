//! Serving a router with graceful shutdown and a bounded drain.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;

/// Bind `0.0.0.0:port` and serve `router` until SIGTERM/SIGINT ([`crate::shutdown::signal`]),
/// then stop accepting connections and wait for in-flight requests, at most `drain_timeout`.
pub async fn serve(
    router: axum::Router,
    port: u16,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
    serve_listener(listener, router, crate::shutdown::signal(), drain_timeout).await
}

/// Serve `router` on an already bound `listener` until `shutdown` resolves, then drain
/// in-flight requests for at most `drain_timeout` (after which they are dropped).
/// Useful in tests: bind `127.0.0.1:0`, read `local_addr()`, pass a oneshot receiver.
pub async fn serve_listener(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = started_tx.send(());
    });
    let deadline = async move {
        if started_rx.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server.into_future() => {
            tracing::info!("server stopped");
            result
        }
        () = deadline => {
            tracing::warn!(?drain_timeout, "drain timeout elapsed, dropping remaining connections");
            Ok(())
        }
    }
}
