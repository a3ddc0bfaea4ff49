//! The ledger server's HTTP API, version 1: paths, limits and the JSON
//! bodies that the server ([`crate::server`]) writes and the client
//! ([`crate::remote`]) reads. `ledger-format/SPEC.md` §13 describes it.
//!
//! Nothing the server says is trusted for itself: checkpoints are signed
//! notes, entries are verified as a chain, and proofs are checked against a
//! signed checkpoint.

use serde::{Deserialize, Serialize};

/// Prefix of every path.
pub const PREFIX: &str = "/v1";
/// Largest request body: one DSSE envelope (payload limit, base64, signatures).
pub const MAX_BODY: usize = 2 << 20;
/// Most statements in one all-or-none batch.
pub const MAX_BATCH: usize = 256;
/// Most entries one range request returns.
pub const MAX_RANGE: u64 = 1024;
/// Media type of a range of entries: bundle frames ([`crate::bundle::encode_frames`]).
pub const ENTRIES_MEDIA_TYPE: &str = "application/vnd.provledger.entries.v1";

/// The answer to an accepted submission: where the entry is, and the proof
/// that the signed checkpoint includes it. Sent only once the entry is on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ack {
    pub index: u64,
    /// Entry hash, lowercase hex.
    pub hash: String,
    /// The entry's canonical bytes, base64.
    pub entry: String,
    /// The signed checkpoint note that includes the entry.
    pub checkpoint: String,
    /// RFC 9162 inclusion proof of the entry in that checkpoint, base64 hashes.
    pub inclusion: Vec<String>,
}

/// Why a request was refused. `index` names the entry (or, for a replayed
/// statement, the entry that already holds it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Refusal {
    /// `malformed`, `unauthorized`, `invalid`, `duplicate`, `busy`, `not_found`, `internal`.
    pub error: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

/// A list of hashes: an inclusion or consistency proof, base64.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proof {
    pub hashes: Vec<String>,
}

/// The ledger a server serves.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Info {
    pub api: u32,
    /// Genesis entry hash, lowercase hex.
    pub genesis: String,
    /// C2SP verifier key of the log key in force.
    pub log_verifier_key: String,
    pub size: u64,
}

/// An entry naming a digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubjectEntry {
    pub index: u64,
    pub hash: String,
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subjects {
    pub digest: String,
    pub entries: Vec<SubjectEntry>,
}

/// A promotion decision asked for (a dry run: nothing is appended).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// `sha256:<hex>`.
    pub digest: String,
    pub to: String,
    /// Key id of the key that would sign the promotion.
    pub promoter: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryRefJson {
    pub index: u64,
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionReply {
    pub allowed: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<EntryRefJson>,
    #[serde(default)]
    pub validations: Vec<EntryRefJson>,
}
