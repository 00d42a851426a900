//! Locating the binaries under test.

use std::path::PathBuf;

/// The path of a workspace binary built in the same profile as the running test.
///
/// Test executables live in `target/<profile>/deps/`; binaries one level up.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}
