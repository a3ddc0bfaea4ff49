//! The command-line interface: the only place that prints or sets exit codes.

// Printing in the CLI goes through output.rs: a closed or failing standard
// output ends in an exit code, not a panic, and no secret key text is shown.
// Defined before the modules below, so that these take std's place in all.
macro_rules! println {
    () => { $crate::cli::output::stdout(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!($($arg)*), true) };
}
macro_rules! print {
    ($($arg:tt)*) => { $crate::cli::output::stdout(format_args!($($arg)*), false) };
}
macro_rules! eprintln {
    () => { $crate::cli::output::stderr(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::output::stderr(format_args!($($arg)*), true) };
}

mod ci_env;
mod error;
mod input;
mod output;
mod progress;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use provledger::audit;
use provledger::bundle;
use provledger::core::digest::Digest;
use provledger::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use provledger::core::hash::EntryHash;
use provledger::core::image_ref::ImageRef;
use provledger::core::keys::SecretKey;
use provledger::core::note::NoteVerifier;
use provledger::core::statement::PolicyLog;
use provledger::core::statement::{
    Check, CheckResult, CiRun, Predicate, ReleaseBinding, Statement, check_git_sha, check_name,
};
use provledger::gate::{self, Decision};
use provledger::keyfile;
use provledger::ledger::{Ledger, ReleaseDecision};
use provledger::manifests;
use provledger::policy::{default_origin, parse_policy_toml};
use provledger::proof::{self, PromotionProof};
use provledger::record::{self, BuildInput, PromotionInput, ValidationInput};
use provledger::registry::{self, Registry, Target};
use provledger::remote::Client;
use provledger::server;
use provledger::sigcheck;
use provledger::store::{SledStore, Store as _};
use provledger::sync;
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
    /// MiB the store must leave free on the ledger's file system: opening it (sled writes when it
    /// opens) or appending closer to a full disk is refused before anything is written (0: no
    /// check; sled's files do not survive a write cut short by a full disk)
    #[arg(long, global = true, default_value_t = 64, value_name = "MIB")]
    min_free_space: u64,
    /// Registry to reach over plain HTTP instead of HTTPS (HOST:PORT; repeatable; also
    /// $PROVLEDGER_INSECURE_REGISTRIES, comma-separated)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Seconds to wait for a registry to connect, and for each read
    #[arg(long, global = true, default_value_t = 30)]
    registry_timeout: u64,
    /// Use the ledger served at URL (`provledger serve`) in place of a local one: statements are
    /// signed here and submitted; reads run on a verified local mirror of it
    #[arg(long, global = true, env = "PROVLEDGER_SERVER", value_name = "URL")]
    server: Option<String>,
    /// With --server: the local mirror's directory [default: ~/.cache/provledger/mirrors/<url hash>]
    #[arg(long, global = true, env = "PROVLEDGER_MIRROR", value_name = "DIR")]
    mirror: Option<PathBuf>,
    /// With --server: the genesis hash to trust when the mirror is first filled [default: the
    /// server's, trusted on first use, with a warning]
    #[arg(long, global = true, env = "PROVLEDGER_SERVER_GENESIS", value_name = "HASH")]
    server_genesis: Option<String>,
    /// With --server: seconds to wait for each request to the server
    #[arg(long, global = true, default_value_t = 60)]
    server_timeout: u64,
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
        /// The ledger's own key, which signs its checkpoints (copied into the ledger directory as
        /// log.key, mode 0600) [default: a new key]
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
        /// Also serve the promoted manifest under REPO:TAG (same registry), byte for byte;
        /// across repositories its blobs and attestations are copied too
        #[arg(long, value_name = "REPO:TAG", conflicts_with_all = ["offline", "release", "dry_run"])]
        tag_target: Option<String>,
        /// With --release: for an artifact rebuilt with another digest within the release, the
        /// digest to promote (the others are recorded as set aside); repeatable
        #[arg(long, value_name = "ARTIFACT=DIGEST", requires = "release")]
        resolve: Vec<String>,
    },
    /// Make every environment tag that promotions moved serve the digest of the newest promotion
    /// that names it (after a tag move failed or was interrupted); exit 3 with --check if any
    /// does not
    ReconcileTags {
        /// Only the tags of this environment
        #[arg(long)]
        env: Option<String>,
        /// Report only: move nothing, exit 3 if a tag is not where the ledger says
        #[arg(long)]
        check: bool,
    },
    /// Verify the whole chain, its Merkle tree and checkpoint; exit 4 naming the first bad entry
    Verify {
        /// Expected genesis hash (lowercase hex)
        #[arg(long)]
        genesis: Option<String>,
        /// Verify an exported bundle, offline, instead of the local ledger (needs --genesis)
        #[arg(long, requires = "genesis", conflicts_with = "proof")]
        bundle: Option<PathBuf>,
        /// With --bundle: also prove the bundle consistent with this earlier checkpoint note
        #[arg(long, requires = "bundle")]
        since: Option<PathBuf>,
        /// Verify a promotion proof, offline (needs --genesis)
        #[arg(long, requires = "genesis")]
        proof: Option<PathBuf>,
        /// Check each signature alone with the strict ed25519 rules instead of in batches
        /// (slower; see SECURITY.md, "Batch verification")
        #[arg(long)]
        strict_signatures: bool,
    },
    /// Write every entry and the latest signed checkpoint to one file, for offline audit
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a self-contained proof that DIGEST was legitimately promoted to ENV; exit 3 if it never was
    Prove {
        /// sha256:<hex>, or a reference carrying it
        digest: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Push the DSSE envelopes of every entry about a digest to the registry, as an OCI artifact
    /// that refers to the image
    Attach {
        /// REPO@sha256:<hex>, or sha256:<hex> alone (the repository of its build entry)
        digest: String,
    },
    /// Pull the attestations of an image from the registry and verify each against this ledger;
    /// exit 4 if any fails, 3 if there are none
    FetchAttestations {
        /// REPO@sha256:<hex>, or REPO:TAG (resolved in the registry)
        reference: String,
    },
    /// Print the latest signed checkpoint (a C2SP tlog-checkpoint signed note)
    Checkpoint {
        /// Write the note to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
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
    /// Serve this ledger over HTTP (API v1) to many writers and mirrors, until SIGINT or SIGTERM
    Serve {
        /// Address to listen on; port 0 picks a free one (the first line printed names it)
        #[arg(long, default_value = "127.0.0.1:8470")]
        listen: String,
        /// Most statements written in one group commit
        #[arg(long, default_value_t = 4096)]
        max_batch: usize,
        /// Most statements waiting to be committed; beyond it submissions get 503
        #[arg(long, default_value_t = 16384)]
        queue: usize,
        /// Seconds a request may take, waiting for its commit included
        #[arg(long, default_value_t = 30)]
        request_timeout: u64,
        /// Largest request body, in bytes
        #[arg(long, default_value_t = provledger::api::MAX_BODY)]
        max_body: usize,
        /// Seconds a client may take to send a request's headers; then it is disconnected
        #[arg(long, value_name = "SECS", default_value_t = server::HEADER_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..))]
        header_timeout: u64,
        /// Most connections open at once; beyond, a new one gets 503 and is closed unread
        #[arg(long, value_name = "N", default_value_t = server::MAX_CONNECTIONS)]
        max_connections: usize,
        /// Most connections open at once from one IP address; beyond, 503 and closed unread
        #[arg(long, value_name = "N", default_value_t = server::MAX_CONNECTIONS_PER_PEER)]
        max_connections_per_peer: usize,
    },
    /// Pull new entries from another copy into this ledger (a mirror), verified; a forked history
    /// is refused (exit 4) and its checkpoint kept as evidence. Or publish this ledger to a registry
    Sync {
        /// http(s)://server, a ledger directory, or oci://REGISTRY/REPO[:TAG]
        #[arg(long, value_name = "URL|DIR|oci://REGISTRY/REPO", conflicts_with = "to")]
        from: Option<String>,
        /// oci://REGISTRY/REPO[:TAG]: publish entries (immutable blobs) and the checkpoint (manifest)
        #[arg(long, value_name = "oci://REGISTRY/REPO")]
        to: Option<String>,
        /// Genesis hash to trust; required when this ledger is empty
        #[arg(long)]
        genesis: Option<String>,
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
        /// When the policy's [log] names a new log key: its secret key, which replaces the ledger's log.key
        #[arg(long)]
        log_key: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    if let Some(e) = output::refuse_secret_arguments() {
        e.print(std::env::args_os().any(|a| a == "--json"));
        return output::finish(e.code);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Code::Usage } else { Code::Ok };
            let _ = e.print();
            return code.exit();
        }
    };
    let json = cli.json;
    let code = match run(cli) {
        Ok(()) => Code::Ok,
        Err(e) => {
            e.print(json);
            e.code
        }
    };
    output::finish(code)
}

