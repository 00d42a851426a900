//! The day-one tasks (`dns`, `whois`, `http_check`, `tls_expiry`) through their
//! `NativeTask` interface, each with a real `TaskContext`, against servers this test
//! starts on 127.0.0.1: DNS servers that disagree, say NXDOMAIN, SERVFAIL or nothing;
//! WHOIS servers, one referring to the other; HTTP and HTTPS servers (a test CA's
//! certificate that expires in 5 days, redirects, a slow first byte, a large body).
//! The assertions are on the words a person would read.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{Config, TasksConfig};
use jobs::memory::MemoryStore;
use jobs::{Job, Origin, Output, Task};
use lexicon::Value;
use regex::Regex;
use worker::{TaskContext, TaskRegistry};

use support::dns_server::{a, Behaviour, DnsServer};
use support::web_server::{ServerCert, TestCa, WebServer, SLOW};
use support::whois_server::WhoisServer;

/// `[tasks]` from `toml`, as a worker's file would give it.
fn tasks(toml: &str) -> TasksConfig {
    Config::parse("octobox.toml", toml, |_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .tasks
}

/// Runs `task` of a worker configured with `toml`, with `args`: the text a person
/// reads, or the failure sentence.
async fn run(toml: &str, task: &str, args: &[(&str, Value)]) -> Result<String, String> {
    let registry = TaskRegistry::configured(&tasks(toml)).map_err(|e| e.to_string())?;
    run_on(&registry, task, args).await
}

async fn run_on(
    registry: &TaskRegistry,
    task: &str,
    args: &[(&str, Value)],
) -> Result<String, String> {
    let args: BTreeMap<String, Value> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let job = Job::new(
        task,
        args,
        Task::native(task),
        Origin::new("console", "tester"),
        Duration::from_secs(60),
    );
    let ctx = TaskContext::new(job, Arc::new(MemoryStore::new()));
    let native = registry.get(task).expect("a standard worker has the task");
    match native.run(&ctx).await {
        Ok(Output::Text { text }) => Ok(text),
        Ok(Output::File { bytes, .. }) => Ok(String::from_utf8(bytes).unwrap()),
        Ok(Output::Empty) => Ok(String::new()),
        Err(e) => Err(e.to_string()),
    }
}

fn word(s: &str) -> Value {
    Value::Word(s.to_string())
}

/// The one line of `text` that starts with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

// --- dns ---------------------------------------------------------------------------

#[tokio::test]
async fn dns_asks_every_resolver_at_once_and_names_those_that_disagree() {
    let one = DnsServer::start(Behaviour::Records(vec![
        a("www.example.test.", 300, "192.0.2.1"),
        a("www.example.test.", 300, "192.0.2.2"),
    ]))
    .await;
    let two = DnsServer::start(Behaviour::Records(vec![
        a("www.example.test.", 300, "192.0.2.2"),
        a("www.example.test.", 300, "192.0.2.1"),
    ]))
    .await;
    let stale = DnsServer::start(Behaviour::Records(vec![a(
        "www.example.test.",
        60,
        "198.51.100.7",
    )]))
    .await;
    let empty = DnsServer::start(Behaviour::Records(vec![])).await;
    let broken = DnsServer::start(Behaviour::ServFail).await;
    let silent = DnsServer::start(Behaviour::Silent).await;
    let gone = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let toml = format!(
        "[tasks.dns]\ntimeout = \"1s\"\nresolvers = [\"one={}\", \"two={}\", \"stale={}\", \"empty={}\", \"broken={}\", \"silent={}\", \"gone={gone}\"]\n",
        one.addr, two.addr, stale.addr, empty.addr, broken.addr, silent.addr
    );

    let started = Instant::now();
    let text = run(&toml, "dns", &[("name", word("www.example.test"))])
        .await
        .unwrap();
    let took = started.elapsed();

    assert!(
        text.starts_with("A records of www.example.test: the resolvers DISAGREE\n"),
        "{text}"
    );
    assert!(
        Regex::new(r"(?m)^resolver +answer +TTL +took$")
            .unwrap()
            .is_match(&text),
        "{text}"
    );
    // Side by side, with TTLs: the second record of a resolver on a line of its own.
    assert!(
        Regex::new(r"(?m)^one +192\.0\.2\.1 +300s +\S+ (µs|ms)\n +192\.0\.2\.2 +300s$")
            .unwrap()
            .is_match(&text),
        "{text}"
    );
    assert!(
        Regex::new(r"(?m)^stale +198\.51\.100\.7 +60s ")
            .unwrap()
            .is_match(&text),
        "{text}"
    );
    assert!(
        line(&text, "empty ").contains("NXDOMAIN: no such name"),
        "{text}"
    );
    assert!(
        line(&text, "broken ").contains("SERVFAIL: the resolver could not get an answer"),
        "{text}"
    );
    assert!(
        line(&text, "silent ").contains("no answer within 1s"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "They disagree: one, two say 192.0.2.1, 192.0.2.2; stale says 198.51.100.7; empty says NXDOMAIN."
        ),
        "{text}"
    );
    // At once: the silent resolver's second costs no one else time.
    assert!(took < Duration::from_millis(1800), "took {took:?}");
    assert!(silent.asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn dns_says_when_resolvers_agree_and_reads_types_and_addresses() {
    let mx = |name: &str, pref: u16, host: &str| {
        hickory_resolver::proto::rr::Record::from_rdata(
            hickory_resolver::proto::rr::Name::from_ascii(name).unwrap(),
            3600,
            hickory_resolver::proto::rr::RData::MX(hickory_resolver::proto::rr::rdata::MX::new(
                pref,
                hickory_resolver::proto::rr::Name::from_ascii(host).unwrap(),
            )),
        )
    };
    let records = vec![
        a("example.test.", 120, "192.0.2.10"),
        mx("example.test.", 10, "mail.example.test."),
        hickory_resolver::proto::rr::Record::from_rdata(
            hickory_resolver::proto::rr::Name::from_ascii("10.2.0.192.in-addr.arpa.").unwrap(),
            600,
            hickory_resolver::proto::rr::RData::PTR(hickory_resolver::proto::rr::rdata::PTR(
                hickory_resolver::proto::rr::Name::from_ascii("example.test.").unwrap(),
            )),
        ),
    ];
    let one = DnsServer::start(Behaviour::Records(records.clone())).await;
    let two = DnsServer::start(Behaviour::Records(records)).await;
    let toml = format!(
        "[tasks.dns]\nresolvers = [\"{}\", \"{}\"]\n",
        one.addr, two.addr
    );
    let text = run(
        &toml,
        "dns",
        &[
            ("name", word("Example.TEST")),
            ("type", Value::Choice("MX".into())),
        ],
    )
    .await
    .unwrap();
    assert!(
        text.starts_with("MX records of example.test: the 2 resolvers agree\n"),
        "{text}"
    );
    assert!(
        line(&text, &one.addr.to_string()).contains("10 mail.example.test.  3600s"),
        "{text}"
    );
    assert!(!text.contains("disagree"), "{text}");

    let text = run(&toml, "dns", &[("name", word("192.0.2.10"))])
        .await
        .unwrap();
    assert!(
        text.starts_with("PTR records of 10.2.0.192.in-addr.arpa: the 2 resolvers agree"),
        "{text}"
    );
    assert!(text.contains("example.test.  600s"), "{text}");

    let text = run(
        &toml,
        "dns",
        &[
            ("name", word("example.test")),
            ("type", Value::Choice("TXT".into())),
        ],
    )
    .await
    .unwrap();
    assert!(
        line(&text, &one.addr.to_string()).contains("no TXT record (the name exists)"),
        "{text}"
    );
}

#[tokio::test]
async fn dns_refuses_what_is_not_a_name_before_asking_anyone() {
    let server = DnsServer::start(Behaviour::Records(vec![])).await;
    let toml = format!("[tasks.dns]\nresolvers = [\"{}\"]\n", server.addr);
    let e = run(&toml, "dns", &[("name", word(&"a".repeat(400)))])
        .await
        .unwrap_err();
    assert_eq!(
        e,
        "that name is 400 characters long; a DNS name has at most 253"
    );
    let e = run(&toml, "dns", &[("name", word("a..b"))])
        .await
        .unwrap_err();
    assert!(e.starts_with("\"a..b\" is not a DNS name"), "{e}");
    let e = run(
        &toml,
        "dns",
        &[("name", word("example.test")), ("type", word("AXFR"))],
    )
    .await
    .unwrap_err();
    assert!(e.contains("use one of A, AAAA, CNAME"), "{e}");
    assert_eq!(server.asked.load(std::sync::atomic::Ordering::SeqCst), 0);
}

// --- whois -------------------------------------------------------------------------

const REGISTRAR_ANSWER: &str = "Domain Name: EXAMPLE.TEST\r\n\
Updated Date: 2024-08-14T07:01:34Z\r\n\
Creation Date: 1995-08-14T04:00:00Z\r\n\
Registry Expiry Date: 2026-08-13T04:00:00Z\r\n\
Registrar: Test Registrar, Inc.\r\n\
Domain Status: clientDeleteProhibited https://icann.org/epp#clientDeleteProhibited\r\n\
Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited\r\n\
Name Server: NS1.EXAMPLE.TEST\r\n\
Name Server: NS2.EXAMPLE.TEST\r\n\
>>> Last update of whois database: 2025-01-01T00:00:00Z <<<\r\n";

#[tokio::test]
async fn whois_follows_the_referral_and_shows_the_fields_people_want_first() {
    let registry = WhoisServer::start(|_| Some(REGISTRAR_ANSWER.to_string())).await;
    let registry_addr = registry.addr;
    let iana = WhoisServer::start(move |q| {
        Some(format!(
            "% IANA WHOIS server\n\nrefer:        {registry_addr}\n\ndomain:       TEST\n\nsource:       IANA\n# query was {q}\n"
        ))
    })
    .await;
    let toml = format!("[tasks.whois]\nserver = \"{}\"\n", iana.addr);

    let text = run(&toml, "whois", &[("query", word("Example.TEST"))])
        .await
        .unwrap();
    assert_eq!(
        text,
        format!(
            "whois example.test\n\
             domain        EXAMPLE.TEST\n\
             registrar     Test Registrar, Inc.\n\
             created       1995-08-14T04:00:00Z\n\
             updated       2024-08-14T07:01:34Z\n\
             expires       2026-08-13T04:00:00Z\n\
             name servers  ns1.example.test, ns2.example.test\n\
             status        clientDeleteProhibited, clientTransferProhibited\n\
             asked {} → {}",
            iana.addr, registry.addr
        )
    );
    // The query went to both, as RFC 3912 says: the text and CRLF.
    assert_eq!(*iana.queries.lock().unwrap(), ["example.test\r\n"]);
    assert_eq!(*registry.queries.lock().unwrap(), ["example.test\r\n"]);

    let raw = run(
        &toml,
        "whois",
        &[
            ("query", word("example.test")),
            ("show", Value::Choice("raw".into())),
        ],
    )
    .await
    .unwrap();
    assert!(
        raw.starts_with(&format!(
            "whois example.test, as {} answered:\nDomain Name: EXAMPLE.TEST\n",
            registry.addr
        )),
        "{raw}"
    );
    assert!(raw.contains("Name Server: NS2.EXAMPLE.TEST\n"), "{raw}");
}

#[tokio::test]
async fn whois_for_an_address_shows_the_network_and_a_silent_referral_is_said() {
    let silent = WhoisServer::start(|_| None).await;
    let silent_addr = silent.addr;
    let rir = WhoisServer::start(move |_| {
        Some(format!(
            "NetRange:       192.0.2.0 - 192.0.2.255\nCIDR:           192.0.2.0/24\nNetName:        TEST-NET-1\n\
             OriginAS:       AS64496\nOrganization:   Documentation Org (DOC-1)\nCountry:        ZZ\n\
             ReferralServer: whois://{silent_addr}\n"
        ))
    })
    .await;
    let rir_addr = rir.addr;
    let iana = WhoisServer::start(move |_| Some(format!("refer: {rir_addr}\n"))).await;
    let toml = format!(
        "[tasks.whois]\nserver = \"{}\"\ntimeout = \"300ms\"\n",
        iana.addr
    );
    let text = run(&toml, "whois", &[("query", word("192.0.2.1"))])
        .await
        .unwrap();
    assert!(
        text.contains("\nnetwork       192.0.2.0 - 192.0.2.255, 192.0.2.0/24\n"),
        "{text}"
    );
    assert!(text.contains("\nname          TEST-NET-1\n"), "{text}");
    assert!(
        text.contains("\norganisation  Documentation Org (DOC-1)\n"),
        "{text}"
    );
    assert!(text.contains("\nasn           AS64496\n"), "{text}");
    assert!(
        text.ends_with(&format!(
            "asked {} → {}\nthe referral to {} was not followed: {} did not finish answering within 300ms",
            iana.addr, rir.addr, silent.addr, silent.addr
        )),
        "{text}"
    );
}

#[tokio::test]
async fn whois_failures_are_sentences() {
    let silent = WhoisServer::start(|_| None).await;
    let toml = format!(
        "[tasks.whois]\nserver = \"{}\"\ntimeout = \"200ms\"\n",
        silent.addr
    );
    let e = run(&toml, "whois", &[("query", word("example.test"))])
        .await
        .unwrap_err();
    assert_eq!(
        e,
        format!("{} did not finish answering within 200ms", silent.addr)
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let toml = format!("[tasks.whois]\nserver = \"{closed}\"\n");
    let e = run(&toml, "whois", &[("query", word("example.test"))])
        .await
        .unwrap_err();
    assert_eq!(
        e,
        format!("cannot connect to {closed} ({closed}: connection refused)")
    );

    let e = run(&toml, "whois", &[("query", word("-i"))])
        .await
        .unwrap_err();
    assert!(
        e.starts_with("\"-i\" is not something WHOIS answers"),
        "{e}"
    );
}

// --- http check and tls expiry -----------------------------------------------------

const DAY: time::Duration = time::Duration::days(1);

/// A CA, its PEM file, and an HTTPS server whose certificate expires in 5 days.
struct Https {
    ca_file: tempfile::NamedTempFile,
    ca: TestCa,
    server: WebServer,
}

impl Https {
    async fn start() -> Https {
        let ca = TestCa::new();
        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut ca_file, ca.pem.as_bytes()).unwrap();
        let cert: ServerCert = ca.server_cert(-DAY, DAY * 5);
        let server = WebServer::tls(cert).await;
        Https {
            ca_file,
            ca,
            server,
        }
    }

    /// `[tasks]` trusting the test CA, with `more` after it.
    fn trusting(&self, more: &str) -> String {
        format!(
            "[tasks]\nca_file = \"{}\"\n{more}",
            self.ca_file.path().display()
        )
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.server.addr.port())
    }
}

#[tokio::test]
async fn http_check_follows_redirects_times_each_step_and_reads_the_certificate() {
    let https = Https::start().await;
    let plain = WebServer::plain().await;
    // http → https (302), then /old → /new (301), then 200.
    let start = format!(
        "http://127.0.0.1:{}/away?to={}",
        plain.addr.port(),
        https.url("/old")
    );
    let text = run(&https.trusting(""), "http_check", &[("url", word(&start))])
        .await
        .unwrap();

    let headline = text.lines().next().unwrap();
    assert!(
        Regex::new(&format!(
            r"^{}: 200 OK after 2 redirects, in \S+ (µs|ms|s)$",
            regex::escape(&start)
        ))
        .unwrap()
        .is_match(headline),
        "{text}"
    );
    assert!(
        text.contains(&format!("\n1. 302 Found {start} → {}\n", https.url("/old"))),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n2. 301 Moved Permanently {} → /new\n",
            https.url("/old")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n3. 200 OK {} (text/plain, 27 B)\n",
            https.url("/new")
        )),
        "{text}"
    );
    let timing = r"\d[\d.]* (µs|ms|s)";
    // The plain hop has no TLS step; the https ones have every step, DNS for localhost.
    assert!(
        Regex::new(&format!(
            r"(?m)^   DNS 0 µs · connect {timing} · first byte {timing}$"
        ))
        .unwrap()
        .is_match(&text),
        "{text}"
    );
    assert!(
        Regex::new(&format!(
            r"(?m)^   DNS {timing} · connect {timing} · TLS {timing} · first byte {timing}$"
        ))
        .unwrap()
        .is_match(&text),
        "{text}"
    );
    assert!(text.contains("\ncertificate: CN=localhost\n  names: localhost, 127.0.0.1\n  issuer: CN=Octobox test CA\n"), "{text}");
    assert!(
        line(&text, "  valid ").ends_with(": expires in 5 days (soon: under 14 days)"),
        "{text}"
    );
    assert!(
        text.contains("\nissued by: CN=Octobox test CA, valid to "),
        "{text}"
    );
    assert!(text.ends_with("\ntrusted by this worker"), "{text}");
}

