//! The segment log against its ceiling, in the same run: a durable append
//! of one ~1 KB entry against a raw 1 KB append + `fdatasync` to a plain
//! file, batched appends (1000 entries a group), then a summary measured
//! by hand: the ratio of the two durable rates (interleaved rounds, so
//! that both see the same disk), the disk used per entry byte, and the
//! time to reopen a log of `LOG_BENCH_REOPEN` entries (1,000,000 by
//! default; 0 skips it) after a clean close and after a crash.
//!
//! `cargo bench --bench log -- --measurement-time 5`
//!
//! The logs live in a temporary directory under `TMPDIR` (the disk being
//! measured): point it at the file system in question.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provledger::store::NodeWrite;
use provledger::store::log::{Group, Log, conformance};
use provledger::store::segment::{SegmentLog, SegmentOptions};

const ENTRY: usize = 1024;
const BATCH: u64 = 1000;

fn entry(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

/// The nodes appending leaf `i` completes, as the tree makes them.
fn nodes_for(i: u64, out: &mut Vec<NodeWrite>) {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&i.to_le_bytes());
    out.push(NodeWrite { level: 0, index: i, hash });
    let size = i + 1;
    for level in 1..=size.trailing_zeros() {
        hash[31] = level as u8;
        out.push(NodeWrite { level, index: (size >> level) - 1, hash });
    }
}

/// A checkpoint note of the size a signed one has.
fn checkpoint(size: u64) -> String {
    format!("provledger.example/ledger\n{size}\n{}\n\n— provledger.example/ledger {}\n", "A".repeat(44), "B".repeat(92))
}

/// Appends entries `from..to` of `len` bytes as one group.
fn append(log: &SegmentLog, from: u64, to: u64, len: usize) {
    let entries: Vec<Vec<u8>> = (from..to).map(|i| entry(i, len)).collect();
    let mut nodes = Vec::new();
    (from..to).for_each(|i| nodes_for(i, &mut nodes));
    let cp = checkpoint(to);
    let expected = (from > 0).then(|| conformance::head(from));
    let head = conformance::head(to);
    log.append(
        expected.as_ref(),
        &Group {
            entries: &entries.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            nodes: &nodes,
            checkpoint: &cp,
            head: &head,
        },
    )
    .unwrap();
}

/// A plain file, appended to 1 KB at a time with a `fdatasync` each.
struct Raw {
    file: File,
    at: u64,
    buf: Vec<u8>,
}

impl Raw {
    fn new(dir: &Path) -> Raw {
        let file = File::options().read(true).write(true).create_new(true).open(dir.join("raw")).unwrap();
        Raw { file, at: 0, buf: entry(7, ENTRY) }
    }

    fn append(&mut self) {
        self.file.write_all_at(&self.buf, self.at).unwrap();
        self.file.sync_data().unwrap();
        self.at += ENTRY as u64;
    }
}

fn open(dir: &Path) -> SegmentLog {
    SegmentLog::open_with(dir, &SegmentOptions::new()).unwrap()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

fn durable(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("durable_append_1k");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    let mut raw = Raw::new(tmp.path());
    g.bench_function("raw_write_fdatasync", |b| b.iter(|| raw.append()));
    let log = open(&tmp.path().join("one"));
    let mut n = 0;
    g.bench_function("segment_log_one_by_one", |b| {
        b.iter(|| {
            append(&log, n, n + 1, ENTRY);
            n += 1;
        })
    });
    g.finish();

    let mut g = c.benchmark_group("batched_append_1k");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(20);
    let batched = open(&tmp.path().join("batched"));
    let mut m = 0;
    g.bench_function("segment_log_1000_per_group", |b| {
        b.iter(|| {
            append(&batched, m, m + BATCH, ENTRY);
            m += BATCH;
        })
    });
    g.finish();
    drop(log);
    drop(batched);
    let ratio = |d: &str, n: u64| dir_bytes(&tmp.path().join(d)) as f64 / (n as f64 * ENTRY as f64);
    println!(
        "disk / entry bytes: one by one {:.3} ({n} entries), batched {:.3} ({m} entries)",
        ratio("one", n),
        ratio("batched", m)
    );
}

/// Interleaved rounds of raw and log appends: the ratio of their rates.
fn summary(_: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut raw = Raw::new(tmp.path());
    let log = open(&tmp.path().join("log"));
    let (mut t_raw, mut t_log, mut n) = (Duration::ZERO, Duration::ZERO, 0);
    for _ in 0..10 {
        let t = Instant::now();
        for _ in 0..100 {
            raw.append();
        }
        t_raw += t.elapsed();
        let t = Instant::now();
        for _ in 0..100 {
            append(&log, n, n + 1, ENTRY);
            n += 1;
        }
        t_log += t.elapsed();
    }
    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    println!(
        "durable 1 KB appends, interleaved: raw fdatasync {:.0}/s, segment log {:.0}/s: {:.1}% of raw",
        rate(t_raw),
        rate(t_log),
        100.0 * t_raw.as_secs_f64() / t_log.as_secs_f64()
    );
    drop(log);

    let entries: u64 = std::env::var("LOG_BENCH_REOPEN").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    if entries == 0 {
        return;
    }
    // Small entries: what reopening costs grows with the count, not the bytes.
    let dir = tmp.path().join("big");
    let log = open(&dir);
    let t = Instant::now();
    let mut size = 0;
    while size < entries {
        let to = (size + 10_000).min(entries);
        append(&log, size, to, 100);
        size = to;
    }
    let built = t.elapsed();
    // A crash in the middle of the last segment: the next open parses it.
    append(&log, size, size + BATCH, 100);
    size += BATCH;
    log.crash();
    let t = Instant::now();
    let log = open(&dir);
    let after_crash = t.elapsed();
    assert_eq!(log.head().unwrap().unwrap().count, size);
    drop(log);
    let t = Instant::now();
    let log = open(&dir);
    let clean = t.elapsed();
    assert_eq!(log.entry(size / 2).unwrap(), Some(entry(size / 2, 100)));
    println!(
        "{size} entries of 100 bytes (built at {:.0}/s in groups of 10,000, {} MB): reopen after a crash {:?}, after a clean close {:?}",
        size as f64 / built.as_secs_f64(),
        dir_bytes(&dir) >> 20,
        after_crash,
        clean
    );
}

criterion_group!(benches, durable, summary);
criterion_main!(benches);
