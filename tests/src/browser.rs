//! `Browser`: a headless Chromium driven over the W3C WebDriver protocol, for tests of
//! pages in a real browser (JavaScript, Server-Sent Events, cookies, dialogs).
//!
//! Debian's `chromedriver` (package `chromium-driver`, installed by `scripts/test`) runs
//! on a free port with a private profile; this module speaks its HTTP/JSON protocol with
//! `reqwest`. Every command is bounded in time, every error names the command and carries
//! the driver's message, and dropping the `Browser` ends the session and kills
//! chromedriver and every Chromium process it started.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

/// How long one WebDriver command may take (a page load is bounded below this).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a page may take to load, a script to run.
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to say it is ready.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often `wait_for` and `wait_until_text` look again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The key under which WebDriver names an element (W3C's web element identifier).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What the driver answered when a command failed: the command, WebDriver's error code
/// (`no such element`, `no such alert`, ...) and its message.
#[derive(Debug, Clone)]
pub struct WebDriverError {
    pub command: String,
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebDriver {}: {}: {}",
            self.command, self.error, self.message
        )
    }
}

impl std::error::Error for WebDriverError {}

/// True when `error` is WebDriver's answer `code` (e.g. `no such element`).
fn is_driver_error(error: &anyhow::Error, codes: &[&str]) -> bool {
    error
        .downcast_ref::<WebDriverError>()
        .is_some_and(|e| codes.contains(&e.error.as_str()))
}

/// A cookie as the browser holds it (`GET /session/{id}/cookie`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub secure: bool,
    #[serde(default)]
    pub http_only: bool,
    /// `Strict`, `Lax` or `None`, as the browser reports it.
    #[serde(default)]
    pub same_site: Option<String>,
    /// Seconds since the epoch; absent for a session cookie.
    #[serde(default)]
    pub expiry: Option<u64>,
}

/// One WebDriver session: where its commands go.
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    url: String,
}

impl Session {
    /// Sends `method path` (relative to the session) with `body`; the answer's `value`.
    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let name = format!("{method} {path}");
        let url = format!("{}{path}", self.url);
        command(&self.http, method, &url, body, &name).await
    }
}

/// One request to chromedriver, its `value` or a [`WebDriverError`] named `name`.
async fn command(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<Value>,
    name: &str,
) -> Result<Value> {
    let mut request = http.request(method, url).timeout(COMMAND_TIMEOUT);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("WebDriver {name}: no answer from chromedriver"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("WebDriver {name}: reading the answer ({status})"))?;
    let answer: Value = serde_json::from_str(&text).with_context(|| {
        format!("WebDriver {name}: {status} with a body that is not JSON: {text}")
    })?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        let error = value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string();
        let message = value["message"].as_str().unwrap_or(&text).to_string();
        return Err(WebDriverError {
            command: name.to_string(),
            error,
            message,
        }
        .into());
    }
    Ok(value)
}

/// A headless Chromium under a private chromedriver.
pub struct Browser {
    session: Session,
    driver: Child,
    port: u16,
    session_id: String,
    /// The Chromium profile (`--user-data-dir`) and chromedriver's log.
    dir: tempfile::TempDir,
}