#[tokio::test]
async fn http_check_measures_a_slow_first_byte_and_gives_up_at_its_timeout() {
    let https = Https::start().await;
    let text = run(
        &https.trusting(""),
        "http_check",
        &[("url", word(&https.url("/slow")))],
    )
    .await
    .unwrap();
    let first_byte = Regex::new(r"first byte (\d+(?:\.\d+)?) (µs|ms|s)")
        .unwrap()
        .captures(&text)
        .unwrap_or_else(|| panic!("{text}"));
    let seconds: f64 = first_byte[1].parse::<f64>().unwrap()
        * match &first_byte[2] {
            "s" => 1.0,
            "ms" => 0.001,
            _ => 0.000_001,
        };
    assert!(
        seconds >= SLOW.as_secs_f64() && seconds < SLOW.as_secs_f64() + 1.0,
        "{text}"
    );

    let started = Instant::now();
    let e = run(
        &https.trusting("[tasks.http_check]\ntimeout = \"400ms\"\n"),
        "http_check",
        &[("url", word(&https.url("/slow")))],
    )
    .await
    .unwrap_err();
    assert_eq!(e, format!("{}: no answer within 400ms", https.url("/slow")));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_check_stops_at_the_redirect_limit_and_bounds_the_body() {
    let https = Https::start().await;
    let toml = https.trusting("[tasks.http_check]\nmax_redirects = 3\n");
    let text = run(&toml, "http_check", &[("url", word(&https.url("/loop")))])
        .await
        .unwrap();
    assert!(
        text.contains(": 302 Found after 3 redirects, in "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\nstopped at the limit of 3 redirects: the next goes to {}\n",
            https.url("/loop")
        )),
        "{text}"
    );
    assert_eq!(text.matches("302 Found https://").count(), 4, "{text}");

    let text = run(&toml, "http_check", &[("url", word(&https.url("/big")))])
        .await
        .unwrap();
    assert!(
        text.contains("(text/plain, more than 1.0 MiB (stopped reading))"),
        "{text}"
    );
}

