//! The provledger side of `benches/compare.sh`: exports signed DSSE envelopes
//! in their JSON form, and verifies such a file the way `provledger verify`
//! checks signatures (batches of ed25519 on all cores, strict checks of any
//! batch that fails).
//!
//! `cargo run --release --example envelopes -- export --count N --out DIR`
//! `cargo run --release --example envelopes -- verify DIR`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use std::path::PathBuf;
use std::time::Instant;

use provledger::core::dsse::Envelope;
use provledger::core::keys::KeyId;
use provledger::sigcheck::{self, Keyring, Mode};
use rayon::prelude::*;
use serde_json::{Value, json};

/// The signers of the exported envelopes: statements of one ledger.
const SIGNERS: [&str; 4] = ["ci", "ci2", "qa", "release"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("export") => {
            let mut count = 10_000u32;
            let mut out = PathBuf::from(".");
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--count" => count = it.next().and_then(|v| v.parse().ok()).expect("--count N"),
                    "--out" => out = PathBuf::from(it.next().expect("--out DIR")),
                    other => panic!("unknown argument {other}"),
                }
            }
            export(count, &out);
        }
        Some("verify") => verify(&PathBuf::from(args.get(1).expect("verify DIR"))),
        _ => eprintln!("usage: envelopes export --count N --out DIR | envelopes verify DIR"),
    }
}

fn export(count: u32, out: &std::path::Path) {
    std::fs::create_dir_all(out).unwrap();
    let envelopes: Vec<Value> = (0..count)
        .into_par_iter()
        .map(|i| {
            let signer = SIGNERS[i as usize % SIGNERS.len()];
            json!({ "index": i, "envelope": vectors::sign(&vectors::build(i), signer).to_json_value() })
        })
        .collect();
    let keys: serde_json::Map<String, Value> = SIGNERS
        .iter()
        .map(|s| {
            let k = vectors::key(s).public();
            (k.id().to_string(), Value::String(k.to_hex()))
        })
        .collect();
    std::fs::write(out.join("envelopes.json"), serde_json::to_vec(&envelopes).unwrap()).unwrap();
    std::fs::write(out.join("keys.json"), serde_json::to_vec(&keys).unwrap()).unwrap();
}

/// Reads, parses and verifies every envelope; prints the time as JSON. The
/// clock starts before the file is read, as the Python side's does.
fn verify(dir: &std::path::Path) {
    let started = Instant::now();
    let bytes = std::fs::read(dir.join("envelopes.json")).unwrap();
    // Split the array without building it, then parse each envelope on all cores.
    let entries: Vec<&serde_json::value::RawValue> = serde_json::from_slice(&bytes).unwrap();
    let keys: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let mut keyring = Keyring::default();
    for (id, hex) in &keys {
        let key = provledger::core::keys::PublicKey::from_hex(hex.as_str().unwrap()).unwrap();
        assert_eq!(key.id(), KeyId::parse(id).unwrap());
        keyring.add(key);
    }
    let envelopes: Vec<Envelope> = entries
        .into_par_iter()
        .map(|raw| {
            let mut e: Value = serde_json::from_str(raw.get()).unwrap();
            Envelope::from_json_value(e["envelope"].take()).unwrap()
        })
        .collect();
    let refs: Vec<&Envelope> = envelopes.iter().collect();
    let checks = sigcheck::check_all(&refs, &keyring, Mode::Batch);
    let seconds = started.elapsed().as_secs_f64();
    let valid = checks.iter().filter(|c| c.iter().all(|s| s.is_some_and(|s| s.valid))).count();
    assert_eq!(valid, envelopes.len(), "every envelope verifies");
    println!("{}", json!({ "verifier": "provledger", "count": envelopes.len(), "seconds": seconds }));
}
