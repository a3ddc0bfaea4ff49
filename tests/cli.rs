//! The command-line contract, through the real binary over temp ledgers:
//! exit codes, messages, and an unchanged head after every refusal.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{Env, GIT_SHA, digest, image, statement};

#[test]
fn init_prints_genesis_and_verify_checks_it() {
    let (env, genesis) = Env::initialised();
    let v = env.json(&["verify", "--genesis", &genesis]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 1);
    assert_eq!(v["genesis"], genesis.as_str());
    let wrong = "0".repeat(64);
    let out = env.fails(4, &["verify", "--genesis", &wrong]);
    assert!(out.contains("entry 0") && out.contains("genesis hash"), "{out}");
    // A second init is refused and changes nothing.
    env.fails(1, &["init", "--root-key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    assert_eq!(env.head().0, genesis);
}

#[test]
fn build_and_validation_are_recorded_and_verify() {
    let (env, _) = Env::initialised();
    let img = image("app-1");
    let b = env.build(&img);
    assert_eq!(b["index"], 1);
    assert_eq!(b["kind"], "build");
    assert_eq!(b["subjects"][0], digest("app-1").as_str());
    let v = env.validate(&img, &["unit=pass", "integration=fail"]);
    assert_eq!(v["index"], 2);
    assert_eq!(v["kind"], "validation");
    let (_, n) = env.head();
    assert_eq!(n, 3);
    let human = env.ok(&["log"]);
    assert!(human.contains("build") && human.contains("validation") && human.contains("qa "), "{human}");
}

#[test]
fn log_json_statements_are_in_toto_v1() {
    let (env, _) = Env::initialised();
    let img = image("app-2");
    env.build(&img);
    env.validate(&img, &["unit=pass"]);
    let log = env.json(&["log"]);
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for (i, e) in entries.iter().enumerate() {
        let env_json = &e["envelope"];
        assert_eq!(env_json["payloadType"], "application/vnd.in-toto+json");
        let sig = &env_json["signatures"][0];
        assert_eq!(sig["keyid"].as_str().unwrap().len(), 64, "keyid always written");
        let st = statement(&log, i);
        assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
        assert!(st["predicateType"].as_str().unwrap().starts_with("https://"));
        assert!(st["predicate"].is_object());
        let subjects = st["subject"].as_array().unwrap();
        assert!(!subjects.is_empty());
        for s in subjects {
            assert!(!s["name"].as_str().unwrap().is_empty());
            let hex = s["digest"]["sha256"].as_str().unwrap();
            assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{hex}");
        }
    }
    let build = statement(&log, 1);
    assert_eq!(build["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(build["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"], GIT_SHA);
    assert_eq!(build["predicate"]["buildDefinition"]["internalParameters"]["provledger"]["registryConfirmed"], false);
}

#[test]
fn wrong_role_signers_are_refused_and_head_unchanged() {
    let (env, _) = Env::initialised();
    let img = image("app-3");
    env.build(&img);
    let before = env.head();
    // A validation signed by the ci key.
    let out = env.fails(
        3,
        &["record", "validation", "--key", &env.key("ci"), "--image", &img, "--check", "unit=pass", "--offline"],
    );
    assert!(out.contains("does not hold the validation role") && out.contains("(ci)"), "{out}");
    // A build signed by the qa key.
    let out = env.fails(3, &["record", "build", "--key", &env.key("qa"), "--image", &image("other"), "--offline"]);
    assert!(out.contains("does not hold the build role") && out.contains("(qa)"), "{out}");
    // A policy change signed by a non-policy key.
    let out = env.fails(3, &["record", "policy", "--key", &env.key("release"), "--policy", &env.path("policy.toml")]);
    assert!(out.contains("does not hold the policy role"), "{out}");
    // A key the policy does not know at all.
    env.ok(&["key", "generate", "--out", &env.path("stranger.key")]);
    let out =
        env.fails(3, &["record", "build", "--key", &env.path("stranger.key"), "--image", &image("x"), "--offline"]);
    assert!(out.contains("is not in the policy in force"), "{out}");
    assert_eq!(env.head(), before);
}

#[test]
fn tag_only_references_are_refused_unless_dev_mode() {
    let (env, _) = Env::initialised();
    let before = env.head();
    let tag_only = "registry.example.com/acme/app:1.0";
    let out = env.fails(3, &["record", "build", "--key", &env.key("ci"), "--image", tag_only, "--offline"]);
    assert!(out.contains("has no digest") && out.contains("--allow-tag"), "{out}");
    assert_eq!(env.head(), before);
    let v = env.json(&["record", "build", "--key", &env.key("ci"), "--image", tag_only, "--offline", "--allow-tag"]);
    assert_eq!(v["dev_only"], true);
    for var in ["ALLOW_TAG", "DEV_MODE"] {
        let tag = format!("acme/app:{var}");
        let out = env
            .cmd()
            .env(var, "1")
            .args(["record", "build", "--key", &env.key("ci"), "--image", &tag, "--offline", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{var}: {}", String::from_utf8_lossy(&out.stdout));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["dev_only"], true);
    }
    // A pinned reference is never dev-only, flag or not.
    let v = env.json(&[
        "record",
        "build",
        "--key",
        &env.key("ci"),
        "--image",
        &image("pinned"),
        "--offline",
        "--allow-tag",
    ]);
    assert_eq!(v["dev_only"], false);
    env.ok(&["verify"]);
}

#[test]
fn validation_needs_a_build_of_that_digest() {
    let (env, _) = Env::initialised();
    env.build(&image("built"));
    let before = env.head();
    let out = env.fails(
        3,
        &[
            "record",
            "validation",
            "--key",
            &env.key("qa"),
            "--image",
            &image("never-built"),
            "--check",
            "unit=pass",
            "--offline",
        ],
    );
    assert!(out.contains("no build entry for") && out.contains(&digest("never-built")), "{out}");
    assert_eq!(env.head(), before);
}

#[test]
fn bad_input_is_refused_with_exit_1() {
    let (env, _) = Env::initialised();
    let before = env.head();
    let k = env.key("ci");
    for (args, needle) in [
        (
            vec!["record", "build", "--key", &k, "--image", "registry.example.com/app@sha256:ABC", "--offline"],
            "invalid digest",
        ),
        (vec!["record", "build", "--key", &k, "--image", "Registry.example.com/App:1", "--offline"], "lowercase"),
        (vec!["record", "build", "--key", &k, "--image", "", "--offline"], "empty"),
        (vec!["record", "build", "--key", &k, "--image", &image("a"), "--offline", "--git-sha", "xyz"], "git revision"),
        // Without --offline the registry is asked; this one does not exist.
        (vec!["record", "build", "--key", &k, "--image", &image("a")], "registry registry.example.com is unreachable"),
        (
            vec!["record", "validation", "--key", &k, "--image", &image("a"), "--check", "unit=maybe", "--offline"],
            "neither pass nor fail",
        ),
    ] {
        let out = env.fails(1, &args);
        assert!(out.contains(needle), "{args:?}: {out}");
    }
    assert_eq!(env.head(), before);
}

#[test]
fn usage_errors_exit_2_and_missing_ledger_exit_1() {
    let env = Env::new();
    env.fails(2, &["record", "build", "--image", "x"]);
    env.fails(2, &["no-such-command"]);
    let out = env.fails(1, &["verify"]);
    assert!(out.contains("not a provledger ledger"), "{out}");
    assert!(!env.ledger().join("store").exists(), "a failed command must not create a ledger");
}

#[test]
fn policy_changes_rotate_keys_and_keep_history_valid() {
    let (env, _) = Env::initialised();
    env.build(&image("before-rotation"));
    // Rotate the ci key: a new key takes the build role, the old one is gone.
    env.ok(&["key", "generate", "--out", &env.path("ci2.key")]);
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap().replace("ci.key.pub", "ci2.key.pub");
    std::fs::write(env.path("policy2.toml"), policy).unwrap();
    let v = env.json(&["record", "policy", "--key", &env.key("root"), "--policy", &env.path("policy2.toml")]);
    assert_eq!(v["kind"], "policy");
    let before = env.head();
    let out = env.fails(3, &["record", "build", "--key", &env.key("ci"), "--image", &image("after"), "--offline"]);
    assert!(out.contains("not in the policy in force"), "{out}");
    assert_eq!(env.head(), before);
    env.ok(&["record", "build", "--key", &env.path("ci2.key"), "--image", &image("after"), "--offline"]);
    // The old build, signed before the rotation, still verifies, with
    // signatures checked in batches and each alone.
    assert_eq!(env.json(&["verify"])["entries"], 4);
    assert_eq!(env.json(&["verify", "--strict-signatures"])["entries"], 4);
    // A policy that would leave no policy key is refused.
    let locked = std::fs::read_to_string(env.path("policy.toml"))
        .unwrap()
        .replace("roles = [\"policy\"]", "roles = [\"build\"]");
    std::fs::write(env.path("locked.toml"), locked).unwrap();
    let out = env.fails(1, &["record", "policy", "--key", &env.key("root"), "--policy", &env.path("locked.toml")]);
    assert!(out.contains("no key holds the policy role"), "{out}");
}

#[test]
fn policy_file_errors_name_file_and_line() {
    let env = Env::new();
    let text = std::fs::read_to_string(env.path("policy.toml"))
        .unwrap()
        .replace("roles = [\"build\"]", "roles = [\"deploy\"]");
    std::fs::write(env.path("bad.toml"), &text).unwrap();
    let line = text.lines().position(|l| l.contains("deploy")).unwrap() + 1;
    let out = env.fails(1, &["init", "--root-key", &env.key("root"), "--policy", &env.path("bad.toml")]);
    assert!(out.contains(&format!("bad.toml:{line}")), "{out}");
    assert!(!env.ledger().join("store").exists());
}

#[test]
fn secret_keys_are_0600_and_loose_permissions_are_refused() {
    let env = Env::new();
    let out = env.ok(&["key", "generate", "--out", &env.path("new.key")]);
    let mode = std::fs::metadata(env.path("new.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = std::fs::read_to_string(env.path("new.key")).unwrap();
    assert!(!out.contains(secret.trim()), "key generate must not print the secret");
    // key id works on the public file and agrees with generate.
    let id = env.ok(&["key", "id", &env.path("new.key.pub")]);
    assert!(out.contains(id.trim()));
    // Overwriting an existing key is refused.
    env.fails(1, &["key", "generate", "--out", &env.path("new.key")]);

    std::fs::set_permissions(env.path("root.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.fails(1, &["init", "--root-key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    assert!(out.contains("chmod 600"), "{out}");
    let secret = std::fs::read_to_string(env.key("root")).unwrap();
    assert!(!out.contains(&secret.trim()[31..]), "error output must not contain key material");
    env.init(&["--insecure-key-permissions"]);
    // A public key where a secret key belongs.
    let out = env.fails(1, &["record", "build", "--key", &env.path("ci.key.pub"), "--image", &image("p"), "--offline"]);
    assert!(out.contains("public key where a secret key was expected"), "{out}");
}

#[test]
fn errors_are_json_with_json() {
    let (env, _) = Env::initialised();
    let (code, out, _) =
        env.run(&["record", "build", "--key", &env.key("qa"), "--image", &image("j"), "--offline", "--json"]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], 3);
    assert_eq!(v["error"]["kind"], "denied");
    assert!(v["error"]["message"].as_str().unwrap().contains("build role"));
}

#[test]
fn ci_context_comes_from_github_actions_environment() {
    let (env, _) = Env::initialised();
    let out = env
        .cmd()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_SERVER_URL", "https://github.example")
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_RUN_ID", "42")
        .env("GITHUB_WORKFLOW_REF", "acme/app/.github/workflows/release.yml@refs/heads/main")
        .env("GITHUB_SHA", GIT_SHA)
        .args(["record", "build", "--key", &env.key("ci"), "--image", &image("gh"), "--offline"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = env.json(&["log"]);
    let st = statement(&log, 1);
    let ext = &st["predicate"]["buildDefinition"]["externalParameters"];
    assert_eq!(ext["ci"]["runUrl"], "https://github.example/acme/app/actions/runs/42");
    assert_eq!(ext["ci"]["runId"], "42");
    assert_eq!(st["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"], GIT_SHA);
    assert_eq!(
        st["predicate"]["buildDefinition"]["resolvedDependencies"][0]["uri"],
        "git+https://github.example/acme/app"
    );
}

#[test]
fn ci_context_from_gitlab_and_generic_variables() {
    let (env, _) = Env::initialised();
    let run = |vars: &[(&str, &str)], seed: &str| {
        let mut c = env.cmd();
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c
            .args(["record", "build", "--key", &env.key("ci"), "--image", &image(seed), "--offline"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run(
        &[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_URL", "https://gitlab.example/acme/app/-/pipelines/9"),
            ("CI_PIPELINE_ID", "9"),
            ("CI_PROJECT_URL", "https://gitlab.example/acme/app"),
            ("CI_COMMIT_SHA", GIT_SHA),
        ],
        "gl",
    );
    run(&[("CI_RUN_URL", "https://ci.example/r/5"), ("CI_RUN_ID", "5"), ("GIT_SHA", GIT_SHA)], "generic");
    // A flag wins over the environment.
    let mut c = env.cmd();
    c.env("CI_RUN_ID", "from-env");
    let out = c
        .args([
            "record",
            "build",
            "--key",
            &env.key("ci"),
            "--image",
            &image("flag"),
            "--offline",
            "--ci-run-id",
            "from-flag",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = env.json(&["log"]);
    let st = |i: usize| statement(&log, i);
    let ci = |i: usize| st(i)["predicate"]["buildDefinition"]["externalParameters"]["ci"].clone();
    assert_eq!(ci(1)["runUrl"], "https://gitlab.example/acme/app/-/pipelines/9");
    assert_eq!(ci(1)["repository"], "https://gitlab.example/acme/app");
    assert_eq!(st(1)["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"], GIT_SHA);
    assert_eq!(ci(2)["runUrl"], "https://ci.example/r/5");
    assert_eq!(st(2)["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"], GIT_SHA);
    assert_eq!(ci(3)["runId"], "from-flag");
}

#[test]
fn init_keeps_the_log_key_private() {
    let env = Env::new();
    env.init(&["--log-key", &env.key("ledger")]);
    let mode = std::fs::metadata(env.ledger().join("log.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    env.ok(&["verify"]);
}

#[test]
fn init_without_a_log_key_makes_one_and_the_policy_names_it() {
    let env = Env::new();
    let (code, out, err) = env.run(&["init", "--root-key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().len(), 64, "standard output is the genesis hash alone: {out}");
    assert!(err.contains("checkpoints are signed by log key provledger/"), "{err}");
    let mode = std::fs::metadata(env.ledger().join("log.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let cp = env.json(&["checkpoint"]);
    assert_eq!(cp["size"], 1);
    assert!(err.contains(cp["verifier_key"].as_str().unwrap()), "{err}");
    let log = env.json(&["log"]);
    let policy = common::statement(&log, 0);
    assert_eq!(policy["predicate"]["log"]["verifierKey"], cp["verifier_key"]);
    // The plain form is the note itself, ready for any C2SP verifier.
    let note = env.ok(&["checkpoint"]);
    assert!(note.starts_with(cp["origin"].as_str().unwrap()) && note.contains("\n\n\u{2014} "), "{note}");
}

#[test]
fn a_policy_naming_another_log_key_needs_its_secret() {
    let env = Env::new();
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let with_log = format!("{policy}\n[log]\npublic = \"ledger.key.pub\"\norigin = \"ledger.example.com/acme\"\n");
    std::fs::write(env.path("policy-log.toml"), with_log).unwrap();
    let init = |extra: &[&str]| {
        let mut a = vec!["init", "--root-key", &env.key("root"), "--policy", &env.path("policy-log.toml")]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let args = init(&[]);
    let out = env.fails(1, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("names log key") && out.contains("--log-key"), "{out}");
    assert!(!env.ledger().join("store").exists());
    let args = init(&["--log-key", &env.key("qa")]);
    env.fails(1, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = init(&["--log-key", &env.key("ledger")]);
    env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(env.json(&["checkpoint"])["origin"], "ledger.example.com/acme");
}

#[test]
fn the_log_key_rotates_with_a_policy_change() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.build(&image("rot"));
    let before = env.path("before.checkpoint");
    env.ok(&["checkpoint", "--out", &before]);
    // A new log key, named by a policy change.
    env.ok(&["key", "generate", "--out", &env.path("log2.key")]);
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    std::fs::write(env.path("policy2.toml"), format!("{policy}\n[log]\npublic = \"log2.key.pub\"\n")).unwrap();
    let change = |extra: &[&str]| {
        let mut a: Vec<String> = ["record", "policy", "--key", &env.key("root"), "--policy", &env.path("policy2.toml")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let head = env.head();
    let a = change(&[]);
    let out = env.fails(1, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("--log-key"), "{out}");
    assert_eq!(env.head(), head);
    let a = change(&["--log-key", &env.path("log2.key")]);
    env.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // The new key signs from the policy entry on, and is now the ledger's.
    let log2 = provledger::keyfile::read_public(std::path::Path::new(&env.path("log2.key.pub"))).unwrap();
    let cp = env.json(&["checkpoint"]);
    assert!(cp["verifier_key"].as_str().unwrap().ends_with(&{
        use base64::Engine as _;
        let mut k = vec![1u8];
        k.extend_from_slice(log2.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(k)
    }));
    env.build(&image("rot-2"));
    env.ok(&["verify", "--genesis", &genesis]);
    assert!(!env.ledger().join("log.key.next").exists());
    // The checkpoint signed by the old key still proves the bundle extends it.
    let bundle = env.path("rot.bundle");
    env.ok(&["export", "--out", &bundle]);
    env.ok(&["verify", "--bundle", &bundle, "--genesis", &genesis, "--since", &before]);
}

/// Runs the binary with standard output going to `stdout`; returns (exit
/// code, standard error).
fn run_with_stdout(env: &Env, args: &[&str], stdout: std::process::Stdio) -> (i32, String) {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("provledger"));
    c.env("PROVLEDGER_DIR", env.ledger()).env_remove("PROVLEDGER_SERVER").args(args);
    let out = c.stdout(stdout).stderr(std::process::Stdio::piped()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A pipe nobody reads: every write to it fails with EPIPE.
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

#[test]
fn a_closed_or_failing_standard_output_is_not_a_crash() {
    let (env, _) = Env::initialised_with_log_key();
    // Enough entries that `log` fills a pipe's buffer (64 KiB) many times over.
    let ledger = env.writer();
    for batch in 0..10 {
        let envelopes = (0..100).map(|i| common::build_envelope(env.dir.path(), &format!("p{batch}-{i}"), 0)).collect();
        ledger.append_batch(envelopes, 1_800_000_000).unwrap();
    }
    drop(ledger);
    let ci = env.key("ci");
    // A reader that stops early, as `provledger log | head -1` does.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provledger"))
        .env("PROVLEDGER_DIR", env.ledger())
        .env_remove("PROVLEDGER_SERVER")
        .arg("log")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    assert!(first.contains("INDEX"), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "log | head: {err}");
    assert!(!err.contains("panicked") && err.is_empty(), "log | head: {err}");
    // Closed before anything is written: reads exit quietly with their own code.
    for args in [vec!["log"], vec!["log", "--json"], vec!["verify"], vec!["checkpoint"]] {
        let (code, err) = run_with_stdout(&env, &args, closed_pipe());
        assert_eq!(code, 0, "{args:?} | true: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let (code, err) = run_with_stdout(&env, &["verify", "--genesis", &"0".repeat(64), "--json"], closed_pipe());
    assert_eq!(code, 4, "a failed verification keeps its code: {err}");
    // After a durable append: the entry stands, exit 0.
    let before = env.head().1;
    let build = ["record", "build", "--key", ci.as_str(), "--image", &image("piped"), "--offline"];
    let (code, err) = run_with_stdout(&env, &build, closed_pipe());
    assert_eq!((code, env.head().1), (0, before + 1), "{err}");
    // Any other write error (a full disk): exit 1, said on standard error.
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap().into();
    let (code, err) = run_with_stdout(&env, &["verify"], full());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("writing standard output: No space left on device") && !err.contains("panicked"), "{err}");
    let build = ["record", "build", "--key", ci.as_str(), "--image", &image("full"), "--offline"];
    let (code, err) = run_with_stdout(&env, &build, full());
    assert_eq!((code, env.head().1), (1, before + 2), "{err}");
    assert!(err.contains("the command itself completed"), "{err}");
}
