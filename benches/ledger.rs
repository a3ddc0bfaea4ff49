//! Criterion benchmarks: entry encode/decode, durable sign+append one by one
//! and in batches of 1000, whole-chain verification (batched and strict
//! signature checks), gate decisions, and raw ed25519 verification (strict,
//! and `verify_batch` on all cores) as the ceilings, in one run.
//!
//! `cargo bench --bench ledger`

#[path = "support/ceiling.rs"]
mod ceiling;
#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use provledger::core::entry::UnverifiedEntry;
use provledger::core::hash::EntryHash;
use provledger::ledger::Ledger;
use provledger::sigcheck::Mode;
use provledger::store::local::LocalStore;
use provledger::verify::verify_chain_with;

const CHAIN_LEN: u32 = 1000;

/// A valid chain: genesis policy, then builds and validations of each.
fn chain(n: u32) -> Vec<Vec<u8>> {
    let mut c = vectors::Chain::default();
    c.push(vectors::sign(&vectors::policy(None, "ci"), "root"));
    let mut i = 0;
    while (c.entries.len() as u32) < n {
        let b = c.push(vectors::sign(&vectors::build(i), "ci"));
        c.push(vectors::sign(&vectors::validation(i, b), "qa"));
        i += 1;
    }
    c.entries.truncate(n as usize);
    c.entries
}

fn entry_codec(c: &mut Criterion) {
    let envelope = vectors::sign(&vectors::build(1), "ci");
    let (_, bytes) = UnverifiedEntry::build(1, EntryHash::ZERO, 1, envelope.clone());
    let mut g = c.benchmark_group("entry");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| UnverifiedEntry::build(1, EntryHash::ZERO, 1, envelope.clone())));
    g.bench_function("decode", |b| b.iter(|| UnverifiedEntry::decode(&bytes).unwrap()));
    g.finish();
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(LocalStore::create(&dir.path().join("l"), Duration::from_secs(1)).unwrap())
        .with_log_key(vectors::key("log"));
    ledger.init(vectors::sign(&vectors::policy(None, "ci"), "root"), 1).unwrap();
    // Statements are bound to the ledger they are for.
    let genesis = ledger.genesis_hash().unwrap().unwrap();
    let bind = |s: provledger::core::statement::Statement| s.bound(provledger::record::Binding::fresh(genesis));
    let ci = vectors::key("ci");
    let mut n = 0u32;
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("sign_and_append_durable", |b| {
        b.iter_batched(
            || {
                n += 1;
                bind(vectors::build(1_000_000 + n))
            },
            |statement| {
                let env = provledger::core::dsse::Envelope::sign(
                    provledger::core::dsse::PAYLOAD_TYPE_IN_TOTO,
                    statement.to_payload(),
                    &[&ci],
                );
                ledger.append(env, 2).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1000));
    g.sample_size(10);
    g.bench_function("append_batch_1000_durable", |b| {
        b.iter_batched(
            || {
                n += 1000;
                (0..1000).map(|i| vectors::sign(&bind(vectors::build(2_000_000 + n + i)), "ci")).collect::<Vec<_>>()
            },
            |envelopes| ledger.append_batch(envelopes, 2).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let entries = chain(CHAIN_LEN);
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(CHAIN_LEN as u64));
    g.sample_size(10);
    for (name, mode) in [("chain_1000_entries", Mode::Batch), ("chain_1000_entries_strict", Mode::Strict)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let items = entries.iter().enumerate().map(|(i, e)| Ok((i as u64, e.clone())));
                verify_chain_with(items, None, mode, |_| {}).unwrap()
            })
        });
    }
    g.finish();

    ceiling::ed25519_verify_strict(c);
    ceiling::ed25519_verify_batch(c);
}

/// Gate decisions on a real ledger directory of 1k and 10k entries (the scale
/// harness `examples/gate_scale.rs` goes to 1M).
fn decide(c: &mut Criterion) {
    let mut g = c.benchmark_group("gate");
    g.throughput(Throughput::Elements(1));
    for size in [1_000u32, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(LocalStore::create(&dir.path().join("l"), Duration::from_secs(1)).unwrap())
            .with_log_key(vectors::key("log"));
        ledger.init(vectors::sign(&vectors::policy(None, "ci"), "root"), 1).unwrap();
        // Builds, then validations of them, up to `size` entries.
        vectors::fill(&ledger, &mut 0, size as u64);
        let request = provledger::gate::Request {
            digest: Some(vectors::digest(0)),
            to: "dev",
            promoter: vectors::key("release").id(),
            tag: None,
        };
        assert!(ledger.decide(&request).unwrap().is_allowed());
        g.bench_function(format!("decide_{size}_entries"), |b| b.iter(|| ledger.decide(&request).unwrap()));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = entry_codec, append, verify, decide
}
criterion_main!(benches);
