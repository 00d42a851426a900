//! `dns <name> [type]`: asks every configured resolver (`[tasks.dns] resolvers`) at
//! once, through hickory-resolver, and shows their answers side by side with TTLs and
//! how long each took; resolvers whose answers differ are named, and NXDOMAIN,
//! SERVFAIL, refusals, unreachable resolvers and timeouts are said in words.
//!
//! Each run builds its resolvers afresh with no cache, so every answer comes from the
//! resolver now (a cached one would hide the change someone is checking), and `system`
//! reads the host's resolver settings as they are now. An address is asked for its PTR
//! record (`dns 192.0.2.1`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use config::{DnsSettings, ResolverAddress, ResolverConfig};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig as HickoryConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use jobs::Output;
use tokio::time::Instant;

use super::net::millis;
use super::{clean, fit_chat};
use crate::registry::{NativeTask, TaskContext, TaskError};

/// The record types `dns` asks for (the command's choice lists the same).
pub const TYPES: [&str; 10] = [
    "A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV", "CAA",
];

/// The longest name accepted, before anything else is done with it.
const MAX_NAME: usize = 253;

/// The most records of one answer that are shown (the rest are counted).
const RECORDS_SHOWN: usize = 20;

pub struct Dns {
    settings: DnsSettings,
}

impl Dns {
    pub fn new(settings: DnsSettings) -> Self {
        Dns { settings }
    }

    /// Asks every resolver for `name`'s `record_type` records at once.
    pub async fn ask(&self, name: &Name, record_type: RecordType) -> Vec<Answer> {
        let asks = self
            .settings
            .resolvers
            .iter()
            .map(|r| ask_one(r, name, record_type, self.settings.timeout));
        futures::future::join_all(asks).await
    }
}

#[async_trait]
impl NativeTask for Dns {
    fn params(&self) -> &'static [&'static str] {
        &["name"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        let given = ctx.text_arg("name")?;
        let asked_type = match ctx.arg("type") {
            Some(t) => Some(record_type(&t.to_string()).map_err(TaskError::Failed)?),
            None => None,
        };
        let (name, record_type) = query(&given, asked_type).map_err(TaskError::Failed)?;
        let answers = self.ask(&name, record_type).await;
        let text = render(&name, record_type, &answers);
        Ok(fit_chat(text, "dns.txt"))
    }
}

/// The record type named `text` (any case), one of [`TYPES`].
pub fn record_type(text: &str) -> Result<RecordType, String> {
    let upper = text.to_ascii_uppercase();
    match TYPES.contains(&upper.as_str()) {
        true => upper
            .parse()
            .map_err(|_| format!("\"{upper}\" is not a record type")),
        false => Err(format!(
            "\"{}\" is not a record type this command asks for: use one of {}",
            clean(text, 16),
            TYPES.join(", ")
        )),
    }
}

/// The name to ask for and its type: an address becomes its reverse name (PTR unless
/// another type is asked for); a name is read as written (international names to their
/// `xn--` form), always from the root, never a search domain.
pub fn query(given: &str, asked: Option<RecordType>) -> Result<(Name, RecordType), String> {
    if given.len() > MAX_NAME + 1 {
        return Err(format!(
            "that name is {} characters long; a DNS name has at most {MAX_NAME}",
            given.chars().count()
        ));
    }
    if let Ok(ip) = given.parse::<IpAddr>() {
        return Ok((Name::from(ip), asked.unwrap_or(RecordType::PTR)));
    }
    let bad = |why: &str| format!("\"{}\" is not a DNS name: {why}", clean(given, 64));
    if given.starts_with('-') || given.contains("..") || given == "." {
        return Err(bad("write it like example.com"));
    }
    let mut name = Name::from_utf8(given).map_err(|e| bad(&e.to_string()))?;
    if name.len() > MAX_NAME + 1 {
        return Err(bad(&format!("it is longer than {MAX_NAME} characters")));
    }
    name.set_fqdn(true);
    Ok((name, asked.unwrap_or(RecordType::A)))
}

/// What one resolver said.
#[derive(Debug, Clone)]
pub struct Answer {
    pub resolver: String,
    pub took: Duration,
    pub said: Said,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Records: (owner name, type, data, TTL), in the resolver's order.
    Records(Vec<Record>),
    /// NXDOMAIN: the name does not exist.
    NoSuchName,
    /// The name exists but has no record of the type asked for.
    NoRecords,
    /// No answer: a failure code, a timeout, an unreachable resolver, in words.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub record_type: String,
    pub data: String,
    pub ttl: u32,
}

