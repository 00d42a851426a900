//! Private CAs and the certificates they sign, made with `openssl` in a directory of the
//! caller's: what the TLS test services present, and what their clients trust.

use std::path::Path;
use std::process::Command;

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (scripts/test installs it)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A self-signed CA: `dir/<name>.crt` and its key `dir/<name>.key`.
pub fn make_ca(dir: &Path, name: &str) {
    let at = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        &at("key"),
        "-out",
        &at("crt"),
        "-subj",
        &format!("/CN=octobox test {name}"),
    ]);
}

/// A certificate for `subject` signed by CA `ca` (made by [`make_ca`] in `dir`), with the
/// extensions `extensions` (`subjectAltName=IP:127.0.0.1`): `dir/<name>.crt` and its key
/// `dir/<name>.key`.
pub fn sign(dir: &Path, ca: &str, name: &str, subject: &str, extensions: &str) {
    let at = |file: String| dir.join(file).display().to_string();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &at(format!("{name}.key")),
        "-out",
        &at(format!("{name}.csr")),
        "-subj",
        subject,
    ]);
    std::fs::write(at(format!("{name}.ext")), format!("{extensions}\n"))
        .expect("extension file written");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &at(format!("{name}.csr")),
        "-CA",
        &at(format!("{ca}.crt")),
        "-CAkey",
        &at(format!("{ca}.key")),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        &at(format!("{name}.crt")),
        "-extfile",
        &at(format!("{name}.ext")),
    ]);
}
