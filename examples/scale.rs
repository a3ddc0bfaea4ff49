//! The scale harness: builds a realistic ledger of `--entries` entries in a
//! real ledger directory (the segment log, with its follower indexes) and
//! reports every figure next to the ceiling it is bound
//! by, measured in the same run, as a table and as JSON.
//!
//! `cargo run --release --example scale -- --entries 1000000 [--dir DIR] [--json FILE]`
//!
//! The ledger: per image a build (by one of three CI keys), a validation by
//! QA (unit, lint, integration) and one by security (scan, sbom), a promotion
//! to dev; every third image on to staging, every ninth to prod. The CI key
//! is rotated by a signed policy change at each quarter of the run. Every
//! append goes through the library's durable `append_batch` (one write and
//! one flush per batch), every promotion through the gate (`Ledger::decide`).
//!
//! Ceilings: ed25519 `verify_batch` and strict verification on all cores,
//! SHA-256 on one core and on all, and `write(4 KiB) + fdatasync` on the
//! ledger's file system.
//!
//! After the run, the store is dropped as a crash would leave it (no
//! clean-close work) and reopened (`reopen_seconds`), closed cleanly and
//! reopened, and its indexes rebuilt from the chain (`reindex_entries_per_s`).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use provledger::core::digest::Digest;
use provledger::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use provledger::core::hash::sha256;
use provledger::core::keys::SecretKey;
use provledger::core::statement::{
    Check, CheckResult, EntryRef, PolicyEnvironment, PolicyKey, PolicyLog, PolicyPredicate, Role, Statement,
};
use provledger::gate::{Decision, Request};
use provledger::ledger::{Ledger, leaf_of};
use provledger::record::{self, BuildInput, PromotionInput, ValidationInput};
use provledger::store::Store as _;
use provledger::store::local::{INDEX_DIR, LOG_DIR, LocalStore};
use provledger::tree;
use rayon::prelude::*;
use serde_json::{Value, json};

const T0: u64 = 1_767_225_600;
/// Images per round: each round appends its builds, validations and
/// promotions in five durable batches.
const IMAGES_PER_ROUND: u32 = 1_000;
const CI_KEYS: usize = 3;
const SAMPLES: usize = 1_000;

/// The genesis hash of the ledger being built, set once it is initialised:
/// every statement is bound to it, as the CLI binds its statements.
static GENESIS: std::sync::OnceLock<provledger::core::hash::EntryHash> = std::sync::OnceLock::new();

/// The binding of statement `n` of a kind, with a nonce derived from both
/// (deterministic, so that runs are comparable).
fn binding(kind: &str, n: u32) -> Option<record::Binding> {
    let nonce: [u8; 16] = sha256(format!("scale nonce {kind} {n}").as_bytes())[..16].try_into().unwrap();
    Some(record::Binding {
        // The ceilings' sample envelopes are signed before there is a
        // ledger; they are never appended.
        ledger: GENESIS.get().copied().unwrap_or(provledger::core::hash::EntryHash::ZERO),
        nonce: provledger::core::statement::Nonce::from_bytes(nonce),
    })
}

fn key(name: &str) -> SecretKey {
    SecretKey::from_seed(&sha256(format!("provledger scale harness key {name}").as_bytes()))
}

struct Keys {
    root: SecretKey,
    ci: Vec<SecretKey>,
    qa: SecretKey,
    security: SecretKey,
    release: SecretKey,
    log: SecretKey,
}

