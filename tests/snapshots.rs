//! What users see, as snapshots: every command's human and JSON output,
//! its errors included, run through the real binary against real ledgers,
//! a real registry and a real server. A change to any output shows as a
//! diff of `tests/snapshots/*.snap` (review with `cargo insta review`, or
//! accept with `INSTA_UPDATE=always`).
//!
//! Every JSON output is also checked against the command's schema in
//! `ledger-format/schemas/cli/` (a failure against `error.schema.json`).
//!
//! What changes from run to run is redacted before the comparison: the
//! temporary directory (`[tmp]`), loopback ports (`[registry]`,
//! `[server]`), times (`[time]`), base64 (`[b64]`: roots, signatures,
//! payloads, which carry nonces), and 64-digit hex values other than the
//! example keys' ids and the test's own digests, which are numbered in the
//! order they first appear (`[h1]`, `[h2]`, ...; a 12-digit prefix as
//! `[h1:12]`, or `[hash:12]` for a hash not seen whole before).

mod common;

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::registry::{Layout, TestRegistry};
use common::{Env, GIT_SHA, digest};
use regex::Regex;
use serde_json::Value;

/// The commands, as their schema files name them.
const COMMANDS: [&str; 25] = [
    "key-generate",
    "key-id",
    "init",
    "record-build",
    "record-validation",
    "record-policy",
    "promote",
    "reconcile-tags",
    "verify",
    "export",
    "reindex",
    "migrate",
    "prove",
    "checkpoint",
    "attach",
    "fetch-attestations",
    "log",
    "show",
    "history",
    "release-metadata",
    "check-bundle",
    "check-refs",
    "serve",
    "sync",
    "error",
];

struct Redactor {
    /// Literal values and what they become, longest first when applied.
    known: Vec<(String, String)>,
    hashes: usize,
    hex: Regex,
    b64: Regex,
    /// A 12-digit prefix of a hash not seen whole before.
    prefix: Regex,
    time: Regex,
    epoch: Regex,
    seconds: Regex,
}

