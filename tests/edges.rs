//! The gate at its edges: outcomes recorded however quickly they follow
//! each other, releases bound by the chain rather than by the client,
//! environment tags bound to their environments, and statements bound to
//! the one ledger they were signed for.

mod common;

use std::time::Duration;

use common::server::Served;
use common::{Env, GIT_SHA, digest, image, statement};
use provledger::core::dsse::Envelope;
use provledger::remote::{Client, RemoteError};
use serde_json::Value;

fn validation_time(entry: &Value, log: &Value) -> String {
    let i = entry["index"].as_u64().unwrap() as usize;
    statement(log, i)["predicate"]["validatedOn"].as_str().unwrap().to_string()
}

#[test]
fn fail_pass_fail_within_one_second_records_all_three_and_the_gate_denies() {
    // The three validations must share one second for the case to be the
    // one that matters (identical statements but for the nonce); a slow
    // machine may cross a second boundary, so the attempt is repeated.
    for attempt in 0..10 {
        let (env, _) = Env::initialised();
        let img = image("retried");
        env.build(&img);
        let first = env.validate(&img, &["unit=fail"]);
        let pass = env.validate(&img, &["unit=pass"]);
        let (code, out, err) = env.run(&[
            "record",
            "validation",
            "--key",
            &env.key("qa"),
            "--offline",
            "--image",
            &img,
            "--check",
            "unit=fail",
            "--json",
        ]);
        assert_eq!(code, 0, "the retried failure is recorded, not refused as a replay: {out}{err}");
        let last: Value = serde_json::from_str(&out).unwrap();
        let log = env.json(&["log"]);
        if validation_time(&first, &log) != validation_time(&last, &log) {
            eprintln!("attempt {attempt}: the validations crossed a second; again");
            continue;
        }
        let (a, b, c) =
            (first["index"].as_u64().unwrap(), pass["index"].as_u64().unwrap(), last["index"].as_u64().unwrap());
        assert_eq!((b, c), (a + 1, a + 2), "three entries");
        // Same statement but for its nonce; each names this ledger.
        let (s1, s3) = (statement(&log, a as usize), statement(&log, c as usize));
        let (n1, n3) = (&s1["predicate"]["provledger"]["nonce"], &s3["predicate"]["provledger"]["nonce"]);
        assert!(n1.as_str().is_some_and(|n| n.len() == 32) && n1 != n3, "{n1} {n3}");
        let mut same = s3.clone();
        same["predicate"]["provledger"]["nonce"] = n1.clone();
        assert_eq!(same, s1);
        let out = env.fails(3, &["promote", "--key", &env.key("release"), "--image", &img, "--to", "dev", "--offline"]);
        assert!(out.contains(&format!("failed in validation entry {c}")), "the newest outcome counts: {out}");
        env.ok(&["verify"]);
        return;
    }
    panic!("no attempt kept three validations within one second");
}

/// Builds `seed` as `artifact` of `release` at `sha`, offline.
fn release_build(env: &Env, seed: &str, artifact: &str, release: &str, sha: &str) -> (i32, String, String) {
    let key = env.key("ci");
    let img = image(seed);
    env.run(&[
        "record",
        "build",
        "--key",
        &key,
        "--image",
        &img,
        "--offline",
        "--git-sha",
        sha,
        "--artifact",
        artifact,
        "--release",
        release,
    ])
}

fn promote_release(env: &Env, release: &str, to: &str, extra: &[&str]) -> (i32, String, String) {
    let key = env.key("release");
    let mut args = vec!["promote", "--key", &key, "--release", release, "--to", to, "--offline"];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn an_older_validated_digest_recorded_again_in_a_release_is_a_rebuild_the_release_gate_denies() {
    let (env, _) = Env::initialised();
    // The old backend passed; the release's backend fails its tests.
    assert_eq!(release_build(&env, "old", "backend", "r-0.9", GIT_SHA).0, 0);
    env.validate(&image("old"), &["unit=pass"]);
    assert_eq!(release_build(&env, "new", "backend", "r-1.0", GIT_SHA).0, 0);
    env.validate(&image("new"), &["unit=fail"]);
    assert_eq!(release_build(&env, "fe", "frontend", "r-1.0", GIT_SHA).0, 0);
    env.validate(&image("fe"), &["unit=pass"]);
    // The CI key records the old, validated digest as the release's backend.
    assert_eq!(release_build(&env, "old", "backend", "r-1.0", GIT_SHA).0, 0);
    let before = env.head();
    let (code, out, err) = promote_release(&env, "r-1.0", "dev", &[]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("backend: rebuilt within release r-1.0")
            && err.contains(&digest("old"))
            && err.contains(&digest("new"))
            && err.contains("--resolve backend="),
        "{err}"
    );
    assert_eq!(env.head(), before, "nothing appended");
    // Resolving it to the failed digest is denied by the gate ...
    let new = format!("backend={}", digest("new"));
    let (code, _, err) = promote_release(&env, "r-1.0", "dev", &["--resolve", &new]);
    assert_eq!(code, 3);
    assert!(err.contains("required check \"unit\" failed"), "{err}");
    // ... to the old one is an explicit choice, recorded as such, printed.
    let old = format!("backend={}", digest("old"));
    let (code, out, err) = promote_release(&env, "r-1.0", "dev", &["--resolve", &old]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("backend: {}", image("old"))), "{out}");
    assert!(out.contains(&format!("setting aside {}", digest("new"))), "{out}");
    assert!(out.contains(&format!("frontend: {}", image("fe"))), "{out}");
    let log = env.json(&["log"]);
    let n = log.as_array().unwrap().len();
    let promotions: Vec<Value> = (n - 2..n).map(|i| statement(&log, i)).collect();
    let backend = promotions.iter().find(|p| p["predicate"]["release"]["artifact"] == "backend").unwrap();
    assert_eq!(backend["predicate"]["release"]["id"], "r-1.0");
    assert_eq!(backend["predicate"]["release"]["supersedes"], serde_json::json!([digest("new")]));
    env.ok(&["verify"]);
}

