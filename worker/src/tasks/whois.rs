//! `whois <domain|ip|asn> [raw]`: RFC 3912 WHOIS, asked first of `[tasks.whois] server`
//! (IANA's by default), following the referrals each server gives (`refer:`, `whois:`,
//! `ReferralServer:`, `Registrar WHOIS Server:`) up to `max_referrals`, never to a
//! server already asked. The answer shows the fields people want first — registrar,
//! dates, name servers, status for a domain; network, organisation, country, ASN for an
//! address or an AS — then the servers asked; `raw` shows the last server's whole text.
//!
//! The query is checked before anything is sent: a domain name, an address or `AS`
//! and a number, nothing a server could read as an option. Each server's answer is
//! read to at most [`MAX_ANSWER`] bytes within the timeout.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use config::WhoisSettings;
use jobs::Output;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{self, Deadline};
use super::{clean, fit_chat};
use crate::registry::{NativeTask, TaskContext, TaskError};

/// The most of one server's answer that is read.
pub const MAX_ANSWER: usize = 256 * 1024;

/// The longest query accepted.
const MAX_QUERY: usize = 253;

/// The fields shown first, in this order, each with the labels servers use for it.
const FIELDS: &[(&str, &[&str])] = &[
    ("domain", &["domain name", "domain"]),
    (
        "registrar",
        &["registrar", "sponsoring registrar", "registrar name"],
    ),
    (
        "created",
        &[
            "creation date",
            "created",
            "registered on",
            "registration time",
            "regdate",
        ],
    ),
    (
        "updated",
        &[
            "updated date",
            "last updated",
            "last-modified",
            "changed",
            "updated",
        ],
    ),
    (
        "expires",
        &[
            "registry expiry date",
            "registrar registration expiration date",
            "expiry date",
            "expiration date",
            "paid-till",
            "expires",
        ],
    ),
    (
        "name servers",
        &["name server", "nserver", "nameserver", "name servers"],
    ),
    ("status", &["domain status", "status"]),
    (
        "network",
        &["netrange", "inetnum", "inet6num", "cidr", "route"],
    ),
    ("name", &["netname", "net-name"]),
    (
        "organisation",
        &[
            "orgname",
            "org-name",
            "organization",
            "organisation",
            "registrant organization",
            "owner",
            "descr",
        ],
    ),
    ("country", &["country"]),
    ("asn", &["originas", "origin", "aut-num", "asnumber"]),
    ("as name", &["asname", "as-name"]),
    (
        "abuse",
        &[
            "orgabuseemail",
            "abuse-mailbox",
            "registrar abuse contact email",
        ],
    ),
];

/// The most values one field shows (name servers, statuses).
const VALUES_SHOWN: usize = 8;

pub struct Whois {
    settings: WhoisSettings,
}

impl Whois {
    pub fn new(settings: WhoisSettings) -> Self {
        Whois { settings }
    }
}

#[async_trait]
impl NativeTask for Whois {
    fn params(&self) -> &'static [&'static str] {
        &["query"]
    }

    async fn run(&self, ctx: &TaskContext) -> Result<Output, TaskError> {
        let query = query(&ctx.text_arg("query")?).map_err(TaskError::Failed)?;
        let raw = ctx.arg("show").is_some_and(|v| v.to_string() == "raw");
        let asked = self.lookup(&query).await.map_err(TaskError::Failed)?;
        let Some(last) = asked.last() else {
            return Err(TaskError::Failed("no WHOIS server answered".into()));
        };
        let name = format!("whois-{}.txt", query.to_ascii_lowercase());
        if raw {
            let text = format!(
                "whois {query}, as {} answered:\n{}",
                last.server,
                printable(&last.text)
            );
            return Ok(fit_chat(text, &name));
        }
        Ok(fit_chat(summary(&query, &asked), &name))
    }
}

/// One server's answer.
#[derive(Debug, Clone)]
pub struct Asked {
    pub server: String,
    pub text: String,
    /// The answer was longer than [`MAX_ANSWER`] and was cut there.
    pub cut: bool,
}

impl Whois {
    /// Asks the configured server, then each referral in turn.
    pub async fn lookup(&self, query: &str) -> Result<Vec<Asked>, String> {
        let mut asked: Vec<Asked> = Vec::new();
        let mut server = self.settings.server.clone();
        loop {
            let answer = match ask(&server, query, self.settings.timeout).await {
                Ok(answer) => answer,
                Err(why) => match asked.last_mut() {
                    // What the servers before said is still worth showing.
                    Some(last) => {
                        last.text.push_str(&format!(
                            "\n\n[the referral to {server} was not followed: {why}]"
                        ));
                        return Ok(asked);
                    }
                    None => return Err(why),
                },
            };
            let next = referral(&answer.text);
            asked.push(answer);
            let Some(next) = next else {
                return Ok(asked);
            };
            let seen = asked.iter().any(|a| same_server(&a.server, &next));
            if seen || asked.len() > self.settings.max_referrals as usize {
                return Ok(asked);
            }
            server = next;
        }
    }
}

