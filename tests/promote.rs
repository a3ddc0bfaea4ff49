//! The promotion gate through the real binary: one test per denial reason
//! (exit 3, the reason, an unchanged head), the allowed path, and
//! determinism.

mod common;

use common::{Env, digest, image};

fn promote(env: &Env, img: &str, to: &str, key: &str) -> (i32, String, String) {
    env.run(&["promote", "--key", &env.key(key), "--image", img, "--to", to, "--offline"])
}

/// Asserts a denial: exit 3, the reason in the output, nothing appended.
fn denied(env: &Env, img: &str, to: &str, key: &str, reason: &str) {
    let before = env.head();
    let (code, out, err) = promote(env, img, to, key);
    assert_eq!(code, 3, "expected a denial:\n{out}{err}");
    assert!(err.contains(reason), "reason {reason:?} missing:\n{err}");
    assert_eq!(env.head(), before, "a denied promotion appended something");
}

fn allowed(env: &Env, img: &str, to: &str) -> serde_json::Value {
    env.json(&["promote", "--key", &env.key("release"), "--image", img, "--to", to, "--offline"])
}

#[test]
fn no_build() {
    let (env, _) = Env::initialised();
    denied(&env, &image("ghost"), "dev", "release", &format!("no build entry for {}", digest("ghost")));
}

#[test]
fn no_validation() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    denied(&env, &image("a"), "dev", "release", "required check \"unit\" for dev has no validation");
}

#[test]
fn failed_required_check() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.validate(&image("a"), &["unit=fail"]);
    denied(&env, &image("a"), "dev", "release", "required check \"unit\" failed in validation entry 2");
}

#[test]
fn missing_required_check() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.validate(&image("a"), &["unit=pass", "integration=pass"]);
    allowed(&env, &image("a"), "dev");
    allowed(&env, &image("a"), "staging");
    denied(&env, &image("a"), "prod", "release", "required check \"e2e\" for prod has no validation");
}

#[test]
fn validation_for_another_digest() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.build(&image("b"));
    env.validate(&image("b"), &["unit=pass"]);
    denied(&env, &image("a"), "dev", "release", &format!("has no validation of {}", digest("a")));
}

#[test]
fn wrong_role_promoter() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.validate(&image("a"), &["unit=pass"]);
    denied(&env, &image("a"), "dev", "qa", "(qa) does not hold the promotion role");
}

#[test]
fn revoked_signers() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.validate(&image("a"), &["unit=pass"]);
    // Revoke the release key: it is dropped from the policy.
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let revoked = policy.replace("[keys.release]\npublic = \"release.key.pub\"\nroles = [\"promotion\"]\n", "");
    assert_ne!(policy, revoked);
    std::fs::write(env.path("revoked.toml"), revoked).unwrap();
    env.ok(&["record", "policy", "--key", &env.key("root"), "--policy", &env.path("revoked.toml")]);
    denied(&env, &image("a"), "dev", "release", "is not in the policy in force");
}

#[test]
fn validations_signed_before_a_revocation_still_count() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.validate(&image("a"), &["unit=pass"]);
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let revoked = policy.replace("[keys.qa]\npublic = \"qa.key.pub\"\nroles = [\"validation\"]\n", "");
    std::fs::write(env.path("revoked.toml"), revoked).unwrap();
    env.ok(&["record", "policy", "--key", &env.key("root"), "--policy", &env.path("revoked.toml")]);
    allowed(&env, &image("a"), "dev");
    // ...but the revoked key can no longer add validations.
    let out = env.fails(
        3,
        &["record", "validation", "--key", &env.key("qa"), "--image", &image("a"), "--check", "unit=pass", "--offline"],
    );
    assert!(out.contains("not in the policy in force"), "{out}");
}

