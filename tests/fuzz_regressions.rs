//! Replays, through the fuzz targets' own bodies (`provledger::fuzz`), every
//! input a fuzz run ever crashed on (`fuzz/regressions/<target>/`, filled
//! by `scripts/fuzz.sh`), and a deterministic sweep of truncations and bit
//! flips of real inputs: an entry, an envelope, a statement, a bundle, a
//! proof, a checkpoint, a policy. Any panic fails the test.

mod common;

use std::path::Path;

use common::{Env, digest, image};
use provledger::fuzz::TARGETS;
use provledger::store::Store as _;

fn target(name: &str) -> fn(&[u8]) {
    TARGETS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no fuzz target {name}")).1
}

#[test]
fn every_recorded_crash_input_is_handled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (name, body) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
        for f in dir {
            let path = f.unwrap().path();
            body(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    println!("replayed {replayed} recorded crash inputs");
    // Every target directory named there is a real target.
    for d in std::fs::read_dir(&root).unwrap() {
        let d = d.unwrap();
        if d.file_type().unwrap().is_dir() {
            target(d.file_name().to_str().unwrap());
        }
    }
}

/// Each truncation and single-bit flip (of the first `limit` bytes) of `seed`.
fn sweep(name: &str, seed: &[u8], limit: usize) -> usize {
    let body = target(name);
    body(seed);
    let mut n = 1;
    for len in 0..seed.len().min(limit) {
        body(&seed[..len]);
        n += 1;
    }
    for i in 0..seed.len().min(limit) {
        for bit in [0x01u8, 0x80] {
            let mut m = seed.to_vec();
            m[i] ^= bit;
            body(&m);
            n += 1;
        }
    }
    n
}

#[test]
fn truncated_and_flipped_real_inputs_never_panic() {
    let (env, _) = Env::initialised_with_log_key();
    let img = image("fuzz");
    env.build(&img);
    env.validate(&img, &["unit=pass"]);
    env.promote(&img, "dev");
    let bundle = env.path("b.bundle");
    env.ok(&["export", "--out", &bundle]);
    let proof = env.path("p.proof");
    env.ok(&["prove", &digest("fuzz"), "--env", "dev", "--out", &proof]);
    let log = env.json(&["log"]);
    let envelope = serde_json::to_vec(&log[1]["envelope"]).unwrap();
    let statement = serde_json::to_vec(&common::statement(&log, 1)).unwrap();
    let entry = env.writer().store().get(1).unwrap().unwrap();
    let note = env.json(&["checkpoint"])["note"].as_str().unwrap().to_string();
    let policy = std::fs::read(env.path("policy.toml")).unwrap();
    let mut runs = 0;
    runs += sweep("entry", &entry, usize::MAX);
    runs += sweep("dsse_envelope", &envelope, 600);
    runs += sweep("statement", &statement, 600);
    runs += sweep("bundle", &std::fs::read(&bundle).unwrap(), 400);
    runs += sweep("proof", &std::fs::read(&proof).unwrap(), 300);
    runs += sweep("checkpoint_note", note.as_bytes(), usize::MAX);
    runs += sweep("policy", &policy, usize::MAX);
    runs += sweep("image_ref", img.as_bytes(), usize::MAX);
    runs += sweep("digest", digest("fuzz").as_bytes(), usize::MAX);
    assert!(runs > 5000, "the sweep ran {runs} inputs");
}