struct Ctx {
    ledger_dir: PathBuf,
    json: bool,
    insecure_keys: bool,
    lock_wait: Duration,
    /// Bytes an append leaves free on the ledger's file system.
    min_free: u64,
    registry: registry::Options,
    remote: Option<RemoteCtx>,
}

/// `--server`: where the ledger is served, and the local mirror of it.
struct RemoteCtx {
    client: Client,
    mirror: PathBuf,
    genesis: Option<EntryHash>,
}

impl Ctx {
    fn registry(&self) -> Result<Registry> {
        Ok(Registry::new(&self.registry)?)
    }

    /// Opens the ledger to read: the local one, or with --server the mirror,
    /// brought up to the server's latest checkpoint first.
    fn open(&self) -> Result<Ledger<SledStore>> {
        match &self.remote {
            None => Ok(Ledger::new(SledStore::open_keeping(&self.ledger_dir, self.lock_wait, self.min_free)?)),
            Some(r) => {
                let ledger = Ledger::new(open_or_create(&r.mirror, self.lock_wait, self.min_free)?);
                self.pull_mirror(r, &ledger)?;
                Ok(ledger)
            }
        }
    }

    /// Opens the ledger to append: with the log key that signs each new
    /// checkpoint (with --server, the server signs; the mirror is opened).
    fn open_writer(&self) -> Result<Ledger<SledStore>> {
        let ledger = self.open()?;
        if self.remote.is_some() {
            return Ok(ledger);
        }
        // Only `init` appends to a ledger with no entry.
        if ledger.store().head()?.is_none() {
            return Err(provledger::ledger::LedgerError::Empty.into());
        }
        let key = self.log_key()?;
        Ok(ledger.with_log_key(key))
    }

    /// Brings the mirror up to the server's latest checkpoint, verified.
    fn pull_mirror(&self, r: &RemoteCtx, ledger: &Ledger<SledStore>) -> Result<sync::SyncReport> {
        let genesis = match (&r.genesis, ledger.store().head()?) {
            (Some(g), _) => Some(*g),
            (None, Some(_)) => None,
            (None, None) => {
                let info = r.client.info()?;
                let g = EntryHash::parse(&info.genesis)
                    .map_err(|e| CliError::operational(format!("the server's genesis hash: {e}")))?;
                eprintln!(
                    "warning: trusting genesis {g} of {} on first use; pin it with --server-genesis",
                    r.client.url()
                );
                Some(g)
            }
        };
        let mut source = sync::ServerSource(r.client.clone());
        Ok(sync::pull(ledger, &mut source, genesis.as_ref(), &r.mirror.join(EVIDENCE_DIR))?)
    }

    /// Appends statements: locally, or with --server by submitting them
    /// (several all or none), verifying each acknowledgement, and pulling
    /// the mirror so that the entries shown are the ones it verified.
    fn append_all(&self, ledger: &Ledger<SledStore>, envelopes: Vec<Envelope>) -> Result<Vec<Shown>> {
        let Some(r) = &self.remote else {
            let done = ledger.append_batch(envelopes, now()).map_err(CliError::from_append)?;
            return Ok(done.iter().map(Shown::from).collect());
        };
        let log = ledger.policy()?.1.log().clone();
        let appended = match envelopes.as_slice() {
            [one] => vec![r.client.append(one, &log)?],
            many => r.client.append_batch(many, &log)?,
        };
        self.pull_mirror(r, ledger)?;
        for a in &appended {
            sync::check_acknowledged(ledger, r.client.url(), &a.checkpoint, &r.mirror.join(EVIDENCE_DIR))?;
        }
        let mut shown = Vec::with_capacity(appended.len());
        for a in appended {
            let index = a.entry.index;
            let e = ledger.read(index)?;
            if e.entry.hash() != a.entry.hash() {
                return Err(CliError::new(
                    Code::Verification,
                    format!(
                        "the server acknowledged entry {index} as {}, its log holds {}",
                        a.entry.hash(),
                        e.entry.hash()
                    ),
                ));
            }
            let signers = provledger::verify::envelope_signers(&*ledger.policy_at(index)?, &e.entry.envelope)
                .map_err(|(_, why)| CliError::new(Code::Verification, format!("entry {index}: {why}")))?;
            shown.push(Shown { index, hash: e.entry.hash(), entry: e.entry, statement: e.statement, signers });
        }
        Ok(shown)
    }

    fn log_key_path(&self) -> PathBuf {
        self.ledger_dir.join(LOG_KEY_FILE)
    }

