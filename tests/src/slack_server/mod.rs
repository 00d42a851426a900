//! `SlackServer`: a local server that speaks Slack's documented Web API and Socket Mode,
//! so the bot's real Slack client (slack-morphism) can be tested without Slack.
//!
//! - `web_api`: `auth.test`, `apps.connections.open`, `chat.postMessage`, `chat.update`
//!   (both keeping a message's Block Kit `blocks`), `chat.postEphemeral`,
//!   `files.getUploadURLExternal`, the upload URL, `files.completeUploadExternal`; any
//!   method can be made to answer 429 with a `Retry-After` ([`SlackServer::throttle`]),
//!   or to do the call and answer 200 with a body cut short ([`SlackServer::garble`]).
//! - `socket`: Socket Mode — `hello`, envelopes (events, slash commands, `interactive`
//!   button presses), acknowledgements, `disconnect`, dropped
//!   connections. Like Slack, it sends an envelope not acknowledged on a connection that
//!   closed again on another connection.
//! - `events`: what people (and other bots) do (a DM, a mention, a slash command, a
//!   button pressed) as Slack's payloads, and Events API request signing (JSON events,
//!   form-encoded commands and interactivity requests).
//!
//! It records everything it receives; tests read the record ([`SlackServer::messages`],
//! [`SlackServer::calls`]) and wait on it.

mod events;
mod socket;
mod state;
mod web_api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use events::{interactivity_form, post_signed, post_signed_as, sign, People, Said};
use state::State;
pub use state::{Call, Envelope, Ephemeral, Message, SharedFile};

/// The bot user id the server gives the bot in `auth.test`.
pub const BOT_USER: &str = "UBOT";
/// The tokens it accepts.
pub const BOT_TOKEN: &str = "xoxb-octobox-test";
pub const APP_TOKEN: &str = "xapp-octobox-test";

/// How long a test waits for something the bot should do.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct SlackServer {
    state: Arc<State>,
    pub addr: SocketAddr,
    people: People,
}

impl SlackServer {
    /// Serves on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the Slack server");
        let addr = listener.local_addr().expect("a bound address");
        let state = Arc::new(State::new(addr));
        let app = web_api::routes()
            .merge(socket::routes())
            .with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the Slack server runs");
        });
        SlackServer {
            state,
            addr,
            people: People::default(),
        }
    }

    /// The Web API base URL, for `[slack] api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// What people do in the workspace, as payloads.
    pub fn people(&self) -> &People {
        &self.people
    }

    /// A `[slack]` section for the Events API on `127.0.0.1:port`, signed with `secret`
    /// (given as `${SIGNING}`: start the bot with `SIGNING` set to it).
    pub fn events_config(&self, port: u16) -> String {
        format!(
            "[slack]\nbot_token = \"{BOT_TOKEN}\"\nmode = \"events\"\nlisten = \"127.0.0.1:{port}\"\nsigning_secret = \"${{SIGNING}}\"\napi_url = \"{}\"\n",
            self.api_url()
        )
    }

    /// A `[slack]` section in Socket Mode pointed at this server.
    pub fn socket_config(&self, connections: u32) -> String {
        format!(
            "[slack]\nbot_token = \"{BOT_TOKEN}\"\napp_token = \"{APP_TOKEN}\"\napi_url = \"{}\"\nconnections = {connections}\n",
            self.api_url()
        )
    }

    /// Sends an Events API payload (from [`People`]) over Socket Mode, as Slack would:
    /// to one open connection, again on another if that one closes before acknowledging.
    pub fn send_event(&self, payload: serde_json::Value) -> String {
        self.state.enqueue("events_api", payload, 0)
    }

    /// Sends a slash command payload over Socket Mode.
    pub fn send_command(&self, payload: serde_json::Value) -> String {
        self.state.enqueue("slash_commands", payload, 0)
    }

    /// Sends an interaction payload (a button pressed, from [`People::clicks`]) over
    /// Socket Mode, in an `interactive` envelope.
    pub fn send_interaction(&self, payload: serde_json::Value) -> String {
        self.state.enqueue("interactive", payload, 0)
    }

    /// Sends envelope `id`'s payload again under a new envelope, as Slack does when it
    /// thinks an event was missed (`retry_attempt` 1).
    pub fn redeliver(&self, id: &str) -> String {
        let envelope = self.state.envelope(id).expect("a known envelope");
        self.state.enqueue(&envelope.kind, envelope.payload, 1)
    }

    /// The next `times` calls of `method` are answered 429 with `Retry-After: secs`.
    pub fn throttle(&self, method: &str, times: u32, secs: u64) {
        self.state.throttle(method, times, secs);
    }

    /// The next `times` calls of `method` are made, then answered 200 with a JSON body
    /// cut short, which no client can read.
    pub fn garble(&self, method: &str, times: u32) {
        self.state.garble(method, times);
    }

    /// Closes every Socket Mode connection at once, without a word (a network failure).
    pub fn drop_sockets(&self) {
        self.state.drop_sockets();
    }

    /// Asks every connection to reconnect, as Slack does before it restarts a server.
    pub fn ask_to_reconnect(&self) {
        self.state.ask_to_reconnect();
    }

    /// Pings every Socket Mode connection once; the round trips show in
    /// [`SlackServer::pong_times`].
    pub fn ping_sockets(&self) {
        self.state.ping_sockets();
    }

    /// The WebSocket ping round trips measured so far.
    pub fn pong_times(&self) -> Vec<Duration> {
        self.state.pong_times()
    }

    pub fn open_sockets(&self) -> usize {
        self.state.open_sockets()
    }

    /// Every Web API call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls()
    }

    /// Every message posted, with the text of each edit.
    pub fn messages(&self) -> Vec<Message> {
        self.state.messages()
    }

    /// Messages shown to one person (`chat.postEphemeral`).
    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.state.ephemerals()
    }

    /// Files shared through `files.completeUploadExternal`.
    pub fn files(&self) -> Vec<SharedFile> {
        self.state.files()
    }

    pub fn envelope(&self, id: &str) -> Option<Envelope> {
        self.state.envelope(id)
    }

    pub fn envelopes(&self) -> Vec<Envelope> {
        self.state.envelopes()
    }

    /// Waits until `done` holds for the record, panicking with `what` after
    /// [`PATIENCE`].
    pub async fn wait_for<T>(&self, what: &str, mut done: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let changed = self.state.changed();
            if let Some(v) = done(self) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting {PATIENCE:?} for {what}; messages: {:#?}",
                self.messages()
            );
            let _ = tokio::time::timeout(Duration::from_millis(100), changed).await;
        }
    }

    /// The messages in `thread` of `channel` (the thread's root excluded), in order.
    pub fn thread(&self, channel: &str, thread: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.channel == channel && m.thread_ts.as_deref() == Some(thread))
            .collect()
    }
}
