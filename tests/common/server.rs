//! A `provledger serve` process on a free loopback port, for the server
//! and mirror tests. Killed (SIGKILL) when dropped.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Served {
    /// Serves the ledger in `dir` with `extra` flags; returns once the
    /// server has printed the address it listens on.
    pub fn start(dir: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("provledger"))
            .env("PROVLEDGER_DIR", dir)
            .env_remove("PROVLEDGER_SERVER")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve printed {line:?}"));
        Served { url: url.to_string(), child }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the server drains its queue and exits 0.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap();
        assert!(code.success(), "serve exited with {code:?} after SIGTERM");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}