    fn log_key(&self) -> Result<SecretKey> {
        let path = self.log_key_path();
        if !path.exists() {
            return Err(CliError::operational(format!(
                "no log key at {}: the ledger signs a checkpoint with it after every append",
                path.display()
            ))
            .hint("copy the ledger's log key there (mode 0600)"));
        }
        self.secret(&path)
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

/// The ledger's own key, in its directory.
const LOG_KEY_FILE: &str = "log.key";
/// Where a mirror keeps the signed checkpoints of forks it refused.
const EVIDENCE_DIR: &str = "evidence";

/// Opens a ledger directory's store, creating an empty one if there is none
/// (a mirror before its first sync).
fn open_or_create(dir: &Path, lock_wait: Duration, min_free: u64) -> Result<SledStore> {
    Ok(SledStore::open_or_create_keeping(dir, lock_wait, min_free)?)
}

/// The default mirror of a server: one directory per URL in the user's cache.
fn default_mirror(url: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    let id = hex::encode(&provledger::core::hash::sha256(url.trim_end_matches('/').as_bytes())[..8]);
    cache.join("provledger").join("mirrors").join(id)
}

/// An appended entry, as commands print it.
struct Shown {
    index: u64,
    hash: EntryHash,
    entry: provledger::core::entry::UnverifiedEntry,
    statement: Statement,
    signers: Vec<provledger::core::keys::KeyId>,
}

impl From<&VerifiedEntry> for Shown {
    fn from(v: &VerifiedEntry) -> Shown {
        Shown {
            index: v.index(),
            hash: v.hash(),
            entry: v.entry().clone(),
            statement: v.statement().clone(),
            signers: v.signers().to_vec(),
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let remote = match &cli.server {
        None => None,
        Some(url) => {
            if matches!(cli.command, Command::Init { .. } | Command::Serve { .. }) {
                return Err(CliError::new(
                    Code::Usage,
                    "--server: init and serve work on a local ledger, on the server's own host",
                ));
            }
            let genesis = cli
                .server_genesis
                .as_deref()
                .map(EntryHash::parse)
                .transpose()
                .map_err(|e| CliError::new(Code::Usage, format!("--server-genesis: {e}")))?;
            Some(RemoteCtx {
                client: Client::new(url, Duration::from_secs(cli.server_timeout))?,
                mirror: cli.mirror.clone().unwrap_or_else(|| default_mirror(url)),
                genesis,
            })
        }
    };
    let ctx = Ctx {
        ledger_dir: cli.ledger.unwrap_or_else(|| PathBuf::from(".provledger")),
        json: cli.json,
        insecure_keys: cli.insecure_key_permissions,
        lock_wait: Duration::from_secs(cli.lock_timeout),
        min_free: cli.min_free_space.saturating_mul(1 << 20),
        registry: registry::Options::new(cli.insecure_registries, Duration::from_secs(cli.registry_timeout)),
        remote,
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
        Command::Record(RecordCommand::Policy { keys, policy, log_key }) => {
            record_policy(&ctx, &keys, &policy, log_key.as_deref())
        }
        Command::Promote { key, image, release, to, dry_run, offline, tag_target, resolve } => match (image, release) {
            (Some(image), _) => promote(&ctx, &key, &image, &to, dry_run, offline, tag_target.as_deref()),
            (None, Some(release)) => promote_release(&ctx, &key, &release, &to, dry_run, offline, &resolve),
            (None, None) => unreachable!("clap requires --image or --release"),
        },
        Command::ReconcileTags { env, check } => reconcile_tags(&ctx, env.as_deref(), check),
        Command::Verify { genesis, bundle, since, proof, strict_signatures } => {
            let mode = if strict_signatures { sigcheck::Mode::Strict } else { sigcheck::Mode::Batch };
            match (bundle, proof) {
                (Some(b), _) => verify_bundle(&ctx, &b, genesis.as_deref(), since.as_deref(), mode),
                (None, Some(p)) => verify_proof(&ctx, &p, genesis.as_deref()),
                (None, None) => verify(&ctx, genesis.as_deref(), mode),
            }
        }
        Command::Export { out } => export(&ctx, &out),
        Command::Prove { digest, env, out } => prove(&ctx, &digest, &env, &out),
        Command::Checkpoint { out } => checkpoint(&ctx, out.as_deref()),
        Command::Attach { digest } => attach(&ctx, &digest),
        Command::FetchAttestations { reference } => fetch_attestations(&ctx, &reference),
        Command::Log => log(&ctx),
        Command::Show { digest } => show(&ctx, &digest),
        Command::History { env } => history(&ctx, &env),
        Command::ReleaseMetadata { digest, out } => release_metadata(&ctx, &digest, out.as_deref()),
        Command::CheckBundle { file, require_ci_evidence } => check_bundle(&ctx, &file, require_ci_evidence),
        Command::CheckRefs { files, allow_tag } => check_refs(&ctx, &files, allow_tag),
        Command::Serve {
            listen,
            max_batch,
            queue,
            request_timeout,
            max_body,
            header_timeout,
            max_connections,
            max_connections_per_peer,
        } => {
            let config = server::Config {
                max_batch: max_batch.max(1),
                queue: queue.max(1),
                request_timeout: Duration::from_secs(request_timeout),
                max_body,
                header_timeout: Duration::from_secs(header_timeout),
                max_connections: max_connections.max(1),
                max_connections_per_peer: max_connections_per_peer.max(1),
            };
            serve(&ctx, &listen, config)
        }
        Command::Sync { from, to, genesis } => sync_command(&ctx, from.as_deref(), to.as_deref(), genesis.as_deref()),
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
fn read_policy(
    path: &Path,
    log: Option<&PolicyLog>,
) -> Result<(provledger::core::statement::PolicyPredicate, Vec<u8>)> {
    let source = input::read(path, "policy", input::MAX_POLICY_FILE)?;
    let text = std::str::from_utf8(&source)
        .map_err(|_| CliError::operational(format!("{}: not UTF-8 text", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut read_key = |rel: &str| -> std::result::Result<String, String> {
        let p = base.join(rel);
        keyfile::read_public(&p).map(|k| k.to_string()).map_err(|e| e.to_string())
    };
    let predicate = parse_policy_toml(text, &path.display().to_string(), &mut read_key, log)?;
    Ok((predicate, source))
}

fn sign(statement: &Statement, keys: &[&SecretKey]) -> Envelope {
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, statement.to_payload(), keys)
}

/// The log key a policy names.
fn policy_log_key(predicate: &provledger::core::statement::PolicyPredicate) -> Result<NoteVerifier> {
    NoteVerifier::parse(&predicate.log.verifier_key).map_err(|e| CliError::operational(format!("policy log key: {e}")))
}

fn init(ctx: &Ctx, root_keys: &[PathBuf], policy_path: &Path, log_key_path: Option<&Path>) -> Result<()> {
    let log_key = match log_key_path {
        Some(p) => ctx.secret(p)?,
        None => SecretKey::generate(),
    };
    let fallback = PolicyLog::new(&default_origin(&log_key.public()), log_key.public())
        .map_err(|e| CliError::operational(e.to_string()))?;
    let (predicate, source) = read_policy(policy_path, Some(&fallback))?;
    let named = policy_log_key(&predicate)?;
    if named.public != log_key.public() {
        let given =
            if log_key_path.is_some() { "the --log-key given is another key" } else { "no --log-key was given" };
        return Err(CliError::operational(format!("the policy's [log] names log key {}; {given}", named.public.id()))
            .hint("pass that key's secret with --log-key"));
    }
    let keys = root_keys.iter().map(|p| ctx.secret(p)).collect::<Result<Vec<_>>>()?;
    let statement = record::policy_statement(predicate, &source);
    let envelope = sign(&statement, &keys.iter().collect::<Vec<_>>());
    // Check the genesis entry before anything is created on disk.
    let (probe, _) = provledger::core::entry::UnverifiedEntry::build(0, EntryHash::ZERO, now(), envelope.clone());
    ChainState::empty().verify_next(probe, &MemPrefix::default()).map_err(|e| CliError::from_append(e.into()))?;
    let store = SledStore::create_keeping(&ctx.ledger_dir, ctx.lock_wait, ctx.min_free)?;
    // The ledger (and its sled lock) lives only inside the closure, so that a
    // failure can remove what was created.
    let result = (|| -> Result<VerifiedEntry> {
        init_log_key(&ctx.log_key_path(), &log_key)?;
        let ledger = Ledger::new(store).with_log_key(log_key);
        ledger.init(envelope, now()).map_err(CliError::from_append)
    })();
    let genesis = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(ctx.ledger_dir.join(provledger::store::DB_DIR));
            let _ = std::fs::remove_file(ctx.ledger_dir.join("log.key"));
            let _ = std::fs::remove_file(ctx.ledger_dir.join("log.key.pub"));
            return Err(e);
        }
    };
    let hash = genesis.hash();
    let vkey = named.to_text();
    ctx.emit(json!({"genesis": hash.to_string(), "ledger": ctx.ledger_dir, "log_verifier_key": vkey}), || {
        // Standard output carries the genesis hash alone, for scripts.
        println!("{hash}");
        eprintln!("checkpoints are signed by log key {vkey}");
    });
    Ok(())
}

/// Writes the log key of a ledger being created. The store is held and has
/// no entry, so a log key already there was left by an `init` killed before
/// its genesis entry: it signed nothing, and is replaced.
fn init_log_key(path: &Path, key: &SecretKey) -> Result<()> {
    let stale = |e: std::io::Error| CliError::operational(format!("{}: {e}", path.display()));
    provledger::fsutil::remove_stale_temps(path).map_err(stale)?;
    provledger::fsutil::remove_stale_temps(&keyfile::public_path(path)).map_err(stale)?;
    keyfile::replace_key(path, key)?;
    Ok(())
}

fn parse_ref(text: &str) -> Result<ImageRef> {
    text.parse().map_err(|e| CliError::operational(format!("{e}")))
}

/// A reference with a digest, or, for local development only, a tag-only one.
fn require_pinned(image: ImageRef, allow_tag: bool) -> Result<ImageRef> {
    let allow = allow_tag || env_flag("ALLOW_TAG") || env_flag("DEV_MODE");
    if !image.is_pinned() && !allow {
        return Err(CliError::denied(format!("image reference {image} has no digest: a tag can move, so it identifies nothing"))
            .hint("pass REPO:TAG@sha256:<digest>; for local development only, --allow-tag (or ALLOW_TAG=1 / DEV_MODE=1) records it as dev-only"));
    }
    Ok(image)
}

/// What a registry confirmed about a build's image.
struct Confirmed {
    registry: String,
    media_type: String,
    platforms: Vec<provledger::core::statement::PlatformManifest>,
}

/// Resolves a build's reference in the registry: the tag (if given) names a
/// manifest whose bytes hash to the digest recorded; a digest the build lane
/// also gave must be that one.
fn resolve_build(ctx: &Ctx, image: ImageRef) -> Result<(ImageRef, Confirmed)> {
    if image.tag().is_none() && image.digest().is_none() {
        return Err(CliError::operational(format!(
            "image reference {image} names neither a tag nor a digest: there is nothing to resolve"
        )));
    }
    let resolved = ctx.registry()?.resolve(&image).map_err(absent_is_denied)?;
    let served = resolved.manifest.digest;
    if let Some(reported) = image.digest()
        && reported != served
    {
        return Err(CliError::denied(format!(
            "registry {} serves {served} under {}:{}, but the build lane reported {reported}: same label, \
             different artifact; nothing recorded",
            image.registry(),
            image.name(),
            image.tag().unwrap_or_default()
        ))
        .hint("record the digest the registry serves, or find out which image the build lane pushed"));
    }
    let confirmed = Confirmed {
        registry: image.registry().to_string(),
        media_type: resolved.manifest.media_type,
        platforms: resolved.platforms,
    };
    Ok((image.with_digest(served), confirmed))
}

/// Confirms that the registry still serves the reference's digest.
fn confirm_exists(registry: &Registry, image: &ImageRef) -> Result<String> {
    let digest = image.digest().expect("a pinned reference");
    if registry.exists(image, digest)? {
        return Ok(image.registry().to_string());
    }
    Err(CliError::denied(format!(
        "{digest} is not in registry {} (repository {}): it was deleted or never pushed",
        image.registry(),
        image.repository()
    )))
}

/// A reference the registry does not have is missing evidence (exit 3).
fn absent_is_denied(e: registry::RegistryError) -> CliError {
    match e {
        registry::RegistryError::NotFound { .. } => CliError::denied(e.to_string()),
        other => other.into(),
    }
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
    let image = parse_ref(image)?;
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
    // The registry is asked before the ledger is opened, so that no other
    // writer waits on the lock through network round trips; offline, the
    // reference must carry its digest.
    let (image, confirmed) = if common.offline {
        (require_pinned(image, common.allow_tag)?, None)
    } else {
        let (image, c) = resolve_build(ctx, image)?;
        (image, Some(c))
    };
    let ledger = ctx.open_writer()?;
    // One source revision per release is a chain rule: the append refuses
    // a build that breaks it, here and on a server alike.
    let in_release = release.is_some();
    let run = ci_run(ci, &env);
    let statement = record::build_statement(BuildInput {
        source_repository: run.repository.clone(),
        image,
        artifact,
        release,
        git_sha,
        builder_id: builder_id.or(env.builder_id),
        ci: run,
        registry_confirmed: confirmed.is_some(),
        media_type: confirmed.as_ref().map(|c| c.media_type.clone()),
        platforms: confirmed.as_ref().map(|c| c.platforms.clone()).unwrap_or_default(),
        registry: confirmed.map(|c| c.registry),
        time: now(),
        binding: Some(ledger.binding()?),
    });
    let v = append(ctx, &ledger, sign(&statement, &[&key])).map_err(|e| match e.code {
        Code::Denied if in_release => {
            e.hint("artifacts of one release are built from one source revision; use a new release id")
        }
        _ => e,
    })?;
    // A rebuild is recorded, and flagged: its digest has no validation yet.
    if let Some(d) = v.statement.subject_digests().first()
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
    let image = require_pinned(parse_ref(image)?, common.allow_tag)?;
    let checks = parse_checks(checks, evidence)?;
    let key = ctx.secret(&common.key)?;
    // A validation names the digest it checked; the registry confirms it
    // publishes that digest (a tag-only dev record has nothing to confirm),
    // before the ledger's lock is taken.
    let registry = match (common.offline, image.is_pinned()) {
        (false, true) => Some(confirm_exists(&ctx.registry()?, &image)?),
        _ => None,
    };
    let ledger = ctx.open_writer()?;
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
        registry_confirmed: registry.is_some(),
        registry,
        time: now(),
        binding: Some(ledger.binding()?),
    });
    append(ctx, &ledger, sign(&statement, &[&key])).map(|_| ())
}

fn record_policy(ctx: &Ctx, keys: &[PathBuf], policy_path: &Path, log_key_path: Option<&Path>) -> Result<()> {
    let ledger = ctx.open()?;
    let (current, current_policy) = ledger.policy()?;
    // A policy file without [log] keeps the log key in force.
    let current_log = PolicyLog { verifier_key: current_policy.log().to_text() };
    let (mut predicate, source) = read_policy(policy_path, Some(&current_log))?;
    let keys = keys.iter().map(|p| ctx.secret(p)).collect::<Result<Vec<_>>>()?;
    let named = policy_log_key(&predicate)?;
    let rotates = named.public != current_policy.log().public;
    if ctx.remote.is_some() {
        // The server holds the log key: it signs the checkpoint after this entry.
        if rotates || log_key_path.is_some() {
            return Err(CliError::operational(
                "--server: a policy that names a new log key is recorded on the server's host, which holds it",
            ));
        }
        predicate.previous = Some(current);
        let statement = record::policy_statement(predicate, &source);
        return append(ctx, &ledger, sign(&statement, &keys.iter().collect::<Vec<_>>())).map(|_| ());
    }
    let log_key = match log_key_path {
        Some(p) => ctx.secret(p)?,
        None => ctx.log_key()?,
    };
    if log_key.public() != named.public {
        return Err(CliError::operational(format!(
            "the policy names log key {}, which signs the checkpoint after this entry; the key at hand is {}",
            named.public.id(),
            log_key.id()
        ))
        .hint("pass the new log key's secret with --log-key"));
    }
    predicate.previous = Some(current);
    let statement = record::policy_statement(predicate, &source);
    // The new log key is staged beside the ledger first, and takes the place
    // of log.key only once the entry that names it is durable.
    let staged = ctx.ledger_dir.join("log.key.next");
    if rotates {
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_file(keyfile::public_path(&staged));
        keyfile::write_new_key(&staged, &log_key)?;
    }
    let ledger = ledger.with_log_key(log_key);
    let result = append(ctx, &ledger, sign(&statement, &keys.iter().collect::<Vec<_>>()));
    if rotates {
        if result.is_ok() {
            for (from, to) in [
                (staged.clone(), ctx.log_key_path()),
                (keyfile::public_path(&staged), keyfile::public_path(&ctx.log_key_path())),
            ] {
                std::fs::rename(&from, &to).map_err(|e| {
                    CliError::operational(format!(
                        "the policy entry is recorded, but moving {} to {}: {e}",
                        from.display(),
                        to.display()
                    ))
                })?;
            }
        } else {
            let _ = std::fs::remove_file(&staged);
            let _ = std::fs::remove_file(keyfile::public_path(&staged));
        }
    }
    result.map(|_| ())
}

#[allow(clippy::too_many_arguments)]
fn promote(
    ctx: &Ctx,
    key: &Path,
    image: &str,
    to: &str,
    dry_run: bool,
    offline: bool,
    tag_target: Option<&str>,
) -> Result<()> {
    // A tag-only reference is parsed (so that it can be denied with the other
    // reasons), never resolved: --allow-tag has no say in a promotion.
    let image = parse_ref(image)?;
    let tag_target = tag_target.map(parse_tag_target).transpose()?;
    let key = ctx.secret(key)?;
    let ledger = if dry_run { ctx.open()? } else { ctx.open_writer()? };
    // The same command again after the promotion was appended but its tag
    // move failed or was cut short: the promotion stands; move the tag.
    if let (Some(target), Some(digest)) = (&tag_target, image.digest())
        && let Some(t) = audit::tag_targets(&ledger, Some(to))?
            .into_iter()
            .find(|t| t.target == target.to_string() && t.digest == digest.to_string())
    {
        let served = ctx.registry()?.copy_to_tag(&image, digest, target)?;
        ctx.emit(json!({"allowed": true, "entry": {"index": t.index}, "tag_target": t.target, "moved": true}), || {
            println!("{image} is already promoted to {to} with tag target {target} (entry {})", t.index);
            println!("{target} now serves {served}");
        });
        return Ok(());
    }
    let request = gate::Request {
        digest: image.digest(),
        to,
        promoter: key.id(),
        tag: tag_target.as_ref().and_then(|t| t.tag()),
    };
    let decision = ledger.decide(&request)?;
    let allowed = match decision {
        Decision::Deny(reasons) => return Err(deny_promotion(ctx, &image, to, &reasons)),
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
    // The registry must still serve the digest before the promotion is
    // appended; the environment tag moves only once the promotion is
    // durable, so the tag never serves a digest the ledger did not promote.
    let registry = if offline {
        None
    } else {
        let reg = ctx.registry()?;
        let host = confirm_exists(&reg, &image)
            .map_err(|e| if e.code == Code::Denied { deny_promotion(ctx, &image, to, &[e.message]) } else { e })?;
        Some((reg, host))
    };
    let input = PromotionInput {
        registry: registry.as_ref().map(|(_, host)| host.clone()),
        tag_target: tag_target.as_ref().map(|t| t.to_string()),
        release: None,
        time: now(),
        binding: Some(ledger.binding()?),
    };
    let statement = record::promotion_statement(&image, digest, to, allowed, input);
    let v = ctx.append_all(&ledger, vec![sign(&statement, &[&key])])?.remove(0);
    if let (Some(target), Some((reg, _))) = (&tag_target, &registry) {
        reg.copy_to_tag(&image, digest, target).map_err(|e| {
            let e = CliError::from(e);
            CliError::new(
                e.code,
                format!(
                    "promoted {image} to {to} (entry {}), but moving {target} to it failed: {}",
                    v.index, e.message
                ),
            )
            .hint(format!(
                "the promotion stands; rerun the same command, or `provledger reconcile-tags --env {to}`, to move the tag"
            ))
        })?;
    }
    ctx.emit(json!({"allowed": true, "entry": entry_json(&v, false)}), || {
        println!("promoted {image} to {to}: entry {}", v.index);
        if let Some(t) = &tag_target {
            println!("{t} now serves {digest}");
        }
        println!("entry hash {}", v.hash);
    });
    Ok(())
}

/// Makes each environment tag serve the digest of the newest promotion that
/// names it.
fn reconcile_tags(ctx: &Ctx, env: Option<&str>, check: bool) -> Result<()> {
    let ledger = ctx.open()?;
    if let Some(e) = env
        && ledger.policy()?.1.environment(e).is_none()
    {
        return Err(CliError::operational(format!("environment {e:?} is not in the policy in force")));
    }
    let targets = audit::tag_targets(&ledger, env)?;
    let reg = if targets.is_empty() { None } else { Some(ctx.registry()?) };
    let mut rows = Vec::new();
    let mut drift = 0;
    for t in &targets {
        let reg = reg.as_ref().expect("a registry for each target");
        let target = parse_tag_target(&t.target)?;
        let want: Digest = parse_digest(&t.digest)?;
        let serves = match reg.manifest(&target, Target::Tag(target.tag().expect("a tag target has a tag"))) {
            Ok(m) => Some(m.digest),
            Err(registry::RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let ok = serves == Some(want);
        let mut moved = false;
        if !ok {
            drift += 1;
            if !check {
                let image = parse_ref(&format!("{}@{want}", t.image))?;
                reg.copy_to_tag(&image, want, &target)?;
                moved = true;
            }
        }
        rows.push((t, serves, ok, moved));
    }
    let json_rows: Vec<_> = rows
        .iter()
        .map(|(t, serves, ok, moved)| {
            json!({"environment": t.environment, "tag_target": t.target, "entry": t.index, "digest": t.digest,
                   "served": serves.map(|d| d.to_string()), "in_place": ok, "moved": moved})
        })
        .collect();
    ctx.emit(json!({"ok": !check || drift == 0, "tags": json_rows}), || {
        if rows.is_empty() {
            println!("no promotion recorded a tag target");
        }
        for (t, serves, ok, moved) in &rows {
            let served = serves.map_or_else(|| "nothing".to_string(), |d| d.to_string());
            match (ok, moved) {
                (true, _) => println!("{} ({}): serves {} (entry {})", t.target, t.environment, t.digest, t.index),
                (false, true) => println!(
                    "{} ({}): served {served}; moved to {} (entry {})",
                    t.target, t.environment, t.digest, t.index
                ),
                (false, false) => println!(
                    "{} ({}): serves {served}, but the ledger promoted {} (entry {})",
                    t.target, t.environment, t.digest, t.index
                ),
            }
        }
    });
    if check && drift > 0 {
        return Err(CliError::reported(Code::Denied));
    }
    Ok(())
}

/// `--tag-target`: `REPO:TAG`, no digest.
fn parse_tag_target(text: &str) -> Result<ImageRef> {
    let t = parse_ref(text)?;
    if t.tag().is_none() || t.is_pinned() {
        return Err(CliError::operational(format!("--tag-target {text}: expected REPO:TAG, without a digest")));
    }
    Ok(t)
}

/// Prints every reason a promotion is denied; exit 3.
fn deny_promotion(ctx: &Ctx, image: &ImageRef, to: &str, reasons: &[String]) -> CliError {
    if ctx.json {
        println!("{}", json!({"allowed": false, "image": image.to_string(), "to": to, "reasons": reasons}));
    } else {
        eprintln!("promotion of {image} to {to} denied:");
        for r in reasons {
            eprintln!("  - {r}");
        }
    }
    CliError::reported(Code::Denied)
}

/// The image a digest (or a pinned reference) names: the reference itself,
/// else the repository of the digest's newest build entry.
fn image_of(ledger: &Ledger<SledStore>, text: &str) -> Result<ImageRef> {
    if let Ok(r) = text.parse::<ImageRef>()
        && r.is_pinned()
    {
        return Ok(r);
    }
    let digest = parse_digest(text)?;
    let (_, build) = ledger.latest_build_for(&digest)?.ok_or_else(|| {
        CliError::denied(format!("no build entry names {digest}, so its repository is unknown"))
            .hint("name the image as REPO@sha256:<digest>")
    })?;
    let Predicate::Build(b) = &build.statement.predicate else { unreachable!("a build entry") };
    let image: ImageRef = parse_ref(&b.build_definition.external_parameters.image)?;
    Ok(image.with_digest(digest))
}

fn attach(ctx: &Ctx, text: &str) -> Result<()> {
    let ledger = ctx.open()?;
    let image = image_of(&ledger, text)?;
    let digest = image.digest().expect("pinned");
    let mut layers = Vec::new();
    for index in ledger.store().entries_for_subject(&digest)? {
        let e = ledger.read(index)?;
        layers.push(registry::AttestationLayer {
            envelope_json: serde_json::to_vec(&e.entry.envelope.to_json_value()).expect("json"),
            entry_index: index,
            entry_hash: e.entry.hash().to_string(),
        });
    }
    if layers.is_empty() {
        return Err(CliError::denied(format!("no entry of the ledger names {digest}: nothing to attach")));
    }
    let genesis = ledger.genesis_hash()?.map(|g| g.to_string()).unwrap_or_default();
    let (artifact, scheme) = ctx.registry()?.attach(&image, digest, &layers, &genesis)?;
    let listed = match scheme {
        registry::ReferrersScheme::Api => "referrers-api",
        registry::ReferrersScheme::TagSchema => "tag-schema",
    };
    let entries: Vec<u64> = layers.iter().map(|l| l.entry_index).collect();
    ctx.emit(
        json!({"image": image.to_string(), "artifact": artifact.to_string(), "entries": entries, "listed_by": listed}),
        || {
            println!("attached {} envelope(s) (entries {entries:?}) to {image}", layers.len());
            println!("artifact {}@{artifact}, listed by the {listed}", image.name());
        },
    );
    Ok(())
}

fn fetch_attestations(ctx: &Ctx, text: &str) -> Result<()> {
    let image = parse_ref(text)?;
    let reg = ctx.registry()?;
    let digest = match (image.digest(), image.tag()) {
        (Some(d), _) => d,
        (None, Some(tag)) => reg.manifest(&image, Target::Tag(tag)).map_err(absent_is_denied)?.digest,
        (None, None) => {
            return Err(CliError::operational(format!("{image} names neither a tag nor a digest")));
        }
    };
    let image = image.with_digest(digest);
    let fetched = reg.attestations(&image, digest)?;
    let ledger = ctx.open()?;
    let mut results = Vec::with_capacity(fetched.len());
    for f in &fetched {
        results.push((f, audit::check_attestation(&ledger, &digest, &f.bytes)?));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let list: Vec<_> = results
        .iter()
        .map(|(f, r)| match r {
            Ok(a) => json!({"artifact": f.artifact.to_string(), "layer": f.layer, "ok": true, "entry": a}),
            Err(why) => json!({"artifact": f.artifact.to_string(), "layer": f.layer, "ok": false, "reason": why}),
        })
        .collect();
    ctx.emit(json!({"image": image.to_string(), "digest": digest.to_string(), "attestations": list}), || {
        for (f, r) in &results {
            match r {
                Ok(a) => println!(
                    "ok: {} entry {} ({}) signed by {}",
                    a.kind,
                    a.index,
                    a.hash,
                    a.signers.iter().map(|s| &s[..8.min(s.len())]).collect::<Vec<_>>().join(",")
                ),
                Err(why) => eprintln!("rejected: artifact {} layer {}: {why}", f.artifact, f.layer),
            }
        }
    });
    if failed > 0 {
        let msg = format!("{failed} of {} attestation(s) of {image} failed verification", results.len());
        return Err(if ctx.json {
            CliError::reported(Code::Verification)
        } else {
            CliError::new(Code::Verification, msg)
        });
    }
    if results.is_empty() {
        return Err(CliError::denied(format!("the registry holds no provledger attestation for {image}")));
    }
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
            write_atomically(p, |w| std::io::Write::write_all(w, text.as_bytes()))?;
            if !ctx.json {
                println!("wrote {}", p.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn check_bundle(ctx: &Ctx, file: &Path, require_ci: bool) -> Result<()> {
    let text = input::read_text(file, "release metadata", input::MAX_RELEASE_METADATA_FILE)?;
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
        match &b.registry {
            Some(r) if b.registry_confirmed => {
                println!("            confirmed by registry {r} ({})", b.media_type.as_deref().unwrap_or("-"))
            }
            _ => println!("            digest not confirmed by a registry (recorded --offline)"),
        }
        for p in &b.platforms {
            println!("            platform {} {}", p.platform(), p.digest);
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
        if let Some(t) = &p.tag_target {
            println!("            tag {t} moved to the digest");
        }
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
        let text = input::read_text(f, "manifest", input::MAX_MANIFEST_FILE)?;
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

/// Promotes every artifact of a release, or none: the release gate
/// ([`Ledger::decide_release`]) chooses each artifact's digest and asks the
/// promotion gate; all promotions are appended in one atomic batch.
fn promote_release(
    ctx: &Ctx,
    key: &Path,
    release: &str,
    to: &str,
    dry_run: bool,
    offline: bool,
    resolve: &[String],
) -> Result<()> {
    let mut chosen = BTreeMap::new();
    for r in resolve {
        let (artifact, digest) = r
            .split_once('=')
            .ok_or_else(|| CliError::new(Code::Usage, format!("--resolve {r:?}: expected ARTIFACT=sha256:<digest>")))?;
        let digest =
            digest.parse::<Digest>().map_err(|e| CliError::new(Code::Usage, format!("--resolve {artifact}: {e}")))?;
        if chosen.insert(artifact.to_string(), digest).is_some() {
            return Err(CliError::new(Code::Usage, format!("--resolve {artifact} is given twice")));
        }
    }
    let key = ctx.secret(key)?;
    let ledger = if dry_run { ctx.open()? } else { ctx.open_writer()? };
    let mut reasons = Vec::new();
    let mut allowed = Vec::new();
    match ledger.decide_release(release, to, key.id(), &chosen)? {
        ReleaseDecision::Deny(rs) => reasons = rs,
        ReleaseDecision::Allow(artifacts) => {
            for a in artifacts {
                let image: ImageRef = a
                    .image
                    .parse()
                    .map_err(|e| CliError::operational(format!("entry {}: {e}", a.choice.build_index)))?;
                allowed.push((image.with_digest(a.choice.digest), a));
            }
        }
    }
    // Every artifact must still be in its registry (not asked on a dry run).
    let confirmed = reasons.is_empty() && !dry_run && !offline;
    if confirmed {
        let reg = ctx.registry()?;
        for (image, a) in &allowed {
            match confirm_exists(&reg, image) {
                Ok(_) => {}
                Err(e) if e.code == Code::Denied => {
                    reasons.push(format!("{} ({}): {}", a.choice.artifact, a.choice.digest, e.message))
                }
                Err(e) => return Err(e),
            }
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
    let artifacts: Vec<_> = allowed
        .iter()
        .map(|(_, a)| {
            json!({"artifact": a.choice.artifact, "digest": a.choice.digest.to_string(),
                   "supersedes": a.choice.supersedes.iter().map(Digest::to_string).collect::<Vec<_>>()})
        })
        .collect();
    let print_choices = || {
        for (image, a) in &allowed {
            let aside = if a.choice.supersedes.is_empty() {
                String::new()
            } else {
                let d: Vec<String> = a.choice.supersedes.iter().map(Digest::to_string).collect();
                format!(" (setting aside {})", d.join(", "))
            };
            println!("  {}: {image}{aside}", a.choice.artifact);
        }
    };
    if dry_run {
        ctx.emit(
            json!({"allowed": true, "dry_run": true, "release": release, "to": to, "artifacts": artifacts}),
            || {
                println!("promotion of release {release} to {to} allowed for {} artifact(s) (dry run):", allowed.len());
                print_choices();
            },
        );
        return Ok(());
    }
    let time = now();
    let mut envelopes = Vec::with_capacity(allowed.len());
    for (image, a) in &allowed {
        // Each promotion names the registry that confirmed its own artifact.
        let input = PromotionInput {
            registry: confirmed.then(|| image.registry().to_string()),
            tag_target: None,
            release: Some(ReleaseBinding {
                id: release.to_string(),
                artifact: a.choice.artifact.clone(),
                supersedes: a.choice.supersedes.clone(),
            }),
            time,
            binding: Some(ledger.binding()?),
        };
        let statement = record::promotion_statement(image, a.choice.digest, to, a.allowed.clone(), input);
        envelopes.push(sign(&statement, &[&key]));
    }
    let done = ctx.append_all(&ledger, envelopes)?;
    let entries: Vec<_> = done.iter().map(|v| entry_json(v, false)).collect();
    ctx.emit(
        json!({"allowed": true, "release": release, "to": to, "artifacts": artifacts, "entries": entries}),
        || {
            println!("promoted release {release} to {to}:");
            print_choices();
            for v in &done {
                println!("  entry {}: {}", v.index, subjects_json(&v.statement).join(" "));
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

fn entry_json(v: &Shown, with_envelope: bool) -> serde_json::Value {
    let mut j = json!({
        "index": v.index,
        "hash": v.hash.to_string(),
        "prev_hash": v.entry.prev_hash.to_string(),
        "integrated_time": v.entry.integrated_time,
        "kind": kind(&v.statement),
        "subjects": subjects_json(&v.statement),
        "signers": v.signers.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
        "dev_only": v.statement.predicate.is_dev_only(),
    });
    if with_envelope {
        j["envelope"] = v.entry.envelope.to_json_value();
    }
    j
}

/// Appends one statement (locally or through the server) and prints it.
fn append(ctx: &Ctx, ledger: &Ledger<SledStore>, envelope: Envelope) -> Result<Shown> {
    let v = ctx.append_all(ledger, vec![envelope])?.remove(0);
    ctx.emit(entry_json(&v, false), || {
        let dev = if v.statement.predicate.is_dev_only() { " [dev-only]" } else { "" };
        println!("recorded entry {} ({}){dev} {}", v.index, kind(&v.statement), subjects_json(&v.statement).join(" "));
        println!("entry hash {}", v.hash);
    });
    Ok(v)
}

fn verify(ctx: &Ctx, genesis: Option<&str>, mode: sigcheck::Mode) -> Result<()> {
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    let ledger = ctx.open()?;
    let total = ledger.store().head()?.map_or(0, |h| h.count);
    let bar = progress::bar(ctx.json, total, "verifying");
    let report = ledger.verify_with(genesis.as_ref(), mode, |_| bar.inc(1));
    bar.finish_and_clear();
    let report = report.map_err(CliError::from_verify)?;
    let cp = ledger.checkpoint()?;
    let g = report.genesis.map(|g| g.to_string()).unwrap_or_default();
    ctx.emit(
        json!({"ok": true, "entries": report.entries, "genesis": g, "head": report.head.to_string(),
               "checkpoint": checkpoint_json(&cp)}),
        || {
            println!("ok: {} entries verified; the Merkle tree and the signed checkpoint match", report.entries);
            println!("genesis {g}");
            println!("head    {}", report.head);
            println!(
                "root    {} (checkpoint {}, size {})",
                b64(&cp.checkpoint.root),
                cp.checkpoint.origin,
                cp.checkpoint.size
            );
        },
    );
    Ok(())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn checkpoint_json(cp: &provledger::ledger::SignedCheckpoint) -> serde_json::Value {
    json!({
        "origin": cp.checkpoint.origin,
        "size": cp.checkpoint.size,
        "root": b64(&cp.checkpoint.root),
        "verifier_key": cp.verifier.to_text(),
        "note": cp.note,
    })
}

fn parse_genesis(genesis: Option<&str>) -> Result<EntryHash> {
    let text = genesis.ok_or_else(|| CliError::new(Code::Usage, "--genesis HASH is required"))?;
    EntryHash::parse(text).map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))
}

/// A proof or checkpoint to verify: one beyond its limit fails verification (4).
fn read_input(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    input::read_or(path, what, limit, Code::Verification)
}

/// Writes `path` whole or not at all (see [`provledger::fsutil::write_replacing`]):
/// never through a link planted at it or beside it.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    provledger::fsutil::write_replacing(path, provledger::fsutil::OUTPUT, write)
        .map_err(|e| CliError::operational(format!("{}: {e}", path.display())))
}

fn export(ctx: &Ctx, out: &Path) -> Result<()> {
    let ledger = ctx.open()?;
    let cp = ledger.checkpoint()?;
    let count = cp.checkpoint.size;
    let bar = progress::bar(ctx.json, count, "exporting");
    // Hash as we copy: the file must match the checkpoint it carries.
    let mut frontier = provledger::tree::Frontier::default();
    let mut failure = None;
    write_atomically(out, |w| {
        bundle::write_header(w, &cp.note, count)?;
        for item in ledger.store().entries_from(0).take(count as usize) {
            let (index, bytes) = item.map_err(std::io::Error::other)?;
            if index != frontier.size() {
                failure = Some(format!("entry {} is missing from the store", frontier.size()));
                return Err(std::io::Error::other("store gap"));
            }
            let hash = provledger::core::entry::entry_hash(&bytes);
            frontier.push(provledger::ledger::leaf_of(&hash), |_, _, _| {});
            bundle::write_entry(w, &bytes)?;
            bar.inc(1);
        }
        if frontier.size() != count || frontier.root() != cp.checkpoint.root {
            failure = Some(format!("the stored entries do not match the checkpoint of size {count}"));
            return Err(std::io::Error::other("checkpoint mismatch"));
        }
        Ok(())
    })
    .map_err(|e| match failure.take() {
        Some(f) => CliError::new(Code::Verification, format!("export refused: {f}")).hint("run `provledger verify`"),
        None => e,
    })?;
    bar.finish_and_clear();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    ctx.emit(
        json!({"ok": true, "out": out, "entries": count, "bytes": bytes, "checkpoint": checkpoint_json(&cp)}),
        || {
            println!("wrote {} entries and the checkpoint of size {count} to {} ({bytes} bytes)", count, out.display());
        },
    );
    Ok(())
}

fn bundle_failure(e: bundle::BundleError) -> CliError {
    match e {
        bundle::BundleError::Verify(v) => error::verify_failure(v),
        bundle::BundleError::NewerVersion(_) | bundle::BundleError::Io(_) => CliError::operational(e.to_string()),
        other => CliError::new(Code::Verification, format!("verification failed: {other}")),
    }
}

fn verify_bundle(
    ctx: &Ctx,
    path: &Path,
    genesis: Option<&str>,
    since: Option<&Path>,
    mode: sigcheck::Mode,
) -> Result<()> {
    let genesis = parse_genesis(genesis)?;
    let since = since
        .map(|p| read_input(p, "checkpoint", provledger::core::note::MAX_NOTE_SIZE as u64))
        .transpose()?
        .map(|b| {
            String::from_utf8(b).map_err(|_| CliError::new(Code::Verification, "--since: the checkpoint is not UTF-8"))
        })
        .transpose()?;
    let file =
        std::fs::File::open(path).map_err(|e| CliError::operational(format!("bundle {}: {e}", path.display())))?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    // The count in the header sizes the bar; verification does not trust it.
    let total = bundle::BundleReader::open(std::io::BufReader::new(
        std::fs::File::open(path).map_err(|e| CliError::operational(format!("bundle {}: {e}", path.display())))?,
    ))
    .map(|r| r.count)
    .unwrap_or(0);
    let bar = progress::bar(ctx.json, total, "verifying");
    let report = bundle::verify_bundle_with(reader, &genesis, since.as_deref(), mode, |_| bar.inc(1));
    bar.finish_and_clear();
    let report = report.map_err(bundle_failure)?;
    let cp = &report.checkpoint;
    ctx.emit(
        json!({"ok": true, "entries": report.chain.entries, "genesis": genesis.to_string(),
               "head": report.chain.head.to_string(), "checkpoint": checkpoint_json(cp),
               "since": report.since.as_ref().map(checkpoint_json)}),
        || {
            println!("ok: bundle of {} entries verified offline against genesis {genesis}", report.chain.entries);
            println!(
                "checkpoint {} size {} root {} signed by {}",
                cp.checkpoint.origin,
                cp.checkpoint.size,
                b64(&cp.checkpoint.root),
                cp.verifier.to_text()
            );
            if let Some(s) = &report.since {
                println!(
                    "consistent with the earlier checkpoint of size {} (root {})",
                    s.checkpoint.size,
                    b64(&s.checkpoint.root)
                );
            }
        },
    );
    Ok(())
}

fn prove(ctx: &Ctx, text: &str, env: &str, out: &Path) -> Result<()> {
    let digest = parse_digest(text)?;
    let ledger = ctx.open()?;
    let proof = proof::prove(&ledger, &digest, env).map_err(|e| match e {
        proof::ProveError::NotPromoted { .. } => CliError::denied(e.to_string()),
        proof::ProveError::Ledger(l) => l.into(),
        other => CliError::operational(other.to_string()),
    })?;
    let text = proof.to_json();
    write_atomically(out, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    ctx.emit(
        json!({"ok": true, "out": out, "digest": digest.to_string(), "environment": env,
               "promotion": proof.promotion, "entries": proof.entries.len(), "bytes": text.len()}),
        || {
            println!(
                "wrote the proof that {digest} was promoted to {env} (entry {}; {} entries, {} bytes) to {}",
                proof.promotion,
                proof.entries.len(),
                text.len(),
                out.display()
            );
        },
    );
    Ok(())
}

fn verify_proof(ctx: &Ctx, path: &Path, genesis: Option<&str>) -> Result<()> {
    let genesis = parse_genesis(genesis)?;
    let bytes = read_input(path, "proof", proof::MAX_PROOF_SIZE as u64)?;
    let report = PromotionProof::parse(&bytes).and_then(|p| p.verify(&genesis)).map_err(|e| match e {
        proof::ProofError::Verify(v) => error::verify_failure(v),
        proof::ProofError::NewerVersion(_) => CliError::operational(e.to_string()),
        other => CliError::new(Code::Verification, format!("verification failed: {other}")),
    })?;
    let cp = &report.checkpoint;
    ctx.emit(
        json!({"ok": true, "digest": report.digest.to_string(), "environment": report.environment,
               "promotion": {"index": report.promotion.index, "hash": report.promotion.hash.to_string()},
               "from": report.from,
               "build": {"index": report.build.index, "hash": report.build.hash.to_string()},
               "validations": report.validations.iter().map(|r| json!({"index": r.index, "hash": r.hash.to_string()})).collect::<Vec<_>>(),
               "checkpoint": checkpoint_json(cp)}),
        || {
            println!(
                "ok: {} was legitimately promoted to {} (entry {})",
                report.digest, report.environment, report.promotion.index
            );
            println!(
                "  build entry {}, validation entries {:?}; included in checkpoint {} of size {}",
                report.build.index,
                report.validations.iter().map(|r| r.index).collect::<Vec<_>>(),
                cp.checkpoint.origin,
                cp.checkpoint.size
            );
        },
    );
    Ok(())
}

fn checkpoint(ctx: &Ctx, out: Option<&Path>) -> Result<()> {
    let ledger = ctx.open()?;
    let cp = ledger.checkpoint()?;
    if let Some(path) = out {
        write_atomically(path, |w| std::io::Write::write_all(w, cp.note.as_bytes()))?;
    }
    match (ctx.json, out) {
        (true, _) => println!("{}", checkpoint_json(&cp)),
        (false, None) => print!("{}", cp.note),
        (false, Some(path)) => println!("wrote the checkpoint of size {} to {}", cp.checkpoint.size, path.display()),
    }
    Ok(())
}

fn log(ctx: &Ctx) -> Result<()> {
    let ledger = ctx.open()?;
    let policy = ledger.policy()?.1;
    let mut rows = Vec::new();
    let result = ledger.verify(None, |v| rows.push(v.clone()));
    if ctx.json {
        println!("{}", serde_json::Value::Array(rows.iter().map(|v| entry_json(&Shown::from(v), true)).collect()));
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

fn serve(ctx: &Ctx, listen: &str, config: server::Config) -> Result<()> {
    let ledger = ctx.open_writer()?;
    let cp = ledger.checkpoint()?;
    let listener =
        std::net::TcpListener::bind(listen).map_err(|e| CliError::operational(format!("--listen {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| CliError::operational(format!("--listen {listen}: {e}")))?;
    let url = server::describe(addr);
    // The first line names the address, for scripts that asked for port 0.
    ctx.emit(json!({"listening": url, "ledger": ctx.ledger_dir, "size": cp.checkpoint.size}), || {
        println!("listening on {url}");
    });
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    if !ctx.json {
        eprintln!(
            "serving {} ({} entries); submissions are group-committed, at most {} per write",
            ctx.ledger_dir.display(),
            cp.checkpoint.size,
            config.max_batch
        );
    }
    server::run(ledger, listener, config).map_err(|e| CliError::operational(format!("server: {e}")))
}

/// A `sync` source: a server URL, an OCI repository, or a ledger directory.
fn sync_source(ctx: &Ctx, from: &str) -> Result<Box<dyn sync::Source>> {
    if from.starts_with("http://") || from.starts_with("https://") {
        let client = Client::new(from, Duration::from_secs(60))?;
        return Ok(Box::new(sync::ServerSource(client)));
    }
    if let Some(rest) = from.strip_prefix("oci://") {
        let image = parse_ref(rest)?;
        return Ok(Box::new(sync::OciSource::open(ctx.registry()?, image)?));
    }
    Ok(Box::new(sync::DirSource::open(Path::new(from), ctx.lock_wait)?))
}

fn sync_command(ctx: &Ctx, from: Option<&str>, to: Option<&str>, genesis: Option<&str>) -> Result<()> {
    let genesis =
        genesis.map(EntryHash::parse).transpose().map_err(|e| CliError::new(Code::Usage, format!("--genesis: {e}")))?;
    if let Some(to) = to {
        let Some(rest) = to.strip_prefix("oci://") else {
            return Err(CliError::new(Code::Usage, format!("--to {to}: expected oci://REGISTRY/REPO[:TAG]")));
        };
        let image = parse_ref(rest)?;
        let ledger = ctx.open()?;
        let dir = ctx.remote.as_ref().map_or(&ctx.ledger_dir, |r| &r.mirror);
        let report = sync::publish(&ledger, &ctx.registry()?, &image, &dir.join(EVIDENCE_DIR))?;
        ctx.emit(
            json!({"ok": true, "to": to, "manifest": report.manifest.to_string(), "entries": report.size,
                   "blobs": report.blobs, "pushed": report.pushed}),
            || {
                println!(
                    "published {} entries to {to} ({} blobs, {} pushed now); manifest {}",
                    report.size, report.blobs, report.pushed, report.manifest
                )
            },
        );
        return Ok(());
    }
    let (ledger, dir, report) = match (from, &ctx.remote) {
        (None, None) => {
            return Err(CliError::new(Code::Usage, "sync needs --from URL|DIR|oci://… or --to oci://… (or --server)"));
        }
        (None, Some(r)) => {
            let ledger = Ledger::new(open_or_create(&r.mirror, ctx.lock_wait, ctx.min_free)?);
            let report = ctx.pull_mirror(r, &ledger)?;
            (ledger, r.mirror.clone(), report)
        }
        (Some(from), _) => {
            let mut source = sync_source(ctx, from)?;
            let created = !ctx.ledger_dir.join(provledger::store::DB_DIR).is_dir();
            let ledger = Ledger::new(open_or_create(&ctx.ledger_dir, ctx.lock_wait, ctx.min_free)?);
            let report = sync::pull(&ledger, source.as_mut(), genesis.as_ref(), &ctx.ledger_dir.join(EVIDENCE_DIR));
            match report {
                Ok(r) => (ledger, ctx.ledger_dir.clone(), r),
                Err(e) => {
                    // A mirror created for this sync and left empty goes too.
                    if created {
                        drop(ledger);
                        let _ = std::fs::remove_dir_all(ctx.ledger_dir.join(provledger::store::DB_DIR));
                    }
                    return Err(e.into());
                }
            }
        }
    };
    drop(ledger);
    let cp = &report.checkpoint;
    ctx.emit(
        json!({"ok": true, "source": report.source, "mirror": dir, "from": report.from, "to": report.to,
               "fetched": report.to - report.from, "source_behind": report.source_behind,
               "checkpoint": checkpoint_json(cp)}),
        || {
            if report.source_behind {
                println!(
                    "{} is behind (size {} < ours {}), and a prefix of ours: nothing to fetch",
                    report.source, cp.checkpoint.size, report.to
                );
            } else if report.to == report.from {
                println!("up to date with {} at size {}", report.source, report.to);
            } else {
                println!(
                    "synced {} new entries from {} (size {} -> {}), verified; root {}",
                    report.to - report.from,
                    report.source,
                    report.from,
                    report.to,
                    b64(&cp.checkpoint.root)
                );
            }
        },
    );
    Ok(())
}

fn policy_name(policy: &provledger::policy::Policy, id: &provledger::core::keys::KeyId) -> Option<String> {
    policy.key(id).map(|k| format!("{} {}", k.name, id.short()))
}
