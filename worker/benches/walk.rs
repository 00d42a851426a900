//! `walk site` over a local site of 500 pages, against a baseline measured in the same
//! run: the same 500 URLs fetched one after another by the `http_check` task — the same
//! HTTP client (`http_check::fetch`), each body read to its end, no page read for links,
//! no bookkeeping. Both run as a worker runs them: a whole `NativeTask::run` on a
//! one-thread runtime; the site (the tests' web server, worker/tests/support) answers
//! from a runtime of its own, one connection per request.
//!
//! The site is a tree: page i links to pages 8i+1 … 8i+8, to its parent and to the
//! first page (so every link but the tree's is one the walk has seen already), with a
//! paragraph of text (1.6 KiB a page); 500 pages are 3 links deep. The walk is
//! measured with the default concurrency (4 URLs at once) and with 1, which shows what
//! reading the links costs beside fetching them. On loopback a fetch is all CPU, the
//! client's and the server's, so fetching several at once gains little on two cores; a
//! second site answers each page after 2 ms, as a server across a network would, where
//! it is the concurrency that counts.
//!
//!   cargo bench -p octobox-worker --bench walk

#[path = "../tests/support/web_server.rs"]
#[allow(dead_code)]
mod web_server;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use jobs::memory::MemoryStore;
use jobs::{Job, Origin, Output, Task};
use lexicon::Value;
use worker::{TaskContext, TaskRegistry};

use web_server::{Reply, WebServer};

/// Pages on the site.
const PAGES: usize = 500;

/// Links from a page to its children.
const FAN_OUT: usize = 8;

/// Page `i` of the site.
fn page(i: usize) -> Reply {
    let mut links: Vec<usize> = (FAN_OUT * i + 1..=FAN_OUT * i + FAN_OUT)
        .filter(|&c| c < PAGES)
        .collect();
    links.push(i.saturating_sub(1) / FAN_OUT);
    links.push(0);
    let list: String = links
        .iter()
        .map(|l| format!("<li><a href=\"/p/{l}\">page {l}</a></li>\n"))
        .collect();
    Reply::html(format!(
        "<!doctype html><html><head><title>Page {i}</title></head><body>\n\
         <h1>Page {i}</h1>\n<p>{}</p>\n<ul>\n{list}</ul>\n</body></html>\n",
        "Octobox walks this page as a person checking a site would. ".repeat(16)
    ))
}

/// A job for `task` with `args`, as the worker would run it.
fn context(task: &str, args: &[(&str, Value)]) -> TaskContext {
    let args: BTreeMap<String, Value> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    TaskContext::new(
        Job::new(
            task,
            args,
            Task::native(task),
            Origin::new("bench", "b"),
            Duration::from_secs(600),
        ),
        Arc::new(MemoryStore::new()),
    )
}

fn registry(toml: &str) -> TaskRegistry {
    let tasks = config::Config::parse("bench.toml", toml, |_| None)
        .unwrap()
        .tasks;
    TaskRegistry::configured(&tasks).unwrap()
}

fn text(out: Output) -> String {
    match out {
        Output::Text { text } => text,
        Output::File { bytes, .. } => String::from_utf8(bytes).unwrap(),
        Output::Empty => String::new(),
    }
}

/// The median of `times`, if any were taken (a filter on the command line may skip one).
fn median(times: &RefCell<Vec<Duration>>) -> Option<Duration> {
    let mut times = times.borrow().clone();
    times.sort();
    times.get(times.len() / 2).copied()
}

/// The tasks measured on one site, each run once first to check it does its work.
struct Case {
    walks: Vec<(String, Arc<dyn worker::NativeTask>, TaskContext)>,
    check: Arc<dyn worker::NativeTask>,
    checks: Vec<TaskContext>,
}