fn policy(keys: &Keys, ci: usize, previous: Option<EntryRef>) -> Statement {
    let k = |name: &str, key: &SecretKey, roles: &[Role]| PolicyKey {
        name: name.into(),
        id: key.public().id(),
        algorithm: "ed25519".into(),
        public: key.public().to_hex(),
        roles: roles.to_vec(),
    };
    let env = |name: &str, checks: &[&str], requires: Option<&str>| PolicyEnvironment {
        name: name.into(),
        required_checks: checks.iter().map(|c| c.to_string()).collect(),
        requires: requires.map(str::to_string),
        tags: Vec::new(),
    };
    let mut policy_keys = vec![k("root", &keys.root, &[Role::Policy])];
    // The CI key in force, and the one before it (still allowed, being retired).
    for i in [ci, ci.wrapping_sub(1)].into_iter().filter(|i| *i < CI_KEYS) {
        policy_keys.push(k(&format!("ci-{i}"), &keys.ci[i], &[Role::Build]));
    }
    policy_keys.push(k("qa", &keys.qa, &[Role::Validation]));
    policy_keys.push(k("security", &keys.security, &[Role::Validation]));
    policy_keys.push(k("release", &keys.release, &[Role::Promotion]));
    let predicate = PolicyPredicate {
        version: 1,
        keys: policy_keys,
        environments: vec![
            env("dev", &["unit", "lint"], None),
            env("staging", &["unit", "lint", "integration", "scan"], Some("dev")),
            env("prod", &["unit", "lint", "integration", "scan", "sbom"], Some("staging")),
        ],
        policy_threshold: 1,
        log: PolicyLog::new("provledger.example/scale", keys.log.public()).unwrap(),
        previous,
    };
    record::policy_statement(predicate, format!("scale policy {ci}").as_bytes())
}

fn digest(n: u32) -> Digest {
    Digest::of(format!("scale image {n}").as_bytes())
}

fn image(n: u32) -> provledger::core::image_ref::ImageRef {
    format!("registry.example.com/acme/service-{}@{}", n % 40, digest(n)).parse().unwrap()
}

fn sign(s: &Statement, key: &SecretKey) -> Envelope {
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, s.to_payload(), &[key])
}

fn build(n: u32, key: &SecretKey) -> Envelope {
    let s = record::build_statement(BuildInput {
        image: format!("registry.example.com/acme/service-{}:1.{n}@{}", n % 40, digest(n)).parse().unwrap(),
        artifact: Some(format!("service-{}", n % 40)),
        release: None,
        git_sha: Some(hex::encode(&sha256(&n.to_be_bytes())[..20])),
        source_repository: Some(format!("https://git.example.com/acme/service-{}", n % 40)),
        builder_id: Some("https://ci.example.com/builders/release".into()),
        ci: Default::default(),
        registry_confirmed: false,
        registry: None,
        media_type: None,
        platforms: Vec::new(),
        time: T0 + n as u64,
        binding: binding("build", n),
    });
    sign(&s, key)
}

fn validation(n: u32, build: EntryRef, checks: &[&str], key: &SecretKey) -> Envelope {
    let s = record::validation_statement(ValidationInput {
        image: image(n),
        build: Some(build),
        checks: checks
            .iter()
            .map(|c| Check { name: c.to_string(), result: CheckResult::Pass, evidence: None })
            .collect(),
        ci: Default::default(),
        registry_confirmed: false,
        registry: None,
        time: T0 + 100 + n as u64,
        binding: binding(checks[0], n),
    });
    sign(&s, key)
}

/// Timings, sorted, for medians and tails.
struct Sample(Vec<Duration>);

impl Sample {
    fn of(n: usize, mut f: impl FnMut(usize)) -> Sample {
        let mut v: Vec<Duration> = (0..n)
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed()
            })
            .collect();
        v.sort();
        Sample(v)
    }
    fn median(&self) -> Duration {
        self.0[self.0.len() / 2]
    }
    fn p99(&self) -> Duration {
        self.0[self.0.len() * 99 / 100]
    }
    fn json(&self) -> Value {
        json!({ "median_us": us(self.median()), "p99_us": us(self.p99()), "samples": self.0.len() })
    }
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

// ------------------------------------------------------------------ ceilings

