//! Reading what a process serves on its `[http] listen`: `/healthz`, `/readyz`,
//! `/metrics`, over a plain blocking socket (what a healthcheck or a scraper sees).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// `GET http://<address><path>`: the status (0 when nothing answered) and the body.
pub fn get(address: &str, path: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        return (0, String::new());
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (written exactly as `/metrics` writes it, e.g.
/// `octobox_jobs_finished_total{command="echo",status="succeeded"}`) in `metrics`; 0 when
/// absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}
