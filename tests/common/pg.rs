//! Real PostgreSQL servers for the tests: a cluster made with `initdb` in a
//! temp directory, started with `pg_ctl` on a free loopback port, stopped
//! and removed on drop. As root (PostgreSQL refuses to run as root), the
//! server runs as the unprivileged `postgres` user that Debian's package
//! creates (`scripts/test.sh` installs it when it is missing).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Env, build_envelope};

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

    /// Starts a killed cluster again on its port (crash recovery runs).
    pub fn restart(&mut self) {
        assert!(!self.running, "the cluster is running");
        self.pg_ctl_start();
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

/// A primary with a synchronous streaming standby (`synchronous_standby_names
/// = '*'`: a commit returns once the standby has it), and database `db` on
/// them; `url` names both hosts with `target_session_attrs=read-write`.
pub struct SyncPair {
    pub primary: Cluster,
    pub standby: Cluster,
    pub url: String,
}

impl SyncPair {
    pub fn start(db: &str) -> SyncPair {
        let primary = Cluster::start_with(&["wal_level = replica", "synchronous_commit = on"]);
        primary.sql("postgres", &format!("CREATE DATABASE {db}"));
        let standby = Cluster::standby_of(&primary).start_made();
        primary.sql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'");
        primary.sql("postgres", "SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(30);
        while primary.sql("postgres", "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").trim()
            != "1"
        {
            assert!(Instant::now() < deadline, "the standby never became synchronous");
            std::thread::sleep(Duration::from_millis(100));
        }
        let url = format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write&connect_timeout=2",
            primary.port, standby.port
        );
        SyncPair { primary, standby, url }
    }
}

/// What a failover under load came to (see [`failover_under_load`]).
pub struct Failover {
    /// The entry hash of every acknowledged statement, each verified by
    /// the client against the log key.
    pub acked: Vec<String>,
    /// Submissions answered 503 (or cut off) and sent again.
    pub resubmitted: usize,
    /// From the primary's SIGKILL to the first acknowledgement after it.
    pub first_ack_after_kill: Duration,
    /// Every entry hash of the chain after the run, in order.
    pub chain: Vec<String>,
}

impl Failover {
    /// Acknowledged statements that are not in the chain exactly once.
    pub fn lost_or_doubled(&self) -> Vec<&String> {
        let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for h in &self.chain {
            *count.entry(h.as_str()).or_default() += 1;
        }
        self.acked.iter().filter(|h| count.get(h.as_str()) != Some(&1)).collect()
    }
}

/// `clients` threads submit `per_client` build statements each to
/// `servers` (round robin) on `pair`; once a third are acknowledged the
/// primary is SIGKILLed and the standby promoted. A submission answered
/// 503 (resubmit, busy) or cut off is sent again, as it was, until it is
/// acknowledged (a statement already written is answered with its entry,
/// which the client proves). Returns what was acknowledged and the chain.
pub fn failover_under_load(
    env: &Env,
    pair: &mut SyncPair,
    servers: &[&str],
    clients: usize,
    per_client: usize,
) -> Failover {
    use provledger::net::remote::{Client, RemoteError};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let url = pair.url.clone();
    let log_key = provledger::core::note::NoteVerifier::parse(
        env.json(&["--store", &url, "verify"])["checkpoint"]["verifier_key"].as_str().unwrap(),
    )
    .unwrap();
    let acked = AtomicUsize::new(0);
    let killed_at: Mutex<Option<Instant>> = Mutex::new(None);
    let first_after: Mutex<Option<Instant>> = Mutex::new(None);
    let stamp = SEED.fetch_add(1, Ordering::Relaxed);
    let (hashes, resubmitted) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (log_key, acked, killed_at, first_after) = (&log_key, &acked, &killed_at, &first_after);
                let client = Client::new(servers[c % servers.len()], Duration::from_secs(30)).unwrap();
                let envelopes: Vec<_> = (0..per_client)
                    .map(|i| build_envelope(env.dir.path(), &format!("ha-{stamp}-{c}-{i}"), 1_900_000_000))
                    .collect();
                s.spawn(move || {
                    let mut hashes = Vec::new();
                    let mut resubmitted = 0;
                    for (i, envelope) in envelopes.iter().enumerate() {
                        let deadline = Instant::now() + Duration::from_secs(60);
                        let appended = loop {
                            match client.append(envelope, log_key) {
                                Ok(a) => break a,
                                Err(RemoteError::Refused { status: 503, .. } | RemoteError::Unreachable { .. })
                                    if Instant::now() < deadline =>
                                {
                                    resubmitted += 1;
                                    std::thread::sleep(Duration::from_millis(100));
                                }
                                Err(e) => panic!("client {c}, statement {i}: {e}"),
                            }
                        };
                        acked.fetch_add(1, Ordering::SeqCst);
                        if killed_at.lock().unwrap().is_some() {
                            first_after.lock().unwrap().get_or_insert_with(Instant::now);
                        }
                        hashes.push(appended.entry.hash().to_string());
                    }
                    (hashes, resubmitted)
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::SeqCst) < clients * per_client / 3 {
            assert!(Instant::now() < deadline, "the clients did not get going (one failed?)");
            std::thread::sleep(Duration::from_millis(20));
        }
        pair.primary.kill();
        *killed_at.lock().unwrap() = Some(Instant::now());
        pair.standby.promote();
        let mut all = Vec::new();
        let mut resubmitted = 0;
        for h in handles {
            let (hashes, r) = h.join().unwrap();
            all.extend(hashes);
            resubmitted += r;
        }
        (all, resubmitted)
    });
    let first_ack_after_kill =
        first_after.lock().unwrap().expect("an acknowledgement after the kill") - killed_at.lock().unwrap().unwrap();
    let log = env.json(&["--store", &url, "log"]);
    let chain = log.as_array().unwrap().iter().map(|e| e["hash"].as_str().unwrap().to_string()).collect();
    Failover { acked: hashes, resubmitted, first_ack_after_kill, chain }
}

static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
