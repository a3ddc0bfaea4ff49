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
