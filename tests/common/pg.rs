//! Real PostgreSQL servers for the tests: a cluster made with `initdb` in a
//! temp directory, started with `pg_ctl` on a free loopback port, stopped
//! and removed on drop. As root (PostgreSQL refuses to run as root), the
//! server runs as the unprivileged `postgres` user that Debian's package
//! creates (`scripts/test.sh` installs it when it is missing).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directory of PostgreSQL's programs: `$PROVLEDGER_PG_BIN`, else the
/// newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROVLEDGER_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no pg_config): \
             `scripts/test.sh` installs Debian's postgresql, or set PROVLEDGER_PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        let out = Command::new("id").arg("-u").output().expect("id -u");
        String::from_utf8_lossy(&out.stdout).trim() == "0"
    })
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One running PostgreSQL cluster.
pub struct Cluster {
    root: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    running: bool,
}

impl Cluster {
    /// `initdb` and start a new cluster; panics, with the server's log,
    /// if it does not start.
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// As [`Cluster::start`], with extra `postgresql.conf` lines.
    pub fn start_with(conf: &[&str]) -> Cluster {
        let cluster = Cluster::init();
        cluster.configure(conf);
        let mut cluster = cluster;
        cluster.pg_ctl_start();
        cluster
    }

    /// A new cluster's files, not started.
    pub fn init() -> Cluster {
        let bin = bin_dir();
        let root = tempfile::Builder::new().prefix("provledger-pg").tempdir_in("/tmp").unwrap();
        chown_to_server_user(root.path());
        let c = Cluster { root, port: free_port(), bin, running: false };
        c.run_as_server("initdb", &["-D", &c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        c
    }

    /// A standby of `primary`, made with `pg_basebackup` (streaming, with
    /// `standby.signal`), not started.
    pub fn standby_of(primary: &Cluster) -> Cluster {
        let bin = bin_dir();
        let root = tempfile::Builder::new().prefix("provledger-pg").tempdir_in("/tmp").unwrap();
        chown_to_server_user(root.path());
        let c = Cluster { root, port: free_port(), bin, running: false };
        let port = primary.port.to_string();
        c.run_as_server(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &c.data(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        );
        c
    }

    pub fn data(&self) -> String {
        self.root.path().join("data").display().to_string()
    }

    fn log_file(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    /// Appends lines to `postgresql.conf`.
    pub fn configure(&self, lines: &[&str]) {
        use std::io::Write as _;
        let path = Path::new(&self.data()).join("postgresql.conf");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
    }

    fn pg_ctl_start(&mut self) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.root.path().display());
        let log = self.log_file().display().to_string();
        let ok =
            self.try_as_server("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &opts, "-w", "-t", "60", "start"]);
        if !ok {
            panic!("PostgreSQL did not start:\n{}", std::fs::read_to_string(self.log_file()).unwrap_or_default());
        }
        self.running = true;
    }

    /// Starts a cluster made by [`Cluster::init`] or [`Cluster::standby_of`].
    pub fn start_made(mut self) -> Cluster {
        self.pg_ctl_start();
        self
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub fn create_db(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// Runs `sql` with psql as the superuser; returns its output (tuples
    /// only, unaligned). Panics if psql fails.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let (ok, out) = self.try_sql(db, sql);
        assert!(ok, "psql {sql:?}: {out}");
        out
    }

    /// Runs `sql` as `user`; returns whether it succeeded and its output
    /// (standard error included).
    pub fn try_sql_as(&self, user: &str, db: &str, sql: &str) -> (bool, String) {
        let port = self.port.to_string();
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", user, "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    pub fn try_sql(&self, db: &str, sql: &str) -> (bool, String) {
        self.try_sql_as("postgres", db, sql)
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> i32 {
        let text = std::fs::read_to_string(Path::new(&self.data()).join("postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// SIGKILLs the postmaster (and so the server), as a crash would.
    pub fn kill(&mut self) {
        let pid = self.pid();
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        // Its backends exit once they notice the postmaster is gone.
        for _ in 0..100 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.running = false;
    }

    /// `pg_ctl promote`: a standby becomes a primary.
    pub fn promote(&self) {
        assert!(self.try_as_server("pg_ctl", &["-D", &self.data(), "-w", "promote"]), "pg_ctl promote failed");
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        c.args(args).current_dir(self.root.path()).stdin(Stdio::null());
        c
    }

    fn try_as_server(&self, program: &str, args: &[&str]) -> bool {
        let out = self.command(program, args).output().unwrap();
        if !out.status.success() {
            eprintln!(
                "{program} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.success()
    }

    fn run_as_server(&self, program: &str, args: &[&str]) {
        assert!(self.try_as_server(program, args), "{program} failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = self.command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]).output();
        }
    }
}

fn chown_to_server_user(dir: &Path) {
    if !is_root() {
        return;
    }
    let out = Command::new("id").args(["-u", "postgres"]).output().unwrap();
    assert!(out.status.success(), "no `postgres` user to run PostgreSQL as (Debian's postgresql package makes one)");
    let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let gid: u32 = String::from_utf8_lossy(&Command::new("id").args(["-g", "postgres"]).output().unwrap().stdout)
        .trim()
        .parse()
        .unwrap();
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
}
