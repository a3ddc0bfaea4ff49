//! Arguments: every command, flag and environment variable the CLI takes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use provledger::net::server;

#[derive(Parser)]
#[command(
    name = "provledger",
    version,
    about = "Append-only, signed, hash-chained provenance ledger for container releases"
)]
pub struct Cli {
    /// Ledger directory [default: $PROVLEDGER_DIR, else ./.provledger]
    #[arg(long, global = true, env = "PROVLEDGER_DIR")]
    pub(super) ledger: Option<PathBuf>,
    /// Print data, and errors, as JSON
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// Accept secret key files that group or others can read
    #[arg(long, global = true)]
    pub(super) insecure_key_permissions: bool,
    /// Seconds to wait for another process holding the ledger
    #[arg(long, global = true, default_value_t = 10)]
    pub(super) lock_timeout: u64,
    /// Where the chain is kept: `log` (the default: append-only segment files in the ledger
    /// directory, with the indexes following them) or a PostgreSQL database,
    /// `postgres://USER@HOST[:PORT][,HOST2...]/DB[?target_session_attrs=read-write]` (the
    /// ledger directory then keeps the log key and mirror evidence only; a password is best
    /// given in $PGPASSWORD or ~/.pgpass, not in the string). `sled` (store version 2) is no
    /// longer made
    #[arg(long, global = true, env = "PROVLEDGER_STORE", value_name = "log|URL", value_parser = parse_store, hide_env_values = true)]
    pub(super) store: Option<StoreArg>,
    /// Accepted and ignored: the segment log needs no free-space margin (a write cut short by a
    /// full disk is refused and leaves the chain as it was). Kept for scripts written for store
    /// version 2, whose sled files did not survive a full disk
    #[arg(long, global = true, default_value_t = 64, value_name = "MIB", hide_default_value = true)]
    pub(super) min_free_space: u64,
    /// Registry to reach over plain HTTP instead of HTTPS (HOST:PORT; repeatable; also
    /// $PROVLEDGER_INSECURE_REGISTRIES, comma-separated)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST:PORT")]
    pub(super) insecure_registries: Vec<String>,
    /// Seconds to wait for a registry to connect, and for each read
    #[arg(long, global = true, default_value_t = 30)]
    pub(super) registry_timeout: u64,
    /// Use the ledger served at URL (`provledger serve`) in place of a local one: statements are
    /// signed here and submitted; reads run on a verified local mirror of it
    #[arg(long, global = true, env = "PROVLEDGER_SERVER", value_name = "URL")]
    pub(super) server: Option<String>,
    /// With --server: the local mirror's directory [default: ~/.cache/provledger/mirrors/<url hash>]
    #[arg(long, global = true, env = "PROVLEDGER_MIRROR", value_name = "DIR")]
    pub(super) mirror: Option<PathBuf>,
    /// With --server: the genesis hash to trust when the mirror is first filled [default: the
    /// server's, trusted on first use, with a warning]
    #[arg(long, global = true, env = "PROVLEDGER_SERVER_GENESIS", value_name = "HASH")]
    pub(super) server_genesis: Option<String>,
    /// With --server: seconds to wait for each request to the server
    #[arg(long, global = true, default_value_t = 60)]
    pub(super) server_timeout: u64,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
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
    /// Convert a store version 2 ledger (sled) to store version 3 (the chain in segment files,
    /// the indexes following it): the same entries, head and signed checkpoint, verified before
    /// and after; the old files are kept as store.v2/
    Migrate,
    /// Rebuild the ledger's indexes from its chain (a `--store log` ledger; the indexes follow the
    /// log and can always be made again from it)
    Reindex,
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
    /// Verify the ledger (or a bundle), then write the audit view as a static site in DIR: an
    /// overview, a page per digest, release and environment, the policy history, each with its
    /// JSON form; exit 4 if verification fails (the report then says so on every page)
    Report {
        /// The directory to write (a report already there is replaced; any other non-empty
        /// directory is refused)
        #[arg(long)]
        out: PathBuf,
        /// Report on an exported bundle, offline, instead of the ledger (needs --genesis)
        #[arg(long, requires = "genesis")]
        bundle: Option<PathBuf>,
        /// Expected genesis hash (lowercase hex)
        #[arg(long)]
        genesis: Option<String>,
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
    /// Write a SLSA Verification Summary Attestation (a DSSE envelope of an in-toto Statement)
    /// that DIGEST was promoted into ENV; exit 3 if it never was
    Vsa {
        /// sha256:<hex>, or a reference carrying it
        digest: String,
        #[arg(long)]
        env: String,
        /// The secret key that signs the attestation (the key admission policies trust)
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The genesis hash the promotion must verify from [default: the ledger's own]
        #[arg(long)]
        genesis: Option<String>,
    },
    /// Push the DSSE envelopes of every entry about a digest to the registry, as an OCI artifact
    /// that refers to the image
    Attach {
        /// REPO@sha256:<hex>, or sha256:<hex> alone (the repository of its build entry)
        digest: String,
        /// Also attach this verification summary (written by `vsa` for the same digest), as an
        /// in-toto attestation artifact of its own
        #[arg(long, value_name = "FILE")]
        vsa: Option<PathBuf>,
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
    /// Check that every image in Compose / Kubernetes YAML is digest-pinned (and, with --env,
    /// promoted into ENV by the ledger); exit 3 naming file:line
    CheckRefs {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Report unpinned images as warnings (local development only; also ALLOW_TAG=1 / DEV_MODE=1;
        /// never with --env)
        #[arg(long)]
        allow_tag: bool,
        /// Every digest must also have been promoted into ENV (the ledger of --ledger, --store or
        /// --server decides)
        #[arg(long, value_name = "ENV")]
        env: Option<String>,
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
    /// Serve a Kubernetes validating admission webhook (HTTPS, POST /validate): a workload is
    /// admitted only if every image it names is digest-pinned and promoted into ENV
    Admit {
        /// The environment every image must have been promoted into
        #[arg(long)]
        env: String,
        /// Address to listen on; port 0 picks a free one (the first line printed names it)
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
        /// The server's certificate chain (PEM), as the API server's caBundle trusts it
        #[arg(long)]
        tls_cert: PathBuf,
        /// The certificate's private key (PEM)
        #[arg(long)]
        tls_key: PathBuf,
        /// A namespace whose workloads are admitted without a check (repeatable)
        #[arg(long = "exempt-namespace", value_name = "NAMESPACE")]
        exempt_namespaces: Vec<String>,
        /// Admit everything, and say in the review's warnings what would have been denied
        #[arg(long)]
        warn_only: bool,
        /// Seconds between bringing the verified copy of the ledger up to date
        #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        refresh: u64,
        /// The genesis hash to trust [default: --server-genesis, else the local ledger's own]
        #[arg(long)]
        genesis: Option<String>,
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
pub(super) enum KeyCommand {
    /// Write a new ed25519 secret key to PATH (mode 0600) and its public key to PATH.pub
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the key id of a public (or secret) key file
    Id { file: PathBuf },
}

#[derive(Args)]
pub(super) struct Common {
    /// Secret key to sign with
    #[arg(long, required = true)]
    pub(super) key: PathBuf,
    /// Do not contact the registry; the statement records that the digest was not registry-confirmed
    #[arg(long)]
    pub(super) offline: bool,
    /// Accept a tag-only reference (development only; the record is marked dev-only)
    #[arg(long)]
    pub(super) allow_tag: bool,
}

#[derive(Args)]
pub(super) struct CiFlags {
    /// CI run URL [default: from the CI environment]
    #[arg(long)]
    pub(super) ci_run_url: Option<String>,
    #[arg(long)]
    pub(super) ci_run_id: Option<String>,
    #[arg(long)]
    pub(super) ci_workflow: Option<String>,
    /// Source repository URL
    #[arg(long)]
    pub(super) ci_repository: Option<String>,
}

#[derive(Subcommand)]
pub(super) enum RecordCommand {
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

/// `--store`: where the chain is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum StoreArg {
    /// In the ledger directory (the segment log): `log`.
    Log,
    /// Store version 2, no longer made: `sled`.
    Sled,
    /// A PostgreSQL database: `postgres://...` or `postgresql://...`.
    Postgres(String),
}

pub(super) fn parse_store(text: &str) -> Result<StoreArg, String> {
    match text {
        "log" => Ok(StoreArg::Log),
        "sled" => Ok(StoreArg::Sled),
        url if provledger::store::postgres::is_url(url) => Ok(StoreArg::Postgres(url.to_string())),
        other => Err(format!("{other:?}: expected `log` or a postgres://... connection string")),
    }
}
