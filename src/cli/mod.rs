//! The command-line interface: the only place that prints or sets exit codes.

mod ci_env;
mod error;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use provledger::audit;
use provledger::core::digest::Digest;
use provledger::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use provledger::core::hash::EntryHash;
use provledger::core::image_ref::ImageRef;
use provledger::core::keys::SecretKey;
use provledger::core::statement::{Check, CheckResult, CiRun, Predicate, Statement, check_git_sha, check_name};
use provledger::gate::{self, Decision};
use provledger::keyfile;
use provledger::ledger::Ledger;
use provledger::manifests;
use provledger::policy::parse_policy_toml;
use provledger::record::{self, BuildInput, ValidationInput};
use provledger::store::{SledStore, Store as _};
use provledger::verify::{ChainState, MemPrefix, VerifiedEntry};

use ci_env::CiEnv;
pub use error::{CliError, Code};

type Result<T> = std::result::Result<T, CliError>;

#[derive(Parser)]
#[command(
    name = "provledger",
    version,
    about = "Append-only, signed, hash-chained provenance ledger for container releases"
)]
pub struct Cli {
    /// Ledger directory [default: $PROVLEDGER_DIR, else ./.provledger]
    #[arg(long, global = true, env = "PROVLEDGER_DIR")]
    ledger: Option<PathBuf>,
    /// Print data, and errors, as JSON
    #[arg(long, global = true)]
    json: bool,
    /// Accept secret key files that group or others can read
    #[arg(long, global = true)]
    insecure_key_permissions: bool,
    /// Seconds to wait for another process holding the ledger
    #[arg(long, global = true, default_value_t = 10)]
    lock_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate and inspect keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create a ledger whose genesis entry is the policy; prints the genesis hash
    Init {
        /// Secret key(s) with the policy role in the policy file
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<PathBuf>,
        #[arg(long)]
        policy: PathBuf,
        /// The ledger's own key, for signed checkpoints (kept in the ledger directory, mode 0600)
        #[arg(long)]
        log_key: Option<PathBuf>,
    },
    /// Append a signed statement
    #[command(subcommand)]
    Record(RecordCommand),
    /// Decide a promotion; if allowed (and not --dry-run) append it; if denied list every reason, exit 3
    Promote {
        /// Secret key with the promotion role
        #[arg(long)]
        key: PathBuf,
        /// Image reference with digest
        #[arg(long, required_unless_present = "release", conflicts_with = "release")]
        image: Option<String>,
        /// Promote every artifact of a release (its newest build of each), all or none
        #[arg(long)]
        release: Option<String>,
        /// Target environment
        #[arg(long)]
        to: String,
        /// Decide only; append nothing
        #[arg(long)]
        dry_run: bool,
        /// Do not ask the registry whether the digest still exists; the promotion records that
        #[arg(long)]
        offline: bool,
    },
    /// Verify the whole chain; exit 4 naming the first bad entry
    Verify {
        /// Expected genesis hash (lowercase hex)
        #[arg(long)]
        genesis: Option<String>,
    },
    /// List entries (verified as they are read)
    Log,
    /// The audit answer for one digest: built, validated, promoted, findings
    Show {
        /// sha256:<hex>, or a reference carrying it
        digest: String,
    },
    /// Check that every image in Compose / Kubernetes YAML is digest-pinned; exit 3 naming file:line
    CheckRefs {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Report unpinned images as warnings (local development only; also ALLOW_TAG=1 / DEV_MODE=1)
        #[arg(long)]
        allow_tag: bool,
    },
    /// Release metadata for a digest, derived only from signed entries (JSON)
    ReleaseMetadata {
        digest: String,
        /// Write to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a release metadata or manifest file for completeness; exit 3 naming missing keys
    CheckBundle {
        file: PathBuf,
        /// Also require the CI run URL, id and workflow
        #[arg(long)]
        require_ci_evidence: bool,
    },
    /// Promotions into an environment, newest first, with the current digest and the rollback target
    History {
        #[arg(long)]
        env: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Write a new ed25519 secret key to PATH (mode 0600) and its public key to PATH.pub
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the key id of a public (or secret) key file
    Id { file: PathBuf },
}

#[derive(Args)]
struct Common {
    /// Secret key to sign with
    #[arg(long, required = true)]
    key: PathBuf,
    /// Do not contact the registry; the statement records that the digest was not registry-confirmed
    #[arg(long)]
    offline: bool,
    /// Accept a tag-only reference (development only; the record is marked dev-only)
    #[arg(long)]
    allow_tag: bool,
}

#[derive(Args)]
struct CiFlags {
    /// CI run URL [default: from the CI environment]
    #[arg(long)]
    ci_run_url: Option<String>,
    #[arg(long)]
    ci_run_id: Option<String>,
    #[arg(long)]
    ci_workflow: Option<String>,
    /// Source repository URL
    #[arg(long)]
    ci_repository: Option<String>,
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Record a build: image digest, tag, source revision, CI run
    Build {
        #[command(flatten)]
        common: Common,
        /// Image reference, with digest (REPO[:TAG]@sha256:...)
        #[arg(long)]
        image: String,
        /// Source revision (40 or 64 hex characters)
        #[arg(long)]
        git_sha: Option<String>,
        /// Artifact name within the release (e.g. backend)
        #[arg(long)]
        artifact: Option<String>,
        /// Release id: artifacts of one release share a source revision and are promoted together
        #[arg(long, requires_all = ["artifact", "git_sha"])]
        release: Option<String>,
        /// Builder identity (URI)
        #[arg(long)]
        builder_id: Option<String>,
        #[command(flatten)]
        ci: CiFlags,
    },
    /// Record validation gate outcomes for one exact digest
    Validation {
        #[command(flatten)]
        common: Common,
        /// Image reference with digest
        #[arg(long)]
        image: String,
        /// NAME=pass|fail, repeated
        #[arg(long = "check", required = true)]
        checks: Vec<String>,
        /// NAME=URL evidence link for a check, repeated
        #[arg(long = "evidence")]
        evidence: Vec<String>,
        #[command(flatten)]
        ci: CiFlags,
    },
    /// Record a policy change (rotation, revocation, new checks)
    Policy {
        /// Secret key(s) holding the policy role under the policy in force
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        #[arg(long)]
        policy: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Code::Usage } else { Code::Ok };
            let _ = e.print();
            return code.exit();
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(()) => Code::Ok.exit(),
        Err(e) => {
            e.print(json);
            e.code.exit()
        }
    }
}

struct Ctx {
    ledger_dir: PathBuf,
    json: bool,
    insecure_keys: bool,
    lock_wait: Duration,
}

impl Ctx {
    fn open(&self) -> Result<Ledger<SledStore>> {
        Ok(Ledger::new(SledStore::open(&self.ledger_dir, self.lock_wait)?))
    }