impl Redactor {
    fn new() -> Redactor {
        Redactor {
            known: Vec::new(),
            hashes: 0,
            hex: Regex::new(r"[0-9a-f]{64}").unwrap(),
            b64: Regex::new(r"[A-Za-z0-9+/]{40,}={0,2}").unwrap(),
            prefix: Regex::new(r"\b[0-9a-f]{12}\b").unwrap(),
            time: Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").unwrap(),
            epoch: Regex::new(r#""integrated_time": \d+"#).unwrap(),
            seconds: Regex::new(r#""seconds": \d+(\.\d+)?(e-?\d+)?|in \d+\.\d\d s\b"#).unwrap(),
        }
    }

    fn name(&mut self, value: impl Into<String>, label: impl Into<String>) {
        self.known.push((value.into(), label.into()));
        self.known.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    }

    fn apply(&mut self, text: &str) -> String {
        // New 64-digit hex values get the next number.
        for m in self.hex.find_iter(text).map(|m| m.as_str().to_string()).collect::<Vec<_>>() {
            if !self.known.iter().any(|(v, _)| v.contains(&m)) {
                self.hashes += 1;
                let label = format!("[h{}]", self.hashes);
                self.name(&m[..12], format!("[h{}:12]", self.hashes));
                self.name(m, label);
            }
        }
        let mut out = text.to_string();
        for (value, label) in &self.known {
            out = out.replace(value.as_str(), label);
        }
        let out = self.time.replace_all(&out, "[time]");
        let out = self.epoch.replace_all(&out, r#""integrated_time": [time]"#);
        let out = self.seconds.replace_all(&out, "[seconds]");
        let out = self.prefix.replace_all(&out, "[hash:12]");
        // `\n` escapes in JSON strings are not the start of base64.
        let out = out.replace("\\n", "\u{1}");
        self.b64.replace_all(&out, "[b64]").replace('\u{1}', "\\n")
    }
}

struct Snapshots {
    env: Env,
    redact: Redactor,
    transcripts: BTreeMap<&'static str, String>,
    schemas: BTreeMap<String, jsonschema::Validator>,
    /// Flags given before every command (the registry's).
    global: Vec<String>,
}

impl Snapshots {
    fn new() -> Snapshots {
        let env = Env::new();
        let mut redact = Redactor::new();
        redact.name(env.dir.path().canonicalize().unwrap().display().to_string(), "[tmp]");
        redact.name(env.dir.path().display().to_string(), "[tmp]");
        for k in common::KEYS {
            let id = env.ok(&["key", "id", &format!("{}.pub", env.key(k))]);
            redact.name(id.trim(), format!("[key:{k}]"));
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-format/schemas");
        let mut schemas = BTreeMap::new();
        for name in COMMANDS.iter().filter(|c| **c != "release-metadata") {
            let text = std::fs::read_to_string(dir.join(format!("cli/{name}.schema.json"))).unwrap();
            let schema: Value = serde_json::from_str(&text).unwrap();
            schemas.insert(name.to_string(), jsonschema::validator_for(&schema).unwrap());
        }
        // release-metadata prints the release metadata document.
        let load = |n: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(n)).unwrap()).unwrap() };
        let mut opts = jsonschema::options();
        for n in ["common.schema.json", "release-manifest.schema.json"] {
            opts = opts.with_resource(
                format!("https://provledger.dev/schemas/{n}"),
                jsonschema::Resource::from_contents(load(n)).unwrap(),
            );
        }
        schemas.insert("release-metadata".into(), opts.build(&load("release-metadata.schema.json")).unwrap());
        Snapshots { env, redact, transcripts: BTreeMap::new(), schemas, global: Vec::new() }
    }

    fn path(&self, name: &str) -> String {
        self.env.path(name)
    }

    fn key(&self, name: &str) -> String {
        self.env.key(name)
    }

    /// Runs `provledger ARGS`, expecting exit `code`; checks JSON output
    /// against its schema; adds the redacted transcript to `command`'s.
    fn run(&mut self, command: &'static str, args: &[&str], code: i32) -> String {
        let mut all: Vec<&str> = self.global.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        let (got, out, err) = self.env.run(&all);
        assert_eq!(got, code, "provledger {args:?}: expected exit {code}, got {got}:\n{out}\n{err}");
        let json = args.contains(&"--json");
        let mut shown_out = String::new();
        if json {
            // One JSON value per line; release-metadata prints one document.
            let values: Vec<Value> = match serde_json::from_str(&out) {
                Ok(v) => vec![v],
                Err(_) => out
                    .lines()
                    .map(|line| {
                        serde_json::from_str(line)
                            .unwrap_or_else(|e| panic!("provledger {args:?}: stdout line is not JSON ({e}): {line}"))
                    })
                    .collect(),
            };
            for value in &values {
                self.check_schema(command, args, value);
                shown_out.push_str(&serde_json::to_string_pretty(value).unwrap());
                shown_out.push('\n');
            }
        } else {
            shown_out = out.clone();
        }
        let line = format!("$ provledger {}", args.join(" "));
        let mut t = self.redact.apply(&line);
        t.push('\n');
        if code != 0 {
            t.push_str(&format!("? exit {code}\n"));
        }
        if !shown_out.is_empty() {
            t.push_str(&self.redact.apply(&shown_out));
        }
        if !err.is_empty() {
            t.push_str("[stderr]\n");
            t.push_str(&self.redact.apply(&err));
        }
        t.push('\n');
        self.transcripts.entry(command).or_default().push_str(&t);
        out
    }

    fn check_schema(&self, command: &str, args: &[&str], value: &Value) {
        let schema = if value.get("error").is_some() { "error" } else { command };
        let errors: Vec<String> = self.schemas[schema].iter_errors(value).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "provledger {args:?}: output does not match {schema}.schema.json: {errors:?}\n{value}"
        );
    }

    fn ok(&mut self, command: &'static str, args: &[&str]) -> String {
        self.run(command, args, 0)
    }

    fn both(&mut self, command: &'static str, args: &[&str]) {
        self.run(command, args, 0);
        let mut a = args.to_vec();
        a.push("--json");
        self.run(command, &a, 0);
    }

    fn both_fail(&mut self, command: &'static str, args: &[&str], code: i32) {
        self.run(command, args, code);
        let mut a = args.to_vec();
        a.push("--json");
        self.run(command, &a, code);
    }

    fn json(&mut self, command: &'static str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(command, &a)).unwrap()
    }

