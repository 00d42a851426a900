//! `ApiBot`: an `octobox-bot` (embedded mode, SSH on) that also serves its HTTP API and
//! dashboard on a free port, with three declared tokens; and `Api`, a client for it
//! that answers a call with its status and JSON.

use std::time::Duration;

use crate::services::free_port;
use crate::ssh::{SshBot, SshBotSetup};

/// The tokens every `ApiBot` declares: `ops` (group oncall and admins), `viewer` (no
/// group), `auditor` (group auditors).
pub const OPS: &str = "ops-token-0123456789abcdef0123456789";
pub const VIEWER: &str = "viewer-token-0123456789abcdef01234567";
pub const AUDITOR: &str = "auditor-token-0123456789abcdef0123456";

/// The `[api]` and `[http]` sections for port `port`, `extra` lines under `[api]`.
pub fn api_config(port: u16, extra: &str) -> String {
    format!(
        r#"
[http]
listen = "127.0.0.1:{port}"

[api]
{extra}

[[api.token]]
name = "ops"
groups = ["oncall", "admins"]
token = "{OPS}"

[[api.token]]
name = "viewer"
token = "{VIEWER}"

[[api.token]]
name = "auditor"
groups = ["auditors"]
token = "{AUDITOR}"
"#
    )
}

/// A bot serving SSH to `users` and the API, with `config` (commands, `[acl]`).
pub struct ApiBot {
    pub ssh: SshBot,
    pub base: String,
}

impl ApiBot {
    pub fn start(users: &[&str], config: &str) -> ApiBot {
        Self::start_with(users, config, "")
    }

    /// As [`ApiBot::start`], with `api_extra` lines under `[api]`.
    pub fn start_with(users: &[&str], config: &str, api_extra: &str) -> ApiBot {
        let port = free_port();
        // `[api]` and `[http]` go first: the rest are tables the bot's file ends with.
        let toml = format!("{}\n{config}", api_config(port, api_extra));
        let ssh = SshBotSetup::new(users).config(&toml).start();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the bot did not serve HTTP on {port}:\n{}",
                ssh.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ApiBot { ssh, base }
    }

    pub fn api(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: Some(token.to_string()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// A client with no token.
    pub fn anonymous(&self) -> Api {
        Api {
            token: None,
            ..self.api("")
        }
    }
}

/// A caller of the API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// A call's status, headers and body (JSON, or `Null` when it was not JSON).
#[derive(Debug)]
pub struct Called {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
    pub text: String,
}

impl Api {
    fn with_token(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Called {
        let response = self.with_token(r).send().await.expect("the API answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Called {
            status,
            headers,
            json,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Called {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Called {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Called {
        self.send(self.http.post(format!("{}{path}", self.base)).body(body))
            .await
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> Called {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Called {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// `POST /api/v1/commands` with `text`.
    pub async fn ask(&self, text: &str) -> Called {
        self.post("/api/v1/commands", serde_json::json!({ "text": text }))
            .await
    }

    /// Job `id` once its status is final (bounded wait).
    pub async fn finished(&self, id: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.get(&format!("/api/v1/jobs/{id}")).await;
            let status = got.json["status"].as_str().unwrap_or("").to_string();
            if !["queued", "running", ""].contains(&status.as_str()) {
                return got.json;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {id} did not finish: {}",
                got.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a Server-Sent Events stream at `path`.
    pub async fn stream(&self, path: &str) -> EventStream {
        let response = self
            .with_token(self.http.get(format!("{}{path}", self.base)))
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(response.status().as_u16(), 200, "the stream opens");
        EventStream {
            response,
            buffer: String::new(),
        }
    }
}

/// A Server-Sent Events stream, read one `data:` line at a time.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The next event's JSON, or `None` when the stream ended or `patience` passed.
    pub async fn next(&mut self, patience: Duration) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    return serde_json::from_str(&data.join("\n")).ok();
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The events until one for which `last` holds (included); panics after `patience`.
    pub async fn until(
        &mut self,
        patience: Duration,
        last: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(ev) => {
                    let done = last(&ev);
                    seen.push(ev);
                    if done {
                        return seen;
                    }
                }
                None => panic!("the stream ended or went quiet; seen: {seen:#?}"),
            }
        }
    }
}
