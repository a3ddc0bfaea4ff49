//! The RFC 9162 tree: every inclusion and consistency vector of
//! transparency-dev/merkle (tests/vectors/rfc9162, Apache-2.0), including
//! every `wantErr` case, and proofs checked against a deliberately naive
//! reference for sizes 1..300.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provledger::tree::{self, Hash};
use serde_json::Value;

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap_or("")).unwrap()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v.as_array().map(|a| a.iter().map(b64).collect()).unwrap_or_default()
}

fn vectors(kind: &str) -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc9162").join(kind);
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<(String, Value)>) {
        let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|f| f.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                out.push((p.strip_prefix(base).unwrap().display().to_string(), v));
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir, &dir, &mut out);
    out
}

#[test]
fn inclusion_vectors() {
    let all = vectors("inclusion");
    assert!(all.len() > 80, "{} vectors", all.len());
    for (name, v) in &all {
        let got = tree::verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &b64(&v["leafHash"]),
            &proof(&v["proof"]),
            &b64(&v["root"]),
        );
        assert_eq!(got.is_err(), v["wantErr"].as_bool().unwrap(), "{name}: {got:?}");
    }
}

#[test]
fn consistency_vectors() {
    let all = vectors("consistency");
    assert!(all.len() > 80, "{} vectors", all.len());
    for (name, v) in &all {
        let got = tree::verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof(&v["proof"]),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        );
        assert_eq!(got.is_err(), v["wantErr"].as_bool().unwrap(), "{name}: {got:?}");
    }
}

/// The reference: build every level bottom-up, carrying an odd last node up.
fn naive_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return tree::empty_root();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|c| if c.len() == 2 { tree::node_hash(&c[0], &c[1]) } else { c[0] }).collect();
    }
    level[0]
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| tree::leaf_hash(&i.to_be_bytes())).collect()
}

#[test]
fn roots_and_inclusion_proofs_against_the_reference() {
    let all = leaves(300);
    for n in 1..=300 {
        let d = &all[..n];
        let root = tree::root(d);
        assert_eq!(root, naive_root(d), "root of {n}");
        // Every index of small trees; for larger ones both ends and a spread.
        let indexes: Vec<usize> =
            if n <= 64 { (0..n).collect() } else { (0..n).step_by(13).chain([n - 2, n - 1]).collect() };
        for i in indexes {
            let p = tree::inclusion_proof(d, i).unwrap();
            tree::verify_inclusion(i as u64, n as u64, &d[i], &p, &root).unwrap_or_else(|e| panic!("{i}/{n}: {e}"));
            // The same proof fails for another leaf or another index.
            let other = (i + 1) % n;
            if other != i {
                assert!(tree::verify_inclusion(i as u64, n as u64, &d[other], &p, &root).is_err());
            }
        }
    }
}

#[test]
fn consistency_proofs_against_the_reference() {
    let all = leaves(300);
    for n in 1..=300usize {
        // Every prefix for small trees, a spread of prefixes for large ones.
        let sizes: Vec<usize> =
            if n <= 64 { (0..=n).collect() } else { (0..=n).step_by(29).chain([n - 1, n]).collect() };
        let root2 = naive_root(&all[..n]);
        for m in sizes {
            let root1 = naive_root(&all[..m]);
            let p = tree::consistency_proof(&all[..n], m).unwrap();
            if m == 0 {
                // From the empty tree there is nothing to prove, and the verifier says so.
                let got = tree::verify_consistency(0, n as u64, &p, &root1, &root2);
                assert_eq!(got, Err(tree::TreeError::FromEmptyTree));
                continue;
            }
            tree::verify_consistency(m as u64, n as u64, &p, &root1, &root2)
                .unwrap_or_else(|e| panic!("{m}->{n}: {e}"));
            if m > 0 && m < n {
                // A rewritten history: the old tree's last leaf changed.
                let mut forged = all[..n].to_vec();
                forged[m - 1] = tree::leaf_hash(b"forged");
                let forged_root = naive_root(&forged);
                assert!(tree::verify_consistency(m as u64, n as u64, &p, &root1, &forged_root).is_err(), "{m}->{n}");
            }
        }
    }
}

/// Nodes persisted by a [`tree::Frontier`] as leaves are appended, as a store keeps them.
#[derive(Default)]
struct Persisted(std::collections::HashMap<(u32, u64), Hash>);

impl tree::Nodes for Persisted {
    type Error = tree::TreeError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, tree::TreeError> {
        self.0.get(&(level, index)).copied().ok_or(tree::TreeError::IndexOutOfRange { index, size: 0 })
    }
}

#[test]
fn persisted_nodes_give_the_same_roots_and_proofs() {
    let all = leaves(200);
    let mut stored = Persisted::default();
    let mut frontier = tree::Frontier::default();
    for (n, leaf) in all.iter().enumerate() {
        // Resuming from the store gives the frontier kept in memory.
        assert_eq!(tree::Frontier::load(&stored, n as u64).unwrap(), frontier, "frontier at {n}");
        let mut completed = 0;
        frontier.push(*leaf, |level, index, h| {
            completed += 1;
            assert!(stored.0.insert((level, index), *h).is_none(), "node ({level}, {index}) written twice");
        });
        // Appending leaf n completes one node per trailing one bit of n, plus the leaf.
        assert_eq!(completed, 1 + n.trailing_ones(), "nodes completed by leaf {n}");
    }
    // Every node is stored once: 2n - popcount(n) of them.
    assert_eq!(stored.0.len(), 2 * all.len() - all.len().count_ones() as usize);
    for n in 1..=all.len() {
        let d = &all[..n];
        let want = naive_root(d);
        assert_eq!(tree::root_at(&stored, n as u64).unwrap(), want, "root at {n}");
        for i in (0..n).step_by(7).chain([n - 1]) {
            assert_eq!(
                tree::inclusion_proof_at(&stored, i as u64, n as u64).unwrap(),
                tree::inclusion_proof(d, i).unwrap(),
                "inclusion {i}/{n}"
            );
        }
        for m in (1..=n).step_by(5).chain([n]) {
            assert_eq!(
                tree::consistency_proof_at(&stored, m as u64, n as u64).unwrap(),
                tree::consistency_proof(d, m).unwrap(),
                "consistency {m}->{n}"
            );
        }
    }
    assert_eq!(frontier.root(), naive_root(&all));
    assert_eq!(tree::Frontier::default().root(), tree::empty_root());
}
