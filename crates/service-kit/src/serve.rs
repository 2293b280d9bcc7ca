//! Serving a router over HTTP/1.1 with bounded header reads, bounded idle connections,
//! graceful shutdown and a bounded drain.
//!
//! `axum::serve` offers none of these knobs (it builds its hyper connection without a timer,
//! so hyper's header-read timeout never runs), so this is the accept loop of axum's
//! `serve-with-hyper` example with hyper's `http1::Builder` configured:
//!
//! - [`ServerSettings::header_read_timeout`]: hyper's `header_read_timeout` with a Tokio timer.
//!   hyper starts it when a connection is ready for a request head: on accept, and again each
//!   time a keep-alive connection goes idle. So one value bounds both a client that sends its
//!   headers slowly and an idle keep-alive connection. Its default (65 s) is above the ALB's
//!   60 s idle timeout: AWS asks targets to keep idle connections open longer than the load
//!   balancer does, or the balancer may reuse a connection the target just closed (a 502).
//! - At shutdown, a connection with no request in flight (idle, or still sending its headers:
//!   nothing of it has been accepted) is closed at once; the others finish their request
//!   within [`ServerSettings::drain_timeout`].
//!
//! Errors hyper answers by itself, before the router sees a request (a malformed request
//! line: 400; a URI over 64 KiB: 414; more than [`MAX_HEADERS`] headers or a head over
//! [`MAX_HEAD_BYTES`]: 431), have an empty body and no `x-request-id`; a header-read timeout
//! closes the connection without a response. Services enforce tighter limits of their own in
//! middleware, so the errors a well-formed client meets carry the service's error shape.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Most request headers hyper parses; beyond it hyper answers 431 with an empty body.
pub const MAX_HEADERS: usize = 200;
/// Largest request head (request line and headers) hyper buffers; beyond it, 431.
pub const MAX_HEAD_BYTES: usize = 128 * 1024;

/// Timeouts of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// After SIGTERM/SIGINT, how long requests in flight may still run.
    pub drain_timeout: Duration,
    /// Longest wait for a complete request head, counted from accept or from the end of the
    /// previous response: bounds slow headers and idle keep-alive connections alike.
    pub header_read_timeout: Duration,
}

impl ServerSettings {
    /// Default header-read (and idle) timeout: above the ALB's 60 s idle timeout.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(65);

    /// The given drain timeout and the default header-read timeout.
    pub fn with_drain_timeout(drain_timeout: Duration) -> Self {
        Self {
            drain_timeout,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// Bind `addr` and serve `router` until SIGTERM/SIGINT ([`crate::shutdown::signal`]),
/// then stop accepting connections and drain as [`serve_listener_with`] does.
pub async fn serve(
    router: axum::Router,
    addr: SocketAddr,
    settings: ServerSettings,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve_listener_with(listener, router, crate::shutdown::signal(), settings).await
}

/// [`serve_listener_with`] with the default header-read timeout.
/// Useful in tests: bind `127.0.0.1:0`, read `local_addr()`, pass a oneshot receiver.
pub async fn serve_listener(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let settings = ServerSettings::with_drain_timeout(drain_timeout);
    serve_listener_with(listener, router, shutdown, settings).await
}

/// Serve `router` on an already bound `listener` until `shutdown` resolves, then close the
/// connections with no request in flight and let the others finish, for at most
/// `settings.drain_timeout` (after which they are dropped).
pub async fn serve_listener_with(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    settings: ServerSettings,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(
                        http.clone(),
                        stream,
                        router.clone(),
                        closing.clone(),
                    ));
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = tokio::time::timeout(settings.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("server stopped"),
        Err(_) => {
            let drain_timeout = settings.drain_timeout;
            tracing::warn!(
                ?drain_timeout,
                "drain timeout elapsed, dropping remaining connections"
            );
            connections.abort_all();
        }
    }
    Ok(())
}

/// One connection: requests go through `router`; once `closing` turns true, the connection
/// stops keeping alive and is dropped as soon as no request is in flight.
async fn serve_connection(
    http: hyper::server::conn::http1::Builder,
    stream: TcpStream,
    router: axum::Router,
    mut closing: watch::Receiver<bool>,
) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let service = {
        let in_flight = Arc::clone(&in_flight);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let guard = InFlight::enter(&in_flight);
            let call = router.clone().oneshot(request.map(Body::new));
            async move {
                let response = call.await?;
                // The request counts as in flight until its body has been handed to hyper.
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(TrackedBody {
                        body,
                        _guard: guard,
                    })
                }))
            }
        })
    };
    let connection = http.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            return;
        }
        _ = closing.wait_for(|closing| *closing) => {}
    }
    connection.as_mut().graceful_shutdown();
    let until_idle = async {
        loop {
            if in_flight.load(Ordering::SeqCst) == 0 {
                // Let hyper flush what it was writing, then give up on the connection.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = connection => {}
        () = until_idle => {}
    }
}

/// Counts a request as in flight while alive.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight until hyper drops it.
struct TrackedBody {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