impl Case {
    fn new(port: u16, concurrencies: &[u32], worker: &tokio::runtime::Runtime) -> Case {
        let start = format!("http://127.0.0.1:{port}/p/0");
        let walks = concurrencies
            .iter()
            .map(|&n| {
                let registry = registry(&format!(
                    "[tasks.walk_site]\nmax_pages = {PAGES}\nconcurrency = {n}\n"
                ));
                let ctx = context(
                    "walk_site",
                    &[
                        ("url", Value::Word(start.clone())),
                        ("depth", Value::Int(3)),
                    ],
                );
                let name = match n {
                    1 => "walk site, 1 at a time".to_string(),
                    n => format!("walk site, {n} at once"),
                };
                (name, registry.get("walk_site").unwrap(), ctx)
            })
            .collect::<Vec<_>>();
        for (_, task, ctx) in &walks {
            let report = text(worker.block_on(task.run(ctx)).unwrap());
            assert!(
                report.contains(&format!(": {PAGES} pages and 0 resources fetched in "))
                    && report.contains("\ncomplete: ")
                    && report.contains("\nbroken links: none\n"),
                "the walk did not walk the whole site:\n{report}"
            );
        }
        let check = registry("").get("http_check").unwrap();
        let checks: Vec<TaskContext> = (0..PAGES)
            .map(|i| {
                let url = format!("http://127.0.0.1:{port}/p/{i}");
                context("http_check", &[("url", Value::Word(url))])
            })
            .collect();
        let fetched = text(worker.block_on(check.run(&checks[PAGES - 1])).unwrap());
        assert!(fetched.contains(": 200 OK after 0 redirects"), "{fetched}");
        Case {
            walks,
            check,
            checks,
        }
    }

    /// Measures each walk and the one-by-one fetches; prints pages/s and the ratios.
    fn measure(
        &self,
        c: &mut Criterion,
        group: &str,
        time: Duration,
        worker: &tokio::runtime::Runtime,
    ) {
        let mut timed: Vec<(String, RefCell<Vec<Duration>>)> = Vec::new();
        let mut g = c.benchmark_group(group);
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(time)
            .throughput(Throughput::Elements(PAGES as u64));
        for (name, task, ctx) in &self.walks {
            let times = RefCell::new(Vec::new());
            g.bench_function(name.as_str(), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        worker.block_on(task.run(ctx)).unwrap();
                        let took = started.elapsed();
                        times.borrow_mut().push(took);
                        total += took;
                    }
                    total
                })
            });
            timed.push((name.clone(), times));
        }
        let times = RefCell::new(Vec::new());
        g.bench_function("one by one (http check)", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let started = Instant::now();
                    worker.block_on(async {
                        for ctx in &self.checks {
                            self.check.run(ctx).await.unwrap();
                        }
                    });
                    let took = started.elapsed();
                    times.borrow_mut().push(took);
                    total += took;
                }
                total
            })
        });
        timed.push(("one by one (http check)".to_string(), times));
        g.finish();

        let per_second = |d: Duration| PAGES as f64 / d.as_secs_f64();
        eprintln!("\n{group}: pages per second, median of every timed run (warm-up included):");
        let baseline = timed.last().and_then(|(_, t)| median(t));
        for (name, times) in &timed {
            let (Some(m), Some(baseline)) = (median(times), baseline) else {
                continue;
            };
            eprintln!(
                "  {name:<26} {:>7.0} pages/s  ({:.1} ms for {PAGES}; {:.2}× the one-by-one fetches)",
                per_second(m),
                m.as_secs_f64() * 1000.0,
                baseline.as_secs_f64() / m.as_secs_f64()
            );
        }
    }
}

/// How long each page of the second site takes to answer, as over a network.
const LATENCY: Duration = Duration::from_millis(2);

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let serve = |latency: Duration| {
        servers.block_on(WebServer::site(move |target| {
            match target
                .strip_prefix("/p/")
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(i) if i < PAGES => page(i).after(latency),
                _ => Reply::not_found(),
            }
        }))
    };
    let local = serve(Duration::ZERO);
    let distant = serve(LATENCY);
    let worker = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    Case::new(local.addr.port(), &[4, 1], &worker).measure(
        &mut c,
        "500 pages",
        Duration::from_secs(6),
        &worker,
    );
    Case::new(distant.addr.port(), &[4], &worker).measure(
        &mut c,
        "500 pages, each 2 ms to answer",
        Duration::from_secs(20),
        &worker,
    );
    c.final_summary();
}
