//! `octobox-bench` works: a small run (no Celery) prints one JSON line with every field,
//! every job delivered, and figures that make sense. Speed itself is not judged here.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_small_bench_run_reports_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_octobox-bench"))
        .args(["--jobs", "200", "--low-load", "50", "--window", "32"])
        .output()
        .expect("octobox-bench starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "octobox-bench failed:\n{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line on stdout, got:\n{stdout}");
    let report: Value = serde_json::from_str(lines[0]).expect("the line is JSON");
    let number = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{path} is not a number in {report}"))
    };

    assert_eq!(
        number("/jobs"),
        200.0,
        "every job of the throughput phase delivered"
    );
    assert_eq!(number("/low_load/jobs"), 50.0);
    assert!(number("/jobs_per_s") > 0.0);
    for phase in ["", "/low_load"] {
        let (p50, p95, p99) = (
            number(&format!("{phase}/p50_ms")),
            number(&format!("{phase}/p95_ms")),
            number(&format!("{phase}/p99_ms")),
        );
        assert!(
            0.0 < p50 && p50 <= p95 && p95 <= p99,
            "{phase}: {p50} {p95} {p99}"
        );
        assert!(
            p99 < 30_000.0,
            "{phase}: a round trip under the bench's own patience"
        );
    }
    assert!(number("/bot_rss_mb") > 1.0);
    assert!(number("/worker_rss_mb") > 1.0);
    assert!(number("/broker_ceiling_msgs_per_s") > 0.0);
    assert!(number("/ceiling_message_bytes") > 100.0, "a serialized job");
    assert!(number("/fraction_of_ceiling") > 0.0);
    assert_eq!(report["celery"], Value::Null);
    assert_eq!(report["vs_celery"], Value::Null);
    assert!(report["targets"]["worker_rss_under_20mb"].is_boolean());
}
