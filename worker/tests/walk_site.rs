//! `walk site` through its `NativeTask` interface, with a real `TaskContext`, against
//! sites this test serves on 127.0.0.1 (the support web server, plain and over TLS):
//! pages that link to each other in a cycle, to a 404, a 500, a server that hangs up, a
//! slow page, another origin and a port nobody listens on; resources, a text file and
//! an image whose bytes look like links; a deep chain, a page of many links, slow pages
//! past the deadline, a page of 3 MiB. The assertions are on the words a person reads,
//! and on what each server was asked.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{Config, TasksConfig};
use jobs::memory::MemoryStore;
use jobs::{Job, Origin, Output, Task};
use lexicon::Value;
use regex::Regex;
use worker::{TaskContext, TaskRegistry};

use support::web_server::{Reply, TestCa, WebServer};

/// `[tasks]` from `toml`, as a worker's file would give it.
fn tasks(toml: &str) -> TasksConfig {
    Config::parse("octobox.toml", toml, |_| None)
        .unwrap_or_else(|e| panic!("{e}"))
        .tasks
}

/// Runs `walk site <url> [depth]` on a worker configured with `toml`: the text a person
/// reads, or the failure sentence.
async fn walk(toml: &str, url: &str, depth: Option<i64>) -> Result<String, String> {
    let registry = TaskRegistry::configured(&tasks(toml)).map_err(|e| e.to_string())?;
    let mut args = BTreeMap::from([("url".to_string(), Value::Word(url.to_string()))]);
    if let Some(depth) = depth {
        args.insert("depth".into(), Value::Int(depth));
    }
    let job = Job::new(
        "walk site",
        args,
        Task::native("walk_site"),
        Origin::new("console", "tester"),
        Duration::from_secs(60),
    );
    let ctx = TaskContext::new(job, Arc::new(MemoryStore::new()));
    let task = registry.get("walk_site").expect("a worker has walk_site");
    match task.run(&ctx).await {
        Ok(Output::Text { text }) => Ok(text),
        Ok(Output::File { bytes, .. }) => Ok(String::from_utf8(bytes).unwrap()),
        Ok(Output::Empty) => Ok(String::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// A page linking to each of `links` (`<a href>`).
fn page(links: &[&str]) -> Reply {
    let body: String = links
        .iter()
        .map(|l| format!("<li><a href=\"{l}\">{l}</a></li>\n"))
        .collect();
    Reply::html(format!("<!doctype html><ul>\n{body}</ul>\n"))
}

/// The line of `text` that starts with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

/// No target requested twice.
fn each_once(server: &WebServer) -> Vec<String> {
    let asked = server.requested();
    let mut seen = HashSet::new();
    for target in &asked {
        assert!(seen.insert(target), "{target} fetched twice: {asked:?}");
    }
    asked
}

/// A port with nothing listening on it.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_walk_counts_statuses_names_broken_links_and_the_slowest_pages() {
    let other = WebServer::site(|_| page(&[])).await;
    let dead = dead_port();
    let elsewhere = format!("http://127.0.0.1:{}/x", other.addr.port());
    let nobody = format!("http://127.0.0.1:{dead}/");
    let site = WebServer::site(move |target| match target {
        "/" => Reply::html(format!(
            "<!doctype html><html><head><link rel=stylesheet href=/style.css>\
             <script src=\"/app.js\"></script></head><body>\
             <a href=\"/a\">A</a> <a href=\"b\">B</a> <a href=\"/slow\">slow</a>\
             <a href=\"/notes.txt\">notes</a> <a href=\"#top\">top</a> <a href=\"/\">home</a>\
             <a href=\"{elsewhere}\">elsewhere</a> <a href=\"{nobody}\">nobody</a>\
             <a href=\"mailto:web@example.test\">mail</a> <img src=\"/logo.png\">\
             </body></html>"
        )),
        "/a" => page(&["/", "/b", "/missing", "/c"]),
        "/b" => page(&["/a", "/error", "/hangup", "/missing"]),
        "/c" => page(&["/a", "/b"]),
        "/slow" => page(&["/"]).after(Duration::from_millis(600)),
        "/notes.txt" => Reply::with(
            "200 OK",
            "text/plain",
            b"<a href=\"/hidden-in-text\">not a link in a text file</a>".to_vec(),
        ),
        "/logo.png" => Reply::with(
            "200 OK",
            "image/png",
            b"\x89PNG\r\n<a href=\"/hidden-in-image\">".to_vec(),
        ),
        "/style.css" => Reply::with("200 OK", "text/css", b"body {}".to_vec()),
        "/app.js" => Reply::with("200 OK", "text/javascript", b"let a = 1;".to_vec()),
        "/error" => Reply::with("500 Internal Server Error", "text/plain", Vec::new()),
        "/hangup" => Reply::hang_up(),
        _ => Reply::not_found(),
    })
    .await;
    let start = format!("http://127.0.0.1:{}/", site.addr.port());

    let text = walk("", &start, None).await.unwrap();

    let headline = text.lines().next().unwrap();
    assert!(
        Regex::new(&format!(
            r"^walk of {}, 2 links deep: 9 pages and 3 resources fetched in \d[\d.]* (µs|ms|s)$",
            regex::escape(&start)
        ))
        .unwrap()
        .is_match(headline),
        "{text}"
    );
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "complete: every page of this origin within 2 links of the first was fetched",
        "{text}"
    );
    assert_eq!(
        line(&text, "statuses: "),
        "statuses: 200: 9 · 404: 1 · 500: 1 · failed: 1"
    );
    let mut origins = [
        format!("http://127.0.0.1:{}", other.addr.port()),
        format!("http://127.0.0.1:{dead}"),
    ];
    origins.sort();
    assert_eq!(
        line(&text, "other origins: "),
        format!(
            "other origins: 2 links to 2 origins, counted, not fetched: {}",
            origins.join(", ")
        )
    );
    assert!(
        text.contains(
            "\nbroken links (3):\n  \
             500 Internal Server Error /error ← /b\n  \
             failed /hangup ← /b: the server did not answer in HTTP: it closed the connection before a whole answer\n  \
             404 Not Found /missing ← /a (and 1 more page)\n"
        ),
        "{text}"
    );
    // The slow page comes first among the slowest, with its time.
    let slowest = text
        .split("\nslowest:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let first = slowest.lines().next().unwrap();
    let took = Regex::new(r"^  (\d+) ms  200 /slow$")
        .unwrap()
        .captures(first)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(took[1].parse::<u64>().unwrap() >= 600, "{text}");
    assert_eq!(slowest.lines().count(), 5, "{text}");
    assert!(!text.contains("cut at"), "{text}");

    // Each page once, the cycle notwithstanding; resources checked; nothing read from
    // what is not HTML; no other origin asked.
    let asked = each_once(&site);
    let asked: HashSet<&str> = asked.iter().map(String::as_str).collect();
    for fetched in [
        "/",
        "/a",
        "/b",
        "/c",
        "/slow",
        "/notes.txt",
        "/missing",
        "/error",
        "/hangup",
        "/style.css",
        "/app.js",
        "/logo.png",
    ] {
        assert!(asked.contains(fetched), "{fetched} not fetched: {asked:?}");
    }
    assert_eq!(asked.len(), 12, "{asked:?}");
    assert!(other.requested().is_empty(), "{:?}", other.requested());
}

#[tokio::test]
async fn the_depth_bound_is_told_and_resources_of_the_last_pages_still_checked() {
    // /chain/0 → /chain/1 → … without end, each with its image.
    let site = WebServer::site(|target| match target.strip_prefix("/chain/") {
        Some(n) if n.ends_with(".png") => Reply::with("200 OK", "image/png", vec![0; 16]),
        Some(n) => {
            let n: u32 = n.parse().unwrap();
            Reply::html(format!(
                "<a href=\"/chain/{}\">next</a><img src=\"/chain/{n}.png\">",
                n + 1
            ))
        }
        None => Reply::not_found(),
    })
    .await;
    let start = format!("http://127.0.0.1:{}/chain/0", site.addr.port());

    let text = walk("", &start, Some(3)).await.unwrap();
    assert!(
        text.contains(", 3 links deep: 4 pages and 4 resources fetched in "),
        "{text}"
    );
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "depth bound: 1 page linked 4 links deep not followed; ask for more, up to 5",
        "{text}"
    );
    assert!(text.contains("\nbroken links: none\n"), "{text}");
    let asked = each_once(&site);
    assert!(asked.contains(&"/chain/3.png".to_string()), "{asked:?}");
    assert!(!asked.contains(&"/chain/4".to_string()), "{asked:?}");

    // At this worker's deepest, the line says so; depth 0 is the first page alone.
    let text = walk("[tasks.walk_site]\nmax_depth = 1\n", &start, None)
        .await
        .unwrap();
    assert!(
        text.contains(", 1 link deep: 2 pages and 2 resources"),
        "{text}"
    );
    assert!(
        text.contains(
            "\ndepth bound: 1 page linked 2 links deep not followed (this worker's max_depth)\n"
        ),
        "{text}"
    );
    let text = walk("", &start, Some(0)).await.unwrap();
    assert!(
        text.contains(", 0 links deep: 1 page and 1 resource"),
        "{text}"
    );
}

#[tokio::test]
async fn the_page_bound_stops_a_walk_and_says_how_much_was_left() {
    let links: Vec<String> = (0..50).map(|i| format!("/p/{i}")).collect();
    let site = WebServer::site(move |target| match target {
        "/" => {
            let refs: Vec<&str> = links.iter().map(String::as_str).collect();
            page(&refs)
        }
        _ => page(&["/"]),
    })
    .await;
    let start = format!("http://127.0.0.1:{}/", site.addr.port());
    let text = walk("[tasks.walk_site]\nmax_pages = 10\n", &start, None)
        .await
        .unwrap();
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "STOPPED at the page bound: 10 URLs fetched, 41 more found and not fetched ([tasks.walk_site] max_pages)",
        "{text}"
    );
    assert!(
        text.contains(": 10 pages and 0 resources fetched in "),
        "{text}"
    );
    assert_eq!(each_once(&site).len(), 10);
}