#[tokio::test]
async fn http_check_says_what_it_will_not_check_and_what_it_does_not_trust() {
    let https = Https::start().await;
    // Without the CA: the check goes on, and says why the certificate is not trusted.
    let text = run("", "http_check", &[("url", word(&https.url("/new")))])
        .await
        .unwrap();
    assert!(
        text.ends_with("\nNOT trusted by this worker: its issuer is not a certificate authority this worker trusts"),
        "{text}"
    );
    for (url, says) in [
        ("ftp://localhost/", "only http and https URLs are checked, not ftp:"),
        ("localhost/", "\"localhost/\" is not a URL (relative URL without a base): write it whole, e.g. https://example.com/"),
        ("https://me:pw@localhost/", "a URL with a user name or password is not checked: it would be kept in the job history"),
    ] {
        assert_eq!(run("", "http_check", &[("url", word(url))]).await.unwrap_err(), says);
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = run(
        "",
        "http_check",
        &[("url", word(&format!("http://{closed}/")))],
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        format!("cannot connect to {closed} ({closed}: connection refused)")
    );
    drop(https.ca);
}

#[tokio::test]
async fn tls_expiry_reads_the_certificate_and_its_days_left() {
    let https = Https::start().await;
    let target = format!("localhost:{}", https.server.addr.port());
    let text = run(
        &https.trusting(""),
        "tls_expiry",
        &[("target", word(&target))],
    )
    .await
    .unwrap();
    assert!(
        text.starts_with(&format!("{target} (127.0.0.1:{}): expires in 5 days (soon: under 14 days)\ncertificate: CN=localhost\n", https.server.addr.port())),
        "{text}"
    );
    assert!(text.contains("\n  issuer: CN=Octobox test CA\n"), "{text}");
    assert!(text.contains("\ntrusted by this worker\n"), "{text}");
    assert!(
        Regex::new(r"\nDNS \S+ (µs|ms) · connect \S+ (µs|ms|s) · TLS \S+ (µs|ms|s)$")
            .unwrap()
            .is_match(&text),
        "{text}"
    );
}

#[tokio::test]
async fn tls_expiry_says_expired_and_what_it_cannot_reach() {
    let ca = TestCa::new();
    let expired = WebServer::tls(ca.server_cert(-DAY * 30, -DAY * 2)).await;
    let target = format!("127.0.0.1:{}", expired.addr.port());
    let text = run("", "tls_expiry", &[("target", word(&target))])
        .await
        .unwrap();
    assert!(
        text.starts_with(&format!("{target}: EXPIRED 2 days ago\n")),
        "{text}"
    );
    assert!(text.contains("\nNOT trusted by this worker: "), "{text}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = run("", "tls_expiry", &[("target", word(&closed.to_string()))])
        .await
        .unwrap_err();
    assert_eq!(
        e,
        format!("cannot connect to {closed} ({closed}: connection refused)")
    );

    // A server that accepts and says nothing: the handshake's wait is bounded.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            open.push(s);
        }
    });
    let e = run(
        "[tasks.tls_expiry]\ntimeout = \"300ms\"\n",
        "tls_expiry",
        &[("target", word(&mute_addr.to_string()))],
    )
    .await
    .unwrap_err();
    assert_eq!(
        e,
        format!("{mute_addr} did not finish the TLS handshake within 300ms")
    );

    let e = run("", "tls_expiry", &[("target", word("not a host"))])
        .await
        .unwrap_err();
    assert!(e.starts_with("\"not a host\" is not a TLS server"), "{e}");
}

#[tokio::test]
async fn a_ca_file_that_is_not_one_stops_the_worker_with_its_reason() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "not a certificate\n").unwrap();
    let config = tasks(&format!(
        "[tasks]\nca_file = \"{}\"\n",
        file.path().display()
    ));
    let e = TaskRegistry::configured(&config).err().unwrap().to_string();
    assert!(e.contains("holds no PEM certificate"), "{e}");
}
