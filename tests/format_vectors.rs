//! The committed format vectors are exactly what the generator produces, and
//! each one is accepted or rejected, at the named entry, as it says.

#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use provledger::core::hash::EntryHash;
use provledger::verify::verify_chain;
use serde_json::Value;

fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-format/vectors")
}

#[test]
fn committed_vectors_match_the_generator() {
    let generated = vectors::all();
    for (name, value) in &generated {
        let text = std::fs::read_to_string(dir().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; run cargo run --example gen_vectors"));
        let committed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(&committed, value, "{name} differs from the generator; run cargo run --example gen_vectors");
    }
    let on_disk = std::fs::read_dir(dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(on_disk, generated.len(), "stale files in ledger-format/vectors");
    // The README lists every file, with its expectation and reason code.
    let readme = std::fs::read_to_string(dir().join("README.md")).unwrap();
    for (name, value) in &generated {
        let row = match (value["expect"].as_str(), value["reason"].as_str()) {
            (Some(expect), Some(reason)) => format!("| `{name}` | {expect} | `{reason}` |"),
            (Some(expect), None) => format!("| `{name}` | {expect} |  |"),
            (None, _) => format!("| `{name}` | - |  |"),
        };
        assert!(readme.contains(&row), "ledger-format/vectors/README.md lacks the row {row:?}");
    }
}

#[test]
fn every_vector_meets_its_expectation() {
    let mut checked = 0;
    let mut reasons = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(expect) = v["expect"].as_str() else { continue };
        let id = v["id"].as_str().unwrap();
        if v["kind"] == "checkpoint" {
            let verifier = provledger::core::note::NoteVerifier::parse(v["verifier_key"].as_str().unwrap()).unwrap();
            let opened = provledger::ledger::SignedCheckpoint::open(v["note"].as_str().unwrap(), &verifier);
            assert_eq!(opened.is_ok(), expect == "accept", "{id}: {opened:?}");
            checked += 1;
            continue;
        }
        let entries: Vec<Vec<u8>> =
            v["entries"].as_array().unwrap().iter().map(|h| hex::decode(h.as_str().unwrap()).unwrap()).collect();
        let items = entries.into_iter().enumerate().map(|(i, b)| Ok((i as u64, b)));
        let mut hashes = Vec::new();
        let genesis = v["genesis"].as_str().map(|g| EntryHash::parse(g).unwrap());
        let result = verify_chain(items, genesis.as_ref(), |e| hashes.push(e.hash().to_string()));
        match expect {
            "accept" => {
                let report = result.unwrap_or_else(|e| panic!("{id}: {e}"));
                let want: Vec<String> =
                    v["entry_hashes"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect();
                assert_eq!(hashes, want, "{id}: entry hashes");
                assert_eq!(report.entries as usize, want.len());
            }
            "reject" => {
                let err = match result {
                    Ok(_) => panic!("{id}: accepted"),
                    Err(e) => e,
                };
                assert_eq!(err.index, v["reject_at"].as_u64().unwrap(), "{id}: {err}");
                assert_eq!(err.code.as_str(), v["reason"].as_str().unwrap(), "{id}: {err}");
                reasons.insert(err.code.as_str());
            }
            other => panic!("{id}: unknown expectation {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 47);
    // Every chain rule has a reject vector: each code but those no chain
    // of bytes can show (a ledger's own records, I/O, the append-only rule).
    use provledger::verify::Reason;
    for code in Reason::ALL {
        if matches!(code, Reason::Stored | Reason::Io | Reason::Unbound) {
            continue;
        }
        assert!(reasons.contains(code.as_str()), "no reject vector for {code}");
    }
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

#[test]
fn the_tree_bundle_and_proof_vectors_verify() {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    let t = read("tree-accept-chain.json");
    let leaves: Vec<Vec<u8>> = t["leaf_hashes"].as_array().unwrap().iter().map(b64).collect();
    let root = b64(&t["root"]);
    let n = leaves.len() as u64;
    for (i, proof) in t["inclusion"].as_array().unwrap().iter().enumerate() {
        let p: Vec<Vec<u8>> = proof.as_array().unwrap().iter().map(b64).collect();
        provledger::tree::verify_inclusion(i as u64, n, &leaves[i], &p, &root).unwrap();
    }
    let as_hashes: Vec<provledger::tree::Hash> = leaves.iter().map(|l| l.as_slice().try_into().unwrap()).collect();
    for (m, proof) in t["consistency"].as_array().unwrap().iter().enumerate() {
        let m = m + 1;
        let p: Vec<Vec<u8>> = proof.as_array().unwrap().iter().map(b64).collect();
        let root1 = provledger::tree::root(&as_hashes[..m]);
        provledger::tree::verify_consistency(m as u64, n, &p, &root1, &root).unwrap();
    }
    let verifier = provledger::core::note::NoteVerifier::parse(t["log_verifier_key"].as_str().unwrap()).unwrap();
    let cp = provledger::ledger::SignedCheckpoint::open(t["checkpoint"].as_str().unwrap(), &verifier).unwrap();
    assert_eq!(cp.checkpoint.root.to_vec(), root);

    let b = read("bundle-accept-chain.json");
    let genesis = EntryHash::parse(b["genesis"].as_str().unwrap()).unwrap();
    let bytes = hex::decode(b["bundle_hex"].as_str().unwrap()).unwrap();
    let report = provledger::bundle::verify_bundle(bytes.as_slice(), &genesis, None, |_| {}).unwrap();
    assert_eq!(report.chain.entries, n);
    assert_eq!(report.checkpoint.checkpoint.root.to_vec(), root);

    let p = read("proof-accept-chain.json");
    let proof = provledger::proof::PromotionProof::parse(p["proof"].to_string().as_bytes()).unwrap();
    let report = proof.verify(&genesis).unwrap();
    assert_eq!((report.promotion.index, report.build.index), (5, 1));
    assert_eq!(report.validations.iter().map(|v| v.index).collect::<Vec<_>>(), vec![2]);
}
