//! Crash safety: a process appends entries and prints each one it has
//! durably committed; it is killed with SIGKILL at a random moment, the
//! ledger is reopened and must verify, and every entry the process
//! acknowledged must be there with the hash it printed. Repeated
//! `PROVLEDGER_CRASH_KILLS` times: 200 in the test suite;
//! `scripts/crash.sh --long` runs 1000.
//!
//! Then the conversion of a store version 2 ledger (the fixture made by the
//! last build that wrote that layout) is killed at moments spread over its
//! run: the directory must then open (as the old ledger, converted on this
//! open, or as the new one) with the fixture's entries, head and signed
//! checkpoint.
//!
//! This test has its own `main` (harness = false): run with
//! `PROVLEDGER_CRASH_CHILD=<ledger dir>`, the same executable is the child.

mod common;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, build_envelope};
use provledger::core::hash::EntryHash;
use provledger::ledger::Ledger;
use provledger::store::Store as _;
use provledger::store::local::LocalStore;
use rand::RngExt as _;

const CHILD: &str = "PROVLEDGER_CRASH_CHILD";
const KEYS: &str = "PROVLEDGER_CRASH_KEYS";
const TIME: u64 = 1_800_000_000;

/// The child: appends forever, one by one and in small batches, printing
/// `committed <index> <hash>` once each append has returned (is durable).
fn child(ledger_dir: &Path, keys: &Path) {
    let store = LocalStore::open(ledger_dir, Duration::from_secs(10)).unwrap();
    let log_key = provledger::keyfile::read_secret(&ledger_dir.join("log.key"), false).unwrap();
    let ledger = Ledger::new(store).with_log_key(log_key);
    let pid = std::process::id();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for i in 0u64.. {
        let batch = if i % 4 == 3 { 3 } else { 1 };
        let envelopes = (0..batch).map(|b| build_envelope(keys, &format!("crash-{pid}-{i}-{b}"), TIME)).collect();
        for v in ledger.append_batch(envelopes, TIME).unwrap() {
            writeln!(out, "committed {} {}", v.index(), v.hash()).unwrap();
        }
        out.flush().unwrap();
    }
}

/// Starts the child, kills it `delay` after it has opened the ledger, and
/// returns what it acknowledged.
fn run_and_kill(ledger_dir: &Path, keys: &Path, delay: Duration) -> Vec<(u64, String)> {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, ledger_dir)
        .env(KEYS, keys)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = c.stdout.take().unwrap();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = ready_tx.send(());
            }
            // A line cut by the kill was never a complete acknowledgement.
            let parts: Vec<&str> = line.split(' ').collect();
            if let ["committed", index, hash] = parts[..]
                && hash.len() == 64
            {
                acked.push((index.parse().unwrap(), hash.to_string()));
            }
        }
        acked
    });
    ready.recv_timeout(Duration::from_secs(30)).expect("the child opened the ledger");
    std::thread::sleep(delay);
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    reader.join().unwrap()
}

/// Reopens the ledger: it must verify from the genesis (every entry, the
/// tree and the checkpoint), and hold every acknowledged entry with its
/// acknowledged hash. Returns the number of entries.
fn check(ledger_dir: &Path, genesis: &EntryHash, acked: &[(u64, String)], kill: usize) -> u64 {
    let store = LocalStore::open(ledger_dir, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("after kill {kill}, the ledger does not open: {e}"));
    let ledger = Ledger::new(store);
    let report = ledger
        .verify(Some(genesis), |_| {})
        .unwrap_or_else(|e| panic!("after kill {kill}, the ledger does not verify: {e}"));
    for (index, hash) in acked {
        let bytes = ledger
            .store()
            .get(*index)
            .unwrap()
            .unwrap_or_else(|| panic!("after kill {kill}: acknowledged entry {index} is lost"));
        let stored = provledger::core::entry::entry_hash(&bytes).to_string();
        assert_eq!(&stored, hash, "after kill {kill}: acknowledged entry {index} has another hash");
    }
    report.entries
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD) {
        child(&PathBuf::from(dir), &PathBuf::from(std::env::var_os(KEYS).unwrap()));
        return;
    }
    // `cargo test -- --list` and filters: this harness is one test.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("crash_safety: test");
        return;
    }
    if args.iter().any(|a| !a.starts_with('-') && !"crash_safety".contains(a.as_str())) {
        return;
    }
    let kills: usize = std::env::var("PROVLEDGER_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    kill_and_check(kills);
    kill_conversions(40);
    println!("test result: ok. 1 passed; 0 failed");
}

