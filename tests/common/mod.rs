//! Shared helpers: a temp ledger, the example keys copied with mode 0600,
//! and the real `provledger` binary.
#![allow(dead_code)]

pub mod browser;
pub mod pg;
pub mod registry;
pub mod server;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub const KEYS: [&str; 5] = ["root", "ci", "qa", "release", "ledger"];

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A temp dir holding the example keys (0600) and policy, no ledger yet.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example");
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let to = dir.path().join(entry.file_name());
            std::fs::copy(entry.path(), &to).unwrap();
            let mode = if to.extension().is_some_and(|e| e == "key") { 0o600 } else { 0o644 };
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        Env { dir }
    }

    /// With a ledger initialised from the example policy.
    pub fn initialised() -> (Env, String) {
        let env = Env::new();
        let genesis = env.init(&[]);
        (env, genesis)
    }

    /// With a ledger initialised from the example policy and log key.
    pub fn initialised_with_log_key() -> (Env, String) {
        let env = Env::new();
        let genesis = env.init(&["--log-key", &env.key("ledger")]);
        (env, genesis)
    }

    /// Runs `init` with the example root key and policy plus `extra` flags;
    /// returns the genesis hash it prints.
    pub fn init(&self, extra: &[&str]) -> String {
        let (root, policy) = (self.key("root"), self.path("policy.toml"));
        let mut args = vec!["init", "--root-key", &root, "--policy", &policy];
        args.extend_from_slice(extra);
        let out = self.ok(&args);
        let genesis = out.trim().to_string();
        assert_eq!(genesis.len(), 64, "init prints the genesis hash: {out}");
        std::fs::write(self.dir.path().join(GENESIS_FILE), &genesis).unwrap();
        genesis
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn key(&self, name: &str) -> String {
        self.path(&format!("{name}.key"))
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    /// The ledger opened in-process to append, with its log key.
    pub fn writer(&self) -> provledger::ledger::Ledger<provledger::store::any::LedgerStore> {
        provledger::ledger::dir::LedgerDir::new(self.ledger(), std::time::Duration::from_secs(5))
            .open_writer(false)
            .unwrap()
    }

    /// The ledger's store, opened in-process.
    pub fn store(&self) -> provledger::store::local::LocalStore {
        provledger::store::local::LocalStore::open(&self.ledger(), std::time::Duration::from_secs(5)).unwrap()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("provledger").unwrap();
        c.env("PROVLEDGER_DIR", self.ledger());
        for v in [
            "ALLOW_TAG",
            "DEV_MODE",
            "GITHUB_ACTIONS",
            "GITLAB_CI",
            "CI_RUN_URL",
            "GIT_SHA",
            "PROVLEDGER_SERVER",
            "PROVLEDGER_STORE",
            "PROVLEDGER_MIRROR",
            "PROVLEDGER_SERVER_GENESIS",
            "PROVLEDGER_INSECURE_REGISTRIES",
            "PROVLEDGER_REGISTRY_USERNAME",
            "PROVLEDGER_REGISTRY_PASSWORD",
        ] {
            c.env_remove(v);
        }
        c
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs, asserting exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "provledger {args:?} failed:\n{out}\n{err}");
        out
    }

    /// Runs, asserting the exit code; returns stdout + stderr.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let (got, out, err) = self.run(args);
        assert_eq!(got, code, "provledger {args:?}: expected exit {code}, got {got}:\n{out}\n{err}");
        format!("{out}{err}")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// The verified head hash and entry count.
    pub fn head(&self) -> (String, u64) {
        let v = self.json(&["verify"]);
        (v["head"].as_str().unwrap().to_string(), v["entries"].as_u64().unwrap())
    }

    pub fn build(&self, image: &str) -> Value {
        self.build_with(image, &["--git-sha", GIT_SHA])
    }

    /// `record build` by the ci key, offline, with `extra` flags.
    pub fn build_with(&self, image: &str, extra: &[&str]) -> Value {
        let key = self.key("ci");
        let mut args = vec!["record", "build", "--key", &key, "--image", image, "--offline"];
        args.extend_from_slice(extra);
        self.json(&args)
    }

    pub fn promote(&self, image: &str, to: &str) -> Value {
        self.json(&["promote", "--key", &self.key("release"), "--image", image, "--to", to, "--offline"])
    }

    /// A ledger (with its log key) holding `app` promoted into prod,
    /// `dev-only` promoted into dev and `built-only` only built (images and
    /// digests by [`image`] and [`digest`] of those seeds), and its genesis.
    pub fn with_promotions() -> (Env, String) {
        let (env, genesis) = Env::initialised_with_log_key();
        env.release_to_prod(&image("app"));
        env.build(&image("dev-only"));
        env.validate(&image("dev-only"), &["unit=pass", "integration=pass"]);
        env.promote(&image("dev-only"), "dev");
        env.build(&image("built-only"));
        (env, genesis)
    }

    /// The commands that take `image`, promoted into dev, on to prod (as
    /// [`Env::release_to_prod`] does), for running elsewhere (`--server`).
    pub fn dev_to_prod_args(&self, image: &str) -> Vec<Vec<String>> {
        let (release, qa) = (self.key("release"), self.key("qa"));
        let promote = |to: &str| -> Vec<String> {
            ["promote", "--key", &release, "--image", image, "--to", to, "--offline"].map(String::from).to_vec()
        };
        let validate = ["record", "validation", "--key", &qa, "--image", image, "--check", "e2e=pass"]
            .into_iter()
            .chain(["--check", "vuln-scan=pass", "--offline"])
            .map(String::from)
            .collect();
        vec![promote("staging"), validate, promote("prod")]
    }

    /// Builds `image` and takes it through dev, staging and prod.
    pub fn release_to_prod(&self, image: &str) {
        self.build(image);
        self.validate(image, &["unit=pass", "integration=pass"]);
        self.promote(image, "dev");
        self.promote(image, "staging");
        self.validate(image, &["e2e=pass", "vuln-scan=pass"]);
        self.promote(image, "prod");
    }

    pub fn validate(&self, image: &str, checks: &[&str]) -> Value {
        let key = self.key("qa");
        let mut args = vec!["record", "validation", "--key", &key, "--offline"];
        args.extend(["--image", image]);
        for c in checks {
            args.extend(["--check", c]);
        }
        self.json(&args)
    }
}

