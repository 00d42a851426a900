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
    for phase in [
        "",
        "/low_load",
        "/broker_floor/publish_to_delivery_ms",
        "/broker_floor/publish_to_confirm_ms",
    ] {
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
    assert_eq!(number("/broker_floor/messages"), 500.0);
    // What the pipeline adds to RabbitMQ's own publish-to-delivery time.
    assert!(report
        .pointer("/low_load/p50_above_broker_floor_ms")
        .is_some_and(Value::is_number));
    assert_eq!(report["celery"], Value::Null);
    assert_eq!(report["vs_celery"], Value::Null);
    assert!(report["targets"]["worker_rss_under_20mb"].is_boolean());
}

#[test]
fn a_small_ssh_bench_run_reports_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_octobox-bench"))
        .args([
            "--ssh",
            "--ssh-connections",
            "3",
            "--ssh-sessions",
            "5",
            "--ssh-commands",
            "4",
        ])
        .output()
        .expect("octobox-bench starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "octobox-bench --ssh failed:\n{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let number = |path: &str| {
        report
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{path} is not a number in {report}"))
    };
    for path in [
        "/first_answer/ssh_ping_first_byte_ms/p50_ms",
        "/first_answer/ssh_ping_to_exit_ms/p50_ms",
        "/first_answer/baseline_ssh_empty_session_to_exit_ms/p50_ms",
        "/throughput/ssh_seconds",
        "/throughput/baseline_same_sessions_without_commands_seconds",
        "/throughput/baseline_console_pipe_commands_per_s",
    ] {
        assert!(number(path) > 0.0, "{path} in {report}");
    }
    assert!(
        number("/first_answer/ssh_ping_first_byte_ms/p50_ms")
            <= number("/first_answer/ssh_ping_to_exit_ms/p50_ms"),
        "the first byte comes before the exit: {report}"
    );
    assert_eq!(
        report.pointer("/throughput/every_answer_correct"),
        Some(&Value::Bool(true))
    );
}
