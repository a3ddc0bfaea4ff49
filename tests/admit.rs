//! `provledger admit`, the admission webhook, as a real process over TLS
//! (a certificate made here), sent real AdmissionReview documents; every
//! answer checked field by field.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Env, image};
use serde_json::{Value, json};

/// A running webhook (killed when dropped) and a client that trusts it.
struct Webhook {
    /// Kept for its drop, which kills the webhook.
    _process: common::server::Served,
    url: String,
    agent: ureq::Agent,
}

/// A self-signed certificate for 127.0.0.1 and localhost; the paths of
/// the certificate and of its key, and the certificate's DER.
fn certificate(env: &Env) -> (String, String, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert, key) = (env.path("webhook.crt"), env.path("webhook.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.der().to_vec())
}

impl Webhook {
    fn start(env: &Env, before: &[&str], after: &[&str]) -> Webhook {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (cert, key, der) = certificate(env);
        let admit = ["admit", "--listen", "127.0.0.1:0", "--tls-cert", &cert, "--tls-key", &key, "--refresh", "1"];
        let args: Vec<&str> = before.iter().copied().chain(admit).chain(after.iter().copied()).collect();
        let process = common::server::Served::spawn(&env.ledger(), &args, Stdio::inherit());
        let url = process.url.clone();
        let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![ureq::tls::Certificate::from_der(&der).to_owned()]));
        let agent = ureq::Agent::config_builder()
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Webhook { _process: process, url, agent }
    }

    /// POSTs `body` to /validate; the HTTP status and the answer.
    fn send(&self, body: &[u8]) -> (u16, Value) {
        let mut r = self.agent.post(&self.url).header("Content-Type", "application/json").send(body).unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap())
    }

    /// The review's response, after checking the envelope of the answer.
    fn review(&self, review: &Value) -> Value {
        let (status, answer) = self.send(review.to_string().as_bytes());
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            (answer["apiVersion"].as_str(), answer["kind"].as_str()),
            (Some("admission.k8s.io/v1"), Some("AdmissionReview"))
        );
        assert_eq!(answer["response"]["uid"], review["request"]["uid"], "the uid asked is answered");
        answer["response"].clone()
    }

    fn health(&self) -> u16 {
        let url = self.url.replace("/validate", "/healthz");
        self.agent.get(&url).call().unwrap().status().as_u16()
    }
}

/// An AdmissionReview request for `object` of `kind`.
fn review(uid: &str, kind: &str, namespace: &str, object: Value) -> Value {
    let (group, version) = match kind {
        "Pod" => ("", "v1"),
        "CronJob" | "Job" => ("batch", "v1"),
        _ => ("apps", "v1"),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": format!("{}s", kind.to_lowercase())},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:deployer"},
            "object": object,
            "dryRun": false
        }
    })
}

fn pod_spec(containers: &[(&str, &str)]) -> Value {
    json!({"containers": containers.iter().map(|(n, i)| json!({"name": n, "image": i})).collect::<Vec<_>>()})
}

fn pod(containers: &[(&str, &str)]) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "spec": pod_spec(containers)})
}

/// A ledger with `app` in prod, `dev-only` in dev, `built-only` built.
fn ledger() -> (Env, String) {
    Env::with_promotions()
}

