//! Schemathesis (from PyPI, installed by `scripts/test` into `target/schemathesis-venv`)
//! run against a live server's OpenAPI document: generated requests, every answer
//! checked against the document. [`run`] is bounded in time and returns what it found.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long one run may take before it is killed.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one generated request may take.
const REQUEST_TIMEOUT_SECS: &str = "10";
/// How long schemathesis waits for the document to be served.
const WAIT_FOR_SCHEMA_SECS: &str = "10";
/// What every answer is checked for: no 5xx, a status the document declares, a body
/// its schema admits.
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance";

/// What a run found.
#[derive(Debug, Clone)]
pub struct SchemathesisReport {
    /// True when every check held for every generated request (exit status 0).
    pub passed: bool,
    /// The command, as a shell would read it (header values masked).
    pub command: String,
    /// Its standard output and error, interleaved as written.
    pub output: String,
    pub elapsed: Duration,
}

impl SchemathesisReport {
    /// Fails, naming the command and showing the output's tail, unless the run passed.
    pub fn ensure_passed(&self) -> Result<()> {
        if self.passed {
            return Ok(());
        }
        bail!(
            "`{}` found failures:\n{}",
            self.command,
            crate::browser::tail(&self.output, 80)
        )
    }
}

/// Where `scripts/test` installs the CLI (override with `OCTOBOX_SCHEMATHESIS`).
pub fn cli_path() -> PathBuf {
    std::env::var_os("OCTOBOX_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/schemathesis-venv/bin/schemathesis")
        })
}

/// Runs `schemathesis run <openapi_url>` with [`CHECKS`], at most `max_examples` cases per
/// operation, every request carrying `headers` (e.g. `("Authorization", "Bearer t")`).
///
/// The API's base URL is the document's `servers` entry, resolved against
/// `openapi_url`. The report says whether the checks held (failures found are a report
/// that did not pass, not an error); an error is a run that could not be made — the CLI
/// missing, the document unreadable (exit status 2), or no end within [`RUN_TIMEOUT`] —
/// and names the command and shows the output's tail.
///
/// This blocks: from async code whose runtime also serves the API, call it in
/// `tokio::task::spawn_blocking`.
pub fn run(
    openapi_url: &str,
    headers: &[(&str, &str)],
    max_examples: u32,
) -> Result<SchemathesisReport> {
    run_with(openapi_url, headers, max_examples, None)
}

/// As [`run`], leaving out the operations whose path matches `path_regex` (endpoints
/// that stream without end, which a generated request would wait on until its timeout).
pub fn run_excluding(
    openapi_url: &str,
    headers: &[(&str, &str)],
    max_examples: u32,
    path_regex: &str,
) -> Result<SchemathesisReport> {
    run_with(openapi_url, headers, max_examples, Some(path_regex))
}

fn run_with(
    openapi_url: &str,
    headers: &[(&str, &str)],
    max_examples: u32,
    exclude_path: Option<&str>,
) -> Result<SchemathesisReport> {
    let cli = cli_path();
    if !cli.exists() {
        bail!(
            "{} is missing: scripts/test installs schemathesis from PyPI",
            cli.display()
        );
    }
    // Schemathesis keeps examples and state in its working directory: a private one.
    let dir = tempfile::tempdir().context("a working directory for schemathesis")?;
    let max_examples = max_examples.to_string();
    let mut args: Vec<String> = [
        "run",
        openapi_url,
        "--checks",
        CHECKS,
        "--max-examples",
        &max_examples,
        "--request-timeout",
        REQUEST_TIMEOUT_SECS,
        "--wait-for-schema",
        WAIT_FOR_SCHEMA_SECS,
        "--generation-database",
        "none",
        "--no-color",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(regex) = exclude_path {
        args.push("--exclude-path-regex".to_string());
        args.push(regex.to_string());
    }
    let mut shown = format!("{} {}", cli.display(), args.join(" "));
    for (name, value) in headers {
        args.push("--header".to_string());
        args.push(format!("{name}: {value}"));
        shown.push_str(&format!(" --header '{name}: ***'"));
    }

    let log_path = dir.path().join("output.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(&cli)
            .args(&args)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("schemathesis's output file")?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting `{shown}`"))?
    };
    let output = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for `{shown}`"))?
        {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{shown}` did not finish within {RUN_TIMEOUT:?} and was killed; its output's tail:\n{}",
                crate::browser::tail(&output(), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = SchemathesisReport {
        passed: status.success(),
        command: shown,
        output: output(),
        elapsed: started.elapsed(),
    };
    match status.code() {
        Some(0) | Some(1) => Ok(report),
        _ => bail!(
            "`{}` could not run ({status}); its output's tail:\n{}",
            report.command,
            crate::browser::tail(&report.output, 40)
        ),
    }
}
