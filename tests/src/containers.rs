//! Test images for containerized tasks, built on this machine (no registry is reachable):
//! `tests/probe/probe.rs` compiled as a static executable, imported as a one-file image
//! (`docker import`, entrypoint `/probe`). The image is tagged with a hash of the
//! program's source, so it is built once per change and shared by parallel tests.
//!
//! Also: finding the containers a job left behind, by the `octobox.job` label.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The probe program's source.
const PROBE_SOURCE: &str = include_str!("../probe/probe.rs");

/// The probe image's tag, building it first if this machine does not have it yet.
pub fn probe_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let mut hasher = DefaultHasher::new();
        PROBE_SOURCE.hash(&mut hasher);
        let tag = format!("octobox-test/probe:{:016x}", hasher.finish());
        if !image_exists(&tag) {
            build_probe(&tag);
        }
        tag
    })
}

/// An image reference that no engine has.
pub fn missing_image() -> String {
    format!("octobox-test/never-built:{}", std::process::id())
}

fn image_exists(tag: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_probe(tag: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = dir.path().join("probe.rs");
    std::fs::write(&source, PROBE_SOURCE).expect("probe source written");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let built = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "-o",
        ])
        .arg(dir.path().join("probe"))
        .arg(&source)
        .output()
        .expect("rustc runs");
    assert!(
        built.status.success(),
        "the probe did not compile statically:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    import(dir.path(), "probe", tag);
}

/// `docker import` of a root file system holding only `file`, run as the entrypoint.
fn import(dir: &Path, file: &str, tag: &str) {
    let archive = dir.join("rootfs.tar");
    let packed = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(&archive)
        .arg(file)
        .status()
        .expect("tar runs");
    assert!(packed.success(), "tar could not pack {file}");
    let imported = Command::new("docker")
        .args(["import", "--change"])
        .arg(format!("ENTRYPOINT [\"/{file}\"]"))
        .arg(&archive)
        .arg(tag)
        .output()
        .expect("docker runs");
    assert!(
        imported.status.success(),
        "docker import failed:\n{}",
        String::from_utf8_lossy(&imported.stderr)
    );
}

/// The probe image with its `USER` set to `user` (an image that asks to run as root, in
/// whatever spelling), made locally with `docker commit`.
pub fn probe_image_as(user: &str) -> String {
    let base = probe_image();
    let mut hasher = DefaultHasher::new();
    (base, user).hash(&mut hasher);
    let tag = format!("octobox-test/probe-user:{:016x}", hasher.finish());
    if image_exists(&tag) {
        return tag;
    }
    let created = Command::new("docker")
        .args(["create", base, "noop"])
        .output()
        .expect("docker runs");
    assert!(
        created.status.success(),
        "docker create failed: {created:?}"
    );
    let container = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let committed = Command::new("docker")
        .args(["commit", "--change"])
        .arg(format!("USER {user}"))
        .args([&container, &tag])
        .output()
        .expect("docker runs");
    let _ = Command::new("docker").args(["rm", &container]).output();
    assert!(
        committed.status.success(),
        "docker commit failed: {committed:?}"
    );
    tag
}

/// The containers, running or not, labelled as job `job`'s.
pub fn containers_of(job: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter"])
        .arg(format!("label=octobox.job={job}"))
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until job `job` has a running container (at most 30 seconds).
pub fn wait_for_container_of(job: &str) {
    let deadline = std::time::Instant::now() + crate::console::PATIENCE;
    while containers_of(job).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} never got a container"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
