//! The audit answers through the real binary: `show` and `history`, and the
//! rebuild flag on `record build`.

mod common;

use common::{Env, GIT_SHA, digest, image};

fn release(env: &Env, img: &str, to: &str) {
    env.ok(&["promote", "--key", &env.key("release"), "--image", img, "--to", to, "--offline"]);
}

#[test]
fn show_answers_who_built_validated_and_promoted() {
    let (env, _) = Env::initialised();
    let img = image("show");
    env.build_with(
        &img,
        &[
            "--git-sha",
            GIT_SHA,
            "--artifact",
            "backend",
            "--ci-run-url",
            "https://ci.example/runs/1",
            "--ci-repository",
            "https://git.example/acme/app",
            "--builder-id",
            "https://ci.example/builders/release",
        ],
    );
    env.validate(&img, &["unit=pass", "integration=fail"]);
    release(&env, &img, "dev");
    let r = env.json(&["show", &digest("show")]);
    assert_eq!(r["digest"], digest("show").as_str());
    let b = &r["builds"][0];
    assert_eq!(b["index"], 1);
    assert_eq!(b["git_sha"], GIT_SHA);
    assert_eq!(b["artifact"], "backend");
    assert_eq!(b["source_repository"], "https://git.example/acme/app");
    assert_eq!(b["builder_id"], "https://ci.example/builders/release");
    assert_eq!(b["ci"]["runUrl"], "https://ci.example/runs/1");
    assert_eq!(b["signers"][0]["name"], "ci");
    assert_eq!(b["registry_confirmed"], false);
    let v = &r["validations"][0];
    assert_eq!(v["build_index"], 1);
    assert_eq!(v["checks"][1]["name"], "integration");
    assert_eq!(v["checks"][1]["result"], "fail");
    assert_eq!(v["signers"][0]["name"], "qa");
    let p = &r["promotions"][0];
    assert_eq!(p["to"], "dev");
    assert_eq!(p["validation_indexes"], serde_json::json!([2]));
    assert_eq!(p["signers"][0]["name"], "release");
    assert_eq!(r["findings"].as_array().unwrap().len(), 0, "{}", r["findings"]);
    // The same through a reference, and in human form.
    let human = env.ok(&["show", &img]);
    assert!(human.contains("promoted") && human.contains("-> dev"), "{human}");
    // A digest nobody recorded: exit 3.
    let out = env.fails(3, &["show", &digest("unknown")]);
    assert!(out.contains("no entry of the ledger names"), "{out}");
    env.fails(1, &["show", "sha256:XYZ"]);
}

#[test]
fn a_rebuild_is_recorded_flagged_and_denied() {
    let (env, _) = Env::initialised();
    let first = image("build-1");
    env.build(&first);
    env.validate(&first, &["unit=pass"]);
    release(&env, &first, "dev");
    // Same revision (common::GIT_SHA), same artifact (none), new digest.
    let rebuilt = image("build-2");
    let (code, out, err) =
        env.run(&["record", "build", "--key", &env.key("ci"), "--image", &rebuilt, "--offline", "--git-sha", GIT_SHA]);
    assert_eq!(code, 0, "a rebuild is recorded: {out}{err}");
    assert!(err.contains("warning: rebuild") && err.contains(&digest("build-1")), "{err}");
    let before = env.head();
    let (code, _, err) =
        env.run(&["promote", "--key", &env.key("release"), "--image", &rebuilt, "--to", "dev", "--offline"]);
    assert_eq!(code, 3);
    assert!(err.contains("has no validation of"), "{err}");
    assert_eq!(env.head(), before);
    let r = env.json(&["show", &digest("build-2")]);
    let findings = r["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f.as_str().unwrap().contains(&format!("also built as {}", digest("build-1")))),
        "{findings:?}"
    );
    let r = env.json(&["show", &digest("build-1")]);
    assert!(r["findings"][0].as_str().unwrap().starts_with("rebuild"), "{}", r["findings"]);
}

#[test]
fn history_lists_newest_first_with_current_and_rollback_target() {
    let (env, _) = Env::initialised();
    let h = env.json(&["history", "--env", "dev"]);
    assert_eq!(h["promotions"].as_array().unwrap().len(), 0);
    assert!(h["current"].is_null() && h["rollback_target"].is_null());
    for seed in ["v1", "v2"] {
        env.build(&image(seed));
        env.validate(&image(seed), &["unit=pass"]);
        release(&env, &image(seed), "dev");
    }
    // Promoting v2 again does not make it its own rollback target.
    env.validate(&image("v2"), &["unit=pass", "lint=pass"]);
    release(&env, &image("v2"), "dev");
    let h = env.json(&["history", "--env", "dev"]);
    let ps = h["promotions"].as_array().unwrap();
    assert_eq!(ps.len(), 3);
    assert!(ps[0]["index"].as_u64() > ps[1]["index"].as_u64(), "newest first");
    assert_eq!(h["current"], digest("v2").as_str());
    assert_eq!(h["rollback_target"], digest("v1").as_str());
    assert_eq!(env.json(&["history", "--env", "prod"])["promotions"].as_array().unwrap().len(), 0);
    let out = env.fails(1, &["history", "--env", "qa-lab"]);
    assert!(out.contains("not in the policy"), "{out}");
}

#[test]
fn show_reports_later_policy_changes() {
    let (env, _) = Env::initialised();
    let img = image("pc");
    env.build(&img);
    env.ok(&["record", "policy", "--key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    let r = env.json(&["show", &digest("pc")]);
    let f = r["findings"].as_array().unwrap();
    assert!(f.iter().any(|x| x.as_str().unwrap().contains("policy changed at entry 2")), "{f:?}");
}