/// A Python with securesystemslib: `$PROVLEDGER_PYTHON`, else the venv the
/// test command creates. Fails, rather than skips, when it is missing.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PROVLEDGER_PYTHON") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyvenv/bin/python");
    assert!(p.exists(), "no Python with securesystemslib at {}: run ./scripts/test.sh, which creates it", p.display());
    p
}

pub const GIT_SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// A distinct, valid digest per seed.
pub fn digest(seed: &str) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(seed.as_bytes())))
}

pub fn image(seed: &str) -> String {
    format!("registry.example.com/acme/app:1.0@{}", digest(seed))
}

/// The in-toto statement of entry `i` of a `log --json` listing.
pub fn statement(log: &Value, i: usize) -> Value {
    use base64::Engine as _;
    let payload = log[i]["envelope"]["payload"].as_str().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(payload).unwrap()).unwrap()
}

/// Copies a directory tree (a ledger, say) as it is on disk.
/// The store version 2 fixture (`tests/fixtures/store-v2`, made by the
/// last build that wrote that layout): unpacked as `dir/ledger`, with its
/// log key put back (the example `ledger.key`, mode 0600). Returns the
/// ledger directory.
pub fn unpack_v2_fixture(dir: &Path) -> PathBuf {
    let archive = v2_fixture().join("ledger.tar.gz");
    std::fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(dir).status().unwrap().success();
    assert!(ok, "tar could not unpack {}", archive.display());
    let ledger = dir.join("ledger");
    let key = ledger.join("log.key");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example").join("ledger.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    ledger
}

/// The folder of the store version 2 fixture, with `expected/`: what the
/// build that made it answered.
pub fn v2_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join("store-v2")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A fresh binding to the ledger `Env::init` made in `dir`, as the CLI
/// makes one (read from the genesis hash `init` printed, so that it works
/// while another process holds the ledger).
pub fn binding(dir: &Path) -> provledger::record::Binding {
    let text = std::fs::read_to_string(dir.join(GENESIS_FILE)).expect("the ledger was made by Env::init");
    provledger::record::Binding::fresh(provledger::core::hash::EntryHash::parse(&text).unwrap())
}

/// Where `Env::init` keeps the genesis hash it printed.
const GENESIS_FILE: &str = "genesis.txt";

/// A build statement for `image(seed)`, signed in-process by the example
/// key `signer` (a file `<signer>.key` in `dir`).
pub fn build_envelope_by(dir: &Path, signer: &str, seed: &str, time: u64) -> provledger::core::dsse::Envelope {
    build_envelope_with(dir, signer, seed, time, |_| {})
}

/// [`build_envelope_by`], with the build's input changed by `change` first.
pub fn build_envelope_with(
    dir: &Path,
    signer: &str,
    seed: &str,
    time: u64,
    change: impl FnOnce(&mut provledger::record::BuildInput),
) -> provledger::core::dsse::Envelope {
    use provledger::record::{self, BuildInput};
    let key = provledger::keyfile::read_secret(&dir.join(format!("{signer}.key")), false).unwrap();
    let mut input = BuildInput {
        image: image(seed).parse().unwrap(),
        artifact: None,
        release: None,
        git_sha: None,
        source_repository: None,
        builder_id: None,
        ci: Default::default(),
        registry_confirmed: false,
        registry: None,
        media_type: None,
        platforms: Vec::new(),
        time,
        binding: Some(binding(dir)),
    };
    change(&mut input);
    let statement = record::build_statement(input);
    provledger::core::dsse::Envelope::sign(
        provledger::core::dsse::PAYLOAD_TYPE_IN_TOTO,
        statement.to_payload(),
        &[&key],
    )
}

/// A build statement signed by the example CI key.
pub fn build_envelope(dir: &Path, seed: &str, time: u64) -> provledger::core::dsse::Envelope {
    build_envelope_by(dir, "ci", seed, time)
}