impl Browser {
    /// The chromedriver program: `OCTOBOX_CHROMEDRIVER`, else `chromedriver` on the path.
    fn driver_program() -> PathBuf {
        std::env::var_os("OCTOBOX_CHROMEDRIVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("chromedriver"))
    }

    /// Starts chromedriver on a free port and opens a session of headless Chromium.
    pub async fn start() -> Result<Browser> {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().context("a temporary directory for the browser")?;
        let profile = dir.path().join("profile");
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let port = crate::services::free_port();
        let program = Self::driver_program();
        let driver = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("chromedriver's log")?)
            .stderr(log)
            // Its own process group: Chromium and its helpers are in it, killed together.
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (scripts/test installs Debian's chromium and chromium-driver)",
                    program.display()
                )
            })?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("an HTTP client for chromedriver")?;
        let mut browser = Browser {
            session: Session {
                http,
                url: String::new(),
            },
            driver,
            port,
            session_id: String::new(),
            dir,
        };
        browser.wait_until_ready().await?;
        browser.open_session(&profile).await?;
        Ok(browser)
    }

    fn driver_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// chromedriver's log, its last lines (for errors).
    fn driver_log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        tail(&log, 20)
    }

    async fn wait_until_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        let status_url = format!("{}/status", self.driver_url());
        loop {
            if let Some(exit) = self
                .driver
                .try_wait()
                .context("asking after chromedriver")?
            {
                bail!(
                    "chromedriver exited ({exit}) before it was ready; its log:\n{}",
                    self.driver_log_tail()
                );
            }
            let ready = command(
                &self.session.http,
                Method::GET,
                &status_url,
                None,
                "GET /status",
            )
            .await
            .map(|v| v["ready"] == Value::Bool(true))
            .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "chromedriver on port {} was not ready within {DRIVER_START_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.driver_log_tail()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn open_session(&mut self, profile: &std::path::Path) -> Result<()> {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "unhandledPromptBehavior": "ignore",
                    "timeouts": {
                        "pageLoad": PAGE_LOAD_TIMEOUT.as_millis() as u64,
                        "script": PAGE_LOAD_TIMEOUT.as_millis() as u64,
                        "implicit": 0,
                    },
                    "goog:chromeOptions": {
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-dev-shm-usage",
                            "--disable-gpu",
                            "--window-size=1280,900",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                },
            },
        });
        let url = format!("{}/session", self.driver_url());
        let answer = command(
            &self.session.http,
            Method::POST,
            &url,
            Some(capabilities),
            "POST /session",
        )
        .await
        .map_err(|e| anyhow!("{e:#}; chromedriver's log:\n{}", self.driver_log_tail()))
        .context("opening a headless Chromium session (is Debian's chromium installed?)")?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("WebDriver POST /session: no sessionId in {answer}"))?;
        self.session_id = id.to_string();
        self.session.url = format!("{}/session/{id}", self.driver_url());
        Ok(())
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session
            .command(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("loading {url}"))?;
        Ok(())
    }

    /// The URL of the page shown.
    pub async fn current_url(&self) -> Result<String> {
        let value = self.session.command(Method::GET, "/url", None).await?;
        as_string(value, "GET /url")
    }

    /// The title of the page shown.
    pub async fn title(&self) -> Result<String> {
        let value = self.session.command(Method::GET, "/title", None).await?;
        as_string(value, "GET /title")
    }

    /// The first element matching the CSS selector `css`, now (no waiting).
    pub async fn find(&self, css: &str) -> Result<Element> {
        let value = self
            .session
            .command(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .with_context(|| format!("finding `{css}`"))?;
        self.element(&value, css)
    }

    /// Every element matching `css`, in document order (none is not an error).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let value = self
            .session
            .command(
                Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .with_context(|| format!("finding every `{css}`"))?;
        let list = value
            .as_array()
            .ok_or_else(|| anyhow!("WebDriver POST /elements: not a list: {value}"))?;
        list.iter().map(|v| self.element(v, css)).collect()
    }

    fn element(&self, value: &Value, css: &str) -> Result<Element> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow!("WebDriver: `{css}` answered without an element id: {value}"))?;
        Ok(Element {
            session: self.session.clone(),
            id: id.to_string(),
            css: css.to_string(),
        })
    }

    /// Runs `script` (a function body: `return ...` gives the result; `arguments[i]` are
    /// `args`) in the page, synchronously; its result as JSON.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.session
            .command(
                Method::POST,
                "/execute/sync",
                Some(json!({ "script": script, "args": args })),
            )
            .await
            .with_context(|| format!("running the script `{}`", excerpt(script)))
    }

    /// Waits up to `timeout` for an element matching `css` to be in the page.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(css).await {
                Ok(element) => return Ok(element),
                Err(e) if is_driver_error(&e, &["no such element"]) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                let url = self
                    .current_url()
                    .await
                    .unwrap_or_else(|e| format!("({e})"));
                bail!("no element matched `{css}` within {timeout:?} on {url}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits up to `timeout` until the text of the element matching `css` contains
    /// `expected`; that text. The error on timeout shows the last text seen and the URL.
    pub async fn wait_until_text(
        &self,
        css: &str,
        expected: &str,
        timeout: Duration,
    ) -> Result<String> {
        self.wait_until_text_matches(
            css,
            &format!("contains {expected:?}"),
            |text| text.contains(expected),
            timeout,
        )
        .await
    }

    /// Waits up to `timeout` until `accept` holds for the text of the element matching
    /// `css` (looked up afresh each time, so a re-rendered element is followed); that
    /// text. `what` says what was awaited, for the error, which also shows the last text
    /// seen and the URL.
    pub async fn wait_until_text_matches(
        &self,
        css: &str,
        what: &str,
        accept: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut last: Option<String> = None;
        loop {
            let seen = match self.find(css).await {
                Ok(element) => element.text().await,
                Err(e) => Err(e),
            };
            match seen {
                Ok(text) if accept(&text) => return Ok(text),
                Ok(text) => last = Some(text),
                Err(e) if is_driver_error(&e, &["no such element", "stale element reference"]) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                let url = self
                    .current_url()
                    .await
                    .unwrap_or_else(|e| format!("({e})"));
                let last = match last {
                    Some(text) => format!("its last text was {text:?}"),
                    None => "no element matched it".to_string(),
                };
                bail!("the text of `{css}` never {what} within {timeout:?} on {url}: {last}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Every cookie the browser holds for the page shown (HttpOnly ones included).
    pub async fn cookies(&self) -> Result<Vec<Cookie>> {
        let value = self.session.command(Method::GET, "/cookie", None).await?;
        serde_json::from_value(value.clone())
            .with_context(|| format!("WebDriver GET /cookie: not a list of cookies: {value}"))
    }

    /// The text of the dialog (`alert`, `confirm`, `prompt`) the page shows.
    pub async fn alert_text(&self) -> Result<String> {
        let value = self
            .session
            .command(Method::GET, "/alert/text", None)
            .await?;
        as_string(value, "GET /alert/text")
    }

    /// Presses OK in the dialog the page shows (`confirm()` returns true).
    pub async fn accept_alert(&self) -> Result<()> {
        self.session
            .command(Method::POST, "/alert/accept", Some(json!({})))
            .await?;
        Ok(())
    }

    /// Presses Cancel in the dialog the page shows (`confirm()` returns false).
    pub async fn dismiss_alert(&self) -> Result<()> {
        self.session
            .command(Method::POST, "/alert/dismiss", Some(json!({})))
            .await?;
        Ok(())
    }

    /// Saves what the page shows as `<target>/screenshots/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let value = self
            .session
            .command(Method::GET, "/screenshot", None)
            .await?;
        let encoded = as_string(value, "GET /screenshot")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .context("WebDriver GET /screenshot: not base64")?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for Browser {
    /// Ends the session (Chromium quits), then kills chromedriver's process group, which
    /// holds whatever of Chromium is left.
    fn drop(&mut self) {
        if !self.session_id.is_empty() {
            delete_session(self.port, &self.session_id);
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/<id>` over a blocking socket (a `Drop` cannot await), bounded;
/// returns once the answer's head has come (chromedriver answers once Chromium has quit,
/// and may keep the connection open after).
fn delete_session(port: u16, id: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
}

/// An element of the page, as WebDriver names it.
#[derive(Clone)]
pub struct Element {
    session: Session,
    id: String,
    /// The selector it was found by, for errors.
    css: String,
}

impl std::fmt::Debug for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Element(`{}`)", self.css)
    }
}

impl Element {
    async fn command(&self, method: Method, what: &str, body: Option<Value>) -> Result<Value> {
        self.session
            .command(method, &format!("/element/{}{what}", self.id), body)
            .await
            .with_context(|| format!("on the element `{}`", self.css))
    }

    /// Clicks it (scrolled into view first, as a person would).
    pub async fn click(&self) -> Result<()> {
        self.command(Method::POST, "/click", Some(json!({})))
            .await?;
        Ok(())
    }

    /// Its rendered text (what a person sees, whitespace as laid out).
    pub async fn text(&self) -> Result<String> {
        let value = self.command(Method::GET, "/text", None).await?;
        as_string(value, "GET /element/text")
    }

    /// The attribute `name`, or `None` when it has none.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let value = self
            .command(Method::GET, &format!("/attribute/{name}"), None)
            .await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.command(Method::POST, "/value", Some(json!({ "text": text })))
            .await?;
        Ok(())
    }

    /// Empties it (an input or a textarea).
    pub async fn clear(&self) -> Result<()> {
        self.command(Method::POST, "/clear", Some(json!({})))
            .await?;
        Ok(())
    }
}

fn as_string(value: Value, command: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(anyhow!(
            "WebDriver {command}: expected a string, got {other}"
        )),
    }
}

/// Where screenshots go: `<target>/screenshots`, the target directory being
/// `CARGO_TARGET_DIR` or the one this test executable was built into.
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("screenshots")
}

fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        if dir.is_absolute() {
            return dir;
        }
    }
    // Test executables live in `<target>/<profile>/deps/`.
    let exe = std::env::current_exe().ok();
    let from_exe = exe.as_deref().and_then(|exe| {
        exe.ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "deps"))
            .and_then(|deps| deps.parent()?.parent())
            .map(PathBuf::from)
    });
    from_exe.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The start of a script, for errors.
fn excerpt(script: &str) -> String {
    let line = script.trim().lines().next().unwrap_or("");
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(60).collect::<String>())
    } else {
        line.to_string()
    }
}