struct Ceilings {
    batch_verify_per_s: f64,
    strict_verify_per_s: f64,
    sha256_mb_s_one_core: f64,
    sha256_mb_s_all_cores: f64,
    fsync_per_s: f64,
    /// `write(1 KiB)` at the end of a growing file, then `fdatasync`: what
    /// an append-only file pays (the size changes, so the journal commits).
    fsync_append_per_s: f64,
}

fn ceilings(dir: &Path) -> Ceilings {
    // Statement-sized messages (a build's PAE), signed by a few keys, as in a ledger.
    let keys: Vec<SecretKey> = (0..4).map(|i| key(&format!("ceiling {i}"))).collect();
    let n = 16_384;
    let envelopes: Vec<Envelope> = (0..n).into_par_iter().map(|i| build(i as u32, &keys[i % keys.len()])).collect();
    let messages: Vec<Vec<u8>> = envelopes.iter().map(|e| e.pae()).collect();
    let sigs: Vec<ed25519_dalek::Signature> =
        envelopes.iter().map(|e| ed25519_dalek::Signature::from_slice(&e.signatures[0].sig).unwrap()).collect();
    let vks: Vec<ed25519_dalek::VerifyingKey> =
        (0..n).map(|i| *keys[i % keys.len()].public().verifying_key()).collect();
    let batch = provledger::sigcheck::BATCH;
    let best = |f: &dyn Fn()| (0..3).map(|_| time(f)).min().unwrap();
    let batch_time = best(&|| {
        (0..n).into_par_iter().step_by(batch).for_each(|s| {
            let e = (s + batch).min(n);
            let m: Vec<&[u8]> = messages[s..e].iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&m, &sigs[s..e], &vks[s..e]).unwrap();
        })
    });
    let strict_time = best(&|| {
        (0..n).into_par_iter().for_each(|i| vks[i].verify_strict(&messages[i], &sigs[i]).unwrap());
    });
    let buf = vec![0x5au8; 64 << 20];
    let sha_one = best(&|| {
        std::hint::black_box(sha256(&buf));
    });
    let sha_all = best(&|| {
        buf.par_chunks(1 << 20).for_each(|c| {
            std::hint::black_box(sha256(c));
        })
    });
    Ceilings {
        batch_verify_per_s: rate(n as u64, batch_time),
        strict_verify_per_s: rate(n as u64, strict_time),
        sha256_mb_s_one_core: 64.0 / sha_one.as_secs_f64(),
        sha256_mb_s_all_cores: 64.0 / sha_all.as_secs_f64(),
        fsync_per_s: fsync_rate(dir),
        fsync_append_per_s: fsync_append_rate(dir),
    }
}

fn time(f: &dyn Fn()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// `write(4 KiB)` then `fdatasync`, 500 times, in `dir`.
fn fsync_rate(dir: &Path) -> f64 {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path).unwrap();
    let n = 500u64;
    let t = Instant::now();
    for i in 0..n {
        f.write_at(&[0xa5; 4096], (i % 64) * 4096).unwrap();
        f.sync_data().unwrap();
    }
    let r = rate(n, t.elapsed());
    std::fs::remove_file(path).unwrap();
    r
}

/// `write(1 KiB)` at the end of a file, then `fdatasync`, 500 times, in `dir`.
fn fsync_append_rate(dir: &Path) -> f64 {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-append-probe");
    let f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path).unwrap();
    let n = 500u64;
    let t = Instant::now();
    for i in 0..n {
        f.write_at(&[0xa5; 1024], i * 1024).unwrap();
        f.sync_data().unwrap();
    }
    let r = rate(n, t.elapsed());
    std::fs::remove_file(path).unwrap();
    r
}

// ------------------------------------------------------------------ the run

struct Filler {
    ledger: Ledger<LocalStore>,
    keys: Keys,
    next_image: u32,
    ci: usize,
    policy_ref: EntryRef,
    batched_entries: u64,
    batched_time: Duration,
    batches: u64,
}