#[tokio::test]
async fn the_deadline_stops_a_walk_and_names_what_was_under_way() {
    let site = WebServer::site(|target| match target {
        "/" => page(&[
            "/slow/0", "/slow/1", "/slow/2", "/slow/3", "/slow/4", "/slow/5",
        ])
        .after(Duration::from_millis(200)),
        _ => page(&[]).after(Duration::from_secs(5)),
    })
    .await;
    let start = format!("http://127.0.0.1:{}/", site.addr.port());
    let started = Instant::now();
    let text = walk(
        "[tasks.walk_site]\ndeadline = \"1s\"\ntimeout = \"1s\"\n",
        &start,
        None,
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "STOPPED at the deadline of 1s: 4 fetches under way abandoned (/slow/0, /slow/1, /slow/2, /slow/3), 2 more found and not fetched",
        "{text}"
    );
    assert!(
        text.contains(": 1 page and 0 resources fetched in "),
        "{text}"
    );
}

#[tokio::test]
async fn a_huge_page_is_cut_at_a_mebibyte_and_its_early_links_followed() {
    let mut huge = b"<!doctype html><a href=\"/early\">early</a>\n".to_vec();
    while huge.len() < 3 * 1024 * 1024 {
        huge.extend_from_slice(b"<p>filler filler filler filler filler filler filler</p>\n");
    }
    huge.extend_from_slice(b"<a href=\"/late\">late</a>\n");
    let site = WebServer::site(move |target| match target {
        "/" => Reply::with("200 OK", "text/html", huge.clone()),
        _ => page(&[]),
    })
    .await;
    let start = format!("http://127.0.0.1:{}/", site.addr.port());
    let text = walk("", &start, None).await.unwrap();
    assert!(
        text.ends_with("\nbodies cut at 1 MiB: / (links past it not read)"),
        "{text}"
    );
    assert_eq!(each_once(&site), ["/", "/early"]);
}

