//! Criterion benchmarks for proofs and bundles: promotion proof generation
//! and verification on real ledger directories of 1k and 1M entries (every entry
//! signed and verified on append), the proof's size, and `verify --bundle`
//! throughput, next to raw strict ed25519 verification measured in the same
//! run.
//!
//! `cargo bench --bench proofs`; `PROVLEDGER_BENCH_LARGE=N` sets the large
//! ledger's size (default 1,000,000; filling it takes a few minutes).

#[path = "support/ceiling.rs"]
mod ceiling;
#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provledger::core::hash::EntryHash;
use provledger::ledger::Ledger;
use provledger::proof::{self, PromotionProof};
use provledger::store::Store as _;
use provledger::store::local::LocalStore;

/// Entries in the ledger whose bundle is verified.
const BUNDLE_ENTRIES: u64 = 10_000;

/// A real ledger of `size` entries: the genesis policy, digest 0 built,
/// validated and promoted to dev, then builds and validations of other digests.
fn ledger(dir: &std::path::Path, size: u64) -> (Ledger<LocalStore>, EntryHash) {
    let ledger =
        Ledger::new(LocalStore::create(dir, Duration::from_secs(1)).unwrap()).with_log_key(vectors::key("log"));
    let genesis = ledger.init(vectors::sign(&vectors::policy(None, "ci"), "root"), 1).unwrap().hash();
    let b = ledger.append(vectors::sign(&vectors::build(0), "ci"), 1).unwrap();
    let v = ledger.append(vectors::sign(&vectors::validation(0, b.entry_ref()), "qa"), 1).unwrap();
    ledger.append(vectors::sign(&vectors::promotion(0, b.entry_ref(), vec![v.entry_ref()]), "release"), 1).unwrap();
    vectors::fill(&ledger, &mut 1, size);
    (ledger, genesis)
}

fn proofs(c: &mut Criterion) {
    let large: u64 = std::env::var("PROVLEDGER_BENCH_LARGE").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut g = c.benchmark_group("proof");
    g.throughput(Throughput::Elements(1));
    for size in [1_000u64, large] {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let (ledger, genesis) = ledger(&dir.path().join("l"), size);
        let digest = vectors::digest(0);
        let p = proof::prove(&ledger, &digest, "dev").unwrap();
        let json = p.to_json();
        let hashes: usize = p.entries.iter().map(|e| e.inclusion.hashes.len()).sum();
        eprintln!(
            "ledger of {size} entries filled in {:.1} s; proof: {} entries, {hashes} inclusion hashes, {} bytes of JSON",
            started.elapsed().as_secs_f64(),
            p.entries.len(),
            json.len()
        );
        g.bench_function(format!("prove_{size}_entries"), |b| {
            b.iter(|| proof::prove(&ledger, &digest, "dev").unwrap())
        });
        g.bench_function(format!("verify_{size}_entries"), |b| {
            b.iter(|| PromotionProof::parse(json.as_bytes()).unwrap().verify(&genesis).unwrap())
        });
        // An inclusion proof alone, from the stored tree: O(log n) node reads.
        let head = ledger.store().head().unwrap().unwrap().count;
        g.bench_function(format!("inclusion_proof_{size}_entries"), |b| {
            b.iter(|| ledger.inclusion_proof(head / 3, head).unwrap())
        });
    }
    g.finish();
}

fn bundle(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, genesis) = ledger(&dir.path().join("l"), BUNDLE_ENTRIES);
    let cp = ledger.checkpoint().unwrap();
    let mut bytes = Vec::new();
    provledger::bundle::write_header(&mut bytes, &cp.note, cp.checkpoint.size).unwrap();
    for item in ledger.store().entries_from(0) {
        provledger::bundle::write_entry(&mut bytes, &item.unwrap().1).unwrap();
    }
    eprintln!("bundle of {BUNDLE_ENTRIES} entries: {} bytes", bytes.len());
    let mut g = c.benchmark_group("bundle");
    g.throughput(Throughput::Elements(BUNDLE_ENTRIES));
    g.sample_size(10);
    g.bench_function(format!("verify_{BUNDLE_ENTRIES}_entries"), |b| {
        b.iter(|| provledger::bundle::verify_bundle(bytes.as_slice(), &genesis, None, |_| {}).unwrap())
    });
    g.finish();

    ceiling::ed25519_verify_strict(c);
    ceiling::ed25519_verify_batch(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = proofs, bundle
}
criterion_main!(benches);