impl Filler {
    fn count(&self) -> u64 {
        self.ledger.store().head().unwrap().map_or(0, |h| h.count)
    }

    fn append(&mut self, envelopes: Vec<Envelope>) -> Vec<EntryRef> {
        if envelopes.is_empty() {
            return Vec::new();
        }
        let n = envelopes.len() as u64;
        let t = Instant::now();
        let done = self.ledger.append_batch(envelopes, T0 + 10_000).unwrap();
        self.batched_time += t.elapsed();
        self.batched_entries += n;
        self.batches += 1;
        done.iter().map(|v| v.entry_ref()).collect()
    }

    /// One round: builds, validations, then promotions to dev, staging and prod.
    fn round(&mut self, images: u32) {
        let first = self.next_image;
        let ns: Vec<u32> = (first..first + images).collect();
        self.next_image += images;
        let ci = &self.keys.ci[self.ci];
        let builds = self.append(ns.par_iter().map(|&n| build(n, ci)).collect());
        let (qa, security) = (&self.keys.qa, &self.keys.security);
        let validations: Vec<Envelope> = ns
            .par_iter()
            .zip(&builds)
            .flat_map_iter(|(&n, &b)| {
                [validation(n, b, &["unit", "lint", "integration"], qa), validation(n, b, &["scan", "sbom"], security)]
            })
            .collect();
        self.append(validations);
        for (env, every) in [("dev", 1), ("staging", 3), ("prod", 9)] {
            let chosen: Vec<u32> = ns.iter().copied().filter(|n| n % every == 0).collect();
            let promotions = self.promotions(&chosen, env);
            self.append(promotions);
        }
    }

    fn promotions(&self, ns: &[u32], env: &str) -> Vec<Envelope> {
        let promoter = self.keys.release.public().id();
        ns.par_iter()
            .map(|&n| {
                let request = Request { digest: Some(digest(n)), to: env, promoter, tag: None };
                match self.ledger.decide(&request).unwrap() {
                    Decision::Allow(allowed) => {
                        let input = PromotionInput {
                            time: T0 + 200 + n as u64,
                            binding: binding(env, n),
                            ..Default::default()
                        };
                        let s = record::promotion_statement(&image(n), digest(n), env, allowed, input);
                        sign(&s, &self.keys.release)
                    }
                    Decision::Deny(why) => panic!("image {n} to {env} denied: {why:?}"),
                }
            })
            .collect()
    }

    fn rotate_ci_key(&mut self) {
        self.ci = (self.ci + 1) % CI_KEYS;
        let s = policy(&self.keys, self.ci, Some(self.policy_ref));
        self.policy_ref = self.append(vec![sign(&s, &self.keys.root)])[0];
    }
}

