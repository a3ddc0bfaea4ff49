//! The ceilings the verification benches are read against, in the same run:
//! one strict ed25519 verification of a statement-sized message, and
//! `verify_batch` over all cores in batches as provledger makes them.

use criterion::{Criterion, Throughput};

use crate::vectors;

pub fn ed25519_verify_strict(c: &mut Criterion) {
    let key = vectors::key("ci");
    let message = vectors::sign(&vectors::build(1), "ci").pae();
    let sig = key.sign(&message);
    let public = key.public();
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_strict", |b| b.iter(|| assert!(public.verify(&message, &sig))));
    g.finish();
}

pub fn ed25519_verify_batch(c: &mut Criterion) {
    use rayon::prelude::*;
    let keys: Vec<_> = ["ci", "qa", "release", "root"].iter().map(|k| vectors::key(k)).collect();
    let n = 4096;
    let messages: Vec<Vec<u8>> = (0..n).map(|i| vectors::sign(&vectors::build(i as u32), "ci").pae()).collect();
    let sigs: Vec<ed25519_dalek::Signature> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| ed25519_dalek::Signature::from_slice(&keys[i % 4].sign(m)).unwrap())
        .collect();
    let vks: Vec<_> = (0..n).map(|i| *keys[i % 4].public().verifying_key()).collect();
    let batch = provledger::sigcheck::BATCH;
    let mut g = c.benchmark_group("ed25519");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);
    g.bench_function("verify_batch_all_cores", |b| {
        b.iter(|| {
            (0..n).into_par_iter().step_by(batch).for_each(|s| {
                let e = (s + batch).min(n);
                let m: Vec<&[u8]> = messages[s..e].iter().map(Vec::as_slice).collect();
                ed25519_dalek::verify_batch(&m, &sigs[s..e], &vks[s..e]).unwrap();
            })
        })
    });
    g.finish();
}
