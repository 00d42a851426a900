//! What a container's standard output becomes: the job's `Output`.
//!
//! `text` output is posted as it is, or as a text file when it is longer than a chat
//! message. `base64` output is decoded; bytes of a known type (PNG, PDF, JSON, CSV) become
//! a file with that media type, other text is treated as text output, anything else is a
//! binary file. Output past the command's limit is cut, and the result says so.

use base64::Engine as _;
use config::limits::format_size;
use jobs::{JobFailure, Output, OutputFormat};

/// Text longer than this (in characters) is delivered as a file rather than a message.
pub const MESSAGE_LIMIT: usize = 3000;

/// Turns `stdout` into the job's output; `cut` says it was cut at `limit` bytes.
pub fn job_output(
    stdout: Vec<u8>,
    cut: bool,
    limit: u64,
    format: OutputFormat,
) -> Result<Output, JobFailure> {
    match format {
        OutputFormat::Text => Ok(text_output(&String::from_utf8_lossy(&stdout), cut, limit)),
        OutputFormat::Base64 => {
            if cut {
                return Err(JobFailure::Base64Cut { limit });
            }
            let encoded: Vec<u8> = stdout
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&encoded)
                .map_err(|e| JobFailure::NotBase64 {
                    reason: e.to_string(),
                })?;
            Ok(decoded_output(bytes))
        }
    }
}

/// Decoded bytes: a file of a known type, text, or a binary file.
fn decoded_output(bytes: Vec<u8>) -> Output {
    if let Some((ext, media_type)) = known_type(&bytes) {
        return file(format!("output.{ext}"), media_type, bytes);
    }
    match String::from_utf8(bytes) {
        Ok(text) => text_output(&text, false, 0),
        Err(e) => file(
            "output.bin".to_string(),
            "application/octet-stream",
            e.into_bytes(),
        ),
    }
}

fn text_output(text: &str, cut: bool, limit: u64) -> Output {
    let mut text = text.to_string();
    if cut {
        text.push_str(&format!(
            "\n[output cut: it passed the {} limit for this command]",
            format_size(limit)
        ));
    }
    if text.trim().is_empty() {
        Output::Empty
    } else if text.chars().count() > MESSAGE_LIMIT {
        file("output.txt".to_string(), "text/plain", text.into_bytes())
    } else {
        Output::Text { text }
    }
}

fn file(name: String, media_type: &str, bytes: Vec<u8>) -> Output {
    Output::File {
        name,
        media_type: media_type.to_string(),
        bytes,
    }
}

/// The file extension and media type of `bytes`, if it is one of the types we deliver
/// as files.
fn known_type(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(("png", "image/png"));
    }
    if bytes.starts_with(b"%PDF-") {
        return Some(("pdf", "application/pdf"));
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(text).is_ok()
    {
        return Some(("json", "application/json"));
    }
    if is_csv(text) {
        return Some(("csv", "text/csv"));
    }
    None
}

/// At least two lines, each with the same number of commas, at least one.
fn is_csv(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        return false;
    };
    let commas = first.matches(',').count();
    let mut rows = 1;
    for line in lines {
        if line.matches(',').count() != commas {
            return false;
        }
        rows += 1;
    }
    commas > 0 && rows >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    #[test]
    fn decoded_bytes_of_known_types_become_files() {
        let png = b"\x89PNG\r\n\x1a\n rest".to_vec();
        let out = job_output(b64(&png), false, 100, OutputFormat::Base64).unwrap();
        assert!(matches!(out, Output::File { ref media_type, .. } if media_type == "image/png"));
        let csv = job_output(b64(b"a,b\n1,2\n"), false, 100, OutputFormat::Base64).unwrap();
        assert!(matches!(csv, Output::File { ref name, .. } if name == "output.csv"));
        let json = job_output(b64(b"{\"a\": 1}"), false, 100, OutputFormat::Base64).unwrap();
        assert!(matches!(json, Output::File { ref name, .. } if name == "output.json"));
        let text = job_output(b64(b"hello"), false, 100, OutputFormat::Base64).unwrap();
        assert_eq!(text, Output::text("hello"));
    }

    #[test]
    fn bad_base64_and_cut_base64_say_so() {
        let bad = job_output(b"!!!".to_vec(), false, 100, OutputFormat::Base64)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("not valid base64"), "{bad}");
        let cut = job_output(b"aGVsbG8=".to_vec(), true, 8, OutputFormat::Base64)
            .unwrap_err()
            .to_string();
        assert!(cut.contains("8 bytes limit"), "{cut}");
    }

    #[test]
    fn long_text_becomes_a_file_and_cut_text_carries_a_note() {
        let long = "x".repeat(MESSAGE_LIMIT + 1).into_bytes();
        let out = job_output(long, false, 1 << 20, OutputFormat::Text).unwrap();
        assert!(matches!(out, Output::File { ref media_type, .. } if media_type == "text/plain"));
        let Output::Text { text } =
            job_output(b"abc".to_vec(), true, 3, OutputFormat::Text).unwrap()
        else {
            panic!("short text stays text");
        };
        assert!(text.ends_with("[output cut: it passed the 3 bytes limit for this command]"));
    }
}
