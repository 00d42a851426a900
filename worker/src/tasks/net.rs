//! What the day-one tasks share about the network: one deadline for a whole check
//! (every step bounded by what is left of it), name resolution and TCP connects timed
//! step by step, and I/O errors said in words.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

/// The end of a check: every step waits at most until then.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Deadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// The whole budget, as a person reads it (`10s`).
    pub fn budget(&self) -> String {
        lexicon::format_duration(self.budget)
    }

    /// Runs `step`; past the deadline, `late` says what did not happen in time.
    pub async fn run<T>(
        &self,
        step: impl Future<Output = T>,
        late: impl FnOnce(&str) -> String,
    ) -> Result<T, String> {
        tokio::time::timeout_at(self.at, step)
            .await
            .map_err(|_| late(&self.budget()))
    }
}

/// How long each step of reaching a server took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reached {
    /// Resolving the host name (zero for an address).
    pub dns: Duration,
    pub connect: Duration,
}

/// The addresses of `host` (an address is its own), resolved by the worker's host.
pub async fn resolve(
    host: &str,
    port: u16,
    deadline: &Deadline,
) -> Result<(Vec<SocketAddr>, Duration), String> {
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok((vec![SocketAddr::new(ip, port)], Duration::ZERO));
    }
    let started = Instant::now();
    let found = deadline
        .run(tokio::net::lookup_host((host, port)), |budget| {
            format!("{host} could not be resolved within {budget}")
        })
        .await?
        .map_err(|e| format!("{host} could not be resolved: {}", io_words(&e)))?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok((addrs, started.elapsed()))
}

/// A TCP connection to the first of `addrs` that accepts one, in their order.
pub async fn connect(
    addrs: &[SocketAddr],
    shown: &str,
    deadline: &Deadline,
) -> Result<(TcpStream, SocketAddr, Duration), String> {
    let started = Instant::now();
    let mut refused = Vec::new();
    for addr in addrs {
        let attempt = deadline
            .run(TcpStream::connect(addr), |budget| {
                format!("{shown} did not accept a connection within {budget}")
            })
            .await?;
        match attempt {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, *addr, started.elapsed()));
            }
            Err(e) => refused.push(format!("{addr}: {}", io_words(&e))),
        }
    }
    Err(format!(
        "cannot connect to {shown} ({})",
        refused.join("; ")
    ))
}

/// Resolves `host` and connects to it, timing both.
pub async fn reach(
    host: &str,
    port: u16,
    deadline: &Deadline,
) -> Result<(TcpStream, SocketAddr, Reached), String> {
    let (addrs, dns) = resolve(host, port, deadline).await?;
    let shown = host_port(host, port);
    let (stream, addr, connect) = connect(&addrs, &shown, deadline).await?;
    Ok((stream, addr, Reached { dns, connect }))
}

/// `host:port`, an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    match host.contains(':') && !host.starts_with('[') {
        true => format!("[{host}]:{port}"),
        false => format!("{host}:{port}"),
    }
}

/// An I/O error as a person reads it: "connection refused", not "Connection refused
/// (os error 111)".
pub fn io_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "the connection was reset".into(),
        io::ErrorKind::ConnectionAborted => "the connection was aborted".into(),
        io::ErrorKind::UnexpectedEof => "the connection was closed early".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::HostUnreachable => "the host is unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "the network is unreachable".into(),
        io::ErrorKind::AddrNotAvailable => "the address is not available".into(),
        _ => {
            let text = e.to_string();
            let text = match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

/// A duration as the tasks show timings: `850 µs`, `12 ms`, `1.25 s`.
pub fn millis(d: Duration) -> String {
    let us = d.as_micros();
    match us {
        0..=999 => format!("{us} µs"),
        1000..=9_999 => format!("{:.1} ms", us as f64 / 1000.0),
        10_000..=999_999 => format!("{} ms", us / 1000),
        _ => format!("{:.2} s", us as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_timings_read_as_words() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io_words(&refused), "connection refused");
        let other = io::Error::other("Something odd (os error 99)");
        assert_eq!(io_words(&other), "something odd");
        assert_eq!(millis(Duration::from_micros(850)), "850 µs");
        assert_eq!(millis(Duration::from_micros(2_345)), "2.3 ms");
        assert_eq!(millis(Duration::from_millis(250)), "250 ms");
        assert_eq!(millis(Duration::from_millis(1_250)), "1.25 s");
        assert_eq!(host_port("::1", 443), "[::1]:443");
        assert_eq!(host_port("example.com", 443), "example.com:443");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_in_words() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let deadline = Deadline::after(Duration::from_secs(2));
        let e = connect(&[addr], "here", &deadline).await.unwrap_err();
        assert_eq!(
            e,
            format!("cannot connect to here ({addr}: connection refused)")
        );
    }
}
