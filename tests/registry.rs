//! Registry-backed identity against a real registry: Debian's
//! `docker-registry` on loopback, images made with umoci and pushed with
//! skopeo, provledger run as a process.

mod common;

use common::registry::{Layout, TestRegistry, free_port};
use common::{Env, GIT_SHA};
use serde_json::Value;

const ALL_CHECKS: [&str; 4] = ["unit=pass", "integration=pass", "e2e=pass", "vuln-scan=pass"];

struct World {
    env: Env,
    reg: TestRegistry,
    images: Layout,
}

impl World {
    fn new() -> World {
        let (env, _) = Env::initialised_with_log_key();
        World { env, reg: TestRegistry::start(), images: Layout::new() }
    }

    fn host(&self) -> String {
        self.reg.host()
    }

    /// Makes an image and pushes it as `repo:tag`; returns its digest.
    fn publish(&self, name: &str, repo: &str, tag: &str) -> String {
        self.images.make(name, "amd64", &format!("content of {name}"));
        self.images.push(name, &self.host(), repo, tag)
    }

    fn reference(&self, repo_tag_or_digest: &str) -> String {
        format!("{}/{repo_tag_or_digest}", self.host())
    }

    /// `HOST/repo@digest`.
    fn pinned(&self, repo: &str, digest: &str) -> String {
        format!("{}/{repo}@{digest}", self.host())
    }

    /// Runs provledger with the test registry reachable over plain HTTP.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = vec!["--insecure-registry".to_string(), self.host()];
        a.extend(args.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        self.env.run(&a)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "provledger {args:?} failed:\n{out}\n{err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    fn fails(&self, code: i32, args: &[&str]) -> String {
        let (got, out, err) = self.run(args);
        assert_eq!(got, code, "provledger {args:?}: expected exit {code}, got {got}:\n{out}\n{err}");
        format!("{out}{err}")
    }

    fn build(&self, reference: &str) -> Value {
        self.json(&["record", "build", "--key", &self.env.key("ci"), "--image", reference, "--git-sha", GIT_SHA])
    }

    fn validate(&self, reference: &str, checks: &[&str]) -> Value {
        let key = self.env.key("qa");
        let mut args = vec!["record", "validation", "--key", &key, "--image", reference];
        for c in checks {
            args.extend(["--check", c]);
        }
        self.json(&args)
    }

    fn promote_args<'a>(&'a self, key: &'a str, reference: &'a str, to: &'a str) -> Vec<&'a str> {
        vec!["promote", "--key", key, "--image", reference, "--to", to]
    }

    fn show(&self, digest: &str) -> Value {
        self.json(&["show", digest])
    }
}

/// The entry count the ledger verifies to.
fn entries(env: &Env) -> u64 {
    env.head().1
}

