//! Criterion benchmarks for the audit view: building and rendering one
//! digest's page and the overview, each beside the audit answer it is made
//! from (`show`, and `history` of every environment), measured in the same
//! run; and the whole static report (`write_static`: every page as HTML and
//! JSON, written and synced) against reading every digest's `show`.
//!
//! `cargo bench --bench report`; `PROVLEDGER_BENCH_REPORT_ENTRIES=N` sets
//! the ledger's size (default 10,000).

#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provledger::audit::site::{self, Catalog, Page, Trust, Verification};
use provledger::ledger::Ledger;
use provledger::store::local::LocalStore;

fn ledger(dir: &std::path::Path, size: u64) -> (Ledger<LocalStore>, Catalog, Trust) {
    let ledger =
        Ledger::new(LocalStore::create(dir, Duration::from_secs(1)).unwrap()).with_log_key(vectors::key("log"));
    ledger.init(vectors::sign(&vectors::policy(None, "ci"), "root"), vectors::T0 + 1000).unwrap();
    let b = ledger.append(vectors::sign(&vectors::build(0), "ci"), 1).unwrap();
    let v = ledger.append(vectors::sign(&vectors::validation(0, b.entry_ref()), "qa"), 1).unwrap();
    ledger.append(vectors::sign(&vectors::promotion(0, b.entry_ref(), vec![v.entry_ref()]), "release"), 1).unwrap();
    vectors::fill(&ledger, &mut 1, size);
    let mut catalog = Catalog::default();
    let chain = ledger.verify(None, |e| catalog.take_verified(e)).unwrap();
    let cp = ledger.checkpoint().unwrap();
    let trust = Trust::Verified(Verification {
        source: "bench".into(),
        scope: "the whole chain".into(),
        genesis: chain.genesis.unwrap().to_string(),
        entries: chain.entries,
        head: chain.head.to_string(),
        checkpoint: (&cp).into(),
        verified_at: site::now_rfc3339(),
        genesis_pinned: false,
    });
    (ledger, catalog, trust)
}

fn report(c: &mut Criterion) {
    let size: u64 =
        std::env::var("PROVLEDGER_BENCH_REPORT_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let (ledger, catalog, trust) = ledger(&dir.path().join("l"), size);
    let d = vectors::digest(0);
    let page = Page::Digest(d);
    let data = site::page_data(&ledger, &catalog, &trust, &page).unwrap().unwrap();
    eprintln!("ledger of {size} entries; the digest page is {} bytes of HTML", site::render(&data).len());

    let mut g = c.benchmark_group("report");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ceiling_show_digest", |b| b.iter(|| provledger::audit::show(&ledger, &d).unwrap().unwrap()));
    g.bench_function("digest_page_data", |b| {
        b.iter(|| site::page_data(&ledger, &catalog, &trust, &page).unwrap().unwrap())
    });
    g.bench_function("digest_page_render", |b| b.iter(|| site::render(&data)));
    let envs: Vec<String> = ["dev", "staging", "prod"].map(String::from).to_vec();
    g.bench_function("ceiling_history_every_environment", |b| {
        b.iter(|| envs.iter().map(|e| provledger::audit::history(&ledger, e).unwrap()).collect::<Vec<_>>())
    });
    g.bench_function("overview_page_data_and_render", |b| {
        b.iter(|| site::render(&site::page_data(&ledger, &catalog, &trust, &Page::Overview).unwrap().unwrap()))
    });
    g.finish();

    // The whole report, once: pages per second, against reading every
    // digest's audit answer alone.
    let digests: Vec<_> = catalog.digests().copied().collect();
    let started = Instant::now();
    for d in &digests {
        provledger::audit::show(&ledger, d).unwrap();
    }
    let show_all = started.elapsed().as_secs_f64();
    let out = dir.path().join("report");
    let started = Instant::now();
    let pages = site::write_static(Some(&ledger), &catalog, &trust, &out).unwrap();
    let written = started.elapsed().as_secs_f64();
    eprintln!(
        "static report: {pages} pages in {written:.2} s ({:.0} pages/s); ceiling, `show` of all {} digests: {show_all:.2} s ({:.0}/s)",
        pages as f64 / written,
        digests.len(),
        digests.len() as f64 / show_all
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = report
}
criterion_main!(benches);