/// The query as sent: a domain name, an address, or `AS` and a number; nothing else.
pub fn query(given: &str) -> Result<String, String> {
    if given.len() > MAX_QUERY {
        return Err(format!(
            "that query is {} characters long; a domain name has at most {MAX_QUERY}",
            given.chars().count()
        ));
    }
    if let Ok(ip) = given.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let upper = given.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("AS") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u32>().is_ok() {
            return Ok(format!("AS{n}"));
        }
    }
    let name = given.trim_end_matches('.');
    let host = url::Host::parse(name).map_err(|_| not_a_query(given))?;
    match host {
        url::Host::Domain(d)
            if d.contains('.')
                && d.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) =>
        {
            Ok(d)
        }
        _ => Err(not_a_query(given)),
    }
}

fn not_a_query(given: &str) -> String {
    format!(
        "\"{}\" is not something WHOIS answers: give a domain name (example.com), an IP \
         address (192.0.2.1) or an AS number (AS64496)",
        clean(given, 64)
    )
}

/// Asks `server` (`host:port`) about `query`: the query and CRLF, then the answer up to
/// the server's close, [`MAX_ANSWER`] bytes or the timeout.
pub async fn ask(server: &str, query: &str, timeout: Duration) -> Result<Asked, String> {
    let deadline = Deadline::after(timeout);
    let (host, port) = split_server(server)?;
    let (mut stream, _, _) = net::reach(&host, port, &deadline).await?;
    let written = deadline
        .run(
            stream.write_all(format!("{query}\r\n").as_bytes()),
            |budget| format!("{server} did not take the query within {budget}"),
        )
        .await?;
    written.map_err(|e| format!("{server} did not take the query: {}", net::io_words(&e)))?;
    let mut bytes = Vec::new();
    let read = deadline
        .run(
            (&mut stream)
                .take(MAX_ANSWER as u64 + 1)
                .read_to_end(&mut bytes),
            |budget| format!("{server} did not finish answering within {budget}"),
        )
        .await?;
    read.map_err(|e| format!("{server} did not answer: {}", net::io_words(&e)))?;
    let cut = bytes.len() > MAX_ANSWER;
    bytes.truncate(MAX_ANSWER);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if text.trim().is_empty() {
        return Err(format!("{server} answered nothing"));
    }
    Ok(Asked {
        server: server.to_string(),
        text,
        cut,
    })
}

/// `host:port` of a server; the port 43 when left out.
fn split_server(server: &str) -> Result<(String, u16), String> {
    if let Ok(addr) = server.parse::<std::net::SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    match server.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host.to_string(), p))
            .map_err(|_| format!("\"{}\" is not a WHOIS server", clean(server, 64))),
        None => Ok((server.to_string(), 43)),
    }
}

