//! Promotion proofs: a self-contained JSON file showing that a digest was
//! legitimately promoted to an environment, checked offline against the
//! genesis hash alone (`ledger-format/SPEC.md` section 11). Proofs are
//! written by the ledger (`provledger::proof::prove`); this module reads and
//! verifies them, with nothing but the genesis hash.
//!
//! A proof carries the promotion entry, the build and validation entries it
//! rests on, the promotion into the environment it required (and what that
//! one rests on, down the path of environments), and every policy entry up
//! to the checkpoint, each with an RFC 9162 inclusion proof against
//! one signed checkpoint. Verification runs the ledger's own chain rules
//! ([`ChainState::verify_next`]) over that subsequence: signatures, roles,
//! policy transitions, the validation → build binding, and the promotion's
//! gate replayed over the evidence shown.

use crate::core::b64;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{SignedCheckpoint, leaf_of};
use crate::core::FormatError;
use crate::core::digest::Digest;
use crate::core::entry::UnverifiedEntry;
use crate::core::hash::EntryHash;
use crate::core::statement::{EntryRef, Predicate};
use crate::policy::Policy;
use crate::tree::{self, MAX_PROOF_LEN};
use crate::verify::{ChainState, MemPrefix, VerifyError};

/// Proof format version written by this build.
pub const PROOF_VERSION: u32 = 1;
/// Most entries one proof may carry.
pub const MAX_PROOF_ENTRIES: usize = 4096;
/// Largest proof file accepted.
pub const MAX_PROOF_SIZE: usize = 64 << 20;

/// The proof file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionProof {
    pub version: u32,
    /// The promoted digest, `sha256:<hex>`.
    pub digest: String,
    pub environment: String,
    /// Index of the promotion entry.
    pub promotion: u64,
    /// The signed checkpoint note (C2SP tlog-checkpoint in a signed-note).
    pub checkpoint: String,
    /// The log's C2SP verifier key; must be the one the policy names.
    pub verifier_key: String,
    /// Ascending by index, starting with the genesis entry.
    pub entries: Vec<ProofEntry>,
}

/// One entry of a proof file (wire type): its canonical bytes and their
/// inclusion proof in the proof's checkpoint, decoded by [`PromotionProof::verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofEntry {
    /// The entry's canonical bytes (strict base64 in the file).
    #[serde(with = "b64::strict")]
    pub entry: Vec<u8>,
    pub inclusion: Inclusion,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inclusion {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// RFC 9162 inclusion path, SHA-256 hashes leaf to root (strict base64
    /// in the file).
    #[serde(with = "b64::strict_list")]
    pub hashes: Vec<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("proof: {0}")]
    Malformed(String),
    #[error("proof written by a newer provledger (proof version {0}); upgrade provledger")]
    NewerVersion(u32),
    /// An entry of the proof breaks a chain rule.
    #[error("proof: {0}")]
    Verify(#[from] VerifyError),
    /// The proof parses but does not hold.
    #[error("proof does not hold: {0}")]
    Invalid(String),
}

fn malformed(why: impl Into<String>) -> ProofError {
    ProofError::Malformed(why.into())
}

fn invalid(why: impl Into<String>) -> ProofError {
    ProofError::Invalid(why.into())
}

/// What a verified proof shows.
#[derive(Clone, Debug)]
pub struct ProofReport {
    pub digest: Digest,
    pub environment: String,
    pub promotion: EntryRef,
    pub from: Option<String>,
    pub build: EntryRef,
    pub validations: Vec<EntryRef>,
    pub checkpoint: SignedCheckpoint,
}

impl PromotionProof {
    /// Parses a proof file strictly (unknown fields refused).
    pub fn parse(bytes: &[u8]) -> Result<PromotionProof, ProofError> {
        if bytes.len() > MAX_PROOF_SIZE {
            return Err(malformed(format!("larger than {MAX_PROOF_SIZE} bytes")));
        }
        // The version first, so that a newer file says "upgrade", not "unknown field".
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned = serde_json::from_slice(bytes).map_err(|e| malformed(format!("not a proof file: {e}")))?;
        if v.version > PROOF_VERSION {
            return Err(ProofError::NewerVersion(v.version));
        }
        if v.version != PROOF_VERSION {
            return Err(malformed(format!("unknown proof version {}", v.version)));
        }
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a proof serialises");
        s.push('\n');
        s
    }

