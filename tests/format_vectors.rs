//! The committed format vectors are exactly what the generator produces, and
//! each one is accepted or rejected, at the named entry, as it says.

#[path = "../examples/support/vectors.rs"]
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
    let on_disk = std::fs::read_dir(dir()).unwrap().count();
    assert_eq!(on_disk, generated.len(), "stale files in ledger-format/vectors");
}

#[test]
fn every_vector_meets_its_expectation() {
    let mut checked = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(expect) = v["expect"].as_str() else { continue };
        let id = v["id"].as_str().unwrap();
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
                let reason = v["reason"].as_str().unwrap();
                assert!(err.to_string().contains(reason), "{id}: {err} lacks {reason:?}");
            }
            other => panic!("{id}: unknown expectation {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 14);
}
