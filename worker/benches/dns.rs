//! `dns` against `dig`: the time to an answer from the same local resolver (the test
//! DNS server of worker/tests/support), in one run. The task's time is a whole
//! `NativeTask::run` — resolver built afresh, the question asked, the answer written
//! as a person reads it — on the one-thread runtime a worker runs on; dig's is the
//! whole `dig` process, as a person at a shell waits for it.
//!
//!   cargo bench -p octobox-worker --bench dns

#[path = "../tests/support/dns_server.rs"]
#[allow(dead_code)]
mod dns_server;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jobs::memory::MemoryStore;
use jobs::{Job, Origin, Output, Task};
use lexicon::Value;
use worker::{TaskContext, TaskRegistry};

fn dns_against_dig(c: &mut Criterion) {
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = servers.block_on(dns_server::DnsServer::start(
        dns_server::Behaviour::Records(vec![dns_server::a(
            "bench.example.test.",
            300,
            "192.0.2.1",
        )]),
    ));
    let toml = format!("[tasks.dns]\nresolvers = [\"local={}\"]\n", server.addr);
    let tasks = config::Config::parse("bench.toml", &toml, |_| None)
        .unwrap()
        .tasks;
    let registry = TaskRegistry::configured(&tasks).unwrap();
    let dns = registry.get("dns").unwrap();
    let args: BTreeMap<String, Value> =
        [("name".to_string(), Value::Word("bench.example.test".into()))].into();
    let ctx = TaskContext::new(
        Job::new(
            "dns",
            args,
            Task::native("dns"),
            Origin::new("bench", "b"),
            Duration::from_secs(10),
        ),
        Arc::new(MemoryStore::new()),
    );
    let worker = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let answered =
        |out: &Output| matches!(out, Output::Text { text } if text.contains("192.0.2.1"));
    let first = worker.block_on(dns.run(&ctx)).unwrap();
    assert!(answered(&first), "the task did not answer: {first:?}");

    let port = server.addr.port().to_string();
    let dig = || {
        Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &port,
                "+tries=1",
                "+time=2",
                "bench.example.test",
                "A",
            ])
            .output()
    };
    let dig_works = match dig() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).contains("192.0.2.1"),
        Err(_) => false,
    };

    let mut group = c.benchmark_group("dns answer");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("dns task", |b| {
        b.iter(|| {
            let out = worker.block_on(dns.run(&ctx)).unwrap();
            assert!(answered(&out));
        })
    });
    if dig_works {
        group.bench_function("dig", |b| {
            b.iter(|| {
                let out = dig().unwrap();
                assert!(out.status.success());
            })
        });
    } else {
        eprintln!(
            "dig is not installed (Debian: dnsutils), or did not answer: measured the task alone"
        );
    }
    group.finish();
}

criterion_group!(benches, dns_against_dig);
criterion_main!(benches);
