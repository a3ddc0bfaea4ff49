//! `check-refs` on real-looking Compose and Kubernetes files.

mod common;

use common::Env;

fn fixture(name: &str) -> String {
    format!("{}/tests/manifests/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn unpinned_images_are_named_by_file_and_line() {
    let env = Env::new();
    let (compose, k8s) = (fixture("compose.yaml"), fixture("k8s.yaml"));
    let out = env.fails(3, &["check-refs", &compose, &k8s]);
    for want in [
        format!("{compose}:10: registry.example.com/shop/api:2.3.1"),
        format!("{compose}:14: postgres:16"),
        format!("{k8s}:11: registry.example.com/shop/migrate:2.3.1"), // init container
        format!("{k8s}:28: registry.example.com/shop/report:latest"), // CronJob
        format!("{k8s}:46: busybox"),                                 // Pod
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    // Pinned images (web in Compose, the Deployment's api, the Job) are not reported.
    assert!(!out.contains("shop/web") && !out.contains("shop/once") && !out.contains(":14: registry"), "{out}");
    assert!(out.contains("5 image reference(s) not pinned"), "{out}");
    let (code, json, _) = env.run(&["check-refs", &k8s, "--json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["unpinned"].as_array().unwrap().len(), 3);
    assert_eq!(v["unpinned"][0]["line"], 11);
}

#[test]
fn all_pinned_passes() {
    let env = Env::new();
    let out = env.ok(&["check-refs", &fixture("compose-pinned.yaml")]);
    assert!(out.contains("pinned"), "{out}");
}

#[test]
fn dev_mode_turns_failures_into_warnings() {
    let env = Env::new();
    let (code, _, err) = env.run(&["check-refs", &fixture("compose.yaml"), "--allow-tag"]);
    assert_eq!(code, 0);
    assert!(err.contains("warning: ") && err.contains("postgres:16"), "{err}");
    for var in ["ALLOW_TAG", "DEV_MODE"] {
        let out = env.cmd().env(var, "1").args(["check-refs", &fixture("compose.yaml")]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{var}");
    }
}

#[test]
fn broken_yaml_and_missing_files_are_operational_errors() {
    let env = Env::new();
    std::fs::write(env.path("bad.yaml"), "services:\n  web:\n    image: [unclosed\n").unwrap();
    let out = env.fails(1, &["check-refs", &env.path("bad.yaml")]);
    assert!(out.contains("bad.yaml:") && out.contains("not valid YAML"), "{out}");
    let out = env.fails(1, &["check-refs", &env.path("missing.yaml")]);
    assert!(out.contains("missing.yaml"), "{out}");
    // An image that is not even a valid reference is reported, not accepted.
    std::fs::write(env.path("weird.yaml"), "services:\n  web:\n    image: ${REGISTRY}/web:${TAG}\n").unwrap();
    let out = env.fails(3, &["check-refs", &env.path("weird.yaml")]);
    assert!(out.contains("weird.yaml:3:"), "{out}");
}

/// A ledger with `app` in prod, `dev-only` in dev and `built-only` built;
/// a Compose file and a Kubernetes file naming them (and a tag).
fn promoted_ledger() -> (Env, String, String, String) {
    use common::image;
    let (env, genesis) = Env::with_promotions();
    let compose = env.path("compose.prod.yaml");
    std::fs::write(
        &compose,
        format!(
            "services:\n  web:\n    image: {}\n  api:\n    image: {}\n  worker:\n    image: {}\n  cache:\n    image: redis:7\n",
            image("app"),
            image("dev-only"),
            image("built-only")
        ),
    )
    .unwrap();
    let k8s = env.path("deploy.prod.yaml");
    std::fs::write(
        &k8s,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      \
             initContainers:\n        - name: migrate\n          image: {}\n      containers:\n        - name: app\n          \
             image: {}\n",
            image("dev-only"),
            image("app")
        ),
    )
    .unwrap();
    (env, genesis, compose, k8s)
}

#[test]
fn with_env_every_digest_must_have_been_promoted_into_it() {
    let (env, _, compose, k8s) = promoted_ledger();
    let out = env.fails(3, &["check-refs", "--env", "prod", &compose, &k8s]);
    let dev_only = common::digest("dev-only");
    for want in [
        format!(
            "{compose}:5: {} ({dev_only} was never promoted into prod; it was promoted into dev)",
            common::image("dev-only")
        ),
        format!(
            "{compose}:7: {} ({} was never promoted into prod)",
            common::image("built-only"),
            common::digest("built-only")
        ),
        format!("{compose}:9: redis:7 (no digest)"),
        format!(
            "{k8s}:10: {} ({dev_only} was never promoted into prod; it was promoted into dev)",
            common::image("dev-only")
        ),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains(":3: ") && !out.contains(":13: "), "the promoted digest is not reported:\n{out}");
    assert!(out.contains("4 image reference(s) not pinned to a digest promoted into prod"), "{out}");
    // A tag cannot be shown promoted: --allow-tag does not apply with --env.
    let out = env.fails(3, &["check-refs", "--env", "prod", "--allow-tag", &compose]);
    assert!(out.contains(":9: redis:7") && !out.contains("warning:"), "{out}");
    let (code, json, _) = env.run(&["--json", "check-refs", "--env", "prod", &k8s]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((v["ok"].as_bool(), v["env"].as_str()), (Some(false), Some("prod")));
    assert_eq!(v["unpromoted"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["unpromoted"][0]["line"], 10);
    // Into dev, both digests of the Kubernetes file were promoted.
    let out = env.ok(&["check-refs", "--env", "dev", &k8s]);
    assert!(out.contains("promoted into dev"), "{out}");
    // An environment the policy does not know is an operational error.
    let out = env.fails(1, &["check-refs", "--env", "qa-lab", &k8s]);
    assert!(out.contains("\"qa-lab\" is not in the policy"), "{out}");
}

#[test]
fn with_env_and_a_server_the_verified_mirror_decides() {
    let (env, genesis, compose, k8s) = promoted_ledger();
    let served = common::server::Served::start(&env.ledger(), &[]);
    let mirror = env.path("mirror");
    let remote = ["--server", served.url.as_str(), "--mirror", mirror.as_str(), "--server-genesis", genesis.as_str()];
    let with = |extra: &[&str]| -> Vec<String> { remote.iter().chain(extra).map(|s| s.to_string()).collect() };
    let args = with(&["check-refs", "--env", "prod", &compose]);
    let out = env.fails(3, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains(":5: ") && out.contains(":7: ") && !out.contains(":3: "), "{out}");
    // Promoted on the server meanwhile: the mirror syncs, verified, and agrees.
    for step in env.dev_to_prod_args(&common::image("dev-only")) {
        let step: Vec<&str> = step.iter().map(String::as_str).collect();
        let args = with(&step);
        env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let args = with(&["check-refs", "--env", "prod", &k8s]);
    env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(std::path::Path::new(&mirror).join("log").exists(), "the mirror was written");
}
