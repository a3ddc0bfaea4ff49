//! What commands print: one serde type per report, with its human printer
//! beside it.
//!
//! With `--json` a command prints its report as one line of JSON on
//! standard output; without, [`Report::human`] prints it for people. The
//! JSON Schema of every command's reports is generated from these types and
//! kept in `ledger-format/schemas/cli/<command>.schema.json`; a unit test
//! below fails when the files and the types disagree (run it with
//! `PROVLEDGER_BLESS_SCHEMAS=1` to rewrite them), and the snapshot tests
//! (`tests/snapshots.rs`) check every output they see against the files.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Serialize;

use provledger::audit::{Attested, DigestReport, HistoryReport, Signer};
use provledger::checkpoint::SignedCheckpoint;
use provledger::core::entry::UnverifiedEntry;
use provledger::core::keys::KeyId;
use provledger::core::statement::EntryRef;
use provledger::core::statement::{Predicate, Statement};
use provledger::manifests::Unpinned;

mod attestations;
mod network;
mod offline;
mod promotion;
mod queries;
mod setup;

pub use attestations::*;
pub use network::*;
pub use offline::*;
pub use promotion::*;
pub use queries::*;
pub use setup::*;

/// A command's output.
pub trait Report: Serialize {
    /// Prints the report for people (standard output, and standard error
    /// for warnings and denials).
    fn human(&self);
}

/// An entry hash in a report.
const HASH: &str = "^[0-9a-f]{64}$";
/// An image digest in a report.
const DIGEST: &str = "^sha256:[0-9a-f]{64}$";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    provledger::core::b64::encode(bytes)
}

/// An entry named by its index and hash.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EntryId {
    pub index: u64,
    /// The entry hash, 64 lowercase hex digits.
    #[schemars(pattern(HASH))]
    pub hash: String,
}

impl From<&EntryRef> for EntryId {
    fn from(r: &EntryRef) -> EntryId {
        EntryId { index: r.index, hash: r.hash.to_string() }
    }
}

/// A signed checkpoint: the size and Merkle root of the log, signed by the log key.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CheckpointReport {
    pub origin: String,
    pub size: u64,
    /// The Merkle root, standard base64.
    pub root: String,
    /// The log key's verifier key (`origin+keyid+base64`).
    pub verifier_key: String,
    /// The signed note, as `provledger checkpoint` writes it.
    pub note: String,
}

impl From<&SignedCheckpoint> for CheckpointReport {
    fn from(cp: &SignedCheckpoint) -> CheckpointReport {
        CheckpointReport {
            origin: cp.checkpoint.origin.clone(),
            size: cp.checkpoint.size,
            root: b64(cp.checkpoint.root),
            verifier_key: cp.verifier.to_text(),
            note: cp.note.clone(),
        }
    }
}

/// What an entry's statement records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Build,
    Validation,
    Promotion,
    Policy,
}

impl Kind {
    pub fn of(statement: &Statement) -> Kind {
        match statement.predicate {
            Predicate::Build(_) => Kind::Build,
            Predicate::Validation(_) => Kind::Validation,
            Predicate::Promotion(_) => Kind::Promotion,
            Predicate::Policy(_) => Kind::Policy,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Build => "build",
            Kind::Validation => "validation",
            Kind::Promotion => "promotion",
            Kind::Policy => "policy",
        }
    }
}

/// A DSSE envelope, as the ledger stores it.
#[derive(JsonSchema)]
#[allow(dead_code, non_snake_case)]
struct EnvelopeSchema {
    payloadType: String,
    /// The statement, standard base64.
    payload: String,
    signatures: Vec<SignatureSchema>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct SignatureSchema {
    keyid: String,
    /// The Ed25519 signature, standard base64.
    sig: String,
}

/// One entry of the ledger: appended by `record` and `promote`, listed by `log`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EntryReport {
    pub index: u64,
    #[schemars(pattern(HASH))]
    pub hash: String,
    #[schemars(pattern(HASH))]
    pub prev_hash: String,
    /// Seconds since the Unix epoch, when the entry was appended.
    pub integrated_time: u64,
    pub kind: Kind,
    /// Each subject's digest, or `NAME (tag-only)` for a dev-only record.
    pub subjects: Vec<String>,
    /// Key ids of the signatures that verified.
    pub signers: Vec<String>,
    pub dev_only: bool,
    /// The signed envelope (`log` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<EnvelopeSchema>")]
    pub envelope: Option<serde_json::Value>,
    /// The subject digests, for the command that appended it.
    #[serde(skip)]
    pub digests: Vec<provledger::core::digest::Digest>,
}

impl EntryReport {
    pub fn new(index: u64, entry: &UnverifiedEntry, statement: &Statement, signers: &[KeyId]) -> EntryReport {
        EntryReport {
            index,
            hash: entry.hash().to_string(),
            prev_hash: entry.prev_hash.to_string(),
            integrated_time: entry.integrated_time,
            kind: Kind::of(statement),
            subjects: subjects(statement),
            signers: signers.iter().map(KeyId::to_string).collect(),
            dev_only: statement.predicate.is_dev_only(),
            envelope: None,
            digests: statement.subject_digests(),
        }
    }

