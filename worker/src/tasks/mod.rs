//! The native tasks every worker has: `echo`, `sleep`, and the day-one tasks `dns`,
//! `whois`, `http_check`, `tls_expiry` and `walk_site` (settings from `[tasks]`); and
//! `abort`, for crash drills.
//!
//! The day-one tasks share `net` (one deadline per check, timed resolution and
//! connects, I/O errors in words) and `certificate` (the TLS client that reads and
//! judges a server's certificate); `walk_site` fetches with `http_check`'s client and
//! reads pages' links with `links`. What they print fits chat: a long answer becomes a
//! text file ([`fit_chat`]), and whatever a server sent is cleaned first ([`clean`]).

mod abort;
pub mod certificate;
pub mod dns;
mod echo;
pub mod http_check;
mod links;
pub mod net;
mod sleep;
pub mod tls_expiry;
pub mod walk_site;
pub mod whois;

pub use abort::Abort;
pub use dns::Dns;
pub use echo::Echo;
pub use http_check::HttpCheck;
pub use sleep::Sleep;
pub use tls_expiry::TlsExpiry;
pub use walk_site::WalkSite;
pub use whois::Whois;

use jobs::Output;

use crate::container::output::MESSAGE_LIMIT;

/// `text` as a message, or as the text file `name` when it is longer than a chat
/// message.
pub fn fit_chat(text: String, name: &str) -> Output {
    match text.chars().count() > MESSAGE_LIMIT {
        true => Output::File {
            name: name.to_string(),
            media_type: "text/plain".to_string(),
            bytes: text.into_bytes(),
        },
        false => Output::text(text),
    }
}

/// Text a server sent, fit to show on one line: control characters replaced, at most
/// `max` characters (an ellipsis says it was cut).
pub fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '�' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_answers_become_files_and_server_text_is_cleaned() {
        assert_eq!(fit_chat("short".into(), "a.txt"), Output::text("short"));
        let long = "x".repeat(MESSAGE_LIMIT + 1);
        assert!(matches!(fit_chat(long, "a.txt"), Output::File { name, .. } if name == "a.txt"));
        assert_eq!(clean("ok\x1b[31m", 10), "ok�[31m");
        assert_eq!(clean("abcdef", 3), "abc…");
    }
}
