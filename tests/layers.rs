//! The auditor's crate stays the auditor's: `provledger-verify` depends on
//! no store, no async runtime, no HTTP and no registry client, however its
//! dependencies change. Read from Cargo.lock, the graph cargo builds.

use std::collections::{BTreeMap, BTreeSet};

/// Crates whose presence would mean a store, a runtime, a network stack
/// or a registry client in the verifier.
const FORBIDDEN: [&str; 12] = [
    "sled",
    "tokio",
    "mio",
    "hyper",
    "axum",
    "tower",
    "ureq",
    "reqwest",
    "rustls",
    "oci-client",
    "oci-spec",
    "provledger",
];

#[test]
fn the_verifier_depends_on_no_store_runtime_http_or_registry() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let lock: toml::Value = toml::from_str(&lock).unwrap();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in lock["package"].as_array().unwrap() {
        let name = p["name"].as_str().unwrap().to_string();
        // A dependency is "name" or "name version" when several versions are locked.
        let list = p.get("dependencies").and_then(|d| d.as_array()).map_or_else(Vec::new, |d| {
            d.iter().map(|x| x.as_str().unwrap().split(' ').next().unwrap().to_string()).collect()
        });
        deps.entry(name).or_default().extend(list);
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec!["provledger-verify".to_string()];
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        stack.extend(deps.get(&name).cloned().unwrap_or_default());
    }
    seen.remove("provledger-verify");
    let found: Vec<&String> = seen.iter().filter(|n| FORBIDDEN.contains(&n.as_str())).collect();
    assert!(found.is_empty(), "provledger-verify pulls in {found:?}");
    // The lock also lists dev-dependencies (proptest) and every platform's
    // (windows-*, wasm-*); what an auditor builds on Linux is about half
    // (`cargo tree -p provledger-verify -e normal`, README). A bound, so that
    // growth is a decision.
    assert!(seen.len() < 160, "{} crates reachable from provledger-verify: {seen:?}", seen.len());
}

/// The layer of a module name as the package's code may write it
/// (`crate::NAME` or `provledger::NAME`, old paths included); `None` for
/// the verifier's modules, which every layer may use.
fn layer_of(name: &str) -> Option<usize> {
    Some(match name {
        "core" | "tree" | "checkpoint" | "policy" | "gate" | "sigcheck" | "verify" | "bundle" | "promoted" => {
            return None;
        }
        "files" | "fsutil" | "keyfile" => 0,
        "store" => 1,
        "ledger" | "record" => 2,
        "audit" | "manifests" | "proof" => 3,
        "net" | "api" | "registry" | "remote" | "server" | "sync" => 4,
        "fuzz" => 5,
        other => panic!("module {other} has no layer: add it to tests/layers.rs"),
    })
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn each_folder_imports_only_the_layers_below_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for (folder, own) in [("files", 0), ("store", 1), ("ledger", 2), ("audit", 3), ("net", 4)] {
        let mut files = Vec::new();
        rust_files(&src.join(folder), &mut files);
        assert!(!files.is_empty(), "src/{folder} is empty");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                for (at, _) in line.match_indices("crate::") {
                    let name: String =
                        line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if let Some(layer) = layer_of(&name)
                        && layer > own
                    {
                        violations.push(format!("{}:{}: {folder} imports {name}", file.display(), n + 1));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} imports read");
    assert!(violations.is_empty(), "a lower layer imports a higher one:\n{}", violations.join("\n"));
}
