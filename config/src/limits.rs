//! `ContainerLimits`: what a containerized task may use and how its output is read.
//!
//! It travels inside `Task::Container`, so the worker that runs the job applies exactly
//! what the bot's configuration said, whatever version of the configuration that worker
//! has. The defaults are the safe ones: no network, a read-only root file system with a
//! small tmpfs, a pids limit, a non-root user, no implicit pulls. A command relaxes each
//! one explicitly (`compose/octobox.example.toml` lists the keys), never past the
//! ceilings below (`MAX_MEMORY`, `MAX_TMPFS`, ...), which the configuration loader checks.

use std::num::ParseIntError;

use serde::{Deserialize, Serialize};

/// How a container's standard output becomes the job's result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// The output is text, posted as it is (as a file when it is long).
    #[default]
    Text,
    /// The output is base64: decoded, and delivered as a file when it is a known type.
    Base64,
}

/// Limits and isolation for one containerized task. Field names are part of the job's
/// wire format: add fields with defaults, never rename one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerLimits {
    pub output: OutputFormat,
    /// Memory limit in bytes (swap included: the container gets no swap beyond it).
    pub memory: u64,
    /// CPU limit in billionths of a CPU (`0.5` CPUs is 500 000 000).
    pub nano_cpus: u64,
    /// How many processes and threads the container may have at once.
    pub pids: u32,
    /// The Docker network to attach (`bridge`, a user-defined network); `None`: no network.
    pub network: Option<String>,
    /// Pull the image when it is missing; otherwise a missing image fails the job.
    pub pull: bool,
    /// The user to run as; `None`: the image's own user if it names a non-root one,
    /// else `65534:65534` (nobody).
    pub user: Option<String>,
    /// A read-only root file system (with a writable tmpfs at `/tmp`).
    pub read_only: bool,
    /// The size of the tmpfs at `/tmp`, in bytes.
    pub tmpfs: u64,
    /// How much standard output is kept; the rest is cut, with a note.
    pub output_limit: u64,
    /// Capabilities given back after all are dropped (`NET_RAW` for a port scanner).
    pub capabilities: Vec<String>,
}

/// 1 MiB, for the defaults below.
const MIB: u64 = 1024 * 1024;
/// 1 GiB, for the bounds below.
const GIB: u64 = 1024 * MIB;

/// The most memory a command may give its container. The bounds below are ceilings
/// past which a value is a typo or an attempt to starve the worker's host (a worker runs
/// several containers at once, beside its own native jobs); a task that truly needs more
/// belongs on a machine of its own, not in a shared worker's configuration.
pub const MAX_MEMORY: u64 = 16 * GIB;
/// The least memory Docker accepts for a container.
pub const MIN_MEMORY: u64 = 6 * MIB;
/// The largest `/tmp` tmpfs: it is memory too, on top of [`MAX_MEMORY`].
pub const MAX_TMPFS: u64 = 4 * GIB;
/// The most standard output kept: the worker holds it in memory and ships it whole.
pub const MAX_OUTPUT_LIMIT: u64 = 64 * MIB;
/// The most processes and threads: enough for any scanner, short of a fork bomb.
pub const MAX_PIDS: u32 = 4096;
/// The most CPUs a container may use.
pub const MAX_CPUS: f64 = 64.0;

impl Default for ContainerLimits {
    fn default() -> Self {
        ContainerLimits {
            output: OutputFormat::Text,
            memory: 256 * MIB,
            nano_cpus: 1_000_000_000,
            pids: 128,
            network: None,
            pull: false,
            user: None,
            read_only: true,
            tmpfs: 16 * MIB,
            output_limit: 8 * MIB,
            capabilities: Vec::new(),
        }
    }
}

/// Why a size could not be read. Each message is the sentence a person editing the
/// configuration sees after the file, line and key; the variants let a caller tell the
/// causes apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The text after the digits is not `k`, `m` or `g` (with an optional `b`).
    #[error("\"{text}\" is not a size: write a number with k, m or g, e.g. 256m")]
    UnknownUnit { text: String },
    /// The unit is fine, the number before it is not (missing, or too many digits).
    #[error("\"{text}\" is not a size: write a number with k, m or g, e.g. 256m")]
    BadNumber {
        text: String,
        #[source]
        source: ParseIntError,
    },
    /// Zero bytes, or more than 64 bits count: no limit anyone means.
    #[error("\"{text}\" is not a size greater than zero")]
    OutOfRange { text: String },
}

/// A size as people write it: `512k`, `256m`, `1g` (binary units, as Docker reads them),
/// or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1024,
        "m" => MIB,
        "g" => 1024 * MIB,
        _ => {
            return Err(SizeError::UnknownUnit {
                text: text.to_string(),
            })
        }
    };
    let n: u64 = digits.parse().map_err(|source| SizeError::BadNumber {
        text: text.to_string(),
        source,
    })?;
    n.checked_mul(factor)
        .filter(|&b| b > 0)
        .ok_or_else(|| SizeError::OutOfRange {
            text: text.to_string(),
        })
}

/// A size as people read it: `256 MiB`, `8 MiB`, `512 KiB`, `100 bytes`.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        b if b >= MIB && b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b >= MIB => format!("{:.1} MiB", b as f64 / MIB as f64),
        b if b >= 1024 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker_and_print_for_people() {
        assert_eq!(parse_size("256m"), Ok(256 * MIB));
        assert_eq!(parse_size("1G"), Ok(1024 * MIB));
        assert_eq!(parse_size("512kb"), Ok(512 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0m").is_err());
        assert!(parse_size("12t").is_err());
        assert_eq!(format_size(8 * MIB), "8 MiB");
        assert_eq!(format_size(1536), "1 KiB");
    }

    #[test]
    fn limits_missing_from_a_job_are_the_safe_defaults() {
        let limits: ContainerLimits = serde_json::from_str(r#"{"memory": 1024}"#).unwrap();
        assert_eq!(limits.memory, 1024);
        assert!(limits.read_only && limits.network.is_none() && !limits.pull);
    }
}