    fn secret(&self, path: &Path) -> Result<SecretKey> {
        Ok(keyfile::read_secret(path, self.insecure_keys)?)
    }

    fn emit(&self, value: serde_json::Value, human: impl FnOnce()) {
        if self.json {
            println!("{value}");
        } else {
            human();
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        ledger_dir: cli.ledger.unwrap_or_else(|| PathBuf::from(".provledger")),
        json: cli.json,
        insecure_keys: cli.insecure_key_permissions,
        lock_wait: Duration::from_secs(cli.lock_timeout),
    };
    match cli.command {
        Command::Key(KeyCommand::Generate { out }) => key_generate(&ctx, &out),
        Command::Key(KeyCommand::Id { file }) => key_id(&ctx, &file),
        Command::Init { root_keys, policy, log_key } => init(&ctx, &root_keys, &policy, log_key.as_deref()),
        Command::Record(RecordCommand::Build { common, image, git_sha, artifact, release, builder_id, ci }) => {
            record_build(&ctx, common, &image, git_sha, artifact, release, builder_id, ci)
        }
        Command::Record(RecordCommand::Validation { common, image, checks, evidence, ci }) => {
            record_validation(&ctx, common, &image, &checks, &evidence, ci)
        }
        Command::Record(RecordCommand::Policy { keys, policy }) => record_policy(&ctx, &keys, &policy),
        Command::Promote { key, image, release, to, dry_run, offline } => match (image, release) {
            (Some(image), _) => promote(&ctx, &key, &image, &to, dry_run, offline),
            (None, Some(release)) => promote_release(&ctx, &key, &release, &to, dry_run, offline),
            (None, None) => unreachable!("clap requires --image or --release"),
        },
        Command::Verify { genesis } => verify(&ctx, genesis.as_deref()),
        Command::Log => log(&ctx),
        Command::Show { digest } => show(&ctx, &digest),
        Command::History { env } => history(&ctx, &env),
        Command::ReleaseMetadata { digest, out } => release_metadata(&ctx, &digest, out.as_deref()),
        Command::CheckBundle { file, require_ci_evidence } => check_bundle(&ctx, &file, require_ci_evidence),
        Command::CheckRefs { files, allow_tag } => check_refs(&ctx, &files, allow_tag),
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
}

fn key_generate(ctx: &Ctx, out: &Path) -> Result<()> {
    let key = SecretKey::generate();
    let pub_path = keyfile::write_new_key(out, &key)?;
    let id = key.id();
    ctx.emit(json!({"secret": out, "public": pub_path, "key_id": id.to_string()}), || {
        println!("wrote secret key {} (mode 0600) and public key {}", out.display(), pub_path.display());
        println!("key id {id}");
    });
    Ok(())
}

fn key_id(ctx: &Ctx, file: &Path) -> Result<()> {
    let public = match keyfile::read_public(file) {
        Ok(p) => p,
        Err(public_err) => match keyfile::read_secret(file, ctx.insecure_keys) {
            Ok(s) => s.public(),
            Err(keyfile::KeyFileError::Format { .. }) => return Err(public_err.into()),
            Err(e) => return Err(e.into()),
        },
    };
    let id = public.id();
    ctx.emit(json!({"key_id": id.to_string(), "public": public.to_string()}), || println!("{id}"));
    Ok(())
}

/// Reads and checks a policy file; key paths are relative to it.
fn read_policy(path: &Path) -> Result<(provledger::core::statement::PolicyPredicate, Vec<u8>)> {
    let source = std::fs::read(path).map_err(|e| CliError::operational(format!("{}: {e}", path.display())))?;
    let text = std::str::from_utf8(&source)
        .map_err(|_| CliError::operational(format!("{}: not UTF-8 text", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut read_key = |rel: &str| -> std::result::Result<String, String> {
        let p = base.join(rel);
        keyfile::read_public(&p).map(|k| k.to_string()).map_err(|e| e.to_string())
    };
    let predicate = parse_policy_toml(text, &path.display().to_string(), &mut read_key)?;
    Ok((predicate, source))
}

fn sign(statement: &Statement, keys: &[&SecretKey]) -> Envelope {
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, statement.to_payload(), keys)
}

fn init(ctx: &Ctx, root_keys: &[PathBuf], policy_path: &Path, log_key: Option<&Path>) -> Result<()> {
    let (predicate, source) = read_policy(policy_path)?;
    let keys = root_keys.iter().map(|p| ctx.secret(p)).collect::<Result<Vec<_>>>()?;
    let log_key = log_key.map(|p| ctx.secret(p)).transpose()?;
    let statement = record::policy_statement(predicate, &source);
    let envelope = sign(&statement, &keys.iter().collect::<Vec<_>>());
    // Check the genesis entry before anything is created on disk.
    let (probe, _) = provledger::core::entry::UnverifiedEntry::build(0, EntryHash::ZERO, now(), envelope.clone());
    ChainState::empty().verify_next(probe, &MemPrefix::default()).map_err(|e| CliError::from_append(e.into()))?;
    let store = SledStore::create(&ctx.ledger_dir, ctx.lock_wait)?;
    let ledger = Ledger::new(store);
    let result = (|| -> Result<VerifiedEntry> {
        if let Some(k) = &log_key {
            let p = ctx.ledger_dir.join("log.key");
            keyfile::write_new_key(&p, k)?;
        }
        ledger.init(envelope, now()).map_err(CliError::from_append)
    })();
    let genesis = match result {
        Ok(v) => v,
        Err(e) => {
            drop(ledger);
            let _ = std::fs::remove_dir_all(ctx.ledger_dir.join(provledger::store::DB_DIR));
            let _ = std::fs::remove_file(ctx.ledger_dir.join("log.key"));
            let _ = std::fs::remove_file(ctx.ledger_dir.join("log.key.pub"));
            return Err(e);
        }
    };
    let hash = genesis.hash();
    ctx.emit(json!({"genesis": hash.to_string(), "ledger": ctx.ledger_dir}), || println!("{hash}"));
    Ok(())
}

fn parse_image(text: &str, allow_tag: bool) -> Result<ImageRef> {
    let image: ImageRef = text.parse().map_err(|e| CliError::operational(format!("{e}")))?;
    let allow = allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE");
    if !image.is_pinned() && !allow {
        return Err(CliError::denied(format!("image reference {image} has no digest: a tag can move, so it identifies nothing"))
            .hint("pass REPO:TAG@sha256:<digest>; for local development only, --allow-tag (or ALLOW_TAG=1 / DEV_MODE=1) records it as dev-only"));
    }
    Ok(image)
}

fn require_offline(offline: bool) -> Result<()> {
    if offline {
        return Ok(());
    }
    Err(CliError::operational(
        "this provledger cannot query registries yet, so the digest cannot be registry-confirmed",
    )
    .hint("pass --offline: the record then states that no registry confirmed the digest"))
}

fn ci_run(flags: CiFlags, env: &CiEnv) -> CiRun {
    CiRun {
        run_url: flags.ci_run_url.or_else(|| env.run.run_url.clone()),
        run_id: flags.ci_run_id.or_else(|| env.run.run_id.clone()),
        workflow: flags.ci_workflow.or_else(|| env.run.workflow.clone()),
        repository: flags.ci_repository.or_else(|| env.run.repository.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn record_build(
    ctx: &Ctx,
    common: Common,
    image: &str,
    git_sha: Option<String>,
    artifact: Option<String>,
    release: Option<String>,
    builder_id: Option<String>,
    ci: CiFlags,
) -> Result<()> {
    let image = parse_image(image, common.allow_tag)?;
    require_offline(common.offline)?;
    let env = CiEnv::from_env();
    let git_sha = git_sha.or_else(|| env.git_sha.clone()).map(|s| s.to_ascii_lowercase());
    if let Some(s) = &git_sha {
        check_git_sha(s).map_err(|e| CliError::operational(e.to_string()))?;
    }
    if let Some(a) = &artifact {
        check_name("artifact", a).map_err(|e| CliError::operational(e.to_string()))?;
    }
    if let Some(r) = &release {
        check_name("release", r).map_err(|e| CliError::operational(e.to_string()))?;
    }
    let key = ctx.secret(&common.key)?;
    let ledger = ctx.open()?;
    if let (Some(r), Some(sha)) = (&release, &git_sha) {
        for index in ledger.store().builds_of_release(r)? {
            if let Predicate::Build(b) = ledger.read(index)?.statement.predicate
                && b.git_commit() != Some(sha.as_str())
            {
                return Err(CliError::denied(format!(
                    "release {r} is revision {} (entry {index}); this build is revision {sha}",
                    b.git_commit().unwrap_or("-")
                ))
                .hint("artifacts of one release are built from one source revision; use a new release id"));
            }
        }
    }
    let run = ci_run(ci, &env);
    let statement = record::build_statement(BuildInput {
        source_repository: run.repository.clone(),
        image,
        artifact,
        release,
        git_sha,
        builder_id: builder_id.or(env.builder_id),
        ci: run,
        registry_confirmed: false,
        registry: None,
        time: now(),
    });
    let v = append(ctx, &ledger, sign(&statement, &[&key]))?;
    // A rebuild is recorded, and flagged: its digest has no validation yet.
    if let Some(d) = v.statement().subject_digests().first()
        && let Some(r) = audit::show(&ledger, d)?
    {
        for f in r.findings.iter().filter(|f| f.starts_with("rebuild")) {
            eprintln!("warning: {f}");
        }
    }
    Ok(())
}

fn parse_checks(checks: &[String], evidence: &[String]) -> Result<Vec<Check>> {
    let mut out: Vec<Check> = Vec::new();
    for c in checks {
        let (name, result) = c
            .split_once('=')
            .ok_or_else(|| CliError::operational(format!("--check {c:?}: expected NAME=pass or NAME=fail")))?;
        let result = match result {
            "pass" => CheckResult::Pass,
            "fail" => CheckResult::Fail,
            other => {
                return Err(CliError::operational(format!(
                    "--check {name}: result {other:?} is neither pass nor fail"
                )));
            }
        };
        check_name("check", name).map_err(|e| CliError::operational(format!("--check: {e}")))?;
        if out.iter().any(|x| x.name == name) {
            return Err(CliError::operational(format!("--check {name} is given twice")));
        }
        out.push(Check { name: name.to_string(), result, evidence: None });
    }
    for e in evidence {
        let (name, url) =
            e.split_once('=').ok_or_else(|| CliError::operational(format!("--evidence {e:?}: expected NAME=URL")))?;
        let check = out
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| CliError::operational(format!("--evidence {name}: no --check {name} given")))?;
        check.evidence = Some(url.to_string());
    }
    Ok(out)
}

fn record_validation(
    ctx: &Ctx,
    common: Common,
    image: &str,
    checks: &[String],
    evidence: &[String],
    ci: CiFlags,
) -> Result<()> {
    let image = parse_image(image, common.allow_tag)?;
    require_offline(common.offline)?;
    let checks = parse_checks(checks, evidence)?;
    let key = ctx.secret(&common.key)?;
    let ledger = ctx.open()?;
    let build = match image.digest() {
        Some(d) => {
            let (r, _) = ledger.latest_build_for(&d)?.ok_or_else(|| {
                CliError::denied(format!(
                    "no build entry for {d} in the ledger: a validation must name the build it checked"
                ))
                .hint("record the build first with `provledger record build`")
            })?;
            Some(r)
        }
        None => None,
    };
    let statement = record::validation_statement(ValidationInput {
        image,
        build,
        checks,
        ci: ci_run(ci, &CiEnv::from_env()),
        registry_confirmed: false,
        registry: None,
        time: now(),
    });
    append(ctx, &ledger, sign(&statement, &[&key])).map(|_| ())
}

fn record_policy(ctx: &Ctx, keys: &[PathBuf], policy_path: &Path) -> Result<()> {
    let (mut predicate, source) = read_policy(policy_path)?;
    let keys = keys.iter().map(|p| ctx.secret(p)).collect::<Result<Vec<_>>>()?;
    let ledger = ctx.open()?;
    let (current, _) = ledger.policy()?;
    predicate.previous = Some(current);
    let statement = record::policy_statement(predicate, &source);
    append(ctx, &ledger, sign(&statement, &keys.iter().collect::<Vec<_>>())).map(|_| ())
}

fn promote(ctx: &Ctx, key: &Path, image: &str, to: &str, dry_run: bool, offline: bool) -> Result<()> {
    // A tag-only reference is parsed (so that it can be denied with the other
    // reasons), never resolved: --allow-tag has no say in a promotion.
    let image: ImageRef = image.parse().map_err(|e| CliError::operational(format!("{e}")))?;
    let key = ctx.secret(key)?;
    if !dry_run {
        require_offline(offline)?;
    }
    let ledger = ctx.open()?;
    let request = gate::Request { digest: image.digest(), to, promoter: key.id() };
    let decision = ledger.decide(&request)?;
    let allowed = match decision {
        Decision::Deny(reasons) => {
            if ctx.json {
                println!("{}", json!({"allowed": false, "image": image.to_string(), "to": to, "reasons": reasons}));
            } else {
                eprintln!("promotion of {image} to {to} denied:");
                for r in &reasons {
                    eprintln!("  - {r}");
                }
            }
            return Err(CliError::reported(Code::Denied));
        }
        Decision::Allow(a) => a,
    };
    let refs = |a: &gate::Allowed| {
        json!({
            "build": {"index": a.build.index, "hash": a.build.hash.to_string()},
            "validations": a.validations.iter().map(|r| json!({"index": r.index, "hash": r.hash.to_string()})).collect::<Vec<_>>(),
        })
    };
    if dry_run {
        ctx.emit(
            json!({"allowed": true, "dry_run": true, "image": image.to_string(), "to": to, "evidence": refs(&allowed)}),
            || {
                println!("promotion of {image} to {to} allowed (dry run; nothing appended)");
                println!(
                    "  build entry {}, validation entries {:?}",
                    allowed.build.index,
                    allowed.validations.iter().map(|r| r.index).collect::<Vec<_>>()
                );
            },
        );
        return Ok(());
    }
    let digest = image.digest().expect("allowed implies a digest");
    let statement = record::promotion_statement(&image, digest, to, allowed, false, now());
    let v = ledger.append(sign(&statement, &[&key]), now()).map_err(CliError::from_append)?;
    ctx.emit(json!({"allowed": true, "entry": entry_json(&v, false)}), || {
        println!("promoted {image} to {to}: entry {}", v.index());
        println!("entry hash {}", v.hash());
    });
    Ok(())
}

/// A digest, or a reference carrying one.
fn parse_digest(text: &str) -> Result<Digest> {
    match text.parse() {
        Ok(d) => Ok(d),
        Err(e) => {
            text.parse::<ImageRef>().ok().and_then(|r| r.digest()).ok_or_else(|| CliError::operational(e.to_string()))
        }
    }
}

fn release_metadata(ctx: &Ctx, text: &str, out: Option<&Path>) -> Result<()> {
    let digest = parse_digest(text)?;
    let ledger = ctx.open()?;
    let Some(doc) = audit::release_metadata(&ledger, &digest)? else {
        return Err(CliError::denied(format!("no build of {digest} is recorded: no metadata can be derived")));
    };
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    match out {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| CliError::operational(format!("{}: {e}", p.display())))?;
            if !ctx.json {
                println!("wrote {}", p.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn check_bundle(ctx: &Ctx, file: &Path, require_ci: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::operational(format!("{}: {e}", file.display())))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::operational(format!("{}:{}: not JSON: {e}", file.display(), e.line())))?;
    let missing = audit::missing_keys(&doc, require_ci);
    ctx.emit(json!({"ok": missing.is_empty(), "file": file, "missing": missing}), || {
        if missing.is_empty() {
            println!("ok: {} is complete", file.display());
        }
    });
    if missing.is_empty() {
        return Ok(());
    }
    if ctx.json {
        return Err(CliError::reported(Code::Denied));
    }
    Err(CliError::denied(format!("{} is incomplete: missing {}", file.display(), missing.join(", "))))
}

fn show(ctx: &Ctx, text: &str) -> Result<()> {
    let digest = parse_digest(text)?;
    let ledger = ctx.open()?;
    let Some(r) = audit::show(&ledger, &digest)? else {
        return Err(CliError::denied(format!("no entry of the ledger names {digest}")));
    };
    if ctx.json {
        println!("{}", serde_json::to_value(&r).expect("report serialises"));
        return Ok(());
    }
    let who = audit::Signer::labels;
    println!("{digest}");
    for b in &r.builds {
        println!(
            "  built     entry {:<5} {}  by {}  {}{}",
            b.index,
            b.recorded_at,
            who(&b.signers),
            b.image,
            if b.dev_only { " [dev-only]" } else { "" }
        );
        println!(
            "            revision {}  source {}",
            b.git_sha.as_deref().unwrap_or("-"),
            b.source_repository.as_deref().unwrap_or("-")
        );
        println!(
            "            builder {}  run {}",
            b.builder_id,
            b.ci.as_ref().and_then(|c| c.run_url.as_deref()).unwrap_or("-")
        );
        if !b.registry_confirmed {
            println!("            digest not confirmed by a registry (recorded --offline)");
        }
    }
    for v in &r.validations {
        let checks: Vec<String> = v.checks.iter().map(|c| format!("{}={}", c.name, c.result)).collect();
        println!("  validated entry {:<5} {}  by {}  {}", v.index, v.recorded_at, who(&v.signers), checks.join(" "));
    }
    for p in &r.promotions {
        println!(
            "  promoted  entry {:<5} {}  by {}  {} -> {} (evidence: build {}, validations {:?})",
            p.index,
            p.recorded_at,
            who(&p.signers),
            p.from.as_deref().unwrap_or("-"),
            p.to,
            p.build_index,
            p.validation_indexes
        );
    }
    for f in &r.findings {
        println!("  finding: {f}");
    }
    Ok(())
}

fn check_refs(ctx: &Ctx, files: &[PathBuf], allow_tag: bool) -> Result<()> {
    let allow = allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE");
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| CliError::operational(format!("{}: {e}", f.display())))?;
        let unpinned = manifests::unpinned_images(&text)
            .map_err(|e| CliError::operational(format!("{}:{}: not valid YAML: {}", f.display(), e.line, e.message)))?;
        found.extend(unpinned.into_iter().map(|u| (f.display().to_string(), u)));
    }
    if ctx.json {
        let list: Vec<_> = found
            .iter()
            .map(|(f, u)| json!({"file": f, "line": u.line, "reference": u.reference, "why": u.why}))
            .collect();
        println!(
            "{}",
            json!({"ok": found.is_empty(), "allowed_by_dev_mode": allow && !found.is_empty(), "unpinned": list})
        );
    } else {
        let label = if allow { "warning: " } else { "" };
        for (f, u) in &found {
            eprintln!("{label}{f}:{}: {} ({})", u.line, u.reference, u.why);
        }
        if found.is_empty() {
            println!("ok: every image in {} file(s) is pinned to a digest", files.len());
        }
    }
    if found.is_empty() || allow {
        return Ok(());
    }
    if ctx.json {
        return Err(CliError::reported(Code::Denied));
    }
    Err(CliError::denied(format!("{} image reference(s) not pinned to a digest", found.len()))
        .hint("pin each as REPO:TAG@sha256:<digest>; --allow-tag turns this into warnings for local development only"))
}

fn history(ctx: &Ctx, env: &str) -> Result<()> {
    let ledger = ctx.open()?;
    let r = audit::history(&ledger, env)?;
    if r.promotions.is_empty() && ledger.policy()?.1.environment(env).is_none() {
        return Err(CliError::operational(format!(
            "environment {env:?} is not in the policy and was never promoted into"
        )));
    }
    ctx.emit(serde_json::to_value(&r).expect("report serialises"), || {
        println!("{env}: current {}", r.current.as_deref().unwrap_or("(none)"));
        println!("{env}: rollback target {}", r.rollback_target.as_deref().unwrap_or("(none)"));
        for p in &r.promotions {
            println!(
                "  entry {:<5} {}  {}  from {}  by {}",
                p.index,
                p.recorded_at,
                p.digest,
                p.from.as_deref().unwrap_or("-"),
                audit::Signer::labels(&p.signers)
            );
        }
    });
    Ok(())
}

/// Promotes every artifact of a release, or none: each artifact's newest
/// build in the release goes through the gate; all promotions are appended in
/// one atomic batch.
fn promote_release(ctx: &Ctx, key: &Path, release: &str, to: &str, dry_run: bool, offline: bool) -> Result<()> {
    let key = ctx.secret(key)?;
    if !dry_run {
        require_offline(offline)?;
    }
    let ledger = ctx.open()?;
    let mut newest: BTreeMap<String, (ImageRef, Digest)> = BTreeMap::new();
    for index in ledger.store().builds_of_release(release)? {
        let e = ledger.read(index)?;
        if let Predicate::Build(b) = &e.statement.predicate {
            let ext = &b.build_definition.external_parameters;
            let image: ImageRef =
                ext.image.parse().map_err(|e| CliError::operational(format!("entry {index}: {e}")))?;
            if let Some(d) = e.statement.subject_digests().first() {
                newest.insert(ext.artifact.clone().unwrap_or_default(), (image, *d));
            }
        }
    }
    if newest.is_empty() {
        return Err(CliError::denied(format!("release {release} has no build in the ledger")));
    }
    let mut reasons = Vec::new();
    let mut allowed = Vec::new();
    for (artifact, (image, digest)) in &newest {
        match ledger.decide(&gate::Request { digest: Some(*digest), to, promoter: key.id() })? {
            Decision::Deny(rs) => reasons.extend(rs.into_iter().map(|r| format!("{artifact} ({digest}): {r}"))),
            Decision::Allow(a) => allowed.push((artifact.clone(), image.clone(), *digest, a)),
        }
    }
    if !reasons.is_empty() {
        if ctx.json {
            println!("{}", json!({"allowed": false, "release": release, "to": to, "reasons": reasons}));
        } else {
            eprintln!("promotion of release {release} to {to} denied (no artifact promoted):");
            for r in &reasons {
                eprintln!("  - {r}");
            }
        }
        return Err(CliError::reported(Code::Denied));
    }
    let artifacts: Vec<_> =
        allowed.iter().map(|(a, _, d, _)| json!({"artifact": a, "digest": d.to_string()})).collect();
    if dry_run {
        ctx.emit(
            json!({"allowed": true, "dry_run": true, "release": release, "to": to, "artifacts": artifacts}),
            || println!("promotion of release {release} to {to} allowed for {} artifact(s) (dry run)", allowed.len()),
        );
        return Ok(());
    }
    let time = now();
    let envelopes = allowed
        .into_iter()
        .map(|(_, image, digest, a)| sign(&record::promotion_statement(&image, digest, to, a, false, time), &[&key]))
        .collect();
    let done = ledger.append_batch(envelopes, time).map_err(CliError::from_append)?;
    let entries: Vec<_> = done.iter().map(|v| entry_json(v, false)).collect();
    ctx.emit(
        json!({"allowed": true, "release": release, "to": to, "artifacts": artifacts, "entries": entries}),
        || {
            for v in &done {
                println!("promoted {} to {to}: entry {}", subjects_json(v.statement()).join(" "), v.index());
            }
        },
    );
    Ok(())
}

fn kind(statement: &Statement) -> &'static str {
    match statement.predicate {
        Predicate::Build(_) => "build",
        Predicate::Validation(_) => "validation",
        Predicate::Promotion(_) => "promotion",
        Predicate::Policy(_) => "policy",
    }
}

fn subjects_json(statement: &Statement) -> Vec<String> {
    statement
        .subjects
        .iter()
        .map(|s| match s.sha256() {
            Ok(Some(d)) => d.to_string(),
            _ => format!("{} (tag-only)", s.name),
        })
        .collect()
}

fn entry_json(v: &VerifiedEntry, with_envelope: bool) -> serde_json::Value {
    let mut j = json!({
        "index": v.index(),
        "hash": v.hash().to_string(),
        "prev_hash": v.entry().prev_hash.to_string(),
        "integrated_time": v.entry().integrated_time,
        "kind": kind(v.statement()),
        "subjects": subjects_json(v.statement()),
        "signers": v.signers().iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "dev_only": v.statement().predicate.is_dev_only(),
    });
    if with_envelope {
        j["envelope"] = v.entry().envelope.to_json_value();
    }
    j
}

fn append(ctx: &Ctx, ledger: &Ledger<SledStore>, envelope: Envelope) -> Result<VerifiedEntry> {
    let v = ledger.append(envelope, now()).map_err(CliError::from_append)?;
    ctx.emit(entry_json(&v, false), || {
        let dev = if v.statement().predicate.is_dev_only() { " [dev-only]" } else { "" };
        println!(
            "recorded entry {} ({}){dev} {}",
            v.index(),
            kind(v.statement()),
            subjects_json(v.statement()).join(" ")
        );
        println!("entry hash {}", v.hash());
    });
    Ok(v)
}

fn verify(ctx: &Ctx, genesis: Option<&str>) -> Result<()> {
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    let ledger = ctx.open()?;
    let report = ledger.verify(genesis.as_ref(), |_| {}).map_err(CliError::from_verify)?;
    let g = report.genesis.map(|g| g.to_string()).unwrap_or_default();
    ctx.emit(json!({"ok": true, "entries": report.entries, "genesis": g, "head": report.head.to_string()}), || {
        println!("ok: {} entries verified", report.entries);
        println!("genesis {g}");
        println!("head    {}", report.head);
    });
    Ok(())
}

fn log(ctx: &Ctx) -> Result<()> {
    let ledger = ctx.open()?;
    let policy = ledger.policy()?.1;
    let mut rows = Vec::new();
    let result = ledger.verify(None, |v| rows.push(v.clone()));
    if ctx.json {
        println!("{}", serde_json::Value::Array(rows.iter().map(|v| entry_json(v, true)).collect()));
    } else {
        println!("{:>6}  {:<12}  {:<10}  {:<16}  SUBJECTS", "INDEX", "HASH", "KIND", "SIGNER");
        for v in &rows {
            let signer = v
                .signers()
                .iter()
                .map(|id| policy_name(&policy, id).unwrap_or_else(|| id.short()))
                .collect::<Vec<_>>()
                .join(",");
            let dev = if v.statement().predicate.is_dev_only() { " [dev-only]" } else { "" };
            println!(
                "{:>6}  {:<12}  {:<10}  {:<16}  {}{dev}",
                v.index(),
                &v.hash().to_string()[..12],
                kind(v.statement()),
                signer,
                subjects_json(v.statement()).join(" ")
            );
        }
    }
    result.map(|_| ()).map_err(CliError::from_verify)
}

fn policy_name(policy: &provledger::policy::Policy, id: &provledger::core::keys::KeyId) -> Option<String> {
    policy.key(id).map(|k| format!("{} {}", k.name, id.short()))
}
