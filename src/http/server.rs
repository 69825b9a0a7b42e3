//! The accept loop: what `axum::serve` does, plus the two limits it has no
//! setting for. A client that opens a connection and sends its request
//! headers slowly (or never) is cut off after `HEADER_READ_TIMEOUT_SECONDS`
//! instead of holding a socket and a task forever; and at most
//! `MAX_CONNECTIONS` connections are served at once, further clients waiting
//! in the kernel's accept queue instead of exhausting file descriptors. On
//! shutdown it stops accepting, lets connections finish their requests
//! (closing idle keep-alive ones) and returns when all have.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

/// The limits the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers (HTTP/1).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Serves `service` on `listener` until `shutdown` completes, then drains.
/// Returns once every connection has closed (the caller bounds that wait).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<axum::http::Request<Body>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_full = false;

    loop {
        // A slot first: while every slot is taken, new clients wait in the
        // accept queue rather than being accepted and starved.
        let slot = if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            warned_full = false;
            slot
        } else {
            if !warned_full {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: new connections wait"
                );
                warned_full = true;
            }
            tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break, // never closed; stop rather than spin
                },
                () = &mut shutdown => break,
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = service
            .clone()
            .map_request(|request: axum::http::Request<Incoming>| request.map(Body::new));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let watched = graceful.watcher().watch(connection);
        #[expect(
            clippy::disallowed_methods,
            reason = "one task per connection: counted by the connection cap, drained by the graceful watcher"
        )]
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
