//! `release-metadata` derives its JSON from signed entries only;
//! `check-bundle` names every missing key.

mod common;

use common::{Env, GIT_SHA, digest, image};

fn recorded(env: &Env) -> String {
    let img = image("meta");
    let ci = ["--ci-run-url", "https://ci.example/runs/7", "--ci-run-id", "7", "--ci-workflow", "release.yml"];
    let release = ["--git-sha", GIT_SHA, "--release", "r-7", "--artifact"];
    env.build_with(&img, &[&release[..], &["backend"], &ci[..]].concat());
    env.build_with(&image("meta-fe"), &[&release[..], &["frontend"]].concat());
    env.validate(&img, &["unit=pass"]);
    env.ok(&["promote", "--key", &env.key("release"), "--image", &img, "--to", "dev", "--offline"]);
    img
}

#[test]
fn metadata_comes_from_the_signed_entries() {
    let (env, genesis) = Env::initialised();
    recorded(&env);
    let out = env.ok(&["release-metadata", &digest("meta")]);
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["git_sha"], GIT_SHA);
    assert_eq!(m["image_repo"], "registry.example.com/acme/app");
    assert_eq!(m["image_tag"], "1.0");
    assert_eq!(m["image_digest"], digest("meta").as_str());
    assert_eq!(m["image_ref_digest"], format!("registry.example.com/acme/app@{}", digest("meta")).as_str());
    assert!(m["supported_architectures"].is_array());
    assert!(m["build_timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(m["ci_run_url"], "https://ci.example/runs/7");
    assert_eq!(m["ci_run_id"], "7");
    assert_eq!(m["ci_workflow"], "release.yml");
    assert_eq!(m["evidence"]["ledger_genesis"], genesis.as_str());
    assert_eq!(m["evidence"]["build"]["index"], 1);
    assert_eq!(m["evidence"]["validations"][0]["index"], 3);
    assert_eq!(m["evidence"]["promotions"][0]["index"], 4);
    let manifest = &m["release_manifest"];
    assert_eq!(manifest["schemaVersion"], 1);
    assert_eq!(manifest["gitSha"], GIT_SHA);
    let names: Vec<&str> =
        manifest["artifacts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["backend", "frontend"], "both artifacts of release r-7");
    assert_eq!(manifest["artifacts"][1]["digest"], digest("meta-fe").as_str());
    // It validates against the published schemas.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-format/schemas");
    let load = |n: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(n)).unwrap()).unwrap()
    };
    let mut opts = jsonschema::options();
    for n in ["common.schema.json", "release-manifest.schema.json"] {
        opts = opts.with_resource(
            format!("https://provledger.dev/schemas/{n}"),
            jsonschema::Resource::from_contents(load(n)).unwrap(),
        );
    }
    let validator = opts.build(&load("release-metadata.schema.json")).unwrap();
    let errors: Vec<String> = validator.iter_errors(&m).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let mut broken = m.clone();
    broken["image_digest"] = "sha256:ABC".into();
    assert!(!validator.is_valid(&broken));
    // Written to a file, it is complete; so is its manifest form.
    env.ok(&["release-metadata", &digest("meta"), "--out", &env.path("meta.json")]);
    env.ok(&["check-bundle", &env.path("meta.json"), "--require-ci-evidence"]);
    std::fs::write(env.path("manifest.json"), manifest.to_string()).unwrap();
    env.ok(&["check-bundle", &env.path("manifest.json")]);
    // No build, no metadata.
    env.fails(3, &["release-metadata", &digest("nothing")]);
}

#[test]
fn incomplete_bundles_name_every_missing_key() {
    let (env, _) = Env::initialised();
    // A build without CI context: complete metadata, but no CI evidence.
    env.build(&image("bare"));
    env.ok(&["release-metadata", &digest("bare"), "--out", &env.path("bare.json")]);
    env.ok(&["check-bundle", &env.path("bare.json")]);
    let out = env.fails(3, &["check-bundle", &env.path("bare.json"), "--require-ci-evidence"]);
    assert!(out.contains("missing ci_run_url, ci_run_id, ci_workflow"), "{out}");

    std::fs::write(env.path("partial.json"), r#"{"git_sha": "abc", "image_repo": "", "image_digest": null}"#).unwrap();
    let out = env.fails(3, &["check-bundle", &env.path("partial.json")]);
    for k in
        ["image_repo", "image_tag", "image_digest", "image_ref_digest", "supported_architectures", "build_timestamp"]
    {
        assert!(out.contains(k), "{k} not named: {out}");
    }
    assert!(!out.contains("git_sha"), "{out}");
    std::fs::write(
        env.path("m.json"),
        r#"{"schemaVersion": 1, "gitSha": "abc", "artifacts": [{"name": "x", "digest": "d"}]}"#,
    )
    .unwrap();
    let (code, json, _) = env.run(&["check-bundle", &env.path("m.json"), "--json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["missing"], serde_json::json!(["buildTimestamp", "artifacts[0].type", "artifacts[0].uri"]));
    std::fs::write(env.path("garbage.json"), "{not json").unwrap();
    env.fails(1, &["check-bundle", &env.path("garbage.json")]);
}