    pub fn of(v: &provledger::verify::VerifiedEntry) -> EntryReport {
        EntryReport::new(v.index(), v.entry(), v.statement(), v.signers())
    }

    pub fn with_envelope(mut self, entry: &UnverifiedEntry) -> EntryReport {
        self.envelope = Some(entry.envelope.to_json_value());
        self
    }
}

/// Each subject's digest, or `NAME (tag-only)`.
fn subjects(statement: &Statement) -> Vec<String> {
    statement
        .subjects
        .iter()
        .map(|s| match s.sha256() {
            Ok(Some(d)) => d.to_string(),
            _ => format!("{} (tag-only)", s.name),
        })
        .collect()
}

impl Report for EntryReport {
    fn human(&self) {
        let dev = if self.dev_only { " [dev-only]" } else { "" };
        println!("recorded entry {} ({}){dev} {}", self.index, self.kind.as_str(), self.subjects.join(" "));
        println!("entry hash {}", self.hash);
    }
}

/// A failed command (`ok` false, exit code 1 to 4).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorReport<'a> {
    /// Always false.
    #[schemars(extend("const" = false))]
    pub ok: bool,
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorDetail<'a> {
    /// The exit code.
    pub code: u8,
    pub kind: &'a str,
    pub message: &'a str,
    /// The entry involved, when there is one.
    pub index: Option<u64>,
    /// The chain rule broken, as its stable code (SPEC section 6.2).
    pub rule: Option<&'a str>,
    /// What to do next, for people.
    pub hint: Option<&'a str>,
}

// The schemas

/// The file name (without `.schema.json`) and JSON Schema of each command's
/// reports; `release-metadata` prints the document of
/// `ledger-format/schemas/release-metadata.schema.json` and is not here.
#[cfg(test)]
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    fn schema<T: JsonSchema>() -> schemars::Schema {
        schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator().into_root_schema_for::<T>()
    }
    vec![
        ("error", schema::<ErrorReport<'static>>()),
        ("key-generate", schema::<KeyGenerated>()),
        ("key-id", schema::<KeyIdReport>()),
        ("init", schema::<Initialised>()),
        ("record-build", schema::<EntryReport>()),
        ("record-validation", schema::<EntryReport>()),
        ("record-policy", schema::<EntryReport>()),
        ("promote", schema::<PromoteReports>()),
        ("reconcile-tags", schema::<TagsReconciled>()),
        ("verify", schema::<VerifyReports>()),
        ("export", schema::<Exported>()),
        ("report", schema::<ReportWritten>()),
        ("reindex", schema::<Reindexed>()),
        ("migrate", schema::<Migrated>()),
        ("prove", schema::<Proven>()),
        ("vsa", schema::<VsaWritten>()),
        ("checkpoint", schema::<CheckpointShown>()),
        ("attach", schema::<Attached>()),
        ("fetch-attestations", schema::<AttestationsFetched>()),
        ("log", schema::<LogReport>()),
        ("show", schema::<Shown>()),
        ("history", schema::<History>()),
        ("check-bundle", schema::<BundleChecked>()),
        ("check-refs", schema::<RefsChecked>()),
        ("serve", schema::<Listening>()),
        ("admit", schema::<Listening>()),
        ("sync", schema::<SyncReports>()),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::CommandFactory as _;

    use super::*;

    fn schema_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ledger-format/schemas/cli")
    }

    /// The schema files are what the report types generate.
    #[test]
    fn the_committed_cli_schemas_are_generated_from_the_report_types() {
        let bless = std::env::var_os("PROVLEDGER_BLESS_SCHEMAS").is_some();
        let dir = schema_dir();
        let mut stale = Vec::new();
        for (name, schema) in schemas() {
            let path = dir.join(format!("{name}.schema.json"));
            let mut text = serde_json::to_string_pretty(&schema).unwrap();
            text.push('\n');
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        assert!(stale.is_empty(), "stale or missing (rerun with PROVLEDGER_BLESS_SCHEMAS=1): {stale:?}");
        // No file in the folder is left over from a report that is gone.
        let names: Vec<String> = schemas().iter().map(|(n, _)| format!("{n}.schema.json")).collect();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().file_name().into_string().unwrap();
            assert!(names.contains(&f), "{f} is no command's schema");
        }
    }

    /// Every command (a subcommand's leaves: `key generate` is `key-generate`)
    /// has its schema.
    #[test]
    fn every_command_has_a_schema() {
        fn leaves(prefix: &str, cmd: &clap::Command, out: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let name =
                    if prefix.is_empty() { sub.get_name().to_string() } else { format!("{prefix}-{}", sub.get_name()) };
                if sub.has_subcommands() {
                    leaves(&name, sub, out);
                } else {
                    out.push(name);
                }
            }
        }
        let mut commands = Vec::new();
        leaves("", &super::super::args::Cli::command(), &mut commands);
        let have: Vec<&str> = schemas().iter().map(|(n, _)| *n).collect();
        for c in &commands {
            assert!(have.contains(&c.as_str()) || c == "release-metadata", "no schema for `{c}`");
        }
        assert!(commands.len() >= 20, "{commands:?}");
    }
}