fn message(response: &Value) -> String {
    response["status"]["message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn only_digests_promoted_into_the_environment_are_admitted() {
    let (env, _) = ledger();
    let hook = Webhook::start(&env, &[], &["--env", "prod"]);
    let (app, dev_only, built_only) = (image("app"), image("dev-only"), image("built-only"));

    // A Pod with one promoted and one unpromoted image: denied, naming the second.
    let r = hook.review(&review("pod-1", "Pod", "shop", pod(&[("web", &app), ("sidecar", &dev_only)])));
    assert_eq!(r["allowed"], false);
    assert_eq!((r["status"]["code"].as_u64(), r["status"]["reason"].as_str()), (Some(403), Some("Forbidden")));
    let m = message(&r);
    assert!(m.contains(&format!("containers \"sidecar\" image {dev_only:?}")), "{m}");
    assert!(m.contains("was never promoted into prod; it was promoted into dev"), "{m}");
    assert!(!m.contains("\"web\""), "the promoted image is not a reason: {m}");

    // A Deployment whose template runs only the promoted digest: allowed, nothing said.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec(&[("web", &app)])}}});
    let r = hook.review(&review("deploy-1", "Deployment", "shop", deployment.clone()));
    assert_eq!(r["allowed"], true);
    assert!(r.get("status").is_none() && r.get("warnings").is_none(), "{r}");
    // Its init container built but never promoted: denied.
    let mut with_init = deployment.clone();
    with_init["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "migrate", "image": built_only}]);
    let r = hook.review(&review("deploy-2", "Deployment", "shop", with_init));
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("initContainers \"migrate\"") && message(&r).contains("never promoted into prod"),
        "{r}"
    );

    // A CronJob's pod template.
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "report"},
        "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec(&[("report", &dev_only)])}}}}});
    let r = hook.review(&review("cron-1", "CronJob", "shop", cron));
    assert_eq!(r["allowed"], false);
    assert!(message(&r).contains("containers \"report\""), "{r}");

    // An ephemeral container added to a running Pod (the ephemeralcontainers subresource).
    let mut debugged = pod(&[("web", &app)]);
    debugged["spec"]["ephemeralContainers"] = json!([{"name": "debugger", "image": "busybox:1.36"}]);
    let mut r = review("eph-1", "Pod", "shop", debugged);
    r["request"]["operation"] = json!("UPDATE");
    r["request"]["subResource"] = json!("ephemeralcontainers");
    let r = hook.review(&r);
    assert_eq!(r["allowed"], false);
    let m = message(&r);
    assert!(m.contains("ephemeralContainers \"debugger\" image \"busybox:1.36\": not pinned to a digest"), "{m}");

    // A tag-only image.
    let r = hook.review(&review("tag-1", "Pod", "shop", pod(&[("web", "registry.example.com/acme/app:1.0")])));
    assert_eq!(r["allowed"], false);
    assert!(message(&r).contains("not pinned to a digest"), "{r}");

    // Every reason is given, not the first only.
    let r = hook.review(&review("pod-3", "Pod", "shop", pod(&[("a", &dev_only), ("b", &built_only), ("c", "nginx")])));
    assert!(message(&r).starts_with("provledger: 3 image(s) not promoted into prod: "), "{r}");

    // dryRun: answered as any other request, with its uid.
    let mut dry = review("dry-1", "Pod", "shop", pod(&[("web", &dev_only)]));
    dry["request"]["dryRun"] = json!(true);
    assert_eq!(hook.review(&dry)["allowed"], false);
    let mut dry = review("dry-2", "Pod", "shop", pod(&[("web", &app)]));
    dry["request"]["dryRun"] = json!(true);
    assert_eq!(hook.review(&dry)["allowed"], true);

    // A deletion runs nothing; a Service names no pod.
    let mut delete = review("del-1", "Pod", "shop", Value::Null);
    delete["request"]["operation"] = json!("DELETE");
    assert_eq!(hook.review(&delete)["allowed"], true);
    let service =
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}});
    assert_eq!(hook.review(&review("svc-1", "Service", "shop", service))["allowed"], true);
    // An image volume is pulled like a container image: held to the same rule.
    let mut with_volume = pod(&[("web", &app)]);
    with_volume["spec"]["volumes"] =
        json!([{"name": "payload", "image": {"reference": "evil.example/payload:latest"}}]);
    let r = hook.review(&review("vol-1", "Pod", "shop", with_volume));
    assert_eq!(r["allowed"], false);
    assert!(message(&r).contains("volumes \"payload\" image \"evil.example/payload:latest\""), "{r}");
    // A null list is no list; a list that is not one, or an image that is not a string, is refused.
    let mut nulls = pod(&[("web", &app)]);
    nulls["spec"]["initContainers"] = Value::Null;
    assert_eq!(hook.review(&review("null-1", "Pod", "shop", nulls))["allowed"], true);
    let mut odd = pod(&[("web", &app)]);
    odd["spec"]["initContainers"] = json!({"name": "x", "image": dev_only});
    assert!(message(&hook.review(&review("odd-1", "Pod", "shop", odd))).contains("initContainers is not a list"));
    let odd = json!({"spec": {"containers": [{"name": "x", "image": ["a"]}]}});
    assert!(message(&hook.review(&review("odd-2", "Pod", "shop", odd))).contains("names no image"));
    // A custom resource that runs pods from a template is checked as well.
    let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web"},
        "spec": {"template": {"spec": pod_spec(&[("web", &dev_only)])}}});
    let r = hook.review(&review("ro-1", "Rollout", "shop", rollout));
    assert_eq!(r["allowed"], false);
    assert!(message(&r).contains("containers \"web\""), "{r}");
    assert_eq!(hook.health(), 200);
}

#[test]
fn malformed_requests_get_a_well_formed_denial() {
    let (env, _) = ledger();
    let hook = Webhook::start(&env, &[], &["--env", "prod"]);
    for (body, uid, why) in [
        (b"{not json".to_vec(), "", "the body is not JSON"),
        (json!({"kind": "Pod"}).to_string().into_bytes(), "", "expected apiVersion admission.k8s.io/v1"),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u-9", "operation": "CREATE"}})
                .to_string()
                .into_bytes(),
            "u-9",
            "the request has no kind.kind",
        ),
        (
            review("u-10", "Deployment", "shop", json!({"spec": {"template": {}}})).to_string().into_bytes(),
            "u-10",
            "the Deployment has no pod spec",
        ),
        (
            review("u-11", "Pod", "shop", json!({"spec": {"containers": [{"name": "x"}]}})).to_string().into_bytes(),
            "u-11",
            "containers \"x\" names no image",
        ),
    ] {
        let (status, answer) = hook.send(&body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["kind"], "AdmissionReview");
        let r = &answer["response"];
        assert_eq!((r["uid"].as_str(), r["allowed"].as_bool()), (Some(uid), Some(false)), "{answer}");
        assert!(message(r).contains(why), "{why:?} in {answer}");
    }
}

