//! Statements the ledger writes validate against the JSON Schemas published
//! in `ledger-format/schemas/`, checked by the jsonschema crate; and the
//! schemas reject what the ledger's own parser rejects.

#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use jsonschema::Resource;
use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-format/schemas");
    let load =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    let mut opts = jsonschema::options();
    for name in ["common", "build", "validation", "promotion", "policy"] {
        let file = format!("{name}.schema.json");
        opts = opts.with_resource(
            format!("https://provledger.dev/schemas/{file}"),
            Resource::from_contents(load(&file)).unwrap(),
        );
    }
    opts.build(&load("statement.schema.json")).unwrap()
}

fn payloads() -> Vec<Value> {
    let (chain, _) = vectors::valid_chain();
    chain
        .entries
        .iter()
        .map(|bytes| {
            let e = provledger::core::entry::UnverifiedEntry::decode(bytes).unwrap();
            serde_json::from_slice(&e.envelope.payload).unwrap()
        })
        .collect()
}

#[test]
fn every_statement_kind_validates() {
    let v = validator();
    let all = payloads();
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(|p| p["predicateType"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 4, "policy, build, validation and promotion all covered");
    for p in &all {
        let errors: Vec<String> = v.iter_errors(p).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p["predicateType"]);
    }
}

#[test]
fn schemas_reject_what_the_parser_rejects() {
    let v = validator();
    let p = payloads();
    let mut cases = Vec::new();
    let mut upper = p[1].clone();
    let hex = upper["subject"][0]["digest"]["sha256"].as_str().unwrap().to_uppercase();
    upper["subject"][0]["digest"]["sha256"] = hex.into();
    cases.push(("uppercase digest", upper));
    let mut extra = p[2].clone();
    extra["predicate"]["approvedBy"] = "someone".into();
    cases.push(("unknown predicate field", extra));
    let mut bad_result = p[2].clone();
    bad_result["predicate"]["checks"][0]["result"] = "skipped".into();
    cases.push(("unknown check result", bad_result));
    let mut dev_promotion = p[5].clone();
    dev_promotion["predicate"]["provledger"]["devOnly"] = true.into();
    cases.push(("dev-only promotion", dev_promotion));
    let mut bad_role = p[0].clone();
    bad_role["predicate"]["keys"][0]["roles"][0] = "deploy".into();
    cases.push(("unknown role", bad_role));
    for (what, doc) in cases {
        assert!(!v.is_valid(&doc), "schema accepted: {what}");
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert!(provledger::core::statement::Statement::parse(&bytes).is_err(), "parser accepted: {what}");
    }
}
