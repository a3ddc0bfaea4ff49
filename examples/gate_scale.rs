//! Gate decision time as the ledger grows: builds one real ledger directory to
//! `--entries` (default 1,000,000), and at 1k, 100k and 1M entries times
//! `Ledger::decide` for one digest (median and p99 of 2,000 decisions).
//!
//! `cargo run --release --example gate_scale -- --entries 1000000 [--dir DIR]`

#[path = "support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use std::time::{Duration, Instant};

use provledger::gate::Request;
use provledger::ledger::Ledger;
use provledger::store::local::LocalStore;

const SAMPLES: usize = 2_000;

fn main() {
    let mut entries: u64 = 1_000_000;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => entries = args.next().and_then(|v| v.parse().ok()).expect("--entries N"),
            "--dir" => dir = args.next().map(std::path::PathBuf::from),
            other => panic!("unknown argument {other}"),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = dir.unwrap_or_else(|| tmp.path().join("ledger"));
    let ledger =
        Ledger::new(LocalStore::create(&path, Duration::from_secs(5)).unwrap()).with_log_key(vectors::key("log"));
    ledger.init(vectors::sign(&vectors::policy(None, "ci"), "root"), 1).unwrap();

    // The digest whose promotion to dev is decided: one build, one passing validation.
    let built = ledger.append(vectors::sign(&vectors::build(0), "ci"), 1).unwrap();
    ledger.append(vectors::sign(&vectors::validation(0, built.entry_ref()), "qa"), 1).unwrap();
    let request =
        Request { digest: Some(vectors::digest(0)), to: "dev", promoter: vectors::key("release").id(), tag: None };
    assert!(ledger.decide(&request).unwrap().is_allowed());

    let checkpoints = [1_000u64, 100_000, 1_000_000].into_iter().filter(|c| *c <= entries).collect::<Vec<_>>();
    let mut n = 1u32;
    let started = Instant::now();
    println!("{:>10}  {:>12}  {:>12}  {:>14}", "entries", "median", "p99", "fill entries/s");
    for target in checkpoints {
        let fill_start = Instant::now();
        let before = ledger.store_head_count();
        vectors::fill(&ledger, &mut n, target);
        let fill_rate = (ledger.store_head_count() - before) as f64 / fill_start.elapsed().as_secs_f64();
        let mut times: Vec<Duration> = (0..SAMPLES)
            .map(|_| {
                let t = Instant::now();
                let d = ledger.decide(&request).unwrap();
                let e = t.elapsed();
                assert!(d.is_allowed());
                e
            })
            .collect();
        times.sort();
        println!(
            "{:>10}  {:>12?}  {:>12?}  {:>14.0}",
            ledger.store_head_count(),
            times[SAMPLES / 2],
            times[SAMPLES * 99 / 100],
            fill_rate
        );
    }
    println!("ledger at {} ({} s in all)", path.display(), started.elapsed().as_secs());
}

trait HeadCount {
    fn store_head_count(&self) -> u64;
}

impl HeadCount for Ledger<LocalStore> {
    fn store_head_count(&self) -> u64 {
        use provledger::store::Store as _;
        self.store().head().unwrap().map_or(0, |h| h.count)
    }
}
