//! Classification throughput on generated, realistic catalogs of 20, 200 and 2,000 commands:
//! a fixed mix of messages (70% matching, 20% bad value, 10% unknown: typos and noise) and a
//! matching-only mix. Throughput is reported in messages per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lexicon::{Catalog, Classification, CommandSpec};

const VERBS: &[&str] = &[
    "add", "remove", "show", "list", "restart", "deploy", "rollback", "scale", "block", "unblock",
    "ping", "trace", "status", "logs", "tail", "open", "close", "assign", "silence", "ack", "page",
    "run", "stop", "start", "backup", "restore", "rotate", "flush", "drain", "cordon", "promote",
    "demote", "tag", "untag", "grant", "revoke", "create", "delete", "describe", "watch",
];
const OBJECTS: &[&str] = &[
    "ip",
    "host",
    "service",
    "job",
    "user",
    "team",
    "alert",
    "incident",
    "cert",
    "key",
    "dns",
    "record",
    "queue",
    "cache",
    "node",
    "pod",
    "cluster",
    "db",
    "replica",
    "snapshot",
    "bucket",
    "ticket",
    "build",
    "release",
    "branch",
    "pipeline",
    "secret",
    "token",
    "channel",
    "webhook",
    "volume",
    "network",
    "route",
    "firewall",
    "rule",
    "policy",
    "quota",
    "region",
    "zone",
    "image",
    "container",
    "cron",
    "task",
    "worker",
    "shard",
    "index",
    "topic",
    "stream",
    "report",
    "dashboard",
];