fn same_server(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The server an answer refers the query to, as `host:port`, if it names one.
pub fn referral(text: &str) -> Option<String> {
    for line in text.lines().take(2_000) {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        if !matches!(
            key.as_str(),
            "refer" | "whois" | "referralserver" | "registrar whois server" | "whois server"
        ) {
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix("whois://")
            .or_else(|| value.strip_prefix("rwhois://").map(|_| ""))
            .unwrap_or(value)
            .trim_end_matches('/');
        if let Some(server) = server_of(value) {
            return Some(server);
        }
    }
    None
}

/// A referral's `host[:port]`, if it is one.
fn server_of(value: &str) -> Option<String> {
    if value.is_empty() || value.len() > 260 {
        return None;
    }
    let (host, port) = match value.parse::<std::net::SocketAddr>() {
        Ok(addr) => return Some(net::host_port(&addr.ip().to_string(), addr.port())),
        Err(_) => match value.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok().filter(|&p| p != 0)?),
            None => (value, 43),
        },
    };
    let valid = host.parse::<IpAddr>().is_ok()
        || (host.contains('.')
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    valid.then(|| net::host_port(&host.to_ascii_lowercase(), port))
}

/// The fields people want first, then the servers asked.
pub fn summary(query: &str, asked: &[Asked]) -> String {
    let Some(last) = asked.last() else {
        return format!("whois {query}: no server answered");
    };
    let mut found: Vec<(&str, Vec<String>)> = Vec::new();
    // The last server knows most; the ones before fill in what it leaves out.
    for answer in asked.iter().rev() {
        for (field, values) in fields(&answer.text) {
            if !found.iter().any(|(f, _)| *f == field) {
                found.push((field, values));
            }
        }
    }
    found.sort_by_key(|(f, _)| FIELDS.iter().position(|(name, _)| name == f));
    let mut out = format!("whois {query}\n");
    if found.is_empty() {
        out.push_str("no fields found in the answer (add \"raw\" to see it whole)\n");
    }
    let width = found.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
    for (field, values) in &found {
        let mut shown = values[..values.len().min(VALUES_SHOWN)].join(", ");
        if values.len() > VALUES_SHOWN {
            shown.push_str(&format!(" and {} more", values.len() - VALUES_SHOWN));
        }
        out.push_str(&format!("{field:<width$}  {shown}\n"));
    }
    let servers: Vec<&str> = asked.iter().map(|a| a.server.as_str()).collect();
    out.push_str(&format!("asked {}", servers.join(" → ")));
    if last.cut {
        out.push_str(&format!(
            " (the last answer was cut at {} KiB)",
            MAX_ANSWER / 1024
        ));
    }
    if let Some(note) = last
        .text
        .lines()
        .rev()
        .find(|l| l.starts_with("[the referral to"))
    {
        out.push_str(&format!(
            "\n{}",
            note.trim_matches(|c| c == '[' || c == ']')
        ));
    }
    out
}

/// The known fields of an answer, each with its values (in order, each once).
fn fields(text: &str) -> Vec<(&'static str, Vec<String>)> {
    let mut found: Vec<(&'static str, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('%') || line.starts_with('#') || line.starts_with(">>>") {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if value.is_empty() {
            continue;
        }
        let Some((field, _)) = FIELDS
            .iter()
            .find(|(_, labels)| labels.contains(&key.as_str()))
        else {
            continue;
        };
        let value = clean(value, 200);
        let value = match *field {
            "name servers" => value.to_ascii_lowercase(),
            // "clientTransferProhibited https://icann.org/epp#..." → the status alone.
            "status" => value
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            _ => value,
        };
        match found.iter_mut().find(|(f, _)| f == field) {
            Some((_, values)) if !values.contains(&value) => values.push(value),
            Some(_) => {}
            None => found.push((field, vec![value])),
        }
    }
    found
}

/// A server's text as shown whole: control characters other than line breaks and tabs
/// replaced.
fn printable(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '�',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_domains_addresses_and_as_numbers_are_sent() {
        assert_eq!(query("Example.COM").unwrap(), "example.com");
        assert_eq!(query("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(query("192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(query("as64496").unwrap(), "AS64496");
        for bad in [
            "-i",
            "example",
            "a b",
            "x\r\ny.com",
            "AS99999999999",
            "exa_mple.com",
        ] {
            assert!(query(bad).is_err(), "{bad} was accepted");
        }
        assert!(query(&"a".repeat(300)).unwrap_err().contains("at most 253"));
    }

    #[test]
    fn referrals_are_read_in_the_forms_servers_write_them() {
        assert_eq!(
            referral("refer:        whois.verisign-grs.com\n").as_deref(),
            Some("whois.verisign-grs.com:43")
        );
        assert_eq!(
            referral("   Registrar WHOIS Server: whois.markmonitor.com\n").as_deref(),
            Some("whois.markmonitor.com:43")
        );
        assert_eq!(
            referral("ReferralServer:  whois://whois.ripe.net\n").as_deref(),
            Some("whois.ripe.net:43")
        );
        assert_eq!(
            referral("whois: 127.0.0.1:4343\n").as_deref(),
            Some("127.0.0.1:4343")
        );
        assert_eq!(
            referral("ReferralServer: rwhois://rwhois.example.net:4321\n"),
            None
        );
        assert_eq!(referral("domain: example.com\n"), None);
    }

    #[test]
    fn the_fields_people_want_come_first() {
        let registry = Asked {
            server: "whois.iana.org:43".into(),
            text: "refer: whois.example\n".into(),
            cut: false,
        };
        let registrar = Asked {
            server: "whois.example:43".into(),
            text: "Domain Name: EXAMPLE.COM\r\nName Server: A.IANA-SERVERS.NET\r\nName Server: B.IANA-SERVERS.NET\r\n\
                   Registrar: RESERVED-Internet Assigned Numbers Authority\r\nCreation Date: 1995-08-14T04:00:00Z\r\n\
                   Domain Status: clientDeleteProhibited https://icann.org/epp#clientDeleteProhibited\r\n\
                   Registry Expiry Date: 2025-08-13T04:00:00Z\r\n"
                .into(),
            cut: false,
        };
        let text = summary("example.com", &[registry, registrar]);
        assert_eq!(
            text,
            "whois example.com\n\
             domain        EXAMPLE.COM\n\
             registrar     RESERVED-Internet Assigned Numbers Authority\n\
             created       1995-08-14T04:00:00Z\n\
             expires       2025-08-13T04:00:00Z\n\
             name servers  a.iana-servers.net, b.iana-servers.net\n\
             status        clientDeleteProhibited\n\
             asked whois.iana.org:43 → whois.example:43"
        );
    }
}
