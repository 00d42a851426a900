//! `TestPki`: a private CA made with `openssl` for one test, with a server certificate for
//! 127.0.0.1 and a client certificate it signed, and a second CA that signed nothing the
//! servers present (what a client of an impostor, or an impostor client, holds).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    /// Makes `ca`, `other-ca`, `server` (for 127.0.0.1 and localhost, signed by `ca`),
    /// `impostor` (for the same addresses, signed by `other-ca`), `client` (signed by
    /// `ca`) and `rogue-client` (signed by `other-ca`): each a `.crt` and an unencrypted
    /// `.key`.
    pub fn new() -> Self {
        let pki = TestPki {
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        for ca in ["ca", "other-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &pki.at(&format!("{ca}.key")),
                "-out",
                &pki.at(&format!("{ca}.crt")),
                "-subj",
                &format!("/CN=octobox test {ca}"),
            ]);
        }
        pki.sign(
            "server",
            "ca",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        );
        pki.sign(
            "impostor",
            "other-ca",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        );
        pki.sign(
            "client",
            "ca",
            "/CN=octobox",
            "extendedKeyUsage=clientAuth\n",
        );
        pki.sign(
            "rogue-client",
            "other-ca",
            "/CN=octobox",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name.crt`, e.g. `cert("ca")`.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.crt"))
    }

    /// `name.key`, e.g. `key("client")`.
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    fn at(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    /// A key and a certificate `name` for `subject`, signed by `ca`, with `extensions`.
    fn sign(&self, name: &str, ca: &str, subject: &str, extensions: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &self.at(&format!("{name}.key")),
            "-out",
            &self.at(&format!("{name}.csr")),
            "-subj",
            subject,
        ]);
        let ext = self.at(&format!("{name}.ext"));
        std::fs::write(&ext, extensions).expect("extension file written");
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &self.at(&format!("{name}.csr")),
            "-CA",
            &self.at(&format!("{ca}.crt")),
            "-CAkey",
            &self.at(&format!("{ca}.key")),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &self.at(&format!("{name}.crt")),
            "-extfile",
            &ext,
        ]);
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}
