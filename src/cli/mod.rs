//! The command-line interface: the only place that prints or sets exit codes.
//!
//! Arguments are defined in `args.rs`; each command group has its file
//! (`setup`, `records`, `promotion`, `attestations`, `queries`, `offline`,
//! `network`); this file holds what they share: the context a command runs
//! in (the ledger, local or served), appending and printing entries, and the
//! dispatch from arguments to commands.

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

mod args;
mod attestations;
mod ci_env;
mod error;
mod input;
mod network;
mod offline;
mod output;
mod progress;
mod promotion;
mod queries;
mod records;
mod report;
mod setup;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;

use provledger::audit;
use provledger::bundle;
use provledger::core::digest::Digest;
use provledger::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use provledger::core::hash::EntryHash;
use provledger::core::image_ref::ImageRef;
use provledger::core::keys::SecretKey;
use provledger::core::note::NoteVerifier;
use provledger::core::statement::PolicyLog;
use provledger::core::statement::{Check, CheckResult, CiRun, ReleaseBinding, Statement, check_git_sha, check_name};
use provledger::gate::{self, Decision};
use provledger::keyfile;
use provledger::ledger::dir::LedgerDir;
use provledger::ledger::{Ledger, ReleaseDecision};
use provledger::manifests;
use provledger::policy::{default_origin, parse_policy_toml};
use provledger::proof::{self, PromotionProof};
use provledger::record::{self, BuildInput, PromotionInput, ValidationInput};
use provledger::registry::{self, Registry, Target};
use provledger::remote::Client;
use provledger::server;
use provledger::sigcheck;
use provledger::store::any::LedgerStore;
use provledger::sync;

use args::*;
use attestations::*;
use ci_env::CiEnv;
pub use error::{CliError, Code};
use network::*;
use offline::*;
use promotion::*;
use queries::*;
use records::*;
use report::*;
use setup::*;

type Result<T> = std::result::Result<T, CliError>;

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
    /// `--store postgres://...`: the database holding the chain.
    database: Option<String>,
    json: bool,
    insecure_keys: bool,
    lock_wait: Duration,
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

    /// The local ledger's directory.
    fn dir(&self) -> LedgerDir {
        LedgerDir::new(&self.ledger_dir, self.lock_wait)
            .on_migrate(announce_migration)
            .with_database(self.database.clone())
    }

    /// The directory of a server's mirror.
    fn mirror_dir(&self, r: &RemoteCtx) -> LedgerDir {
        LedgerDir::new(&r.mirror, self.lock_wait).on_migrate(announce_migration)
    }

    /// Opens the ledger to read: the local one, or with --server the mirror,
    /// brought up to the server's latest checkpoint first.
    fn open(&self) -> Result<Ledger<LedgerStore>> {
        match &self.remote {
            None => Ok(self.dir().open()?),
            Some(r) => {
                let ledger = self.mirror_dir(r).open_or_create()?;
                self.pull_mirror(r, &ledger)?;
                Ok(ledger)
            }
        }
    }

    /// Opens the ledger to append: with the log key that signs each new
    /// checkpoint (with --server, the server signs; the mirror is opened).
    fn open_writer(&self) -> Result<Ledger<LedgerStore>> {
        match &self.remote {
            Some(_) => self.open(),
            None => Ok(self.dir().open_writer(self.insecure_keys)?),
        }
    }

    /// Brings the mirror up to the server's latest checkpoint, verified.
    fn pull_mirror(&self, r: &RemoteCtx, ledger: &Ledger<LedgerStore>) -> Result<sync::SyncReport> {
        let evidence = self.mirror_dir(r).evidence_dir();
        Ok(sync::pull_server(ledger, &r.client, r.genesis.as_ref(), &evidence, |g| {
            eprintln!("warning: trusting genesis {g} of {} on first use; pin it with --server-genesis", r.client.url())
        })?)
    }

    /// Appends statements: locally, or with --server by submitting them
    /// (several all or none), verifying each acknowledgement, and pulling
    /// the mirror so that the entries shown are the ones it verified.
    fn append_all(&self, ledger: &Ledger<LedgerStore>, envelopes: Vec<Envelope>) -> Result<Vec<EntryReport>> {
        let Some(r) = &self.remote else {
            let done = ledger.append_batch(envelopes, now()).map_err(CliError::from_append)?;
            return Ok(done.iter().map(EntryReport::of).collect());
        };
        let log = ledger.policy()?.1.log().clone();
        let appended = match envelopes.as_slice() {
            [one] => vec![r.client.append(one, &log)?],
            many => r.client.append_batch(many, &log)?,
        };
        self.pull_mirror(r, ledger)?;
        let confirmed =
            sync::confirm_acknowledged(ledger, r.client.url(), &appended, &self.mirror_dir(r).evidence_dir())?;
        Ok(confirmed.iter().map(|c| EntryReport::new(c.entry.index, &c.entry, &c.statement, &c.signers())).collect())
    }

    fn log_key(&self) -> Result<SecretKey> {
        Ok(self.dir().log_key(self.insecure_keys)?)
    }

    fn secret(&self, path: &Path) -> Result<SecretKey> {
        Ok(keyfile::read_secret(path, self.insecure_keys)?)
    }

    /// Prints a report: one line of JSON with `--json`, else for people.
    fn emit(&self, report: &impl Report) {
        if self.json {
            println!("{}", serde_json::to_string(report).expect("a report serialises"));
        } else {
            report.human();
        }
    }
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