#[test]
fn an_unreadable_ledger_denies_and_says_so_until_it_is_back() {
    let (env, _) = ledger();
    let hook = Webhook::start(&env, &[], &["--env", "prod"]);
    let ask = || hook.review(&review("p", "Pod", "shop", pod(&[("web", &image("app"))])));
    assert_eq!(ask()["allowed"], true);
    let moved = env.dir.path().join("ledger-away");
    std::fs::rename(env.ledger(), &moved).unwrap();
    let wait_for = |want: bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = ask();
            if r["allowed"] == want {
                return r;
            }
            assert!(Instant::now() < deadline, "still {r} after 20 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let r = wait_for(false);
    assert!(message(&r).contains("the ledger could not be read or verified"), "{r}");
    assert_eq!(hook.health(), 503);
    std::fs::rename(&moved, env.ledger()).unwrap();
    wait_for(true);
    assert_eq!(hook.health(), 200);
}

#[test]
fn exempt_namespaces_and_warn_only_are_flags() {
    let (env, _) = ledger();
    let hook = Webhook::start(&env, &[], &["--env", "prod", "--exempt-namespace", "kube-system"]);
    let unpromoted = pod(&[("web", &image("dev-only"))]);
    assert_eq!(hook.review(&review("e-1", "Pod", "kube-system", unpromoted.clone()))["allowed"], true);
    assert_eq!(hook.review(&review("e-2", "Pod", "shop", unpromoted.clone()))["allowed"], false);
    drop(hook);
    let hook = Webhook::start(&env, &[], &["--env", "prod", "--warn-only"]);
    let r = hook.review(&review("w-1", "Pod", "shop", unpromoted));
    assert_eq!(r["allowed"], true);
    assert!(r.get("status").is_none(), "{r}");
    let warnings = r["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().unwrap().contains("never promoted into prod"), "{r}");
}

#[test]
fn from_a_server_the_mirror_syncs_and_a_new_promotion_is_admitted() {
    let (env, genesis) = ledger();
    let served = common::server::Served::start(&env.ledger(), &[]);
    let mirror = env.path("admit-mirror");
    let hook = Webhook::start(
        &env,
        &["--server", &served.url, "--server-genesis", &genesis, "--mirror", &mirror],
        &["--env", "prod"],
    );
    let ask = || hook.review(&review("s", "Pod", "shop", pod(&[("web", &image("dev-only"))])));
    assert_eq!(ask()["allowed"], false);
    let remote =
        ["--server", served.url.as_str(), "--server-genesis", genesis.as_str(), "--mirror", &env.path("cli-mirror")];
    for step in env.dev_to_prod_args(&image("dev-only")) {
        let args: Vec<&str> = remote.iter().copied().chain(step.iter().map(String::as_str)).collect();
        env.ok(&args);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while ask()["allowed"] != true {
        assert!(Instant::now() < deadline, "the new promotion was not seen");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The server gone: the webhook cannot bring its copy up to date and denies.
    drop(served);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = ask();
        if r["allowed"] == false {
            assert!(message(&r).contains("could not be read or verified"), "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "still admitting with the server gone");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn plain_http_gets_no_answer_and_bad_tls_files_are_refused() {
    let (env, _) = ledger();
    let hook = Webhook::start(&env, &[], &["--env", "prod"]);
    let plain = hook.url.replace("https://", "http://");
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
    assert!(agent.post(&plain).send("{}").is_err(), "the webhook speaks TLS only");
    // `admit` that must exit 1 before it listens; what it said.
    let refused = |env_name: &str, cert: &str, key: &str| {
        env.fails(1, &["admit", "--env", env_name, "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key])
    };
    let (cert, key) = (env.path("webhook.crt"), env.path("webhook.key"));
    std::fs::write(env.path("empty.pem"), "").unwrap();
    let out = refused("prod", &env.path("empty.pem"), &key);
    assert!(out.contains("empty.pem") && out.contains("no certificate"), "{out}");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let out = refused("prod", &cert, &cert);
    assert!(out.contains("not a PEM private key"), "{out}");
    assert!(!out.contains(key_text.lines().nth(1).unwrap()), "no key material in the error");
    let out = refused("qa-lab", &cert, &key);
    assert!(out.contains("\"qa-lab\": the policy names no such environment"), "{out}");
}
