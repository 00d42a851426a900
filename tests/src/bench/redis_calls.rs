//! Which Redis commands the pipeline sends per job: `INFO commandstats` before and after
//! the throughput phase, over a plain TCP connection (one request, one bulk reply).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

/// Calls so far, by command name (`hset`, `xadd`, …).
pub fn calls(port: u16) -> Result<BTreeMap<String, u64>> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).context("connecting to Redis for INFO")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header)?;
    let len: usize = header
        .trim()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("Redis answered INFO with {header:?}"))?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(parse(&String::from_utf8_lossy(&body)))
}

/// `cmdstat_hset:calls=12,usec=…` lines into `{"hset": 12}`.
fn parse(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// Calls per job between two snapshots (two decimals); rarer commands are left out.
pub fn per_job(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    jobs: usize,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(name, &n)| {
            let made = n - before.get(name).copied().unwrap_or(0).min(n);
            let per = (made as f64 / jobs.max(1) as f64 * 100.0).round() / 100.0;
            (per > 0.0).then(|| (name.clone(), per))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_become_counts_per_job() {
        let before = parse("# Commandstats\r\ncmdstat_hset:calls=10,usec=5,usec_per_call=0.5\r\n");
        let after = parse(
            "# Commandstats\r\ncmdstat_hset:calls=30,usec=9\r\ncmdstat_xadd:calls=10,usec=1\r\ncmdstat_ping:calls=0\r\n",
        );
        let per = per_job(&before, &after, 10);
        assert_eq!(per.get("hset"), Some(&2.0));
        assert_eq!(per.get("xadd"), Some(&1.0));
        assert_eq!(per.get("ping"), None);
    }
}