/// Says on stderr that a store version 2 ledger was converted as it was opened.
fn announce_migration(m: &provledger::ledger::dir::Migrated) {
    eprintln!(
        "provledger: converted the ledger to store version 3 (the segment log): {} entries, head {}, the same \
         signed checkpoint; the store version 2 files are kept in {} until you remove them",
        m.entries,
        m.head,
        m.kept.display()
    );
}

fn run(cli: Cli) -> Result<()> {
    // Accepted for old scripts; the segment log needs no margin (see its help).
    let _ = cli.min_free_space;
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
    let database = match cli.store {
        Some(StoreArg::Sled) if matches!(cli.command, Command::Init { .. }) => {
            return Err(CliError::new(
                Code::Usage,
                "--store sled: store version 2 is no longer made; new ledgers use the segment log (--store log)",
            ));
        }
        Some(StoreArg::Postgres(url)) => Some(url),
        _ => None,
    };
    let ctx = Ctx {
        database,
        ledger_dir: cli.ledger.unwrap_or_else(|| PathBuf::from(".provledger")),
        json: cli.json,
        insecure_keys: cli.insecure_key_permissions,
        lock_wait: Duration::from_secs(cli.lock_timeout),
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
        Command::Reindex => reindex(&ctx),
        Command::Migrate => migrate(&ctx),
        Command::Verify { genesis, bundle, since, proof, strict_signatures } => {
            let mode = if strict_signatures { sigcheck::Mode::Strict } else { sigcheck::Mode::Batch };
            match (bundle, proof) {
                (Some(b), _) => verify_bundle(&ctx, &b, genesis.as_deref(), since.as_deref(), mode),
                (None, Some(p)) => verify_proof(&ctx, &p, genesis.as_deref()),
                (None, None) => verify(&ctx, genesis.as_deref(), mode),
            }
        }
        Command::Export { out } => export(&ctx, &out),
        Command::Report { out, bundle, genesis } => offline::report(&ctx, &out, bundle.as_deref(), genesis.as_deref()),
        Command::Prove { digest, env, out } => prove(&ctx, &digest, &env, &out),
        Command::Checkpoint { out } => checkpoint(&ctx, out.as_deref()),
        Command::Attach { digest, vsa } => attach(&ctx, &digest, vsa.as_deref()),
        Command::Vsa { digest, env, key, out, genesis } => {
            attestations::vsa(&ctx, &digest, &env, &key, &out, genesis.as_deref())
        }
        Command::FetchAttestations { reference } => fetch_attestations(&ctx, &reference),
        Command::Log => log(&ctx),
        Command::Show { digest } => show(&ctx, &digest),
        Command::History { env } => history(&ctx, &env),
        Command::ReleaseMetadata { digest, out } => release_metadata(&ctx, &digest, out.as_deref()),
        Command::CheckBundle { file, require_ci_evidence } => check_bundle(&ctx, &file, require_ci_evidence),
        Command::CheckRefs { files, allow_tag, env } => check_refs(&ctx, &files, allow_tag, env.as_deref()),
        Command::Admit { env, listen, tls_cert, tls_key, exempt_namespaces, warn_only, refresh, genesis } => {
            network::admit(
                &ctx,
                network::AdmitArgs {
                    env,
                    listen,
                    tls_cert,
                    tls_key,
                    exempt_namespaces,
                    warn_only,
                    refresh: Duration::from_secs(refresh),
                    genesis,
                    mirror: cli.mirror.clone(),
                },
            )
        }
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

fn sign(statement: &Statement, keys: &[&SecretKey]) -> Envelope {
    Envelope::sign(PAYLOAD_TYPE_IN_TOTO, statement.to_payload(), keys)
}

fn parse_ref(text: &str) -> Result<ImageRef> {
    text.parse().map_err(|e| CliError::operational(format!("{e}")))
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

/// Appends one statement (locally or through the server) and prints it.
fn append(ctx: &Ctx, ledger: &Ledger<LedgerStore>, envelope: Envelope) -> Result<EntryReport> {
    let v = ctx.append_all(ledger, vec![envelope])?.remove(0);
    ctx.emit(&v);
    Ok(v)
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