/// `kills` kills of appenders to a ledger.
fn kill_and_check(kills: usize) {
    let layout = "segment log";
    let env = Env::new();
    let genesis = env.init(&["--log-key", &env.key("ledger")]);
    let genesis = EntryHash::parse(&genesis).unwrap();
    let started = Instant::now();
    let mut rng = rand::rng();
    let (mut acked_total, mut mid_write) = (0usize, 0usize);
    let mut before = check(&env.ledger(), &genesis, &[], 0);
    for kill in 1..=kills {
        // Killed anywhere from its first append to some dozens later.
        let delay = Duration::from_micros(rng.random_range(0..15_000));
        let acked = run_and_kill(&env.ledger(), env.dir.path(), delay);
        let after = check(&env.ledger(), &genesis, &acked, kill);
        // Entries written but not acknowledged: the kill landed between the
        // durable write and the print (allowed), never the other way round.
        let unacked = after - before - acked.len() as u64;
        mid_write += (unacked > 0) as usize;
        acked_total += acked.len();
        before = after;
    }
    // The harness must have exercised appends, not only start-ups.
    assert!(acked_total >= kills, "{layout}: only {acked_total} entries acknowledged over {kills} kills");
    println!(
        "crash_safety ({layout} store): {kills} SIGKILLs survived; {acked_total} acknowledged entries, 0 lost; \
         {mid_write} kills landed after a write and before its acknowledgement; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `kills` conversions of the store version 2 fixture, each killed at a
/// moment from its start to past its end (each on a fresh copy).
fn kill_conversions(kills: u32) {
    use provledger::ledger::dir::LedgerDir;
    let started = Instant::now();
    let expected = common::v2_fixture().join("expected");
    let read = |name: &str| std::fs::read_to_string(expected.join(name)).unwrap();
    let genesis = EntryHash::parse(read("genesis").trim()).unwrap();
    let verified: serde_json::Value = serde_json::from_str(read("verify.json").lines().next().unwrap()).unwrap();
    let convert = |dir: &Path| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("provledger"));
        c.arg("--ledger").arg(dir).arg("migrate").stdout(Stdio::null()).stderr(Stdio::null());
        c.env_remove("PROVLEDGER_SERVER");
        c
    };
    let root = tempfile::tempdir().unwrap();
    let timed = common::unpack_v2_fixture(&root.path().join("timed"));
    let t = Instant::now();
    assert!(convert(&timed).status().unwrap().success());
    let took = t.elapsed();
    let (mut old, mut new) = (0, 0);
    for kill in 0..kills {
        let dir = common::unpack_v2_fixture(&root.path().join(format!("kill-{kill}")));
        let mut child = convert(&dir).spawn().unwrap();
        std::thread::sleep(took * kill / (kills - 6));
        let _ = child.kill();
        child.wait().unwrap();
        if dir.join("store").exists() {
            old += 1
        } else {
            new += 1
        }
        let what = format!("conversion killed after {:?}", took * kill / (kills - 6));
        let ledger = LedgerDir::new(&dir, Duration::from_secs(10))
            .open()
            .unwrap_or_else(|e| panic!("{what}: the ledger does not open: {e}"));
        let report = ledger.verify(Some(&genesis), |_| {}).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(report.entries, verified["entries"], "{what}");
        assert_eq!(report.head.to_string(), verified["head"].as_str().unwrap(), "{what}");
        assert_eq!(ledger.checkpoint().unwrap().note, verified["checkpoint"]["note"].as_str().unwrap(), "{what}");
        assert!(dir.join("store.v2").is_dir() && !dir.join("store").exists(), "{what}: the old files are kept");
        assert!(!dir.join("migrate.new").exists(), "{what}: the staging folder is gone");
    }
    assert!(old > 0 && new > 0, "the kills did not span the conversion: {old} before its end, {new} after");
    println!(
        "crash_safety (conversion): {kills} SIGKILLs of `migrate` ({took:?} a run); {old} left the old ledger, \
         {new} the new one; each opened with the same entries, head and checkpoint; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
