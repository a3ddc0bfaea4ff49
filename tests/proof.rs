//! Promotion proofs: produced for a real promotion, verified offline, and
//! refused when any part of them is altered.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Env, digest, image};
use provledger::core::hash::EntryHash;
use provledger::proof::{PromotionProof, ProofError};
use serde_json::Value;

/// A ledger where `image("proof")` went dev -> staging -> prod, among other traffic.
fn promoted() -> (Env, String) {
    let (env, genesis) = Env::initialised_with_log_key();
    env.build(&image("other"));
    env.release_to_prod(&image("proof"));
    env.validate(&image("other"), &["unit=pass"]);
    env.promote(&image("other"), "dev");
    (env, genesis)
}

fn prove(env: &Env, seed: &str, to: &str) -> Value {
    let out = env.path(&format!("{seed}-{to}.proof.json"));
    env.ok(&["prove", &digest(seed), "--env", to, "--out", &out]);
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

fn check(proof: &Value, genesis: &str) -> Result<provledger::proof::ProofReport, ProofError> {
    PromotionProof::parse(proof.to_string().as_bytes())?.verify(&EntryHash::parse(genesis).unwrap())
}

#[test]
fn a_proof_of_a_promotion_verifies_offline() {
    let (env, genesis) = promoted();
    let proof = prove(&env, "proof", "prod");
    let path = env.path("proof-prod.proof.json");
    // Offline: no store.
    std::fs::remove_dir_all(env.ledger()).unwrap();
    let v = env.json(&["verify", "--proof", &path, "--genesis", &genesis]);
    assert_eq!(v["digest"], digest("proof"));
    assert_eq!(v["environment"], "prod");
    assert_eq!(v["from"], "staging");
    assert_eq!(v["promotion"]["index"], proof["promotion"]);
    // It carries the policy, the build, both validations and the path
    // through dev and staging, nothing of the other image.
    let indexes: Vec<u64> =
        proof["entries"].as_array().unwrap().iter().map(|e| e["inclusion"]["leafIndex"].as_u64().unwrap()).collect();
    assert_eq!(indexes, vec![0, 2, 3, 4, 5, 6, 7]);
    let report = check(&proof, &genesis).unwrap();
    assert_eq!(report.build.index, 2);
    assert_eq!(report.validations.iter().map(|r| r.index).collect::<Vec<_>>(), vec![3, 6]);
    assert_eq!(report.checkpoint.checkpoint.size, 10);
    // Against another genesis it does not hold.
    let out = env.fails(4, &["verify", "--proof", &path, "--genesis", &"cd".repeat(32)]);
    assert!(out.contains("genesis"), "{out}");
}

#[test]
fn no_proof_for_what_was_never_promoted() {
    let (env, _) = promoted();
    let out = env.path("never.json");
    for (seed, to) in [("never", "dev"), ("other", "prod"), ("other", "staging"), ("proof", "qa")] {
        let msg = env.fails(3, &["prove", &digest(seed), "--env", to, "--out", &out]);
        assert!(msg.contains(&format!("{} was never promoted to {to}", digest(seed))), "{msg}");
        assert!(!std::path::Path::new(&out).exists());
    }
    // A reference carrying the digest works like the digest.
    prove(&env, "other", "dev");
}

/// Every alteration of the proof is refused, each for a reason of its own.
#[test]
fn any_altered_entry_hash_or_checkpoint_fails() {
    let (env, genesis) = promoted();
    let proof = prove(&env, "proof", "prod");
    check(&proof, &genesis).unwrap();
    let refused = |what: String, p: &Value| match check(p, &genesis) {
        Ok(_) => panic!("{what}: accepted"),
        Err(ProofError::NewerVersion(_)) => panic!("{what}: claims a newer format"),
        Err(_) => {}
    };
    let entries = proof["entries"].as_array().unwrap();
    for (n, e) in entries.iter().enumerate() {
        let bytes = STANDARD.decode(e["entry"].as_str().unwrap()).unwrap();
        // Every byte of every entry, one bit flipped.
        for pos in 0..bytes.len() {
            let mut b = bytes.clone();
            b[pos] ^= 0x01;
            let mut p = proof.clone();
            p["entries"][n]["entry"] = STANDARD.encode(&b).into();
            refused(format!("entry {n} byte {pos}"), &p);
        }
        // Every hash of its inclusion proof.
        for h in 0..e["inclusion"]["hashes"].as_array().unwrap().len() {
            let mut raw = STANDARD.decode(e["inclusion"]["hashes"][h].as_str().unwrap()).unwrap();
            raw[7] ^= 0x80;
            let mut p = proof.clone();
            p["entries"][n]["inclusion"]["hashes"][h] = STANDARD.encode(&raw).into();
            refused(format!("entry {n} inclusion hash {h}"), &p);
            let mut p = proof.clone();
            p["entries"][n]["inclusion"]["hashes"].as_array_mut().unwrap().remove(h);
            refused(format!("entry {n} inclusion hash {h} removed"), &p);
        }
        for field in ["leafIndex", "treeSize"] {
            let mut p = proof.clone();
            p["entries"][n]["inclusion"][field] = (e["inclusion"][field].as_u64().unwrap() + 1).into();
            refused(format!("entry {n} {field}"), &p);
        }
        // Leaving the entry out.
        let mut p = proof.clone();
        p["entries"].as_array_mut().unwrap().remove(n);
        refused(format!("entry {n} removed"), &p);
    }
    // Entries out of order.
    let mut p = proof.clone();
    p["entries"].as_array_mut().unwrap().swap(2, 3);
    refused("entries swapped".into(), &p);

    // Every byte of the checkpoint note.
    let note = proof["checkpoint"].as_str().unwrap().as_bytes().to_vec();
    for pos in 0..note.len() {
        let mut b = note.clone();
        b[pos] ^= 0x01;
        let Ok(text) = String::from_utf8(b) else { continue };
        let mut p = proof.clone();
        p["checkpoint"] = text.into();
        refused(format!("checkpoint byte {pos}"), &p);
    }
    // A checkpoint over the same tree, signed by another key under the log's name.
    let text = proof["checkpoint"].as_str().unwrap().split_once("\n\n").unwrap().0.to_string() + "\n";
    let origin = text.lines().next().unwrap().to_string();
    let other = provledger::keyfile::read_secret(std::path::Path::new(&env.key("release")), false).unwrap();
    let mut p = proof.clone();
    p["checkpoint"] = provledger::core::note::sign_note(&text, &origin, &other).unwrap().into();
    refused("checkpoint by another key".into(), &p);
    // The verifier key swapped for that key's.
    let mut p = proof.clone();
    p["verifierKey"] = provledger::core::note::NoteVerifier::new(&origin, other.public()).unwrap().to_text().into();
    refused("verifier key of another key".into(), &p);

    // The claim itself.
    for (field, value) in [
        ("digest", Value::from(digest("other"))),
        ("environment", "staging".into()),
        ("promotion", (proof["promotion"].as_u64().unwrap() - 2).into()),
        ("promotion", 99.into()),
    ] {
        let mut p = proof.clone();
        p[field] = value.clone();
        refused(format!("{field} = {value}"), &p);
    }
    let mut p = proof.clone();
    p["extra"] = 1.into();
    refused("unknown field".into(), &p);

    // Through the binary: an altered file exits 4 and names the problem.
    let path = env.path("altered.json");
    let mut p = proof.clone();
    p["environment"] = "staging".into();
    std::fs::write(&path, p.to_string()).unwrap();
    let out = env.fails(4, &["verify", "--proof", &path, "--genesis", &genesis]);
    assert!(out.contains("promotes to prod, not staging"), "{out}");
    std::fs::write(&path, b"\x00garbage").unwrap();
    env.fails(4, &["verify", "--proof", &path, "--genesis", &genesis]);
    let mut p = proof.clone();
    p["version"] = 2.into();
    std::fs::write(&path, p.to_string()).unwrap();
    let out = env.fails(1, &["verify", "--proof", &path, "--genesis", &genesis]);
    assert!(out.contains("upgrade"), "{out}");
}

#[test]
fn a_proof_stays_valid_as_the_ledger_grows() {
    let (env, genesis) = promoted();
    let proof = prove(&env, "proof", "prod");
    let old_path = env.path("proof-prod.proof.json");
    env.build(&image("after"));
    env.validate(&image("after"), &["unit=pass"]);
    env.ok(&["verify", "--proof", &old_path, "--genesis", &genesis]);
    let newer = prove(&env, "proof", "prod");
    assert_eq!(newer["promotion"], proof["promotion"]);
    assert_ne!(newer["checkpoint"], proof["checkpoint"]);
    check(&newer, &genesis).unwrap();
}
