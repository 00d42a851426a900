//! What people can say that must not cost or show too much: a line of 100 KB classifies
//! (unknown or not) and its error quotes only a short excerpt of it (before suggestions
//! were linear in the number of words, a 400 KB line took minutes); a `secret` value is
//! never echoed, not even by `explain`.

use lexicon::{Catalog, Classification, CommandSpec, EXCERPT_CHARS};

fn catalog() -> Catalog {
    let spec = |pattern: &str| CommandSpec {
        name: None,
        pattern: pattern.to_string(),
        help: "a command".to_string(),
        section: "Tasks".to_string(),
        examples: Vec::new(),
    };
    Catalog::build(vec![
        spec("echo {message:text}"),
        spec("deploy {service:word} to {env:prod|staging}"),
        spec("restart service {name:word}"),
        spec("add ip {addr:ip} to list {list:word}"),
    ])
    .expect("the catalog builds")
}

fn words(first: &str, bytes: usize) -> String {
    let mut line = first.to_string();
    let mut i = 0usize;
    while line.len() < bytes {
        line.push_str(&format!(" restart{}", i % 7));
        i += 1;
    }
    line
}

#[test]
fn a_100_kb_unknown_line_is_answered_with_a_short_excerpt() {
    let cat = catalog();
    for first in ["frobnicate", "restart", "deploy", "echp"] {
        let line = words(first, 100 * 1024);
        let c = cat.classify(&line);
        assert!(
            matches!(
                c,
                Classification::Unknown { .. } | Classification::BadArgument(_)
            ),
            "{first}: {c:?}"
        );
        let shown = c.to_string();
        assert!(
            shown.chars().count() < EXCERPT_CHARS + 300,
            "{first}: the answer quotes {} characters",
            shown.chars().count()
        );
        assert!(shown.contains("more characters"), "{shown}");
    }
}

#[test]
fn a_100_kb_bad_value_is_quoted_as_an_excerpt() {
    let cat = catalog();
    let huge = "x".repeat(100 * 1024);
    let c = cat.classify(&format!("add ip {huge} to list blocked"));
    let Classification::BadArgument(e) = &c else {
        panic!("{c:?}")
    };
    assert!(e.problem.starts_with("\"xxxxxxxx"), "{}", e.problem);
    assert!(e.problem.len() < 300, "{}", e.problem);
}

#[test]
fn a_100_kb_text_value_is_kept_whole() {
    let cat = catalog();
    let line = words("echo", 100 * 1024);
    let Classification::Matched(m) = cat.classify(&line) else {
        panic!("echo with a long text does not match")
    };
    assert_eq!(
        m.args["message"].to_string().len(),
        line.len() - "echo ".len()
    );
}

#[test]
fn explain_never_echoes_a_secret_value() {
    let spec = CommandSpec {
        name: None,
        pattern: "login {user:word} with {token:secret}".to_string(),
        help: "Logs in".to_string(),
        section: "Tasks".to_string(),
        examples: Vec::new(),
    };
    let cat = Catalog::build(vec![spec]).expect("the catalog builds");
    let shown = cat.explain("login alice with ghp_s3cr3t");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("alice") && shown.contains("***"), "{shown}");
    let Classification::Matched(m) = cat.classify("login alice with ghp_s3cr3t") else {
        panic!("no match")
    };
    assert_eq!(m.args["token"].reveal(), "ghp_s3cr3t");
    assert_eq!(m.args["token"].to_string(), "***");
}
