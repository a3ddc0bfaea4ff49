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
