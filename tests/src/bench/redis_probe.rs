//! What the bench reads from Redis directly, over a plain TCP connection, to show where
//! the pipeline's time goes:
//! - [`calls`]: `INFO commandstats`, for the commands sent per job;
//! - [`BacklogProbe`]: `XINFO GROUPS` on the event stream, sampled during a phase, for how
//!   many events wait for the bot's async manager (unread, and read but not acknowledged).
//! - [`used_memory`], [`memory_usage`]: `INFO memory` and `MEMORY USAGE`, for bytes per
//!   job; [`config_set`]: `CONFIG SET`, to set the server up for a run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// Calls so far, by command name (`hset`, `xadd`, …).
pub fn calls(port: u16) -> Result<BTreeMap<String, u64>> {
    let mut con = connect(port)?;
    let info = match command(&mut con, &["INFO", "commandstats"])? {
        Resp::Text(text) => text,
        other => bail!("Redis answered INFO with {other:?}"),
    };
    Ok(parse_commandstats(&info))
}

/// `used_memory` of `INFO memory`: the bytes Redis holds now.
pub fn used_memory(port: u16) -> Result<u64> {
    let mut con = connect(port)?;
    let info = match command(&mut con, &["INFO", "memory"])? {
        Resp::Text(text) => text,
        other => bail!("Redis answered INFO with {other:?}"),
    };
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

/// `MEMORY USAGE key SAMPLES 0`: the bytes one key holds, every element counted (0 for
/// a key that does not exist).
pub fn memory_usage(port: u16, key: &str) -> Result<u64> {
    let mut con = connect(port)?;
    match command(&mut con, &["MEMORY", "USAGE", key, "SAMPLES", "0"])? {
        Resp::Int(n) => Ok(u64::try_from(n)?),
        Resp::Nil => Ok(0),
        other => bail!("Redis answered MEMORY USAGE with {other:?}"),
    }
}

/// `CONFIG SET name value`.
pub fn config_set(port: u16, name: &str, value: &str) -> Result<()> {
    let mut con = connect(port)?;
    match command(&mut con, &["CONFIG", "SET", name, value])? {
        Resp::Text(ok) if ok == "OK" => Ok(()),
        other => bail!("Redis answered CONFIG SET {name} with {other:?}"),
    }
}

/// Calls per job between two snapshots (two decimals); rarer commands, and the probes'
/// own (`info`, `xinfo`), are left out.
pub fn per_job(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    jobs: usize,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(name, _)| !(name.starts_with("info") || name.starts_with("xinfo")))
        .filter_map(|(name, &n)| {
            let made = n - before.get(name).copied().unwrap_or(0).min(n);
            let per = (made as f64 / jobs.max(1) as f64 * 100.0).round() / 100.0;
            (per > 0.0).then(|| (name.clone(), per))
        })
        .collect()
}

/// Samples, every 100 ms until stopped, the events that wait for one consumer group.
pub struct BacklogProbe {
    stop: Arc<AtomicBool>,
    sampler: JoinHandle<Vec<u64>>,
}

impl BacklogProbe {
    pub fn start(port: u16, stream: String, group: String) -> Result<Self> {
        let mut con = connect(port)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                match backlog(&mut con, &stream, &group) {
                    Ok(Some(n)) => samples.push(n),
                    Ok(None) => {}
                    Err(_) => break,
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Ok(BacklogProbe { stop, sampler })
    }

    /// The mean and the largest backlog seen, in events.
    pub fn finish(self) -> (f64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.sampler.join().unwrap_or_default();
        let max = samples.iter().copied().max().unwrap_or(0);
        let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64;
        ((mean * 10.0).round() / 10.0, max)
    }
}

/// `lag + pending` of `group` on `stream`, if the group exists.
fn backlog(con: &mut BufReader<TcpStream>, stream: &str, group: &str) -> Result<Option<u64>> {
    let Resp::Array(groups) = command(con, &["XINFO", "GROUPS", stream])? else {
        return Ok(None);
    };
    for g in groups {
        let Resp::Array(fields) = g else { continue };
        let field = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| matches!(&kv[0], Resp::Text(k) if k == name))
                .and_then(|kv| kv.get(1))
        };
        if !matches!(field("name"), Some(Resp::Text(n)) if n == group) {
            continue;
        }
        let number = |name: &str| match field(name) {
            Some(Resp::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        return Ok(Some(number("lag") + number("pending")));
    }
    Ok(None)
}

/// A RESP2 reply, as much of it as the probes need.
#[derive(Debug)]
enum Resp {
    Text(String),
    Int(i64),
    Array(Vec<Resp>),
    Nil,
}

fn connect(port: u16) -> Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).context("connecting to Redis")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(BufReader::new(stream))
}

fn command(con: &mut BufReader<TcpStream>, args: &[&str]) -> Result<Resp> {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    con.get_mut().write_all(out.as_bytes())?;
    read(con)
}

fn read(con: &mut impl BufRead) -> Result<Resp> {
    let mut line = String::new();
    con.read_line(&mut line)?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    let n = || {
        rest.parse::<i64>()
            .map_err(|_| anyhow!("Redis sent {line:?}"))
    };
    Ok(match kind {
        "+" => Resp::Text(rest.to_string()),
        "-" => bail!("Redis answered: {rest}"),
        ":" => Resp::Int(n()?),
        "$" if n()? < 0 => Resp::Nil,
        "$" => {
            let mut body = vec![0; usize::try_from(n()?)? + 2];
            con.read_exact(&mut body)?;
            body.truncate(body.len() - 2);
            Resp::Text(String::from_utf8_lossy(&body).into_owned())
        }
        "*" if n()? < 0 => Resp::Nil,
        "*" => Resp::Array((0..n()?).map(|_| read(con)).collect::<Result<_>>()?),
        _ => bail!("Redis sent {line:?}"),
    })
}

/// `cmdstat_hset:calls=12,usec=…` lines into `{"hset": 12}`.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_become_counts_per_job() {
        let before = parse_commandstats(
            "# Commandstats\r\ncmdstat_hset:calls=10,usec=5,usec_per_call=0.5\r\n",
        );
        let after = parse_commandstats(
            "# Commandstats\r\ncmdstat_hset:calls=30,usec=9\r\ncmdstat_xadd:calls=10,usec=1\r\ncmdstat_ping:calls=0\r\ncmdstat_xinfo|groups:calls=9\r\n",
        );
        let per = per_job(&before, &after, 10);
        assert_eq!(per.get("hset"), Some(&2.0));
        assert_eq!(per.get("xadd"), Some(&1.0));
        assert_eq!(per.get("ping"), None);
        assert_eq!(per.get("xinfo|groups"), None, "the probe's own calls");
    }

    #[test]
    fn nested_replies_are_read_whole() {
        let wire = b"*2\r\n*4\r\n$4\r\nname\r\n$1\r\ng\r\n$3\r\nlag\r\n:7\r\n$-1\r\n";
        let reply = read(&mut &wire[..]).unwrap();
        let Resp::Array(items) = reply else {
            panic!("{reply:?}")
        };
        assert!(matches!(&items[1], Resp::Nil));
        let Resp::Array(fields) = &items[0] else {
            panic!()
        };
        assert!(matches!(&fields[3], Resp::Int(7)));
    }
}