impl Said {
    /// What this answer says, for comparing resolvers (TTLs and order aside); `None`
    /// for a failure, which says nothing about the name.
    fn claim(&self, asked: RecordType) -> Option<String> {
        match self {
            Said::Records(records) => {
                let asked = asked.to_string();
                let mut data: Vec<String> = records
                    .iter()
                    .map(|r| match r.record_type == asked {
                        true => r.data.clone(),
                        false => format!("{} {}", r.record_type, r.data),
                    })
                    .collect();
                data.sort();
                data.dedup();
                Some(data.join(", "))
            }
            Said::NoSuchName => Some("NXDOMAIN".into()),
            Said::NoRecords => Some("no record".into()),
            Said::Failed(_) => None,
        }
    }
}

async fn ask_one(
    config: &ResolverConfig,
    name: &Name,
    record_type: RecordType,
    timeout: Duration,
) -> Answer {
    let started = Instant::now();
    let said = match resolver(config, timeout) {
        Err(why) => Said::Failed(why),
        Ok(resolver) => {
            match tokio::time::timeout(timeout, resolver.lookup(name.clone(), record_type)).await {
                Err(_) => Said::Failed(format!(
                    "no answer within {}",
                    lexicon::format_duration(timeout)
                )),
                Ok(Ok(lookup)) => Said::Records(
                    lookup
                        .answers()
                        .iter()
                        .map(|r| Record {
                            name: clean(&r.name.to_string(), 255),
                            record_type: r.record_type().to_string(),
                            data: clean(&r.data.to_string(), 300),
                            ttl: r.ttl,
                        })
                        .collect(),
                ),
                Ok(Err(e)) => said_of(&e, timeout),
            }
        }
    };
    Answer {
        resolver: config.name.clone(),
        took: started.elapsed(),
        said,
    }
}

/// A resolver for one lookup: no cache, no hosts file, one query sent twice at most.
fn resolver(config: &ResolverConfig, timeout: Duration) -> Result<TokioResolver, String> {
    let mut builder = match config.address {
        ResolverAddress::System => Resolver::builder_tokio()
            .map_err(|e| format!("the host's resolver settings cannot be read: {e}"))?,
        ResolverAddress::At(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            Resolver::builder_with_config(
                HickoryConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
    };
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.attempts = 2;
    opts.timeout = timeout / 2;
    opts.preserve_intermediates = true;
    opts.ndots = 0;
    builder
        .build()
        .map_err(|e| format!("cannot be set up: {e}"))
}

/// A failed lookup in words.
fn said_of(e: &NetError, timeout: Duration) -> Said {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(none)) => match none.response_code {
            ResponseCode::NXDomain => Said::NoSuchName,
            _ => Said::NoRecords,
        },
        NetError::Dns(DnsError::ResponseCode(code)) => Said::Failed(code_words(*code)),
        NetError::Timeout => Said::Failed(format!(
            "no answer within {}",
            lexicon::format_duration(timeout)
        )),
        NetError::Io(io) => {
            Said::Failed(format!("cannot be reached: {}", super::net::io_words(io)))
        }
        NetError::NoConnections => Said::Failed("cannot be reached".into()),
        other => Said::Failed(clean(&other.to_string(), 200)),
    }
}

fn code_words(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL: the resolver could not get an answer".into(),
        ResponseCode::Refused => "REFUSED: the resolver will not answer this question".into(),
        ResponseCode::FormErr => "FORMERR: the resolver did not understand the question".into(),
        ResponseCode::NotImp => "NOTIMP: the resolver does not answer this kind of question".into(),
        other => format!("{other}: an error answer"),
    }
}

