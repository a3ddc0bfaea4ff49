//! Criterion benchmarks for registry lookups against a real registry:
//! Debian's `docker-registry` on loopback (as the tests start it), one
//! umoci-made image pushed with skopeo.
//!
//! - `resolve`: tag → manifest (hash-checked) → its config blob (platform),
//!   in-process, the work `record build` adds.
//! - `exists`: one manifest read by digest, what `promote` adds.
//! - `record_build/{offline,registry}`: the whole command as a process, so
//!   the registry's share of `record build` is their difference.
//!
//! `cargo bench --bench registry` (needs docker-registry, skopeo and umoci,
//! which `scripts/test.sh` installs).

#[path = "../tests/common/registry.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use provledger::core::image_ref::ImageRef;
use provledger::registry::{Options, Registry};

const BIN: &str = env!("CARGO_BIN_EXE_provledger");

fn provledger(dir: &Path, host: &str, args: &[&str]) {
    let out = Command::new(BIN)
        .env("PROVLEDGER_DIR", dir.join("ledger"))
        .args(["--insecure-registry", host])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn registry(c: &mut Criterion) {
    let reg = harness::TestRegistry::start();
    let host = reg.host();
    let layout = harness::Layout::new();
    layout.make("bench", "amd64", "benchmark image");
    let digest = layout.push("bench", &host, "bench/app", "1.0");
    let image: ImageRef = format!("{host}/bench/app:1.0").parse().unwrap();
    let client = Registry::new(&Options::new(vec![host.clone()], Duration::from_secs(10))).unwrap();

    let mut g = c.benchmark_group("registry");
    g.bench_function("resolve", |b| b.iter(|| client.resolve(&image).unwrap()));
    let pinned = image.with_digest(digest.parse().unwrap());
    g.bench_function("exists", |b| b.iter(|| client.exists(&pinned, pinned.digest().unwrap()).unwrap()));
    g.finish();

    // A ledger from the example keys; each run records a distinct build.
    let dir = tempfile::tempdir().unwrap();
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
    for name in ["root", "ci", "ledger"] {
        let to = dir.path().join(format!("{name}.key"));
        std::fs::copy(keys.join(format!("{name}.key")), &to).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::copy(keys.join("policy.toml"), dir.path().join("policy.toml")).unwrap();
    for f in std::fs::read_dir(&keys).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "pub") {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let p = |n: &str| dir.path().join(n).display().to_string();
    provledger(
        dir.path(),
        &host,
        &["init", "--root-key", &p("root.key"), "--policy", &p("policy.toml"), "--log-key", &p("ledger.key")],
    );
    let n = AtomicU64::new(0);
    let sha = || format!("{:040x}", n.fetch_add(1, Ordering::Relaxed));
    let tag = image.to_string();
    let with_digest = pinned.to_string();
    let ci = p("ci.key");
    let mut g = c.benchmark_group("record_build");
    g.sample_size(30);
    g.bench_function("offline", |b| {
        b.iter(|| {
            provledger(
                dir.path(),
                &host,
                &["record", "build", "--key", &ci, "--image", &with_digest, "--git-sha", &sha(), "--offline"],
            )
        })
    });
    g.bench_function("registry", |b| {
        b.iter(|| {
            provledger(dir.path(), &host, &["record", "build", "--key", &ci, "--image", &tag, "--git-sha", &sha()])
        })
    });
    g.finish();
}

criterion_group!(benches, registry);
criterion_main!(benches);
