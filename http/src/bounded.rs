//! `BoundedListener`: serves an axum app over HTTP/1 so that no client can hold more than
//! its share: at most `max_connections` connections at once (more are closed as they are
//! accepted), and the request head within `header_timeout` (else the connection is
//! closed). Running out of file descriptors pauses accepting; it never ends the listener.
//! Each request carries its peer's address (axum's `ConnectInfo<SocketAddr>`), for
//! whatever counts per address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_layer::Layer;

/// The bounds of one listener, and its name in logs.
#[derive(Debug, Clone, Copy)]
pub struct BoundedListener {
    /// What the listener serves, for logs ("the Slack endpoint").
    pub name: &'static str,
    /// The most connections served at once.
    pub max_connections: usize,
    /// How long a client has to send a request's head.
    pub header_timeout: Duration,
}

impl BoundedListener {
    /// Binds `listen` and serves `app` until `shutdown`; the bound address.
    pub async fn serve(
        self,
        listen: SocketAddr,
        app: axum::Router,
        shutdown: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(listen).await?;
        let bound = listener.local_addr()?;
        tokio::spawn(self.accept(listener, app, shutdown));
        Ok(bound)
    }

    /// Accepts connections until `shutdown`, each served in a task of its own while a
    /// permit lasts.
    async fn accept(self, listener: TcpListener, app: axum::Router, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        let http = Arc::new(http);
        let name = self.name;
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait for some to close.
                        tracing::warn!(listener = name, error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(listener = name, %peer, limit = self.max_connections, "too many connections; closed a new one");
                drop(stream);
                continue;
            };
            // One wrapper round the whole app (not a layer on each of its routes).
            let app = axum::Extension(axum::extract::ConnectInfo(peer)).layer(app.clone());
            let (http, shutdown) = (http.clone(), shutdown.clone());
            tokio::spawn(async move {
                let service = TowerToHyperService::new(app);
                let served = http.serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    ended = served => if let Err(e) = ended {
                        tracing::debug!(listener = name, %peer, error = %e, "a connection ended");
                    },
                }
                drop(permit);
            });
        }
    }
}
