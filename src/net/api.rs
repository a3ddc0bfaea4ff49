//! The ledger server's HTTP API, version 1: paths, limits and the JSON
//! bodies that the server ([`crate::server`]) writes and the client
//! ([`crate::remote`]) reads. `ledger-format/SPEC.md` §13 describes it.
//!
//! Nothing the server says is trusted for itself: checkpoints are signed
//! notes, entries are verified as a chain, and proofs are checked against a
//! signed checkpoint.

use serde::{Deserialize, Serialize};

use crate::core::b64;
use crate::core::hash::EntryHash;
use crate::core::statement::EntryRef;

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
    /// The entry's canonical bytes (strict base64 on the wire).
    #[serde(with = "b64::strict")]
    pub entry: Vec<u8>,
    /// The signed checkpoint note that includes the entry.
    pub checkpoint: String,
    /// RFC 9162 inclusion proof of the entry in that checkpoint (hashes in
    /// strict base64 on the wire).
    #[serde(with = "b64::strict_list")]
    pub inclusion: Vec<Vec<u8>>,
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

/// A list of hashes: an inclusion or consistency proof (strict base64 on
/// the wire).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proof {
    #[serde(with = "b64::strict_list")]
    pub hashes: Vec<Vec<u8>>,
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

/// One row of the subject listing (wire type): an entry naming the digest,
/// and its kind (`build`, `validation`, `promotion`, `policy`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubjectEntry {
    pub index: u64,
    pub hash: EntryHash,
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
pub struct DecisionReply {
    pub allowed: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<EntryRef>,
    #[serde(default)]
    pub validations: Vec<EntryRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_written_in_standard_base64_and_read_strictly() {
        let ack = Ack {
            index: 1,
            hash: "ab".into(),
            entry: vec![0xfb, 0xff],
            checkpoint: "note".into(),
            inclusion: vec![vec![0xfb; 32]],
        };
        let text = serde_json::to_string(&ack).unwrap();
        let hash = b64::encode([0xfb; 32]);
        assert_eq!(
            text,
            format!(r#"{{"index":1,"hash":"ab","entry":"+/8=","checkpoint":"note","inclusion":["{hash}"]}}"#)
        );
        assert_eq!(serde_json::from_str::<Ack>(&text).unwrap().entry, ack.entry);
        for other in [text.replace("+/8=", "-_8="), text.replace("+/8=", "+/8"), text.replace(&hash, "AQ")] {
            let e = serde_json::from_str::<Ack>(&other).unwrap_err().to_string();
            assert!(e.contains("not base64"), "{e}");
        }
    }
}