#[tokio::test]
async fn a_walk_over_https_reads_the_certificate_once() {
    let ca = TestCa::new();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut ca_file, ca.pem.as_bytes()).unwrap();
    let day = time::Duration::days(1);
    let site = WebServer::tls_site(ca.server_cert(-day, day * 5), |target| match target {
        "/" => page(&["/a", "/b"]),
        _ => page(&["/"]),
    })
    .await;
    let start = format!("https://localhost:{}/", site.addr.port());
    let toml = format!("[tasks]\nca_file = \"{}\"\n", ca_file.path().display());
    let text = walk(&toml, &start, None).await.unwrap();
    assert!(
        text.contains(": 3 pages and 0 resources fetched in "),
        "{text}"
    );
    assert_eq!(
        line(&text, "certificate: "),
        "certificate: expires in 5 days (soon: under 14 days); trusted by this worker"
    );
    // Without the CA: the walk goes on, and says why the certificate is not trusted.
    let text = walk("", &start, None).await.unwrap();
    assert!(
        line(&text, "certificate: ").contains("; NOT trusted by this worker: "),
        "{text}"
    );
}

#[tokio::test]
async fn what_a_walk_cannot_do_is_said_in_a_sentence() {
    for (url, says) in [
        ("ftp://localhost/", "only http and https URLs are checked, not ftp:"),
        (
            "localhost/",
            "\"localhost/\" is not a URL (relative URL without a base): write it whole, e.g. https://example.com/",
        ),
        (
            "https://me:pw@localhost/",
            "a URL with a user name or password is not checked: it would be kept in the job history",
        ),
    ] {
        assert_eq!(walk("", url, None).await.unwrap_err(), says);
    }
    let e = walk("", "http://localhost/", Some(7)).await.unwrap_err();
    assert_eq!(
        e,
        "a walk goes from 0 to 5 links deep on this worker ([tasks.walk_site] max_depth), not 7"
    );

    let dead = dead_port();
    let e = walk("", &format!("http://127.0.0.1:{dead}/"), None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        format!("cannot connect to 127.0.0.1:{dead} (127.0.0.1:{dead}: connection refused)")
    );

    // A first page that never answers: the page's timeout, in words.
    let silent = WebServer::site(|_| page(&[]).after(Duration::from_secs(10))).await;
    let url = format!("http://127.0.0.1:{}/", silent.addr.port());
    let e = walk("[tasks.walk_site]\ntimeout = \"300ms\"\n", &url, None)
        .await
        .unwrap_err();
    assert_eq!(e, format!("{url}: no answer within 300ms"));

    // A first page that is missing is a report: its one broken link is the first page.
    let missing = WebServer::site(|_| Reply::not_found()).await;
    let url = format!("http://127.0.0.1:{}/gone", missing.addr.port());
    let text = walk("", &url, None).await.unwrap();
    assert!(
        text.contains("\nbroken links (1):\n  404 Not Found /gone (the first page)\n"),
        "{text}"
    );
}