    /// Verifies the proof offline against the genesis hash alone.
    pub fn verify(&self, genesis: &EntryHash) -> Result<ProofReport, ProofError> {
        let digest: Digest = self.digest.parse().map_err(|e: FormatError| malformed(format!("digest: {e}")))?;
        if self.entries.is_empty() || self.entries.len() > MAX_PROOF_ENTRIES {
            return Err(malformed(format!("a proof holds 1 to {MAX_PROOF_ENTRIES} entries")));
        }
        let mut decoded = Vec::with_capacity(self.entries.len());
        for (n, e) in self.entries.iter().enumerate() {
            let entry = UnverifiedEntry::decode(&e.entry).map_err(|err| malformed(format!("entries[{n}]: {err}")))?;
            if let Some(prev) = decoded.last().map(|(p, _): &(UnverifiedEntry, _)| p.index)
                && entry.index <= prev
            {
                return Err(malformed(format!("entries[{n}]: entry {} does not follow entry {prev}", entry.index)));
            }
            decoded.push((entry, &e.inclusion));
        }
        if decoded[0].0.index != 0 || decoded[0].0.hash() != *genesis {
            return Err(invalid(format!(
                "the first entry must be the genesis entry {genesis}; found entry {} with hash {}",
                decoded[0].0.index,
                decoded[0].0.hash()
            )));
        }

        // The chain rules over the subsequence, each entry judged by the
        // policy the included policy chain puts in force before it.
        let mut policy: Option<(EntryRef, Arc<Policy>)> = None;
        let mut prefix = MemPrefix::default();
        let mut leaves = Vec::with_capacity(decoded.len());
        let mut promotion = None;
        for (entry, inclusion) in decoded {
            let index = entry.index;
            let state = match &policy {
                None => ChainState::empty(),
                Some((r, p)) => ChainState::resume(index, entry.prev_hash, 0, *r, p.clone(), *genesis),
            };
            let v = state.verify_next(entry, &prefix)?;
            if let Some(p) = v.new_policy() {
                policy = Some((v.entry_ref(), p.clone()));
            }
            if index == self.promotion {
                promotion = Some(v.clone());
            }
            prefix.record(&v);
            leaves.push((v.entry_ref(), inclusion));
        }
        let (_, policy) = policy.expect("the genesis entry verified");

        let checkpoint = SignedCheckpoint::open(&self.checkpoint, policy.log())
            .map_err(|e| invalid(format!("checkpoint: {e} (the policy's log key is {})", policy.log().to_text())))?;
        if self.verifier_key != policy.log().to_text() {
            return Err(invalid(format!(
                "verifierKey {:?} is not the log key the policy names ({})",
                self.verifier_key,
                policy.log().to_text()
            )));
        }
        let size = checkpoint.checkpoint.size;
        for (r, inc) in &leaves {
            if inc.leaf_index != r.index || inc.tree_size != size {
                return Err(invalid(format!(
                    "entry {}: inclusion proof is for leaf {} of {} entries; expected leaf {} of {size}",
                    r.index, inc.leaf_index, inc.tree_size, r.index
                )));
            }
            if inc.hashes.len() > MAX_PROOF_LEN {
                return Err(malformed(format!("entry {}: inclusion proof longer than {MAX_PROOF_LEN}", r.index)));
            }
            tree::verify_inclusion(r.index, size, &leaf_of(&r.hash), &inc.hashes, &checkpoint.checkpoint.root)
                .map_err(|e| invalid(format!("entry {}: inclusion proof: {e}", r.index)))?;
        }

        let promotion = promotion.ok_or_else(|| invalid(format!("entry {} is not in the proof", self.promotion)))?;
        let Predicate::Promotion(p) = &promotion.statement().predicate else {
            return Err(invalid(format!("entry {} is not a promotion", self.promotion)));
        };
        if p.to != self.environment {
            return Err(invalid(format!("entry {} promotes to {}, not {}", self.promotion, p.to, self.environment)));
        }
        if !promotion.statement().subject_digests().contains(&digest) {
            return Err(invalid(format!("entry {} does not promote {digest}", self.promotion)));
        }
        Ok(ProofReport {
            digest,
            environment: p.to.clone(),
            promotion: promotion.entry_ref(),
            from: p.from.clone(),
            build: p.build,
            validations: p.validations.clone(),
            checkpoint,
        })
    }
}