#[test]
fn a_release_without_rebuilds_promotes_and_prints_each_digest() {
    let (env, _) = Env::initialised();
    for (seed, artifact) in [("be", "backend"), ("fe", "frontend")] {
        assert_eq!(release_build(&env, seed, artifact, "r-2", GIT_SHA).0, 0);
        env.validate(&image(seed), &["unit=pass"]);
    }
    // The same digest recorded twice for one artifact is no rebuild.
    assert_eq!(release_build(&env, "be", "backend", "r-2", GIT_SHA).0, 0);
    let (code, out, err) = promote_release(&env, "r-2", "dev", &["--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&digest("be")) && out.contains(&digest("fe")), "{out}");
    let (code, out, err) = promote_release(&env, "r-2", "dev", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("backend: {}", image("be"))), "{out}");
    // --resolve names an artifact of the release, with a digest it has.
    let (code, _, err) = promote_release(&env, "r-2", "dev", &["--resolve", &format!("db={}", digest("be"))]);
    assert_eq!(code, 3);
    assert!(err.contains("has no artifact db"), "{err}");
    env.ok(&["verify"]);
}

fn client(url: &str) -> Client {
    Client::new(url, Duration::from_secs(60)).unwrap()
}

fn log_verifier(env: &Env) -> provledger::core::note::NoteVerifier {
    let v = env.json(&["checkpoint"]);
    provledger::core::note::NoteVerifier::parse(v["verifier_key"].as_str().unwrap()).unwrap()
}

/// A build of `seed` by the example CI key, in `release` at a revision when given.
fn build_statement(
    env: &Env,
    seed: &str,
    release: Option<(&str, &str)>,
    binding: Option<provledger::record::Binding>,
) -> Envelope {
    common::build_envelope_with(env.dir.path(), "ci", seed, 1_900_000_000, |input| {
        input.artifact = release.map(|_| "backend".to_string());
        input.release = release.map(|(r, _)| r.to_string());
        input.git_sha = release.map(|(_, sha)| sha.to_string());
        input.binding = binding;
    })
}

fn refusal(e: RemoteError) -> (u16, String) {
    match e {
        RemoteError::Refused { status, refusal, .. } => (status, refusal.reason),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[test]
fn the_server_enforces_the_release_revision_and_the_ledger_binding() {
    let (env, genesis) = Env::initialised_with_log_key();
    assert_eq!(release_build(&env, "be", "backend", "r-3", GIT_SHA).0, 0);
    let log = log_verifier(&env);
    let served = Served::start(&env.ledger(), &[]);
    let c = client(&served.url);
    let bind = || Some(provledger::record::Binding::fresh(provledger::core::hash::EntryHash::parse(&genesis).unwrap()));
    let other_sha = "fedcba9876543210fedcba9876543210fedcba98";
    // A crafted build of the release at another revision: refused by the chain rule.
    let (status, reason) =
        refusal(c.append(&build_statement(&env, "crafted", Some(("r-3", other_sha)), bind()), &log).unwrap_err());
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("release r-3 is revision") && reason.contains(other_sha), "{reason}");
    // A statement that names no ledger, or another one, is refused.
    let (status, reason) = refusal(c.append(&build_statement(&env, "unbound", None, None), &log).unwrap_err());
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("names no ledger"), "{reason}");
    let elsewhere = provledger::record::Binding::fresh(provledger::core::hash::EntryHash::from_bytes([9; 32]));
    let (_, reason) = refusal(c.append(&build_statement(&env, "elsewhere", None, Some(elsewhere)), &log).unwrap_err());
    assert!(reason.contains("not this one"), "{reason}");
    // The same build at the release's revision is accepted.
    c.append(&build_statement(&env, "fine", Some(("r-3", GIT_SHA)), bind()), &log).unwrap();
    served.stop();
    let (_, n) = env.head();
    assert_eq!(n, 3, "genesis, the CLI's build, the accepted one");
}

#[test]
fn a_statement_signed_for_another_ledger_is_refused_by_this_one() {
    // Two ledgers trusting the same keys (the example keys, another log key each).
    let (a, _) = Env::initialised();
    let (b, b_genesis) = Env::initialised_with_log_key();
    a.build(&image("shared"));
    a.validate(&image("shared"), &["unit=pass"]);
    let log = a.json(&["log"]);
    let build = Envelope::from_json_value(log[1]["envelope"].clone()).unwrap();
    assert_ne!(
        statement(&log, 1)["predicate"]["buildDefinition"]["internalParameters"]["provledger"]["ledger"],
        b_genesis.as_str()
    );
    let before = b.head();
    let b_log = log_verifier(&b);
    let served = Served::start(&b.ledger(), &[]);
    let (status, reason) = refusal(client(&served.url).append(&build, &b_log).unwrap_err());
    assert_eq!(status, 422, "{reason}");
    assert!(reason.contains("is for the ledger with genesis"), "{reason}");
    served.stop();
    assert_eq!(b.head(), before, "B decides nothing from A's statements");
    let out =
        b.fails(3, &["promote", "--key", &b.key("release"), "--image", &image("shared"), "--to", "dev", "--offline"]);
    assert!(out.contains("no build entry"), "{out}");
}

/// `promote --tag-target` naming a registry nobody serves (127.0.0.1:1):
/// exit 3 shows the gate denied, exit 1 that it allowed and the registry
/// was then unreachable.
fn promote_with_tag(env: &Env, img: &str, to: &str, tag: &str) -> (i32, String, String) {
    let (key, target) = (env.key("release"), format!("127.0.0.1:1/acme/app:{tag}"));
    env.run(&[
        "--insecure-registry",
        "127.0.0.1:1",
        "promote",
        "--key",
        &key,
        "--image",
        img,
        "--to",
        to,
        "--tag-target",
        &target,
    ])
}

#[test]
fn a_tag_target_bound_to_another_environment_is_denied_before_the_registry_is_asked() {
    let (env, _) = Env::initialised();
    let img = image("tagged");
    env.build(&img);
    env.validate(&img, &["unit=pass"]);
    let before = env.head();
    // The registry is unreachable: the gate answers first.
    let promote = |tag: &str| promote_with_tag(&env, &img, "dev", tag);
    let (code, out, err) = promote("prod");
    assert_eq!(code, 3, "{out}{err}");
    assert!(err.contains("tag target") && err.contains("\"prod\" is bound to environment prod"), "{err}");
    let (code, _, err) = promote("latest");
    assert_eq!(code, 3);
    assert!(err.contains("\"latest\" is not bound to environment dev"), "{err}");
    assert_eq!(env.head(), before);
    // The environment's own tag passes the gate (and then meets the registry).
    let (code, _, err) = promote("dev");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(env.head(), before);
}

#[test]
fn policy_tag_patterns_bind_tags_to_environments() {
    let env = Env::new();
    let policy = std::fs::read_to_string(env.path("policy.toml"))
        .unwrap()
        .replace("name = \"prod\"\n", "name = \"prod\"\ntags = [\"prod\", \"release-*\"]\n");
    std::fs::write(env.path("policy.toml"), policy).unwrap();
    env.init(&[]);
    let img = image("patterned");
    env.release_to_prod(&img);
    let promote = |to: &str, tag: &str| promote_with_tag(&env, &img, to, tag);
    // release-1.4 is prod's: staging may not move it; prod passes the gate.
    let (code, _, err) = promote("staging", "release-1.4");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not bound to environment staging"), "{err}");
    let (code, _, err) = promote("prod", "release-1.4");
    assert_eq!(code, 1, "past the gate, at the unreachable registry: {err}");
    // A policy with a malformed tag pattern names its line.
    let bad = Env::new();
    let text = std::fs::read_to_string(bad.path("policy.toml"))
        .unwrap()
        .replace("name = \"dev\"\n", "name = \"dev\"\ntags = [\"-dev\"]\n");
    std::fs::write(bad.path("policy.toml"), text).unwrap();
    let out = bad.fails(1, &["init", "--root-key", &bad.key("root"), "--policy", &bad.path("policy.toml")]);
    assert!(out.contains("policy.toml:") && out.contains("\"-dev\""), "{out}");
}
