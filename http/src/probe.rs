//! `probe`: asks a process's `/readyz` and says whether it is ready — the healthcheck of
//! an image that has no shell and no curl. It speaks just enough HTTP/1.1 for that.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where `probe` asks when given no address: the default `[http] listen` port, locally.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9100";
/// How long the whole probe may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most bytes of the answer read.
const ANSWER_MAX: u64 = 64 * 1024;

/// Why the probe did not find the process ready.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("nothing answered at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("{address} did not answer within {} s", TIMEOUT.as_secs())]
    TimedOut { address: String },
    #[error("{address} is not ready (HTTP {status}):\n{body}")]
    NotReady {
        address: String,
        status: u16,
        body: String,
    },
    #[error("{address} did not answer in HTTP")]
    NotHttp { address: String },
}

/// The `probe` subcommand every Octobox binary has.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The process's `[http] listen` address, as host:port.
    #[arg(default_value = DEFAULT_ADDRESS)]
    pub address: String,
}

impl ProbeArgs {
    /// Probes, prints the report (or why it is not ready), and gives the exit code: 0
    /// ready, 1 not.
    pub fn run(&self) -> std::process::ExitCode {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("probe: cannot start: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        match runtime.block_on(probe(&self.address)) {
            Ok(report) => {
                println!("{report}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("probe: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Asks `http://<address>/readyz`; the report when it answers 200.
pub async fn probe(address: &str) -> Result<String, ProbeError> {
    tokio::time::timeout(TIMEOUT, ask(address))
        .await
        .unwrap_or_else(|_| {
            Err(ProbeError::TimedOut {
                address: address.to_string(),
            })
        })
}

async fn ask(address: &str) -> Result<String, ProbeError> {
    let unreachable = |e: std::io::Error| ProbeError::Unreachable {
        address: address.to_string(),
        reason: e.to_string(),
    };
    let mut stream = TcpStream::connect(address).await.map_err(unreachable)?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut answer = Vec::new();
    stream
        .take(ANSWER_MAX)
        .read_to_end(&mut answer)
        .await
        .map_err(unreachable)?;
    let answer = String::from_utf8_lossy(&answer);
    let not_http = || ProbeError::NotHttp {
        address: address.to_string(),
    };
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(not_http)?;
    let status: u16 = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(not_http)?;
    let body = body.trim_end().to_string();
    if status == 200 {
        Ok(body)
    } else {
        Err(ProbeError::NotReady {
            address: address.to_string(),
            status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Health, HealthServer};
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn the_probe_passes_on_ready_and_fails_naming_the_check_otherwise() {
        let stop = CancellationToken::new();
        let ready = Health::new().check("store", || async { Ok("redis://r:6379".into()) });
        let at = HealthServer::serve("127.0.0.1:0".parse().unwrap(), ready, stop.clone())
            .await
            .unwrap();
        let report = probe(&at.to_string()).await.unwrap();
        assert_eq!(report, "ready\nstore: ok (redis://r:6379)");

        let failing = Health::new().check("broker", || async { Err("refused".into()) });
        let at = HealthServer::serve("127.0.0.1:0".parse().unwrap(), failing, stop.clone())
            .await
            .unwrap();
        let e = probe(&at.to_string()).await.unwrap_err().to_string();
        assert!(
            e.contains("is not ready (HTTP 503)") && e.contains("broker: failing: refused"),
            "{e}"
        );
        stop.cancel();

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let nobody = closed.local_addr().unwrap().to_string();
        drop(closed);
        let e = probe(&nobody).await.unwrap_err();
        assert!(matches!(e, ProbeError::Unreachable { .. }), "{e}");
    }
}