#[test]
fn dev_only_statements_never_satisfy_a_gate() {
    let (env, _) = Env::initialised();
    let tag = "registry.example.com/acme/app:dev";
    env.ok(&["record", "build", "--key", &env.key("ci"), "--image", tag, "--offline", "--allow-tag"]);
    env.ok(&[
        "record",
        "validation",
        "--key",
        &env.key("qa"),
        "--image",
        tag,
        "--check",
        "unit=pass",
        "--offline",
        "--allow-tag",
    ]);
    // Promoting by tag is denied whatever the flags.
    let before = env.head();
    let (code, _, err) =
        env.run(&["promote", "--key", &env.key("release"), "--image", tag, "--to", "dev", "--offline", "--allow-tag"]);
    assert_eq!(code, 2, "promote has no --allow-tag: {err}");
    let out = env
        .cmd()
        .env("DEV_MODE", "1")
        .args(["promote", "--key", &env.key("release"), "--image", tag, "--to", "dev", "--offline"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tag-only reference can never be promoted"));
    assert_eq!(env.head(), before);
}

#[test]
fn dev_only_build_of_the_digest_does_not_count() {
    let (env, _) = Env::initialised();
    // Only a dev-only build could exist for a tag; a pinned build is never
    // dev-only. So a digest with a pinned validation but only tag builds has
    // no build at all: the validation cannot even be recorded.
    let out = env.fails(
        3,
        &["record", "validation", "--key", &env.key("qa"), "--image", &image("t"), "--check", "unit=pass", "--offline"],
    );
    assert!(out.contains("no build entry"), "{out}");
}

#[test]
fn skipped_environment() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    env.validate(&image("a"), &["unit=pass", "integration=pass"]);
    denied(&env, &image("a"), "staging", "release", "was not promoted to dev first, and staging requires it");
}

#[test]
fn tag_only_reference() {
    let (env, _) = Env::initialised();
    denied(&env, "registry.example.com/acme/app:1.0", "dev", "release", "tag-only reference can never be promoted");
}

#[test]
fn unknown_environment() {
    let (env, _) = Env::initialised();
    env.build(&image("a"));
    denied(&env, &image("a"), "qa-lab", "release", "environment \"qa-lab\" is not in the policy in force");
}

#[test]
fn every_reason_is_listed_at_once() {
    let (env, _) = Env::initialised();
    let (code, out, _) =
        env.run(&["promote", "--key", &env.key("ci"), "--image", &image("z"), "--to", "prod", "--dry-run", "--json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["allowed"], false);
    let reasons: Vec<&str> = v["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 7, "{reasons:#?}"); // role, no build, 4 checks, not in staging
}

#[test]
fn the_allowed_path_end_to_end_and_newer_validations_supersede() {
    let (env, genesis) = Env::initialised();
    let img = image("rel");
    env.build(&img);
    env.validate(&img, &["unit=pass", "integration=fail"]);
    let p = allowed(&env, &img, "dev");
    assert_eq!(p["entry"]["kind"], "promotion");
    denied(&env, &img, "staging", "release", "required check \"integration\" failed");
    // A newer validation of integration supersedes the failed one.
    env.validate(&img, &["integration=pass"]);
    let dry = env.json(&["promote", "--key", &env.key("release"), "--image", &img, "--to", "staging", "--dry-run"]);
    assert_eq!(dry["allowed"], true);
    assert_eq!(
        dry["evidence"]["validations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![2, 4]
    );
    allowed(&env, &img, "staging");
    env.validate(&img, &["e2e=pass", "vuln-scan=pass"]);
    allowed(&env, &img, "prod");
    // And a newer failure blocks again.
    env.validate(&img, &["unit=fail"]);
    denied(&env, &img, "prod", "release", "required check \"unit\" failed in validation entry 8");
    assert_eq!(env.json(&["verify", "--genesis", &genesis])["entries"], 9);
}

#[test]
fn decisions_are_deterministic_on_a_copy() {
    let (env, _) = Env::initialised();
    let img = image("det");
    env.build(&img);
    env.validate(&img, &["unit=pass", "integration=fail"]);
    let ask = |e: &Env| {
        e.run(&["promote", "--key", &e.key("release"), "--image", &img, "--to", "staging", "--dry-run", "--json"])
    };
    let first = ask(&env);
    let copy = Env::new();
    common::copy_dir(&env.ledger(), &copy.ledger());
    assert_eq!(ask(&copy), first);
    assert_eq!(ask(&env), first);
    assert_eq!(first.0, 3);
}

/// A modified client that skips the gate and writes a promotion straight
/// through the store, head and indexes included, is caught by `verify`.
#[test]
fn verify_catches_a_promotion_appended_without_the_gate() {
    use provledger::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
    use provledger::core::entry::UnverifiedEntry;
    use provledger::gate::Allowed;
    use provledger::store::{Append, Head, NewEntry, Store};

    let (env, _) = Env::initialised();
    let img = image("skip");
    env.build(&img);
    env.validate(&img, &["unit=fail"]);
    let store = env.store();
    let head = store.head().unwrap().unwrap();
    let ledger = provledger::ledger::Ledger::new(store);
    let (build_ref, _) = ledger.latest_build_for(&digest("skip").parse().unwrap()).unwrap().unwrap();
    let image_ref: provledger::core::image_ref::ImageRef = img.parse().unwrap();
    let statement = provledger::record::promotion_statement(
        &image_ref,
        image_ref.digest().unwrap(),
        "dev",
        Allowed { from: None, build: build_ref, validations: vec![] },
        provledger::record::PromotionInput { time: 1_900_000_000, ..Default::default() },
    );
    let key = provledger::keyfile::read_secret(std::path::Path::new(&env.key("release")), false).unwrap();
    let envelope = Envelope::sign(PAYLOAD_TYPE_IN_TOTO, statement.to_payload(), &[&key]);
    let (entry, bytes) = UnverifiedEntry::build(head.count, head.hash, head.last_time, envelope);
    let new = NewEntry {
        index: head.count,
        bytes,
        subjects: vec![image_ref.digest().unwrap()],
        envelope_fingerprint: entry.envelope_fingerprint(),
        promoted_to: Some("dev".into()),
        ..Default::default()
    };
    let new_head = Head { count: head.count + 1, hash: entry.hash(), ..head };
    // Written behind the gate's back: the entry only, the old checkpoint kept.
    let checkpoint = ledger.store().checkpoint().unwrap().unwrap();
    let append = Append { entries: &[new], nodes: &[], checkpoint: &checkpoint, head: &new_head };
    ledger.store().append(Some(&head), &append).unwrap();
    drop(ledger);
    for args in [&["verify"][..], &["verify", "--strict-signatures"]] {
        let out = env.fails(4, args);
        assert!(out.contains("entry 3") && out.contains("the gate denies this promotion"), "{out}");
        assert!(out.contains("required check \"unit\" failed"), "{out}");
    }
}
