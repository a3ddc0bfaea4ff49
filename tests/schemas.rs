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

#[test]
fn registry_fields_validate_and_are_checked_alike() {
    use provledger::core::statement::PlatformManifest;
    let v = validator();
    let d = |s: &str| provledger::core::digest::Digest::of(s.as_bytes());
    let (index, amd, arm) = (d("index"), d("amd64"), d("arm64"));
    let platform = |digest: provledger::core::digest::Digest, arch: &str| PlatformManifest {
        digest: digest.to_string(),
        os: "linux".into(),
        architecture: arch.into(),
        variant: None,
    };
    let build = provledger::record::build_statement(provledger::record::BuildInput {
        image: format!("registry.example.com/acme/app:2.0@{index}").parse().unwrap(),
        artifact: None,
        release: None,
        git_sha: None,
        source_repository: None,
        builder_id: None,
        ci: Default::default(),
        registry_confirmed: true,
        registry: Some("registry.example.com".into()),
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        platforms: vec![platform(amd, "amd64"), platform(arm, "arm64")],
        time: 1_900_000_000,
        binding: Some(provledger::record::Binding {
            ledger: provledger::core::hash::EntryHash::from_bytes([7; 32]),
            nonce: provledger::core::statement::Nonce::from_bytes([1; 16]),
        }),
    });
    assert_eq!(build.subject_digests(), vec![index, amd, arm], "the index, then each platform manifest");
    let doc: Value = serde_json::from_slice(&build.to_payload()).unwrap();
    assert!(v.is_valid(&doc), "{:?}", v.iter_errors(&doc).map(|e| e.to_string()).collect::<Vec<_>>());
    assert!(provledger::core::statement::Statement::parse(&build.to_payload()).is_ok());

    let mut promotion = payloads()[5].clone();
    promotion["predicate"]["tagTarget"] = "registry.example.com/acme/app:prod".into();
    assert!(v.is_valid(&promotion));
    assert!(provledger::core::statement::Statement::parse(&serde_json::to_vec(&promotion).unwrap()).is_ok());

    // Both refuse: a platform digest in uppercase; a platform manifest that
    // is not a subject; a subject that is not a platform manifest (parser
    // only: JSON Schema cannot relate the two lists); a tag target with a digest.
    let mut upper = doc.clone();
    let text = upper["predicate"]["buildDefinition"]["externalParameters"]["platforms"][0]["digest"]
        .as_str()
        .unwrap()
        .replace("sha256:", "")
        .to_uppercase();
    upper["predicate"]["buildDefinition"]["externalParameters"]["platforms"][0]["digest"] =
        format!("sha256:{text}").into();
    assert!(!v.is_valid(&upper));
    let mut not_subject = doc.clone();
    not_subject["subject"].as_array_mut().unwrap().pop();
    let mut stray = doc.clone();
    stray["subject"][2]["digest"]["sha256"] = d("stray").hex().into();
    let mut pinned_target = promotion.clone();
    pinned_target["predicate"]["tagTarget"] = format!("registry.example.com/acme/app:prod@{index}").into();
    assert!(!v.is_valid(&pinned_target));
    for (what, bad) in [
        ("uppercase", upper),
        ("missing subject", not_subject),
        ("stray subject", stray),
        ("pinned tag target", pinned_target),
    ] {
        let bytes = serde_json::to_vec(&bad).unwrap();
        assert!(provledger::core::statement::Statement::parse(&bytes).is_err(), "parser accepted: {what}");
    }
}

/// The statement-level reject vectors, each refused by the parser, are
/// refused by the schemas too, except for the rules a JSON Schema cannot
/// state (named here, and in SPEC section 4 as the parser's alone).
#[test]
fn schemas_refuse_the_statement_reject_vectors() {
    // Rules relating one value to another, or text to a grammar the schema
    // does not restate; and duplicate keys, which a JSON value cannot hold.
    const PARSER_ONLY: [&str; 7] = [
        "reject-tag-only-subject",
        "reject-subject-name-not-canonical",
        "reject-duplicate-digest-key",
        "reject-image-not-first-subject",
        "reject-tag-not-the-image-tag",
        "reject-dev-only-pinned-subject",
        "reject-duplicate-statement-field",
    ];
    let v = validator();
    let mut checked = 0;
    for (name, doc) in vectors::all() {
        if doc["reason"] != "statement" {
            continue;
        }
        let id = doc["id"].as_str().unwrap();
        let at = doc["reject_at"].as_u64().unwrap() as usize;
        let bytes = hex::decode(doc["entries"][at].as_str().unwrap()).unwrap();
        let entry = provledger::core::entry::UnverifiedEntry::decode(&bytes).unwrap();
        assert!(provledger::core::statement::Statement::parse(&entry.envelope.payload).is_err(), "{name}");
        let Ok(json) = serde_json::from_slice::<Value>(&entry.envelope.payload) else { continue };
        if PARSER_ONLY.contains(&id) {
            continue;
        }
        assert!(!v.is_valid(&json), "{id}: the schema accepts what the parser refuses");
        checked += 1;
    }
    assert!(checked >= 6, "{checked}");
}
