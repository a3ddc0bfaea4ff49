//! The ceiling the verification benches are read against: one strict
//! ed25519 verification of a statement-sized message, in the same run.

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