/// The answers side by side, then whether the resolvers agree.
pub fn render(name: &Name, record_type: RecordType, answers: &[Answer]) -> String {
    let asked = name.to_string();
    let mut rows: Vec<[String; 4]> = Vec::new();
    for a in answers {
        let mut first = true;
        let mut row = |answer: String, ttl: String| {
            let who = if first {
                a.resolver.clone()
            } else {
                String::new()
            };
            let took = if first { millis(a.took) } else { String::new() };
            first = false;
            rows.push([who, answer, ttl, took]);
        };
        match &a.said {
            Said::Records(records) if records.is_empty() => {
                row(format!("no {record_type} record"), String::new())
            }
            Said::Records(records) => {
                for r in records.iter().take(RECORDS_SHOWN) {
                    let mut shown = String::new();
                    if r.name != asked {
                        shown.push_str(&format!("{} ", r.name));
                    }
                    if r.record_type != record_type.to_string() || r.name != asked {
                        shown.push_str(&format!("{} ", r.record_type));
                    }
                    shown.push_str(&r.data);
                    row(shown, format!("{}s", r.ttl));
                }
                if records.len() > RECORDS_SHOWN {
                    row(
                        format!("and {} more records", records.len() - RECORDS_SHOWN),
                        String::new(),
                    );
                }
            }
            Said::NoSuchName => row("NXDOMAIN: no such name".into(), String::new()),
            Said::NoRecords => row(
                format!("no {record_type} record (the name exists)"),
                String::new(),
            ),
            Said::Failed(why) => row(why.clone(), String::new()),
        }
    }

    // Resolvers grouped by what they say, most common first.
    let mut claims: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for a in answers {
        if let Some(claim) = a.said.claim(record_type) {
            claims.entry(claim).or_default().push(&a.resolver);
        }
    }
    let answered: usize = claims.values().map(Vec::len).sum();
    let verdict = match (answers.len(), answered, claims.len()) {
        (1, _, _) => String::new(),
        (_, 0, _) => ": no resolver answered".to_string(),
        (n, 1, _) => format!(": only 1 of {n} resolvers answered"),
        (n, a, 1) if a == n => format!(": the {n} resolvers agree"),
        (n, a, 1) => format!(": the {a} of {n} resolvers that answered agree"),
        (_, _, _) => ": the resolvers DISAGREE".to_string(),
    };

    let shown = asked.trim_end_matches('.');
    let mut out = format!("{record_type} records of {shown}{verdict}\n");
    out.push_str(&table(&["resolver", "answer", "TTL", "took"], &rows));
    if claims.len() > 1 {
        let mut groups: Vec<(&String, &Vec<&str>)> = claims.iter().collect();
        groups.sort_by_key(|(_, who)| std::cmp::Reverse(who.len()));
        let said: Vec<String> = groups
            .iter()
            .map(|(claim, who)| {
                let verb = if who.len() == 1 { "says" } else { "say" };
                format!("{} {verb} {}", who.join(", "), clean(claim, 200))
            })
            .collect();
        out.push_str(&format!("\nThey disagree: {}.", said.join("; ")));
    }
    out
}

/// Rows under a header, columns padded to their widest cell.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < N {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                l.push_str(cell);
            }
        }
        l.trim_end().to_string()
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push('\n');
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_types_are_read_or_refused_in_words() {
        let (name, t) = query("Example.com", None).unwrap();
        assert_eq!(
            (name.to_string().as_str(), t),
            ("example.com.", RecordType::A)
        );
        let (name, t) = query("192.0.2.1", None).unwrap();
        assert_eq!(
            (name.to_string().as_str(), t),
            ("1.2.0.192.in-addr.arpa.", RecordType::PTR)
        );
        let (name, _) = query("bücher.example", None).unwrap();
        assert_eq!(name.to_ascii(), "xn--bcher-kva.example.");
        assert!(query(&"a".repeat(300), None)
            .unwrap_err()
            .contains("at most 253"));
        assert!(query("a..b", None)
            .unwrap_err()
            .contains("is not a DNS name"));
        assert_eq!(record_type("mx").unwrap(), RecordType::MX);
        assert!(record_type("AXFR")
            .unwrap_err()
            .contains("use one of A, AAAA"));
    }

    #[test]
    fn disagreeing_resolvers_are_named() {
        let (name, _) = query("example.com", None).unwrap();
        let rec = |data: &str| Record {
            name: "example.com.".into(),
            record_type: "A".into(),
            data: data.into(),
            ttl: 60,
        };
        let answer = |who: &str, said: Said| Answer {
            resolver: who.into(),
            took: Duration::from_millis(2),
            said,
        };
        let text = render(
            &name,
            RecordType::A,
            &[
                answer("one", Said::Records(vec![rec("192.0.2.1")])),
                answer("two", Said::Records(vec![rec("192.0.2.1")])),
                answer("three", Said::Records(vec![rec("192.0.2.9")])),
                answer("slow", Said::Failed("no answer within 1s".into())),
            ],
        );
        assert_eq!(
            text,
            "A records of example.com: the resolvers DISAGREE\n\
             resolver  answer               TTL  took\n\
             one       192.0.2.1            60s  2.0 ms\n\
             two       192.0.2.1            60s  2.0 ms\n\
             three     192.0.2.9            60s  2.0 ms\n\
             slow      no answer within 1s       2.0 ms\n\
             They disagree: one, two say 192.0.2.1; three says 192.0.2.9."
        );
    }
}
