//! `TerminalSession`: an SSH session on a pseudo-terminal (`ssh -tt`), typed into key by
//! key, its screen read back as text.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::console::PATIENCE;

/// An interactive session on a pseudo-terminal: keys in, screen out.
pub struct TerminalSession {
    child: Child,
    keyboard: Option<ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl TerminalSession {
    /// Runs `cmd` (an `ssh -tt` command) and follows its screen.
    pub(super) fn spawn(mut cmd: Command) -> TerminalSession {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("ssh runs (Debian package openssh-client)");
        let keyboard = child.stdin.take();
        let screen = Arc::new(Mutex::new(Vec::new()));
        // The client's own messages (stderr) show on the same screen, as on a terminal.
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        for mut stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let sink = screen.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        TerminalSession {
            child,
            keyboard,
            screen,
        }
    }

    /// Types `keys` (raw bytes: `\r` is Enter, `\t` Tab, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn type_keys(&mut self, keys: &str) {
        let k = self.keyboard.as_mut().expect("the session is open");
        k.write_all(keys.as_bytes()).expect("ssh takes input");
        k.flush().expect("ssh takes input");
    }

    /// The screen so far as text: escape sequences and carriage returns removed.
    pub fn text(&self) -> String {
        let raw = String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned();
        let re = regex::Regex::new(r"\x1b\[[0-9;?]*[a-zA-Z]").expect("a valid pattern");
        re.replace_all(&raw, "").replace('\r', "")
    }

    /// Waits until the screen satisfies `want`; returns the screen.
    pub fn expect(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text();
            if want(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {what} within {PATIENCE:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `command` and Enter, and returns the id of the job it queued.
    pub fn queue(&mut self, command: &str) -> String {
        let before = self.text().matches("queued as job ").count();
        self.type_keys(&format!("{command}\r"));
        self.queued_after(before)
    }

    /// Waits for the `before + 1`th "queued as job <id>" line; returns the id.
    pub fn queued_after(&self, before: usize) -> String {
        let screen = self.expect("a queued job", |s| {
            s.matches("queued as job ").count() > before
        });
        let re = regex::Regex::new(r"queued as job ([0-9a-f-]{36})").expect("a valid pattern");
        let id = re
            .captures_iter(&screen)
            .nth(before)
            .map(|c| c[1].to_string())
            .expect("the queued line names the job");
        id
    }

    /// Waits for the session to end; returns ssh's exit status.
    pub fn wait(mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("ssh can be waited for") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the session did not end:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TerminalSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