/// Pattern tails; `{}` placeholders are filled by verb and object.
const TEMPLATES: &[&str] = &[
    "{name:name}",
    "{addr:ip} [to list {list:name}]",
    "{host:hostname} [for {d:duration=1h}]",
    "{id:jobid}",
    "{n:int(1..100)} [in {env:prod|staging|dev=prod}]",
    "{net:cidr} on {host:hostname}",
    "[{count:int(1..50)=10}]",
    "{target:word} with {msg:text}",
    "in {env:prod|staging} [now]",
    "{svc:name} to {version:word} [after {d:duration}]",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Generated {
    verb: &'static str,
    object: &'static str,
    template: usize,
}

/// `n` distinct (verb, object) commands, spread over all verbs, deterministic.
fn commands(n: usize) -> Vec<Generated> {
    let mut rng = Rng(42);
    let mut pairs: Vec<(usize, usize)> = (0..VERBS.len())
        .flat_map(|v| (0..OBJECTS.len()).map(move |o| (v, o)))
        .collect();
    for i in (1..pairs.len()).rev() {
        let j = rng.below(i + 1);
        pairs.swap(i, j);
    }
    pairs
        .into_iter()
        .take(n)
        .map(|(v, o)| Generated {
            verb: VERBS[v],
            object: OBJECTS[o],
            template: rng.below(TEMPLATES.len()),
        })
        .collect()
}

fn catalog(cmds: &[Generated]) -> Catalog {
    let specs = cmds
        .iter()
        .map(|c| CommandSpec {
            name: None,
            pattern: format!("{} {} {}", c.verb, c.object, TEMPLATES[c.template]),
            help: format!("{} a {}.", c.verb, c.object),
            section: c.object.to_string(),
            examples: Vec::new(),
        })
        .collect();
    match Catalog::build(specs) {
        Ok(c) => c,
        Err(e) => panic!("generated catalog must build: {e:?}"),
    }
}

/// A valid message for a command.
fn matching(c: &Generated, rng: &mut Rng) -> String {
    let head = if rng.below(4) == 0 {
        format!("{} {}", c.verb.to_uppercase(), c.object)
    } else {
        format!("{} {}", c.verb, c.object)
    };
    let n = rng.below(250);
    let tail = match c.template {
        0 => format!("web-{n}"),
        1 if n & 1 == 0 => format!("10.0.{}.{}", n % 256, n % 200),
        1 => format!("10.0.{}.{} to list blocked", n % 256, n % 200),
        2 if n & 1 == 0 => format!("db{n}.example.com"),
        2 => format!("db{n}.example.com for 1h30m"),
        3 => format!("0190b4a2-7c1e-7d3a-9f00-1b2c3d4e{:04x}", n),
        4 if n & 1 == 0 => format!("{}", 1 + n % 100),
        4 => format!("{} in staging", 1 + n % 100),
        5 => format!("10.{}.0.0/16 on edge{n}", n % 256),
        6 if n & 1 == 0 => String::new(),
        6 => format!("{}", 1 + n % 50),
        7 => format!("api{n} with deploying   the new build now"),
        8 if n & 1 == 0 => "in prod".to_string(),
        8 => "in STAGING now".to_string(),
        9 if n & 1 == 0 => format!("api-{n} to v1.{n}"),
        _ => format!("api-{n} to v1.{n} after 5m"),
    };
    let end = if rng.below(5) == 0 { "?" } else { "" };
    format!("{head} {tail}{end}")
}

/// A message whose words match a command but whose value does not parse.
fn bad_value(c: &Generated, rng: &mut Rng) -> String {
    let head = format!("{} {}", c.verb, c.object);
    let n = rng.below(250);
    let tail = match c.template {
        0 => format!("-web{n}"),
        1 => format!("999.1.1.{n}"),
        2 => format!("my_host{n}"),
        3 => format!("job-{n}"),
        4 => format!("{}", 101 + n),
        5 => format!("10.0.0.0/{} on edge", 33 + n % 50),
        6 => format!("{}", 51 + n),
        7 => format!("api{n} with"), // missing text
        8 => "in qa".to_string(),
        _ => format!("api-{n} to v1 after {n}"), // bare number as duration
    };
    format!("{head} {tail}")
}

/// A message no command matches: a typo in the first word, or noise.
fn unknown(c: &Generated, rng: &mut Rng) -> String {
    if rng.below(2) == 0 {
        let mut verb: Vec<char> = c.verb.chars().collect();
        if verb.len() > 2 {
            let i = 1 + rng.below(verb.len() - 2);
            verb.swap(i, i + 1);
        } else {
            verb.push('x');
        }
        let mut verb: String = verb.into_iter().collect();
        if verb == c.verb {
            verb.insert(1, 'q'); // swapping equal letters is no typo
        }
        format!("{verb} {} something", c.object)
    } else {
        const NOISE: &[&str] = &[
            "fly me to the moon",
            "what is going on with prod",
            "lol",
            "can someone look at the dashboard please",
            "👍",
        ];
        NOISE[rng.below(NOISE.len())].to_string()
    }
}

/// 1,000 messages: 70% matching, 20% bad value, 10% unknown (or 100% matching).
fn messages(cmds: &[Generated], matching_only: bool) -> Vec<String> {
    let mut rng = Rng(7);
    (0..1000)
        .map(|i| {
            let c = &cmds[rng.below(cmds.len())];
            match (matching_only, i % 10) {
                (true, _) | (false, 0..=6) => matching(c, &mut rng),
                (false, 7 | 8) => bad_value(c, &mut rng),
                _ => unknown(c, &mut rng),
            }
        })
        .collect()
}

/// Checks that every generated message classifies as intended (matching / bad / unknown).
fn check_mix(catalog: &Catalog, msgs: &[String], matching_only: bool) {
    for (i, msg) in msgs.iter().enumerate() {
        let expected = match (matching_only, i % 10) {
            (true, _) | (false, 0..=6) => "matched",
            (false, 7 | 8) => "bad argument",
            _ => "unknown",
        };
        let got = match catalog.classify(msg) {
            Classification::Matched(_) => "matched",
            Classification::BadArgument(_) => "bad argument",
            Classification::Unknown { .. } => "unknown",
            Classification::Empty => "empty",
        };
        assert_eq!(got, expected, "message {msg:?}: {}", catalog.classify(msg));
    }
}

fn bench(c: &mut Criterion) {
    let sizes = [20usize, 200, 2000];
    let setups: Vec<(usize, Catalog, Vec<String>, Vec<String>)> = sizes
        .iter()
        .map(|&n| {
            let cmds = commands(n);
            let cat = catalog(&cmds);
            let mix = messages(&cmds, false);
            let only = messages(&cmds, true);
            check_mix(&cat, &mix, false);
            check_mix(&cat, &only, true);
            (n, cat, mix, only)
        })
        .collect();

    for (group_name, matching_only) in [("classify_mix", false), ("classify_matching", true)] {
        let mut group = c.benchmark_group(group_name);
        for (n, cat, mix, only) in &setups {
            let msgs = if matching_only { only } else { mix };
            group.throughput(Throughput::Elements(msgs.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(n), msgs, |b, msgs| {
                b.iter(|| {
                    for m in msgs {
                        black_box(cat.classify(black_box(m)));
                    }
                })
            });
        }
        group.finish();
    }

    // Long lines over 25, 50 and 100 KB: an unknown first word, and a first word that
    // commands start with (the suggestion path scores every candidate against it). Time linear in the input shows as the same bytes per second at each size.
    let (_, cat, _, _) = &setups[1];
    let mut group = c.benchmark_group("long_lines");
    group.sample_size(10);
    for kb in [25usize, 50, 100] {
        let unknown = long_line("frobnicate", kb);
        let near_miss = long_line(VERBS[0], kb);
        group.throughput(Throughput::Bytes(unknown.len() as u64));
        group.bench_with_input(BenchmarkId::new("unknown", kb), &unknown, |b, m| {
            b.iter(|| black_box(cat.classify(black_box(m))))
        });
        group.bench_with_input(BenchmarkId::new("near_miss", kb), &near_miss, |b, m| {
            b.iter(|| black_box(cat.classify(black_box(m))))
        });
    }
    group.finish();
}

/// `first` followed by short words up to `kb` kilobytes.
fn long_line(first: &str, kb: usize) -> String {
    let mut line = first.to_string();
    let mut i = 0usize;
    while line.len() < kb * 1024 {
        line.push_str(&format!(" word{}", i % 97));
        i += 1;
    }
    line
}

criterion_group!(benches, bench);
criterion_main!(benches);
