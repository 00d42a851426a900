//! Locating the binaries under test.

use std::path::PathBuf;

/// The path of a workspace binary built in the same profile as the running program.
///
/// Test executables live in `target/<profile>/deps/`, binaries one level up; a binary of
/// this crate (`octobox-bench`) lives next to the others.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the program knows its own path");
    let here = exe.parent().expect("an executable lives in a folder");
    let dir = if here.ends_with("deps") {
        here.parent().expect("target/<profile>/deps has a parent")
    } else {
        here
    };
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}
