//! Crash safety: a process appends entries and prints each one it has
//! durably committed; it is killed with SIGKILL at a random moment, the
//! ledger is reopened and must verify, and every entry the process
//! acknowledged must be there with the hash it printed. Repeated
//! `PROVLEDGER_CRASH_KILLS` times for each store layout, the sled store
//! (version 2) and the segment log (version 3, `init --store log`): 200 in
//! the test suite; `scripts/crash.sh --long` runs 1000.
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
use provledger::store::local::LocalStore;
use provledger::store::{DEFAULT_MIN_FREE, Store as _};
use rand::RngExt as _;

const CHILD: &str = "PROVLEDGER_CRASH_CHILD";
const KEYS: &str = "PROVLEDGER_CRASH_KEYS";
const TIME: u64 = 1_800_000_000;

/// The child: appends forever, one by one and in small batches, printing
/// `committed <index> <hash>` once each append has returned (is durable).
fn child(ledger_dir: &Path, keys: &Path) {
    let store = LocalStore::open(ledger_dir, Duration::from_secs(10), DEFAULT_MIN_FREE).unwrap();
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
    let store = LocalStore::open(ledger_dir, Duration::from_secs(10), DEFAULT_MIN_FREE)
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
    for layout in ["sled", "log"] {
        kill_and_check(layout, kills);
    }
    println!("test result: ok. 1 passed; 0 failed");
}

/// `kills` kills of appenders to a ledger of `layout` (`init --store`).
fn kill_and_check(layout: &str, kills: usize) {
    let env = Env::new();
    let genesis = env.init(&["--log-key", &env.key("ledger"), "--store", layout]);
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