#[test]
fn tag_resolution_matches_skopeo_and_is_recorded_as_confirmed() {
    let w = World::new();
    let pushed = w.publish("v1", "acme/app", "1.0");
    let reference = w.reference("acme/app:1.0");
    let skopeo = w.reg.inspect_digest(&reference);
    assert_eq!(skopeo, pushed);

    let entry = w.build(&reference);
    let subjects = entry["subjects"].to_string();
    assert!(subjects.contains(&skopeo), "recorded {subjects}, skopeo says {skopeo}");

    let build = &w.show(&skopeo)["builds"][0];
    assert_eq!(build["registry_confirmed"], true);
    assert_eq!(build["registry"], w.host());
    assert_eq!(build["tag"], "1.0");
    assert_eq!(build["media_type"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(build["platforms"][0]["architecture"], "amd64");
    assert_eq!(build["platforms"][0]["digest"], skopeo.as_str());

    // The tag with the digest the registry serves under it is accepted too.
    let both = format!("{reference}@{skopeo}");
    let sha = "ffffffffffffffffffffffffffffffffffffffff";
    let again = w.json(&["record", "build", "--key", &w.env.key("ci"), "--image", &both, "--git-sha", sha]);
    assert!(again["subjects"].to_string().contains(&skopeo));
    // Offline, nothing is asked and the record says so.
    let offline = w.json(&[
        "record",
        "build",
        "--key",
        &w.env.key("ci"),
        "--image",
        &format!("{reference}@{skopeo}"),
        "--offline",
    ]);
    assert_eq!(offline["index"], 3);
    assert_eq!(w.show(&skopeo)["builds"][2]["registry_confirmed"], false);
}

#[test]
fn a_build_digest_the_registry_does_not_serve_under_the_tag_is_refused() {
    let w = World::new();
    w.publish("real", "acme/app", "1.0");
    let other = w.publish("other", "acme/other", "1.0");
    let before = entries(&w.env);
    let lying = w.pinned("acme/app:1.0", &other);
    let out = w.fails(3, &["record", "build", "--key", &w.env.key("ci"), "--image", &lying]);
    assert!(out.contains("same label, different artifact") && out.contains(&other), "{out}");
    assert_eq!(entries(&w.env), before, "nothing appended");

    // A digest the repository never had is refused as well.
    let absent = w.pinned("acme/app", &common::digest("never pushed"));
    let out = w.fails(3, &["record", "build", "--key", &w.env.key("ci"), "--image", &absent]);
    assert!(out.contains("not in the registry"), "{out}");
    assert_eq!(entries(&w.env), before);
}

#[test]
fn a_moved_tag_changes_nothing_for_the_validated_digest() {
    let w = World::new();
    let old = w.publish("v1", "acme/app", "latest");
    let tag = w.reference("acme/app:latest");
    w.build(&tag);
    let old_ref = w.pinned("acme/app", &old);
    w.validate(&old_ref, &ALL_CHECKS);

    // The tag moves to a new image, which is built but not validated.
    let new = w.publish("v2", "acme/app", "latest");
    assert_ne!(old, new);
    w.build(&tag);
    let new_ref = w.pinned("acme/app", &new);

    let key = w.env.key("release");
    w.json(&w.promote_args(&key, &old_ref, "dev"));
    let before = entries(&w.env);
    let out = w.fails(3, &w.promote_args(&key, &new_ref, "dev"));
    assert!(out.contains("required check \"unit\"") && out.contains(&new), "{out}");
    assert_eq!(entries(&w.env), before);
    // The tag alone is never promotable.
    let out = w.fails(3, &w.promote_args(&key, &tag, "dev"));
    assert!(out.contains("tag-only"), "{out}");
}

#[test]
fn a_deleted_manifest_blocks_promotion_unless_offline() {
    let w = World::new();
    let digest = w.publish("gone", "acme/app", "1.0");
    let reference = w.pinned("acme/app", &digest);
    w.build(&reference);
    w.validate(&reference, &ALL_CHECKS);
    w.reg.delete("acme/app", &digest);

    let key = w.env.key("release");
    let before = w.env.head();
    let out = w.fails(3, &w.promote_args(&key, &reference, "dev"));
    assert!(out.contains("denied") && out.contains("is not in registry"), "{out}");
    assert_eq!(w.env.head(), before, "head unchanged");

    // A validation of a digest the registry no longer has is refused too.
    let out =
        w.fails(3, &["record", "validation", "--key", &w.env.key("qa"), "--image", &reference, "--check", "unit=pass"]);
    assert!(out.contains("is not in registry"), "{out}");
    assert_eq!(w.env.head(), before);

    // --offline skips the registry, and the promotion records it.
    let mut args = w.promote_args(&key, &reference, "dev");
    args.push("--offline");
    w.json(&args);
    let p = &w.show(&digest)["promotions"][0];
    assert_eq!(p["registry_confirmed"], false);
}

#[test]
fn an_index_records_its_platforms_and_only_those_platform_digests_are_subjects() {
    let w = World::new();
    w.images.make("amd", "amd64", "amd64 build");
    w.images.make("arm", "arm64", "arm64 build");
    let index = w.images.make_index("multi", &[("amd", "amd64"), ("arm", "arm64")]);
    w.images.push("multi", &w.host(), "acme/multi", "2.0");
    let (amd, arm) = (w.images.digest("amd"), w.images.digest("arm"));

    let entry = w.build(&w.reference("acme/multi:2.0"));
    let subjects: Vec<String> = entry["subjects"].as_array().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(subjects[0].contains(&index), "the index comes first: {subjects:?}");
    assert!(subjects[1..].iter().any(|s| s.contains(&amd)) && subjects[1..].iter().any(|s| s.contains(&arm)));

    let build = &w.show(&index)["builds"][0];
    assert_eq!(build["media_type"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<(String, String)> = build["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["digest"].as_str().unwrap().to_string(), p["architecture"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(platforms, vec![(amd.clone(), "amd64".to_string()), (arm.clone(), "arm64".to_string())]);
    let meta: Value = serde_json::from_str(&w.env.ok(&["release-metadata", &index])).unwrap();
    assert_eq!(meta["supported_architectures"], serde_json::json!(["amd64", "arm64"]));

    // Validation and promotion of the index name the index.
    let index_ref = w.pinned("acme/multi", &index);
    w.validate(&index_ref, &ALL_CHECKS);
    let key = w.env.key("release");
    let p = w.json(&w.promote_args(&key, &index_ref, "dev"));
    assert!(p["entry"]["subjects"].to_string().contains(&index));

    // A platform digest of the recorded index is a subject that can be validated...
    let arm_ref = w.pinned("acme/multi", &arm);
    let v = w.validate(&arm_ref, &["unit=pass"]);
    assert!(v["subjects"].to_string().contains(&arm));
    // ...but a manifest no recorded index publishes is not.
    let loose = w.publish("loose", "acme/multi", "loose");
    let loose_ref = w.pinned("acme/multi", &loose);
    let before = entries(&w.env);
    let out =
        w.fails(3, &["record", "validation", "--key", &w.env.key("qa"), "--image", &loose_ref, "--check", "unit=pass"]);
    assert!(out.contains("no build entry"), "{out}");
    assert_eq!(entries(&w.env), before);
}

#[test]
fn attestations_round_trip_survive_promotion_and_reject_tampering() {
    let w = World::new();
    let digest = w.publish("att", "acme/app", "1.0");
    let reference = w.pinned("acme/app", &digest);
    w.build(&reference);
    w.validate(&reference, &ALL_CHECKS);

    let attached = w.json(&["attach", &digest]);
    assert_eq!(attached["entries"], serde_json::json!([1, 2]));
    // Debian's registry has no referrers API: the tag scheme lists the artifact.
    assert_eq!(attached["listed_by"], "tag-schema");

    let fetched = w.json(&["fetch-attestations", &w.reference("acme/app:1.0")]);
    let list = fetched["attestations"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{fetched}");
    assert!(list.iter().all(|a| a["ok"] == true));
    assert_eq!(list[0]["entry"]["kind"], "build");
    assert_eq!(list[1]["entry"]["kind"], "validation");

    // Promotion into another repository carries the image and its attestations.
    let target = w.reference("deploy/app:dev");
    let key = w.env.key("release");
    let mut args = w.promote_args(&key, &reference, "dev");
    args.extend(["--tag-target", &target]);
    w.json(&args);
    assert_eq!(w.reg.inspect_digest(&target), digest, "same manifest bytes under the new tag");
    assert_eq!(w.show(&digest)["promotions"][0]["tag_target"], target.as_str());
    let there = w.json(&["fetch-attestations", &target]);
    assert_eq!(there["attestations"].as_array().unwrap().len(), 2, "{there}");

    // An artifact whose envelope was altered (payload changed, signature
    // kept) is rejected, naming the artifact; so is one signed by a key the
    // ledger never knew.
    let log = w.env.json(&["log"]);
    let mut envelope = log[1]["envelope"].clone();
    let forged = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
        let text =
            String::from_utf8(payload.clone()).unwrap().replace("https://provledger.dev/builders", "https://evil");
        payload = text.into_bytes();
        envelope["payload"] = b64.encode(&payload).into();
        serde_json::to_vec(&envelope).unwrap()
    };
    let stranger = {
        let key = provledger::core::keys::SecretKey::generate();
        use base64::Engine as _;
        let payload =
            base64::engine::general_purpose::STANDARD.decode(log[1]["envelope"]["payload"].as_str().unwrap()).unwrap();
        let e = provledger::core::dsse::Envelope::sign(provledger::core::dsse::PAYLOAD_TYPE_IN_TOTO, payload, &[&key]);
        serde_json::to_vec(&e.to_json_value()).unwrap()
    };
    let registry = provledger::registry::Registry::new(&provledger::registry::Options::new(
        vec![w.host()],
        std::time::Duration::from_secs(10),
    ))
    .unwrap();
    let image: provledger::core::image_ref::ImageRef = reference.parse().unwrap();
    let layers = [forged, stranger].map(|envelope_json| provledger::registry::AttestationLayer {
        envelope_json,
        entry_index: 1,
        entry_hash: "0".repeat(64),
    });
    let (artifact, _) = registry.attach(&image, digest.parse().unwrap(), &layers, "attacker").unwrap();
    let (code, out, err) = w.run(&["fetch-attestations", &reference, "--json"]);
    assert_eq!(code, 4, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rejected: Vec<&Value> = v["attestations"].as_array().unwrap().iter().filter(|a| a["ok"] == false).collect();
    assert_eq!(rejected.len(), 2, "{v}");
    assert!(rejected.iter().all(|a| a["artifact"] == artifact.to_string().as_str()));
    assert!(rejected[0]["reason"].as_str().unwrap().contains("not recorded"), "{v}");
    assert!(rejected[1]["reason"].as_str().unwrap().contains("signature"), "{v}");
    // The untouched envelopes still verify, each once.
    assert_eq!(v["attestations"].as_array().unwrap().iter().filter(|a| a["ok"] == true).count(), 2);
}

#[test]
fn an_unreachable_registry_is_exit_1_naming_the_host_with_nothing_appended() {
    let mut w = World::new();
    let digest = w.publish("down", "acme/app", "1.0");
    let reference = w.pinned("acme/app", &digest);
    w.build(&reference);
    w.validate(&reference, &ALL_CHECKS);
    w.reg.stop();

    let before = w.env.head();
    let host = w.host();
    let key = w.env.key("release");
    for args in [
        vec!["record", "build", "--key", &w.env.key("ci"), "--image", &reference],
        vec!["record", "validation", "--key", &w.env.key("qa"), "--image", &reference, "--check", "unit=pass"],
        w.promote_args(&key, &reference, "dev"),
        vec!["fetch-attestations", &reference],
    ] {
        let out = w.fails(1, &args);
        assert!(out.contains(&format!("registry {host} is unreachable")), "{args:?}: {out}");
    }
    assert_eq!(w.env.head(), before, "head unchanged");
}

#[test]
fn plain_http_only_for_registries_named_insecure() {
    let w = World::new();
    w.publish("tls", "acme/app", "1.0");
    let reference = w.reference("acme/app:1.0");
    // Without --insecure-registry the client speaks HTTPS, which a plain
    // HTTP registry cannot answer.
    let (code, out, err) = w.env.run(&["record", "build", "--key", &w.env.key("ci"), "--image", &reference]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("--insecure-registry"), "{err}");
    assert_eq!(entries(&w.env), 1);
    // The environment variable names it as well as the flag does.
    let out = w
        .env
        .cmd()
        .env("PROVLEDGER_INSECURE_REGISTRIES", format!("example.invalid:1,{}", w.host()))
        .args(["record", "build", "--key", &w.env.key("ci"), "--image", &reference, "--git-sha", GIT_SHA])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A registry nobody listens on is reported unreachable, by name.
    let nowhere = format!("127.0.0.1:{}/acme/app:1.0", free_port());
    let (code, _, err) = w.run(&[
        "--insecure-registry",
        &nowhere[..nowhere.find('/').unwrap()],
        "record",
        "build",
        "--key",
        &w.env.key("ci"),
        "--image",
        &nowhere,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn basic_auth_from_the_environment_or_the_docker_config() {
    let (env, _) = Env::initialised_with_log_key();
    let reg = TestRegistry::start_with(Some(("alice", "s3cret")));
    let images = Layout::new();
    images.make("private", "amd64", "private image");
    let digest = images.push_as("private", &reg.host(), "acme/private", "1.0", Some("alice:s3cret"));
    let reference = format!("{}/acme/private:1.0", reg.host());
    let build = |sha: &str| {
        let mut c = env.cmd();
        c.env_remove("PROVLEDGER_REGISTRY_USERNAME").env_remove("PROVLEDGER_REGISTRY_PASSWORD");
        c.env("DOCKER_CONFIG", env.dir.path().join("no-docker-config"));
        c.args(["--insecure-registry", &reg.host(), "record", "build", "--key", &env.key("ci")]);
        c.args(["--image", &reference, "--git-sha", sha]);
        c
    };

    // Anonymous: refused by the registry, exit 1, nothing appended.
    let out = build(GIT_SHA).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused access") && err.contains("PROVLEDGER_REGISTRY_USERNAME"), "{err}");
    assert_eq!(entries(&env), 1);

    // From the environment.
    let out = build(GIT_SHA)
        .env("PROVLEDGER_REGISTRY_USERNAME", "alice")
        .env("PROVLEDGER_REGISTRY_PASSWORD", "s3cret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));

    // From a Docker config file, as `docker login` writes it.
    let docker = env.dir.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let config = serde_json::json!({"auths": {reg.host(): {"auth": auth}}});
    std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    let out = build("ffffffffffffffffffffffffffffffffffffffff").env("DOCKER_CONFIG", &docker).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(entries(&env), 3);
    let builds = env.json(&["show", &digest]);
    assert!(builds["builds"].as_array().unwrap().iter().all(|b| b["registry_confirmed"] == true));

    // Wrong password: refused, exit 1.
    let out = build("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
        .env("PROVLEDGER_REGISTRY_USERNAME", "alice")
        .env("PROVLEDGER_REGISTRY_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong"), "the password is never printed");
    assert_eq!(entries(&env), 3);
}

#[test]
fn a_release_is_promoted_only_while_every_artifact_is_in_the_registry() {
    let w = World::new();
    let mut refs = Vec::new();
    for artifact in ["backend", "frontend"] {
        let digest = w.publish(artifact, &format!("acme/{artifact}"), "3.0");
        let reference = w.pinned(&format!("acme/{artifact}"), &digest);
        let key = w.env.key("ci");
        let args = ["record", "build", "--key", &key, "--image", &reference, "--git-sha", GIT_SHA];
        w.json(&[&args[..], &["--artifact", artifact, "--release", "r3"]].concat());
        w.validate(&reference, &ALL_CHECKS);
        refs.push((artifact, digest));
    }
    let key = w.env.key("release");
    let promote = ["promote", "--key", &key, "--release", "r3", "--to", "dev"];

    // One artifact deleted: the whole release is denied, naming it.
    w.reg.delete("acme/frontend", &refs[1].1);
    let before = w.env.head();
    let out = w.fails(3, &promote);
    assert!(out.contains("frontend") && out.contains("is not in registry"), "{out}");
    assert_eq!(w.env.head(), before);

    // Pushed again: both promoted, each recorded as confirmed by its registry.
    w.images.push("frontend", &w.host(), "acme/frontend", "3.0");
    w.json(&promote);
    for (_, digest) in &refs {
        let p = &w.show(digest)["promotions"][0];
        assert_eq!(p["registry_confirmed"], true, "{p}");
        assert_eq!(p["registry"], w.host().as_str());
    }
}

/// What `HOST/repo:tag` serves now, if anything.
fn served(w: &World, repo: &str, tag: &str) -> Option<String> {
    let registry = provledger::registry::Registry::new(&provledger::registry::Options::new(
        vec![w.host()],
        std::time::Duration::from_secs(10),
    ))
    .unwrap();
    let image: provledger::core::image_ref::ImageRef = format!("{}/{repo}:{tag}", w.host()).parse().unwrap();
    match registry.manifest(&image, provledger::registry::Target::Tag(tag)) {
        Ok(m) => Some(m.digest.to_string()),
        Err(provledger::registry::RegistryError::NotFound { .. }) => None,
        Err(e) => panic!("reading {image}: {e}"),
    }
}

/// Promotions into `env` as `(digest, tag_target)`, newest first.
fn promotions_into(w: &World, env: &str) -> Vec<(String, Option<String>)> {
    let h = w.json(&["history", "--env", env]);
    h["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["digest"].as_str().unwrap().to_string(), p["tag_target"].as_str().map(str::to_string)))
        .collect()
}

#[test]
fn a_tag_bound_to_another_environment_is_denied_and_the_own_tag_moves() {
    let w = World::new();
    let digest = w.publish("bound", "acme/app", "1.0");
    let reference = w.pinned("acme/app", &digest);
    w.build(&reference);
    w.validate(&reference, &ALL_CHECKS);
    let key = w.env.key("release");
    let before = w.env.head();
    let mut args = w.promote_args(&key, &reference, "dev");
    let prod = w.reference("acme/app:prod");
    args.extend(["--tag-target", &prod]);
    let out = w.fails(3, &args);
    assert!(out.contains("\"prod\" is bound to environment prod"), "{out}");
    assert_eq!(served(&w, "acme/app", "prod"), None, "the prod tag did not move");
    assert_eq!(w.env.head(), before);
    let mut args = w.promote_args(&key, &reference, "dev");
    let dev = w.reference("acme/app:dev");
    args.extend(["--tag-target", &dev]);
    w.json(&args);
    assert_eq!(served(&w, "acme/app", "dev"), Some(digest.clone()));
    // Moved elsewhere behind the ledger's back: --check says so, reconcile puts it back.
    let other = w.publish("stray", "acme/app", "dev");
    assert_ne!(other, digest);
    let (code, out, err) = w.run(&["reconcile-tags", "--check", "--json"]);
    assert_eq!(code, 3, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["tags"][0]["served"], other.as_str(), "{report}");
    assert_eq!(served(&w, "acme/app", "dev"), Some(other), "--check moves nothing");
    let report = w.json(&["reconcile-tags", "--env", "dev"]);
    assert_eq!(report["tags"][0]["moved"], true, "{report}");
    assert_eq!(served(&w, "acme/app", "dev"), Some(digest.clone()));
    w.ok(&["reconcile-tags", "--check"]);
}

#[test]
fn a_killed_promotion_never_leaves_the_tag_ahead_of_the_ledger() {
    use rand::RngExt as _;
    let w = World::new();
    let target = w.reference("acme/app:dev");
    let key = w.env.key("release");
    let mut rng = rand::rng();
    for k in 0..8 {
        let digest = w.publish(&format!("kill-{k}"), "acme/app", &format!("1.{k}"));
        let reference = w.pinned("acme/app", &digest);
        w.build(&reference);
        w.validate(&reference, &["unit=pass"]);
        let mut args = vec!["--insecure-registry".to_string(), w.host()];
        args.extend(w.promote_args(&key, &reference, "dev").iter().map(|s| s.to_string()));
        args.extend(["--tag-target".to_string(), target.clone()]);
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provledger"))
            .env("PROVLEDGER_DIR", w.env.ledger())
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..250)));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever the tag serves, a durable promotion into dev naming it put it there.
        let promotions = promotions_into(&w, "dev");
        if let Some(now) = served(&w, "acme/app", "dev") {
            assert!(
                promotions.iter().any(|(d, t)| *d == now && t.as_deref() == Some(target.as_str())),
                "kill {k}: the tag serves {now}, which no promotion into dev with that tag target names: {promotions:?}"
            );
        }
        // The same command again completes it: promoted once, tag in place.
        let str_args: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
        w.json(&str_args);
        assert_eq!(served(&w, "acme/app", "dev"), Some(digest.clone()), "kill {k}");
        let promotions = promotions_into(&w, "dev");
        assert_eq!(promotions.iter().filter(|(d, _)| *d == digest).count(), 1, "kill {k}: {promotions:?}");
    }
    w.env.ok(&["verify"]);
}

/// A TCP relay to `127.0.0.1:to` that runs `hook` once, when its first
/// connection arrives and before it forwards a byte.
fn relay(to: u16, hook: impl FnOnce() + Send + 'static) -> u16 {
    use std::io::copy;
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut hook = Some(hook);
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            if let Some(h) = hook.take() {
                h();
            }
            let Ok(upstream) = TcpStream::connect(("127.0.0.1", to)) else { return };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let (mut c1, mut u1) = (client, upstream);
            std::thread::spawn(move || {
                let _ = copy(&mut c1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_gate_that_changes_between_decision_and_append_moves_no_tag() {
    let w = World::new();
    let digest = w.publish("raced", "acme/app", "1.0");
    let reference = w.pinned("acme/app", &digest);
    w.build(&reference);
    w.validate(&reference, &["unit=pass"]);
    let served_ledger = common::server::Served::start(&w.env.ledger(), &[]);
    let url = served_ledger.url.clone();
    // Between the promoter's decision (on its mirror) and its append, the
    // unit check fails on the server: the hook records that failure when the
    // promoter first reaches the registry, which it does only after deciding.
    let (dir, qa) = (w.env.dir.path().to_path_buf(), w.env.key("qa"));
    let (hook_url, hook_ref) = (url.clone(), reference.clone());
    let registry_port: u16 = w.host().rsplit(':').next().unwrap().parse().unwrap();
    let port = relay(registry_port, move || {
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("provledger"))
            .args(["--server", &hook_url, "--mirror", &dir.join("hook-mirror").display().to_string()])
            .args(["record", "validation", "--key", &qa, "--image", &hook_ref, "--check", "unit=fail", "--offline"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the failing validation is recorded");
    });
    let via = format!("127.0.0.1:{port}");
    let key = w.env.key("release");
    let (code, out, err) = w.env.run(&[
        "--insecure-registry",
        &via,
        "--server",
        &url,
        "--mirror",
        &w.env.path("promoter-mirror"),
        "promote",
        "--key",
        &key,
        "--image",
        &format!("{via}/acme/app@{digest}"),
        "--to",
        "dev",
        "--tag-target",
        &format!("{via}/acme/app:dev"),
    ]);
    assert_eq!(code, 3, "the server's gate refuses the promotion: {out}{err}");
    assert!(err.contains("failed"), "{err}");
    assert_eq!(served(&w, "acme/app", "dev"), None, "no tag serves a digest the ledger did not promote");
    drop(served_ledger);
    assert!(promotions_into(&w, "dev").is_empty());
}

/// A verification summary attached next to the image, as an in-toto
/// attestation artifact of its own: read back by its predicate type, byte
/// for byte, signature intact; the ledger's own attestations are unchanged.
/// A summary about another digest is refused before anything is pushed.
#[test]
fn a_verification_summary_is_attached_next_to_the_image() {
    let w = World::new();
    let digest = w.publish("vsa", "acme/app", "1.0");
    let reference = w.pinned("acme/app", &digest);
    w.build(&reference);
    w.validate(&reference, &ALL_CHECKS);
    let key = w.env.key("release");
    w.json(&w.promote_args(&key, &reference, "dev"));
    let summary = w.env.path("app.vsa.json");
    w.json(&["vsa", &digest, "--env", "dev", "--key", &w.env.key("qa"), "--out", &summary]);

    let other = w.publish("other", "acme/other", "1.0");
    let other_ref = w.pinned("acme/other", &other);
    w.build(&other_ref);
    let out = w.fails(3, &["attach", &other_ref, "--vsa", &summary]);
    assert!(out.contains(&format!("the summary is not about {other}")), "{out}");
    std::fs::write(w.env.path("not-a-vsa.json"), r#"{"payloadType": "x", "payload": "", "signatures": []}"#).unwrap();
    let out = w.fails(1, &["attach", &reference, "--vsa", &w.env.path("not-a-vsa.json")]);
    assert!(out.contains("--vsa"), "{out}");

    let attached = w.json(&["attach", &digest, "--vsa", &summary]);
    let vsa_artifact = attached["vsa_artifact"].as_str().expect("the summary's artifact").to_string();
    let registry = provledger::registry::Registry::new(&provledger::registry::Options::new(
        vec![w.host()],
        std::time::Duration::from_secs(10),
    ))
    .unwrap();
    let image: provledger::core::image_ref::ImageRef = reference.parse().unwrap();
    let found = registry.statements(&image, digest.parse().unwrap(), provledger::audit::vsa::PREDICATE_TYPE).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].artifact.to_string(), vsa_artifact);
    assert_eq!(found[0].bytes, std::fs::read(&summary).unwrap(), "the envelope as written");
    let envelope =
        provledger::core::dsse::Envelope::from_json_value(serde_json::from_slice(&found[0].bytes).unwrap()).unwrap();
    let public: provledger::core::keys::PublicKey =
        std::fs::read_to_string(w.env.path("qa.key.pub")).unwrap().parse().unwrap();
    assert!(envelope.verify_threshold(&[(None, public)], 1, &[provledger::core::dsse::PAYLOAD_TYPE_IN_TOTO]).is_ok());
    // Other predicate types find nothing; fetch-attestations still reads the ledger's entries only.
    assert!(registry.statements(&image, digest.parse().unwrap(), "https://example.com/other/v1").unwrap().is_empty());
    let fetched = w.json(&["fetch-attestations", &reference]);
    let list = fetched["attestations"].as_array().unwrap();
    assert_eq!(list.len(), 3, "build, validation, promotion: {fetched}");
    assert!(list.iter().all(|a| a["ok"] == true), "{fetched}");
}
