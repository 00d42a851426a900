//! The SSH server's accept loop and the life of each connection before and around russh:
//! it keeps accepting whatever `accept` fails with (out of file descriptors, out of
//! buffers: logged, a short pause, then on), caps the connections that have not logged
//! in yet (`StartupCounter`), and closes a connection that has not logged in within
//! `login_grace_time`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use jobs::backoff::Backoff;
use russh::server::Config as RusshConfig;
use russh::Disconnect;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::connection::{Connection, Login};
use super::limits::{StartupCounter, StartupPermit};
use super::Shared;

/// Serves `listener` until `shutdown`; never stops on an `accept` error.
pub(super) async fn serve(
    listener: TcpListener,
    config: Arc<RusshConfig>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let startups = StartupCounter::new(shared.counter.limits());
    let mut failing = AcceptFailures::new();
    let mut refusals = RefusalLog::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => {
                failing.recovered();
                accepted
            }
            Err(error) => {
                let Some(pause) = failing.failed(&error) else {
                    continue;
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let permit = match startups.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(limit) => {
                // Closed at once: dropping the socket is all a refused client gets.
                refusals.refused(peer, &limit);
                continue;
            }
        };
        let connection = Accepted {
            socket,
            peer,
            permit,
            config: config.clone(),
            shared: shared.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(connection.run());
    }
}

/// The run of `accept` errors in progress: how long to pause, what to log.
struct AcceptFailures {
    backoff: Backoff,
    /// Errors since the last accepted connection.
    count: u64,
}

impl AcceptFailures {
    fn new() -> Self {
        AcceptFailures {
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(1)),
            count: 0,
        }
    }

    /// How long to pause after `error`, or `None` to accept again at once: an error that
    /// concerns one client (it left before it was accepted) says nothing of the server.
    fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        use io::ErrorKind::*;
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
        ) {
            tracing::debug!(%error, "ssh accept: the client left first");
            return None;
        }
        // Out of file descriptors (EMFILE, ENFILE), buffers (ENOBUFS) or memory: the
        // connections being served give theirs back as they end, so wait a little.
        self.count += 1;
        let pause = self.backoff.next_pause();
        if self.count == 1 || self.count.is_power_of_two() {
            tracing::error!(
                %error,
                errors = self.count,
                pause_ms = pause.as_millis() as u64,
                "ssh accept failed; still listening, accepting again after a pause (if this \
                 says too many open files, raise the bot's descriptor limit: ulimit -n)"
            );
        }
        Some(pause)
    }

    fn recovered(&mut self) {
        if self.count > 0 {
            tracing::info!(errors = self.count, "ssh accept works again");
            self.count = 0;
            self.backoff.reset();
        }
    }
}

/// Connections refused past a startup cap, logged at most once a second (a flood of
/// them would otherwise be a flood of log lines), with the number left unlogged.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn refused(&mut self, peer: SocketAddr, limit: &super::limits::StartupLimit) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        self.last = Some(now);
        tracing::warn!(
            peer = %peer,
            reason = %limit,
            also_refused = std::mem::take(&mut self.unlogged),
            "ssh connection refused before login"
        );
    }
}

/// One accepted connection, from its first byte to its end.
struct Accepted {
    socket: TcpStream,
    peer: SocketAddr,
    permit: StartupPermit,
    config: Arc<RusshConfig>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl Accepted {
    async fn run(self) {
        let Accepted {
            socket,
            peer,
            permit,
            config,
            shared,
            shutdown,
        } = self;
        let _ = socket.set_nodelay(true);
        let grace = shared.counter.limits().login_grace_time;
        let deadline = tokio::time::Instant::now() + grace;
        let login = Login::new(permit);
        let close = CancellationToken::new();
        let stream = Closable::new(socket, close.clone());
        let handler = Connection::new(shared, Some(peer), login.clone());
        let too_late = || {
            tracing::info!(
                peer = %peer,
                grace = %lexicon::format_duration(grace),
                "ssh connection closed: not logged in within ssh.login_grace_time"
            );
        };

        // The version exchange: a client that never sends its version is closed here
        // (dropping the future drops the socket).
        let session = tokio::select! {
            session = russh::server::run_stream(config, stream, handler) => session,
            _ = tokio::time::sleep_until(deadline) => return too_late(),
            _ = shutdown.cancelled() => return,
        };
        let session = match session {
            Ok(session) => session,
            Err(error) => {
                tracing::debug!(peer = %peer, %error, "ssh connection ended before its key exchange");
                return;
            }
        };
        let handle = session.handle();
        tokio::pin!(session);

        let stopping = tokio::select! {
            ended = &mut session => return ended_with(peer, ended),
            _ = login.done.cancelled() => false,
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep_until(deadline) => {
                too_late();
                // Polite first (the client prints the reason), then the socket is shut
                // whatever the client does.
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    handle.disconnect(
                        Disconnect::ByApplication,
                        format!("not logged in within {}", lexicon::format_duration(grace)),
                        String::new(),
                    ),
                )
                .await;
                if tokio::time::timeout(Duration::from_millis(500), &mut session)
                    .await
                    .is_err()
                {
                    close.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(5), session).await;
                }
                return;
            }
        };
        if !stopping {
            tokio::select! {
                ended = &mut session => return ended_with(peer, ended),
                _ = shutdown.cancelled() => {}
            }
        }
        let _ = handle
            .disconnect(
                Disconnect::ByApplication,
                "the bot is stopping".into(),
                String::new(),
            )
            .await;
    }
}

fn ended_with(peer: SocketAddr, ended: Result<(), russh::Error>) {
    if let Err(error) = ended {
        tracing::debug!(peer = %peer, %error, "ssh connection ended with an error");
    }
}

/// A client's socket that can be shut from outside: once `close` is cancelled, every read
/// and write fails, so russh's session ends and drops the socket.
struct Closable {
    socket: TcpStream,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    shut: bool,
}

impl Closable {
    fn new(socket: TcpStream, close: CancellationToken) -> Self {
        Closable {
            socket,
            closed: Box::pin(close.cancelled_owned()),
            shut: false,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.shut && self.closed.as_mut().poll(cx).is_ready() {
            self.shut = true;
        }
        if self.shut {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "closed by the server: not logged in in time",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for Closable {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Closable {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.socket).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.socket).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(cx)
    }
}
