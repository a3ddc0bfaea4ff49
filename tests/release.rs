//! Releases of several artifacts: promoted all together or not at all.

mod common;

use common::{Env, GIT_SHA, digest, image};

fn build(env: &Env, seed: &str, artifact: &str, sha: &str) {
    env.build_with(&image(seed), &["--git-sha", sha, "--artifact", artifact, "--release", "r-1.0"]);
}

fn promote_release(env: &Env, to: &str) -> (i32, String, String) {
    env.run(&["promote", "--key", &env.key("release"), "--release", "r-1.0", "--to", to, "--offline"])
}

#[test]
fn all_artifacts_or_none() {
    let (env, _) = Env::initialised();
    build(&env, "backend", "backend", GIT_SHA);
    build(&env, "frontend", "frontend", GIT_SHA);
    env.validate(&image("backend"), &["unit=pass"]);
    // The frontend has no validation: nothing is promoted, the reason names it.
    let before = env.head();
    let (code, _, err) = promote_release(&env, "dev");
    assert_eq!(code, 3);
    assert!(err.contains(&format!("frontend ({})", digest("frontend"))) && err.contains("no validation"), "{err}");
    assert!(!err.contains("backend ("), "backend is fine: {err}");
    assert_eq!(env.head(), before);
    env.validate(&image("frontend"), &["unit=pass"]);
    let (code, out, err) = promote_release(&env, "dev");
    assert_eq!(code, 0, "{out}{err}");
    let (_, n) = env.head();
    assert_eq!(n, before.1 + 3, "one validation and two promotions");
    for seed in ["backend", "frontend"] {
        let h = env.json(&["show", &digest(seed)]);
        assert_eq!(h["promotions"][0]["to"], "dev", "{seed}");
    }
    env.ok(&["verify"]);
}

#[test]
fn a_release_has_one_source_revision() {
    let (env, _) = Env::initialised();
    build(&env, "backend", "backend", GIT_SHA);
    let before = env.head();
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    let out = env.fails(
        3,
        &[
            "record",
            "build",
            "--key",
            &env.key("ci"),
            "--image",
            &image("fe"),
            "--offline",
            "--git-sha",
            other,
            "--artifact",
            "frontend",
            "--release",
            "r-1.0",
        ],
    );
    assert!(out.contains("release r-1.0 is revision") && out.contains(other), "{out}");
    assert_eq!(env.head(), before);
    // A release needs --artifact and --git-sha.
    env.fails(
        2,
        &["record", "build", "--key", &env.key("ci"), "--image", &image("x"), "--offline", "--release", "r-2"],
    );
}

#[test]
fn an_unknown_release_is_denied() {
    let (env, _) = Env::initialised();
    let (code, _, err) = promote_release(&env, "dev");
    assert_eq!(code, 3);
    assert!(err.contains("has no build"), "{err}");
    env.fails(2, &["promote", "--key", &env.key("release"), "--to", "dev"]);
}