fn main() {
    let mut entries: u64 = 1_000_000;
    let mut dir: Option<PathBuf> = None;
    let mut json_out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--entries" => entries = args.next().and_then(|v| v.parse().ok()).expect("--entries N"),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--json" => json_out = args.next().map(PathBuf::from),
            "--help" | "-h" => {
                println!("cargo run --release --example scale -- [--entries N] [--dir DIR] [--json FILE]");
                return;
            }
            other => panic!("unknown argument {other} (try --help)"),
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = dir.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&base).unwrap();
    let path = base.join("ledger");
    let started = Instant::now();
    eprintln!("measuring ceilings…");
    let ceil = ceilings(&base);

    let keys = Keys {
        root: key("root"),
        ci: (0..CI_KEYS).map(|i| key(&format!("ci-{i}"))).collect(),
        qa: key("qa"),
        security: key("security"),
        release: key("release"),
        log: key("log"),
    };
    let ledger = Ledger::new(LocalStore::create(&path, Duration::from_secs(5)).unwrap()).with_log_key(key("log"));
    let genesis = ledger.init(sign(&policy(&keys, 0, None), &keys.root), T0).unwrap();
    GENESIS.set(genesis.hash()).expect("one ledger per run");
    let mut f = Filler {
        ledger,
        keys,
        next_image: 0,
        ci: 0,
        policy_ref: genesis.entry_ref(),
        batched_entries: 0,
        batched_time: Duration::ZERO,
        batches: 0,
    };
    // The digest whose promotion to dev is decided as the ledger grows: built
    // and validated, never promoted, so its decision stays the same.
    let probe = u32::MAX;
    let b = f.append(vec![build(probe, &f.keys.ci[0])])[0];
    f.append(vec![
        validation(probe, b, &["unit", "lint", "integration"], &f.keys.qa),
        validation(probe, b, &["scan", "sbom"], &f.keys.security),
    ]);
    let probe_request =
        Request { digest: Some(digest(probe)), to: "dev", promoter: f.keys.release.public().id(), tag: None };

    let marks: Vec<u64> = [1_000u64, 100_000, 1_000_000].into_iter().filter(|m| *m <= entries).collect();
    let mut decisions = Vec::new();
    let mut next_rotation = entries / 4;
    eprintln!("filling to {entries} entries…");
    let fill_started = Instant::now();
    for &mark in marks.iter().chain(std::iter::once(&entries)) {
        while f.count() < mark {
            let left = mark - f.count();
            // About 4.4 entries per image.
            let images = ((left as f64 / 4.45).ceil() as u32).clamp(1, IMAGES_PER_ROUND);
            f.round(images);
            if f.count() >= next_rotation && next_rotation < entries {
                f.rotate_ci_key();
                next_rotation += entries / 4;
            }
        }
        if marks.contains(&mark) && !decisions.iter().any(|(m, _, _)| *m == mark) {
            let size = f.count();
            let s = Sample::of(SAMPLES, |_| assert!(f.ledger.decide(&probe_request).unwrap().is_allowed()));
            eprintln!("  gate decision at {size} entries: median {:?}", s.median());
            decisions.push((mark, size, s));
        }
    }
    let fill_time = fill_started.elapsed();
    let total = f.count();
    eprintln!("filled {total} entries in {fill_time:.1?}");

    // Durable single appends on the full ledger.
    let singles: Vec<Envelope> = (0..300u32).map(|i| build(2_000_000_000 + i, &f.keys.ci[f.ci])).collect();
    let t = Instant::now();
    for e in singles {
        f.ledger.append(e, T0 + 20_000).unwrap();
    }
    let single_rate = rate(300, t.elapsed());
    let total = f.count();

    // Full verification of the store.
    eprintln!("verifying {total} entries…");
    let t = Instant::now();
    let mut signatures = 0u64;
    let report = f.ledger.verify(None, |v| signatures += v.signers().len() as u64).unwrap();
    let verify_time = t.elapsed();
    assert_eq!(report.entries, total);
    let genesis_hash = report.genesis.unwrap();

    // An exported bundle, verified offline.
    let bundle_path = base.join("ledger.bundle");
    export(&f.ledger, &bundle_path);
    let bundle_bytes = std::fs::metadata(&bundle_path).unwrap().len();
    eprintln!("verifying the bundle ({bundle_bytes} bytes)…");
    let t = Instant::now();
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&bundle_path).unwrap());
    let b = provledger::bundle::verify_bundle(file, &genesis_hash, None, |_| {}).unwrap();
    let bundle_time = t.elapsed();
    assert_eq!(b.chain.entries, total);
    std::fs::remove_file(&bundle_path).unwrap();

    // Proofs at the full size: Merkle inclusion and consistency, and the
    // promotion proof an auditor is handed.
    let checkpoint = f.ledger.checkpoint().unwrap().checkpoint;
    let mut pick = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_index = || {
        pick ^= pick << 13;
        pick ^= pick >> 7;
        pick ^= pick << 17;
        pick % total
    };
    let indexes: Vec<u64> = (0..SAMPLES).map(|_| random_index()).collect();
    let mut proofs = Vec::with_capacity(SAMPLES);
    let incl_gen = Sample::of(SAMPLES, |i| proofs.push(f.ledger.inclusion_proof(indexes[i], total).unwrap()));
    let leaves: Vec<_> = indexes.iter().map(|&i| leaf_of(&f.ledger.read(i).unwrap().entry.hash())).collect();
    let incl_verify = Sample::of(SAMPLES, |i| {
        tree::verify_inclusion(indexes[i], total, &leaves[i], &proofs[i], &checkpoint.root).unwrap()
    });
    let sizes: Vec<u64> = (0..SAMPLES).map(|_| random_index().max(1)).collect();
    let roots: Vec<_> = sizes.iter().map(|&s| f.ledger.root_at(s).unwrap()).collect();
    let mut cproofs = Vec::with_capacity(SAMPLES);
    let cons_gen = Sample::of(SAMPLES, |i| cproofs.push(f.ledger.consistency_proof(sizes[i], total).unwrap()));
    let cons_verify = Sample::of(SAMPLES, |i| {
        tree::verify_consistency(sizes[i], total, &cproofs[i], &roots[i], &checkpoint.root).unwrap()
    });
    let promoted: Vec<u32> = (0..SAMPLES as u32).map(|i| (i * 9) % f.next_image).collect();
    let mut pproofs = Vec::with_capacity(SAMPLES);
    let prove_gen = Sample::of(SAMPLES, |i| {
        pproofs.push(provledger::proof::prove(&f.ledger, &digest(promoted[i]), "dev").unwrap())
    });
    let prove_verify = Sample::of(SAMPLES, |i| {
        pproofs[i].verify(&genesis_hash).unwrap();
    });

    // A crash (the log dropped without its clean-close work), then reopening;
    // a clean close, then reopening; the indexes made anew from the chain.
    eprintln!("reopening after a crash, then rebuilding the indexes…");
    let (log, indexes) = f.ledger.into_store().into_parts();
    log.crash();
    drop(indexes);
    let disk_before_reindex = du(&path);
    // The log alone, then (crashed again) the log and its indexes.
    let t = Instant::now();
    let log = provledger::store::segment::SegmentLog::open(&path.join(LOG_DIR)).unwrap();
    let reopen_log_time = t.elapsed();
    log.crash();
    let t = Instant::now();
    let store = LocalStore::open(&path, Duration::from_secs(5)).unwrap();
    let reopen_time = t.elapsed();
    assert_eq!(store.head().unwrap().unwrap().count, total);
    drop(store);
    let t = Instant::now();
    let store = LocalStore::open(&path, Duration::from_secs(5)).unwrap();
    let reopen_clean_time = t.elapsed();
    let t = Instant::now();
    assert_eq!(store.reindex().unwrap(), total);
    let reindex_time = t.elapsed();
    drop(store);
    let disk_after_reindex = du(&path);
    let disk = disk_before_reindex;
    let (log_disk, index_disk) = (du(&path.join(LOG_DIR)), du(&path.join(INDEX_DIR)));
    let peak_rss = peak_rss_bytes();
    let elapsed = started.elapsed();

    // ------------------------------------------------------------- report
    let verify_rate = rate(total, verify_time);
    let verify_sig_rate = rate(signatures, verify_time);
    let bundle_rate = rate(total, bundle_time);
    let batched_rate = rate(f.batched_entries, f.batched_time);
    let avg_entry = bundle_bytes as f64 / total as f64;
    let sha_entries = ceil.sha256_mb_s_all_cores * 1e6 / avg_entry;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!("provledger scale harness: {total} entries, {cores} cores, {:.0} s in all", elapsed.as_secs_f64());
    println!();
    println!("{:<44} {:>16} {:>22} {:>8}", "figure", "measured", "ceiling (same run)", "ratio");
    let row = |name: &str, measured: String, ceiling: String, ratio: Option<f64>| {
        let r = ratio.map_or(String::new(), |r| format!("{:.0}%", r * 100.0));
        println!("{name:<44} {measured:>16} {ceiling:>22} {r:>8}");
    };
    let per_s = |v: f64| format!("{v:.0}/s");
    row(
        "full verify (entries)",
        per_s(verify_rate),
        format!("{} sig", per_s(ceil.batch_verify_per_s)),
        Some(verify_sig_rate / ceil.batch_verify_per_s),
    );
    row("full verify (signatures)", per_s(verify_sig_rate), per_s(ceil.batch_verify_per_s), None);
    row(
        "verify --bundle (entries)",
        per_s(bundle_rate),
        format!("{} sig", per_s(ceil.batch_verify_per_s)),
        Some(bundle_rate / ceil.batch_verify_per_s),
    );
    row(
        "  strict one-by-one ed25519, all cores",
        per_s(ceil.strict_verify_per_s),
        per_s(ceil.batch_verify_per_s),
        Some(ceil.strict_verify_per_s / ceil.batch_verify_per_s),
    );
    row(
        "durable append, one by one",
        per_s(single_rate),
        format!("{} fsync", per_s(ceil.fsync_per_s)),
        Some(single_rate / ceil.fsync_per_s),
    );
    row(
        "  against appending fdatasync",
        per_s(single_rate),
        format!("{} fsync", per_s(ceil.fsync_append_per_s)),
        Some(single_rate / ceil.fsync_append_per_s),
    );
    row(
        &format!("durable append_batch ({} batches)", f.batches),
        per_s(batched_rate),
        format!("{} sig", per_s(ceil.batch_verify_per_s)),
        Some(batched_rate / ceil.batch_verify_per_s),
    );
    row(
        "entry hashing bound (SHA-256, all cores)",
        per_s(sha_entries),
        format!("{:.0} MB/s", ceil.sha256_mb_s_all_cores),
        None,
    );
    row("SHA-256, one core", format!("{:.0} MB/s", ceil.sha256_mb_s_one_core), String::new(), None);
    for (mark, size, s) in &decisions {
        row(
            &format!("gate decision at {mark} ({size})"),
            format!("{:?}", s.median()),
            format!("p99 {:?}", s.p99()),
            None,
        );
    }
    row("inclusion proof: generate", format!("{:?}", incl_gen.median()), format!("p99 {:?}", incl_gen.p99()), None);
    row("inclusion proof: verify", format!("{:?}", incl_verify.median()), format!("p99 {:?}", incl_verify.p99()), None);
    row("consistency proof: generate", format!("{:?}", cons_gen.median()), format!("p99 {:?}", cons_gen.p99()), None);
    row(
        "consistency proof: verify",
        format!("{:?}", cons_verify.median()),
        format!("p99 {:?}", cons_verify.p99()),
        None,
    );
    row("promotion proof: generate", format!("{:?}", prove_gen.median()), format!("p99 {:?}", prove_gen.p99()), None);
    row(
        "promotion proof: verify",
        format!("{:?}", prove_verify.median()),
        format!("p99 {:?}", prove_verify.p99()),
        None,
    );
    row(
        "disk bytes per entry (log + indexes)",
        format!("{:.0}", disk as f64 / total as f64),
        format!("{avg_entry:.0} entry"),
        Some(disk as f64 / total as f64 / avg_entry),
    );
    row("  of which the log", format!("{:.0}", log_disk as f64 / total as f64), String::new(), None);
    row("  the indexes, after reindex", format!("{:.0}", index_disk as f64 / total as f64), String::new(), None);
    row("  all, after reindex", format!("{:.0}", disk_after_reindex as f64 / total as f64), String::new(), None);
    row("reopen after a crash", format!("{reopen_time:.2?}"), format!("clean: {reopen_clean_time:.2?}"), None);
    row("  the log alone", format!("{reopen_log_time:.2?}"), String::new(), None);
    row("reindex", per_s(rate(total, reindex_time)), format!("{reindex_time:.1?}"), None);
    row("peak RSS", format!("{:.0} MiB", peak_rss as f64 / (1 << 20) as f64), String::new(), None);

    let doc = json!({
        "entries": total,
        "cores": cores,
        "seconds": elapsed.as_secs_f64(),
        "fill_seconds": fill_time.as_secs_f64(),
        "ceilings": {
            "ed25519_verify_batch_per_s": ceil.batch_verify_per_s,
            "ed25519_verify_strict_per_s": ceil.strict_verify_per_s,
            "sha256_mb_s_one_core": ceil.sha256_mb_s_one_core,
            "sha256_mb_s_all_cores": ceil.sha256_mb_s_all_cores,
            "fsync_per_s": ceil.fsync_per_s,
            "fsync_append_per_s": ceil.fsync_append_per_s,
        },
        "verify": {
            "entries_per_s": verify_rate,
            "signatures_per_s": verify_sig_rate,
            "ratio_to_batch_ceiling": verify_sig_rate / ceil.batch_verify_per_s,
        },
        "verify_bundle": { "entries_per_s": bundle_rate, "ratio_to_batch_ceiling": bundle_rate / ceil.batch_verify_per_s, "bundle_bytes": bundle_bytes },
        "append_one_by_one": {
            "per_s": single_rate,
            "ratio_to_fsync": single_rate / ceil.fsync_per_s,
            "ratio_to_fsync_append": single_rate / ceil.fsync_append_per_s,
        },
        "append_batch": { "entries_per_s": batched_rate, "batches": f.batches, "entries": f.batched_entries },
        "gate_decision": decisions.iter().map(|(m, size, s)| json!({ "mark": m, "entries": size, "time": s.json() })).collect::<Vec<_>>(),
        "proofs": {
            "inclusion_generate": incl_gen.json(),
            "inclusion_verify": incl_verify.json(),
            "consistency_generate": cons_gen.json(),
            "consistency_verify": cons_verify.json(),
            "promotion_generate": prove_gen.json(),
            "promotion_verify": prove_verify.json(),
        },
        "disk_bytes_per_entry": disk as f64 / total as f64,
        "disk_bytes_per_entry_log": log_disk as f64 / total as f64,
        "disk_bytes_per_entry_indexes_after_reindex": index_disk as f64 / total as f64,
        "disk_bytes_per_entry_after_reindex": disk_after_reindex as f64 / total as f64,
        "reopen_log_seconds": reopen_log_time.as_secs_f64(),
        "reopen_seconds": reopen_time.as_secs_f64(),
        "reopen_clean_seconds": reopen_clean_time.as_secs_f64(),
        "reindex_entries_per_s": rate(total, reindex_time),
        "entry_bytes_mean": avg_entry,
        "peak_rss_bytes": peak_rss,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap();
    println!();
    println!("{text}");
    if let Some(p) = json_out {
        std::fs::write(p, text + "\n").unwrap();
    }
}

/// Writes a bundle of the whole ledger, as `provledger export` does.
fn export(ledger: &Ledger<LocalStore>, path: &Path) {
    use std::io::Write as _;
    let cp = ledger.checkpoint().unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    provledger::bundle::write_header(&mut w, &cp.note, cp.checkpoint.size).unwrap();
    for item in ledger.store().entries_from(0) {
        let (_, bytes) = item.unwrap();
        provledger::bundle::write_entry(&mut w, &bytes).unwrap();
    }
    w.flush().unwrap();
}

/// Bytes the files under `dir` occupy on disk.
fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { du(&entry.path()) } else { meta.blocks() * 512 };
    }
    total
}

/// The process's peak resident set (VmHWM).
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
