//! The bad-input table, through the real binary: each case gets its
//! documented exit code, a message naming what is wrong, and leaves the
//! ledger head unchanged.

mod common;

use common::{Env, digest, image};

/// Runs each case on one ledger: exit code, a needle the message must
/// contain, and the head must not move.
fn table(env: &Env, cases: &[(i32, Vec<String>, &str)]) {
    let before = env.head();
    for (code, args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.fails(*code, &args);
        assert!(out.contains(needle), "{args:?}: expected {needle:?} in:\n{out}");
        assert!(!out.contains("panicked"), "{args:?} panicked:\n{out}");
        assert_eq!(env.head(), before, "{args:?} moved the head");
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn malformed_digests_and_references() {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("known"));
    let good = digest("known");
    let hex = good.strip_prefix("sha256:").unwrap();
    let qa = env.key("qa");
    let validation = |reference: &str| {
        strings(&["record", "validation", "--key", &qa, "--image", reference, "--check", "unit=pass", "--offline"])
    };
    let repo = "registry.example.com/acme/app";
    let cases = vec![
        (1, strings(&["show", &format!("sha256:{}", hex.to_uppercase())]), "uppercase"),
        (1, strings(&["show", "sha256:abc"]), "expected 64 hex characters"),
        (1, strings(&["show", &format!("{good}00")]), "got 66"),
        (1, strings(&["show", &format!("sha256:{}g", &hex[..63])]), "not a hex character"),
        (1, strings(&["show", &format!("sha512:{hex}{hex}")]), "only sha256"),
        (1, strings(&["show", hex]), "has no algorithm"),
        (1, strings(&["show", ""]), "has no algorithm"),
        (1, validation(&format!("{repo}@sha256:{}", hex.to_uppercase())), "uppercase"),
        (1, validation(&format!("{repo}@sha256:{}", &hex[..10])), "64 hex"),
        (1, validation(&format!("{repo}@sha512:{hex}{hex}")), "sha256"),
        // A tag alone identifies nothing: denied, not a format error.
        (3, validation(&format!("{repo}:1.0")), "has no digest"),
        (
            3,
            strings(&[
                "promote",
                "--key",
                &env.key("release"),
                "--image",
                &format!("{repo}:1.0"),
                "--to",
                "dev",
                "--offline",
            ]),
            "digest",
        ),
        (1, validation(""), "empty"),
        (1, validation("::not a reference::"), "reference"),
        (1, validation(&"a/".repeat(300)), "reference"),
    ];
    table(&env, &cases);
}

/// Writes `bytes` to a file in the env's directory; returns its path.
fn file(env: &Env, name: &str, bytes: &[u8]) -> String {
    let p = env.path(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn truncated_oversized_garbage_and_newer_bundles_and_proofs() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.release_to_prod(&image("b"));
    let bundle = env.path("ok.bundle");
    env.ok(&["export", "--out", &bundle]);
    let proof = env.path("ok.proof");
    env.ok(&["prove", &digest("b"), "--env", "prod", "--out", &proof]);
    let b = std::fs::read(&bundle).unwrap();
    let p = std::fs::read(&proof).unwrap();
    let mut newer_bundle = b.clone();
    newer_bundle[18..20].copy_from_slice(&99u16.to_be_bytes());
    let newer_proof = String::from_utf8(p.clone()).unwrap().replacen("\"version\": 1,", "\"version\": 99,", 1);
    assert!(newer_proof.as_bytes() != &p[..], "the proof names its version");
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let verify_bundle = |f: &str| strings(&["verify", "--bundle", f, "--genesis", &genesis]);
    let verify_proof = |f: &str| strings(&["verify", "--proof", f, "--genesis", &genesis]);
    let cases = vec![
        (4, verify_bundle(&file(&env, "t.bundle", &b[..b.len() / 2])), "truncated"),
        (4, verify_bundle(&file(&env, "h.bundle", &b[..10])), "truncated"),
        (4, verify_bundle(&file(&env, "e.bundle", b"")), "truncated"),
        (4, verify_bundle(&file(&env, "g.bundle", &garbage)), "not a provledger bundle"),
        (1, verify_bundle(&file(&env, "n.bundle", &newer_bundle)), "upgrade"),
        (1, verify_bundle(&env.path("missing.bundle")), "missing.bundle"),
        (4, verify_proof(&file(&env, "t.proof", &p[..p.len() / 2])), "proof"),
        (4, verify_proof(&file(&env, "g.proof", &garbage)), "proof"),
        (4, verify_proof(&file(&env, "e.proof", b"")), "proof"),
        (1, verify_proof(&file(&env, "n.proof", newer_proof.as_bytes())), "upgrade"),
        (2, strings(&["verify", "--bundle", &bundle, "--genesis", "xyz"]), "--genesis"),
    ];
    table(&env, &cases);
    // Oversized: a proof beyond its limit is refused before it is read.
    let big = std::fs::File::create(env.path("big.proof")).unwrap();
    big.set_len(provledger::proof::MAX_PROOF_SIZE as u64 + 1).unwrap();
    table(&env, &[(4, verify_proof(&env.path("big.proof")), "exceeds the limit")]);
}

#[test]
fn bad_policies() {
    let env = Env::new();
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let write = |name: &str, text: String| -> String { file(&env, name, text.as_bytes()) };
    let unknown_role = write("role.toml", policy.replace("roles = [\"build\"]", "roles = [\"deploy\"]"));
    let duplicate_env =
        write("dup.toml", format!("{policy}\n[[environments]]\nname = \"dev\"\nrequired_checks = []\n"));
    let cycle = write("cycle.toml", policy.replacen("name = \"dev\"\n", "name = \"dev\"\nrequires = \"prod\"\n", 1));
    assert_ne!(std::fs::read_to_string(&cycle).unwrap(), policy, "the cycle was written");
    let secret_as_public = write("secret.toml", policy.replace("ci.key.pub", "ci.key"));
    let missing_key = write("missing.toml", policy.replace("ci.key.pub", "nobody.pub"));
    let init = |p: &str| {
        let (root, log) = (env.key("root"), env.key("ledger"));
        strings(&["init", "--root-key", &root, "--policy", p, "--log-key", &log])
    };
    for (args, needle) in [
        (init(&unknown_role), "role.toml:"),
        (init(&duplicate_env), "dup.toml:"),
        (init(&duplicate_env), "environment \"dev\" is defined twice"),
        (init(&cycle), "cycle.toml:"),
        (init(&cycle), "requires cycle: \"dev\" -> \"prod\""),
        (init(&secret_as_public), "secret key where a public key was expected"),
        (init(&missing_key), "nobody.pub"),
        (init(&env.path("absent.toml")), "absent.toml"),
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.fails(1, &a);
        assert!(out.contains(needle), "{args:?}: expected {needle:?} in:\n{out}");
        assert!(!env.ledger().join(provledger::store::local::LOG_DIR).exists(), "{args:?} left a ledger behind");
    }
}

#[test]
fn bad_keys_and_ledger_directories() {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("k"));
    let pem =
        file(&env, "rsa.key", b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n");
    std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let build = |key: &str| strings(&["record", "build", "--key", key, "--image", &image("x"), "--offline"]);
    let cases = vec![
        (1, build(&env.path("nope.key")), "nope.key"),
        (1, build(&format!("{}.pub", env.key("ci"))), "public key where a secret key was expected"),
        (1, build(&pem), "rsa.key"),
        (1, strings(&["key", "id", &pem]), "rsa.key"),
    ];
    table(&env, &cases);
    // A directory that is not a ledger, and one whose store is garbage.
    let not_ledger = tempfile::tempdir().unwrap();
    std::fs::write(not_ledger.path().join("notes.txt"), "hello").unwrap();
    let d = not_ledger.path().display().to_string();
    let out = env.fails(1, &["--ledger", &d, "verify"]);
    assert!(out.contains("not a provledger ledger"), "{out}");
    let out = env
        .fails(1, &["--ledger", &d, "record", "build", "--key", &env.key("ci"), "--image", &image("y"), "--offline"]);
    assert!(out.contains("not a provledger ledger"), "{out}");
    assert!(!not_ledger.path().join(provledger::store::local::LOG_DIR).exists(), "nothing was created there");
}

#[test]
fn secret_keys_readable_by_others_are_refused_and_never_printed() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new();
    let root = env.key("root");
    let secret = std::fs::read_to_string(&root).unwrap();
    let body = secret.trim().split_once(':').unwrap().1.to_string();
    let init = |extra: &[&str]| {
        let mut a = vec!["init", "--root-key", root.as_str(), "--policy", "policy.toml"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let policy = env.path("policy.toml");
    for mode in [0o640, 0o604, 0o644, 0o660] {
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(mode)).unwrap();
        for json in [false, true] {
            let mut args = init(if json { &["--json"] } else { &[] });
            args[4] = policy.clone();
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = env.fails(1, &a);
            assert!(out.contains(&format!("mode {mode:o}")) && out.contains("chmod 600"), "{out}");
            assert!(!out.contains(&body), "the secret key appears in the output");
        }
        assert!(!env.ledger().join(provledger::store::local::LOG_DIR).exists());
    }
    // Accepted with the explicit flag, and nothing secret is printed on success either.
    let out = env.ok(&["init", "--root-key", &root, "--policy", &policy, "--insecure-key-permissions", "--json"]);
    assert!(!out.contains(&body));
    let out = env.ok(&["key", "generate", "--out", &env.path("fresh.key"), "--json"]);
    let fresh = std::fs::read_to_string(env.path("fresh.key")).unwrap();
    assert!(!out.contains(fresh.trim().split_once(':').unwrap().1), "key generate --json prints no secret");
    let mode = std::fs::metadata(env.path("fresh.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // `key id` reads a secret key file too, and prints only the id.
    let out = env.ok(&["key", "id", &env.path("fresh.key"), "--json"]);
    assert!(!out.contains(fresh.trim().split_once(':').unwrap().1), "{out}");
}

/// Every file the CLI reads has a size limit that does not trust the
/// file's metadata: `/dev/zero` (size 0, endless) is refused naming the
/// file and the limit, never read until memory runs out.
#[test]
fn endless_input_files_are_refused_at_their_limit() {
    const ZERO: &str = "/dev/zero";
    let (env, genesis) = Env::initialised_with_log_key();
    env.release_to_prod(&image("z"));
    let bundle = env.path("ok.bundle");
    env.ok(&["export", "--out", &bundle]);
    let root = env.key("root");
    let cases = vec![
        (1, strings(&["record", "build", "--key", ZERO, "--image", &image("x"), "--offline"]), "exceeds the limit"),
        (1, strings(&["key", "id", ZERO]), "exceeds the limit of 4096 bytes"),
        (1, strings(&["record", "policy", "--key", &root, "--policy", ZERO]), "policy /dev/zero: exceeds the limit"),
        (1, strings(&["check-refs", ZERO]), "manifest /dev/zero: exceeds the limit"),
        (1, strings(&["check-bundle", ZERO]), "release metadata /dev/zero: exceeds the limit"),
        (4, strings(&["verify", "--proof", ZERO, "--genesis", &genesis]), "proof /dev/zero: exceeds the limit"),
        (4, strings(&["verify", "--bundle", ZERO, "--genesis", &genesis]), "not a provledger bundle"),
        (
            4,
            strings(&["verify", "--bundle", &bundle, "--genesis", &genesis, "--since", ZERO]),
            "checkpoint /dev/zero: exceeds the limit",
        ),
    ];
    table(&env, &cases);
    // And before any ledger exists: the policy, a key it names, the root and log keys.
    let fresh = Env::new();
    let policy = std::fs::read_to_string(fresh.path("policy.toml")).unwrap();
    let zero_key = file(&fresh, "zero-key.toml", policy.replace("ci.key.pub", ZERO).as_bytes());
    let (root, p) = (fresh.key("root"), fresh.path("policy.toml"));
    for (args, needle) in [
        (vec!["init", "--root-key", &root, "--policy", ZERO], "policy /dev/zero: exceeds the limit"),
        (vec!["init", "--root-key", &root, "--policy", &zero_key], "key file exceeds the limit of 4096 bytes"),
        (
            vec!["init", "--root-key", ZERO, "--policy", &p],
            "/dev/zero: invalid key: key file exceeds the limit of 4096 bytes",
        ),
        (vec!["init", "--root-key", &root, "--policy", &p, "--log-key", ZERO], "key file exceeds the limit"),
    ] {
        let out = fresh.fails(1, &args);
        assert!(out.contains(needle), "{args:?}: expected {needle:?} in:\n{out}");
        assert!(!fresh.ledger().join(provledger::store::local::LOG_DIR).exists(), "{args:?} left a ledger behind");
    }
}

/// Secret key text put where something else belongs, on the command line,
/// in the environment or in a file, is never shown back, in text or JSON.
#[test]
fn secret_key_text_is_never_echoed_wherever_it_is_put() {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("s"));
    let secret = std::fs::read_to_string(env.key("ci")).unwrap().trim().to_string();
    let body = secret.split_once(':').unwrap().1.to_string();
    let lower = secret.to_lowercase();
    let (ci, qa, release) = (env.key("ci"), env.key("qa"), env.key("release"));
    let policy = std::fs::read_to_string(env.path("policy.toml")).unwrap();
    let env_named =
        file(&env, "env-secret.toml", policy.replacen("name = \"dev\"", &format!("name = {secret:?}"), 1).as_bytes());
    let key_inline = file(&env, "key-secret.toml", policy.replace("\"ci.key.pub\"", &format!("{secret:?}")).as_bytes());
    assert!(std::fs::read_to_string(&key_inline).unwrap().contains(&body), "the policy holds the key");
    let yaml = file(&env, "compose.yaml", format!("services:\n  app:\n    image: {secret}\n").as_bytes());
    let cases: Vec<(i32, Vec<String>)> = vec![
        (2, strings(&["record", "build", "--key", &ci, "--image", &secret, "--offline"])),
        (2, strings(&["record", "build", "--key", &ci, "--image", &lower, "--offline"])),
        (2, strings(&["promote", "--key", &release, "--image", &image("s"), "--to", &secret, "--offline"])),
        (2, strings(&["show", &secret])),
        (
            2,
            strings(&[
                "record",
                "validation",
                "--key",
                &qa,
                "--image",
                &image("s"),
                "--check",
                &format!("{secret}=pass"),
            ]),
        ),
        (2, strings(&["verify", "--genesis", &secret])),
        (2, strings(&["--lock-timeout", &secret, "verify"])),
        (1, strings(&["record", "policy", "--key", &env.key("root"), "--policy", &env_named])),
        (1, strings(&["record", "policy", "--key", &env.key("root"), "--policy", &key_inline])),
        (3, strings(&["check-refs", &yaml])),
    ];
    let shown = |out: &str| out.contains(&body) || out.contains(&body[..12]) || out.contains(&body[24..36]);
    for (code, args) in &cases {
        for json in [false, true] {
            let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
            if json {
                a.push("--json");
            }
            let out = env.fails(*code, &a);
            assert!(!shown(&out) && !shown(&out.to_lowercase()), "{args:?} showed the secret key:\n{out}");
            assert!(!out.contains("panicked"), "{out}");
        }
    }
    // In the environment: PROVLEDGER_DIR holding the key.
    let out = env.cmd().env("PROVLEDGER_DIR", &secret).args(["verify", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!shown(&text) && text.contains("<redacted>"), "{text}");
}