    fn finish(self, part: &str) {
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| {
            for (command, transcript) in &self.transcripts {
                insta::assert_snapshot!(format!("{part}-{command}"), transcript);
            }
        });
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const IMAGE: &str = "registry.example.com/acme/app";

fn pinned(seed: &str) -> String {
    format!("{IMAGE}:1.0@{}", digest(seed))
}

/// Everything that runs on one machine without a network.
#[test]
fn offline_commands() {
    let mut s = Snapshots::new();
    for seed in ["app-1", "app-2", "app-3", "api", "web"] {
        s.redact.name(digest(seed).trim_start_matches("sha256:"), format!("[digest:{seed}]"));
    }
    let (root, ci, qa, release, ledger_key) =
        (s.key("root"), s.key("ci"), s.key("qa"), s.key("release"), s.key("ledger"));
    let policy = s.path("policy.toml");

    // key generate, key id
    let (new1, new2) = (s.path("new-1.key"), s.path("new-2.key"));
    s.ok("key-generate", &["key", "generate", "--out", &new1]);
    let generated = s.json("key-generate", &["key", "generate", "--out", &new2]);
    s.redact.name(generated["key_id"].as_str().unwrap(), "[key:new-2]");
    s.both_fail("key-generate", &["key", "generate", "--out", &new1], 1);
    s.both("key-id", &["key", "id", &format!("{ci}.pub")]);
    s.both("key-id", &["key", "id", &ci]);
    s.both_fail("key-id", &["key", "id", &s.path("absent.pub")], 1);

    // init: the JSON form on a second ledger.
    let genesis = s.ok("init", &["init", "--root-key", &root, "--policy", &policy, "--log-key", &ledger_key]);
    let genesis = genesis.trim().to_string();
    s.redact.name(&genesis, "[genesis]");
    // Another ledger: another policy text, so another genesis.
    let other = s.path("other-ledger");
    let other_policy = s.path("other-policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap() + "# the other ledger\n";
    std::fs::write(&other_policy, text).unwrap();
    let g2 = s.json(
        "init",
        &["--ledger", &other, "init", "--root-key", &root, "--policy", &other_policy, "--log-key", &ledger_key],
    );
    s.redact.name(g2["genesis"].as_str().unwrap(), "[genesis-2]");
    s.both_fail("init", &["init", "--root-key", &root, "--policy", &policy, "--log-key", &ledger_key], 1);
    let broken = s.path("broken-policy.toml");
    std::fs::write(&broken, "[keys.root]\npublic = \"absent.pub\"\nroles = [\"policy\"]\n").unwrap();
    s.both_fail("init", &["--ledger", &s.path("third"), "init", "--root-key", &root, "--policy", &broken], 1);

    // record build
    let (app1, app2, app3) = (pinned("app-1"), pinned("app-2"), pinned("app-3"));
    s.ok("record-build", &["record", "build", "--key", &ci, "--image", &app1, "--git-sha", GIT_SHA, "--offline"]);
    s.json("record-build", &["record", "build", "--key", &ci, "--image", &app2, "--git-sha", GIT_SHA, "--offline"]);
    let tag_only = format!("{IMAGE}:dev");
    s.both_fail("record-build", &["record", "build", "--key", &ci, "--image", &tag_only, "--offline"], 3);
    s.ok("record-build", &["record", "build", "--key", &ci, "--image", &tag_only, "--offline", "--allow-tag"]);
    s.both_fail("record-build", &["record", "build", "--key", &qa, "--image", &app3, "--offline"], 3);
    s.both_fail(
        "record-build",
        &["record", "build", "--key", &ci, "--image", &app3, "--git-sha", "xyz", "--offline"],
        1,
    );

    // record validation
    let checks = ["--check", "unit=pass", "--check", "integration=pass"];
    let mut args = vec!["record", "validation", "--key", &qa, "--image", &app1, "--offline"];
    args.extend(checks);
    s.ok("record-validation", &args);
    s.json(
        "record-validation",
        &[
            "record",
            "validation",
            "--key",
            &qa,
            "--image",
            &app2,
            "--offline",
            "--check",
            "unit=fail",
            "--evidence",
            "unit=https://ci.example.com/run/7",
        ],
    );
    s.both_fail(
        "record-validation",
        &["record", "validation", "--key", &qa, "--image", &app3, "--offline", "--check", "unit=pass"],
        3,
    );
    s.both_fail(
        "record-validation",
        &["record", "validation", "--key", &qa, "--image", &app1, "--offline", "--check", "unit=maybe"],
        1,
    );
    s.both_fail(
        "record-validation",
        &["record", "validation", "--key", &ci, "--image", &app1, "--offline", "--check", "unit=pass"],
        3,
    );

    // record policy
    s.ok("record-policy", &["record", "policy", "--key", &root, "--policy", &policy]);
    s.json("record-policy", &["record", "policy", "--key", &root, "--policy", &policy]);
    s.both_fail("record-policy", &["record", "policy", "--key", &ci, "--policy", &policy], 3);

    // promote one digest
    let promote = |image: &str, to: &str| -> Vec<String> {
        ["promote", "--key", &release, "--image", image, "--to", to, "--offline"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let mut dry = promote(&app1, "dev");
    dry.push("--dry-run".into());
    s.both("promote", &strs(&dry));
    s.ok("promote", &strs(&promote(&app1, "dev")));
    s.json("promote", &strs(&promote(&app1, "staging")));
    s.both_fail("promote", &strs(&promote(&app2, "dev")), 3);
    s.both_fail("promote", &strs(&promote(&app1, "prod")), 3);
    s.both_fail("promote", &strs(&promote(&tag_only, "dev")), 3);
    s.both_fail("promote", &["promote", "--key", &ci, "--image", &app1, "--to", "dev", "--offline"], 3);

    // promote a release
    for (seed, artifact) in [("api", "api"), ("web", "web")] {
        let image = format!("{IMAGE}-{artifact}:r1@{}", digest(seed));
        s.json(
            "record-build",
            &[
                "record",
                "build",
                "--key",
                &ci,
                "--image",
                &image,
                "--git-sha",
                GIT_SHA,
                "--offline",
                "--release",
                "r1",
                "--artifact",
                artifact,
            ],
        );
        let mut args = vec!["record", "validation", "--key", &qa, "--image", &image, "--offline"];
        args.extend(checks);
        s.json("record-validation", &args);
    }
    let rel = |to: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["promote", "--key", &release, "--release", "r1", "--to", to, "--offline"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        v.extend(extra.iter().map(|a| a.to_string()));
        v
    };
    s.both("promote", &strs(&rel("dev", &["--dry-run"])));
    s.ok("promote", &strs(&rel("dev", &[])));
    s.both_fail("promote", &strs(&rel("prod", &[])), 3);
    s.both_fail("promote", &strs(&rel("dev", &["--resolve", "api"])), 2);

    // verify, export, checkpoint, prove
    s.both("verify", &["verify", "--genesis", &genesis]);
    s.both_fail("verify", &["verify", "--genesis", g2["genesis"].as_str().unwrap()], 4);
    s.both_fail("verify", &["verify", "--genesis", "not-a-hash"], 2);
    let (bundle, bundle2) = (s.path("bundle.bin"), s.path("bundle-2.bin"));
    s.ok("export", &["export", "--out", &bundle]);
    let cp_file = s.path("checkpoint.txt");
    s.ok("checkpoint", &["checkpoint"]);
    s.ok("checkpoint", &["checkpoint", "--json"]);
    s.ok("checkpoint", &["checkpoint", "--out", &cp_file]);
    s.json("promote", &strs(&promote(&app1, "staging")));
    s.json("export", &["export", "--out", &bundle2]);
    s.both_fail("export", &["export", "--out", &s.path("absent-dir/bundle.bin")], 1);
    s.both("verify", &["verify", "--bundle", &bundle2, "--genesis", &genesis]);
    s.both("verify", &["verify", "--bundle", &bundle2, "--genesis", &genesis, "--since", &cp_file]);
    s.both_fail("verify", &["verify", "--bundle", &bundle2, "--genesis", g2["genesis"].as_str().unwrap()], 4);
    let truncated = s.path("truncated.bin");
    let bytes = std::fs::read(&bundle2).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    s.both_fail("verify", &["verify", "--bundle", &truncated, "--genesis", &genesis], 4);
    let proof = s.path("proof.json");
    s.ok("prove", &["prove", &digest("app-1"), "--env", "dev", "--out", &proof]);
    s.json("prove", &["prove", &digest("app-1"), "--env", "staging", "--out", &s.path("proof-2.json")]);
    s.both_fail("prove", &["prove", &digest("app-2"), "--env", "dev", "--out", &s.path("proof-3.json")], 3);
    s.both("verify", &["verify", "--proof", &proof, "--genesis", &genesis]);
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    forged["environment"] = "prod".into();
    let forged_path = s.path("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    s.both_fail("verify", &["verify", "--proof", &forged_path, "--genesis", &genesis], 4);

    // log, show, history
    s.both("log", &["log"]);
    s.both("show", &["show", &digest("app-1")]);
    s.both("show", &["show", &format!("{IMAGE}@{}", digest("api"))]);
    s.both_fail("show", &["show", &digest("absent")], 3);
    s.both("history", &["history", "--env", "dev"]);
    s.both("history", &["history", "--env", "prod"]);
    s.both_fail("history", &["history", "--env", "qa"], 1);

    // release-metadata, check-bundle
    let meta = s.path("meta.json");
    s.both("release-metadata", &["release-metadata", &digest("api")]);
    s.ok("release-metadata", &["release-metadata", &digest("api"), "--out", &meta]);
    s.both_fail("release-metadata", &["release-metadata", &digest("absent")], 3);
    s.both("check-bundle", &["check-bundle", &meta]);
    let mut partial: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    partial.as_object_mut().unwrap().remove("git_sha");
    let partial_path = s.path("partial.json");
    std::fs::write(&partial_path, partial.to_string()).unwrap();
    s.both_fail("check-bundle", &["check-bundle", &partial_path], 3);
    std::fs::write(s.path("not-json.json"), "{\n  \"a\": 1,\n}\n").unwrap();
    s.both_fail("check-bundle", &["check-bundle", &s.path("not-json.json")], 1);

    // check-refs
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
    for f in ["k8s.yaml", "compose.yaml", "compose-pinned.yaml"] {
        std::fs::copy(manifests.join(f), s.path(f)).unwrap();
    }
    s.both("check-refs", &["check-refs", &s.path("compose-pinned.yaml")]);
    s.both_fail("check-refs", &["check-refs", &s.path("k8s.yaml"), &s.path("compose.yaml")], 3);
    s.both("check-refs", &["check-refs", &s.path("k8s.yaml"), "--allow-tag"]);
    std::fs::write(s.path("broken.yaml"), "spec:\n  image: [unclosed\n").unwrap();
    s.both_fail("check-refs", &["check-refs", &s.path("broken.yaml")], 1);

    // reindex: the indexes made anew; a ledger without its log key (no writer) is refused.
    s.both("reindex", &["reindex"]);
    let keyless = s.path("keyless-ledger");
    common::copy_dir(Path::new(&other), Path::new(&keyless));
    std::fs::remove_file(Path::new(&keyless).join("log.key")).unwrap();
    s.both_fail("reindex", &["--ledger", &keyless, "reindex"], 1);

    // migrate: a store version 2 ledger (the fixture made by the last build
    // that wrote one), then again (nothing to do).
    let old = common::unpack_v2_fixture(Path::new(&s.path("v2"))).display().to_string();
    s.ok("migrate", &["--ledger", &old, "migrate"]);
    s.json("migrate", &["--ledger", &old, "migrate"]);
    s.both_fail("migrate", &["--ledger", &s.path("nowhere"), "migrate"], 1);

    // A failure every command shares: no ledger there.
    let nowhere = s.path("nowhere");
    s.both_fail("error", &["--ledger", &nowhere, "log"], 1);
    s.both_fail("error", &["--ledger", &nowhere, "show", &digest("app-1")], 1);

    let seen: Vec<&str> = s.transcripts.keys().copied().collect();
    for c in
        COMMANDS.iter().filter(|c| !["attach", "fetch-attestations", "reconcile-tags", "serve", "sync"].contains(c))
    {
        assert!(seen.contains(c), "no snapshot of `{c}`");
    }
    s.finish("offline");
}

/// What talks to a registry or a server: `record build` resolving a tag,
/// `promote --tag-target`, `reconcile-tags`, `attach`,
/// `fetch-attestations`, `sync`, `serve` and `--server`.
#[test]
fn networked_commands() {
    let mut s = Snapshots::new();
    let registry = TestRegistry::start();
    let images = Layout::new();
    let host = registry.host();
    s.redact.name(&host, "[registry]");
    s.global = vec!["--insecure-registry".into(), host.clone()];
    let (root, ci, qa, release, ledger_key) =
        (s.key("root"), s.key("ci"), s.key("qa"), s.key("release"), s.key("ledger"));
    let genesis =
        s.ok("init", &["init", "--root-key", &root, "--policy", &s.path("policy.toml"), "--log-key", &ledger_key]);
    let genesis = genesis.trim().to_string();
    s.redact.name(&genesis, "[genesis]");

    images.make("web", "amd64", "content of web");
    let web = images.push("web", &host, "acme/web", "1.0");
    s.redact.name(web.trim_start_matches("sha256:"), "[digest:web]");
    let web_ref = format!("{host}/acme/web:1.0");
    let web_pinned = format!("{host}/acme/web@{web}");

    s.ok("record-build", &["record", "build", "--key", &ci, "--image", &web_ref, "--git-sha", GIT_SHA]);
    s.both_fail("record-build", &["record", "build", "--key", &ci, "--image", &format!("{host}/acme/web:absent")], 3);
    s.json(
        "record-validation",
        &["record", "validation", "--key", &qa, "--image", &web_pinned, "--check", "unit=pass"],
    );
    let dev_tag = format!("{host}/acme/web:dev");
    let promote = ["promote", "--key", &release, "--image", &web_pinned, "--to", "dev", "--tag-target", &dev_tag];
    s.ok("promote", &promote);
    let mut again = promote.to_vec();
    again.push("--json");
    s.ok("promote", &again);

    // reconcile-tags: in place; moved behind the ledger's back.
    s.both("reconcile-tags", &["reconcile-tags"]);
    images.make("other", "amd64", "content of other");
    let other = images.push("other", &host, "acme/web", "dev");
    s.redact.name(other.trim_start_matches("sha256:"), "[digest:other]");
    s.both_fail("reconcile-tags", &["reconcile-tags", "--check"], 3);
    s.ok("reconcile-tags", &["reconcile-tags", "--env", "dev"]);
    s.both_fail("reconcile-tags", &["reconcile-tags", "--env", "qa"], 1);

    // attach, fetch-attestations
    s.ok("attach", &["attach", &web]);
    s.json("attach", &["attach", &web_pinned]);
    s.both_fail("attach", &["attach", &digest("never-built")], 3);
    s.both("fetch-attestations", &["fetch-attestations", &web_ref]);
    s.both_fail("fetch-attestations", &["fetch-attestations", &format!("{host}/acme/web@{other}")], 3);

    // sync: publish to the registry, mirror from it.
    let oci = format!("oci://{host}/acme/ledger:main");
    s.ok("sync", &["sync", "--to", &oci]);
    s.json("sync", &["sync", "--to", &oci]);
    let mirror = s.path("mirror");
    s.ok("sync", &["--ledger", &mirror, "sync", "--from", &oci, "--genesis", &genesis]);
    s.json("sync", &["--ledger", &mirror, "sync", "--from", &oci, "--genesis", &genesis]);
    s.both_fail("sync", &["--ledger", &s.path("mirror-2"), "sync", "--from", &oci], 1);
    s.both_fail("sync", &["sync", "--to", "https://example.com/ledger"], 2);

    // serve, and a client with --server.
    s.global.clear();
    let (url, mut served) = serve(&mut s, false);
    let client_mirror = s.path("client-mirror");
    let remote = ["--server", url.as_str(), "--server-genesis", genesis.as_str(), "--mirror", client_mirror.as_str()];
    let mut args = remote.to_vec();
    args.extend([
        "record",
        "validation",
        "--key",
        &qa,
        "--image",
        &web_pinned,
        "--offline",
        "--check",
        "integration=pass",
    ]);
    s.ok("record-validation", &args);
    let mut args = remote.to_vec();
    args.extend(["sync", "--json"]);
    s.ok("sync", &args);
    let mut args = remote.to_vec();
    args.extend(["record", "build", "--key", &qa, "--image", &web_pinned, "--offline"]);
    s.both_fail("record-build", &args, 3);
    served.kill();
    let (_, mut served2) = serve(&mut s, true);
    served2.kill();
    let mut args = remote.to_vec();
    args.extend(["verify"]);
    s.both_fail("error", &args, 1);

    s.finish("networked");
}

/// Starts `provledger serve` on a free port; what it prints on starting
/// goes to the `serve` transcript. Returns the URL and the process.
fn serve(s: &mut Snapshots, json: bool) -> (String, common::server::Served) {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("provledger"));
    cmd.env("PROVLEDGER_DIR", s.env.ledger()).env_remove("PROVLEDGER_SERVER");
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    if json {
        args.push("--json");
    }
    let mut child = cmd.args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let (url, shown) = if json {
        let v: Value = serde_json::from_str(&line).unwrap();
        s.check_schema("serve", &args, &v);
        (v["listening"].as_str().unwrap().to_string(), serde_json::to_string_pretty(&v).unwrap() + "\n")
    } else {
        let url = line.trim().strip_prefix("listening on ").unwrap().to_string();
        let mut err = String::new();
        std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut err).unwrap();
        (url, format!("{line}[stderr]\n{err}"))
    };
    s.redact.name(&url, "[server]");
    let t = s.redact.apply(&format!("$ provledger {}\n{shown}\n", args.join(" ")));
    s.transcripts.entry("serve").or_default().push_str(&t);
    (url.clone(), common::server::Served { child, url })
}
