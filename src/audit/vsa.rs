//! SLSA Verification Summary Attestations (VSA v1) of a promotion, so that
//! admission tools that know SLSA and not provledger (Kyverno, sigstore
//! policy-controller, `slsa-verifier`-style checks) can consume the
//! ledger's decision.
//!
//! The statement says: this ledger (by its genesis hash and log key)
//! verified that the image's digest was promoted into an environment under
//! the policy entry in force, from these build, validation and promotion
//! entries. It is made only for a digest promoted into the environment.
//! The mapping of each field is in ledger-format/SPEC.md, section 16.

use serde_json::{Value, json};

use super::promotions;
use crate::core::digest::Digest;
use crate::core::hash::sha256;
use crate::core::statement::{EntryRef, rfc3339};
use crate::ledger::{Ledger, LedgerError};
use crate::promoted::{NotPromoted, Promoted};
use crate::store::Store;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/verification_summary/v1";
/// Where the ledger's names (verifier, entries, policy) are rooted.
pub const ID_BASE: &str = "https://provledger.dev/ledger/";

#[derive(Debug, thiserror::Error)]
pub enum VsaError {
    #[error(transparent)]
    NotPromoted(#[from] NotPromoted),
    /// The promotion's proof does not verify from the genesis hash.
    #[error("the promotion does not verify: {0}")]
    Unverified(String),
    #[error(transparent)]
    Promotions(#[from] super::PromotionsError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A VSA's in-toto Statement, with the promotion it summarises.
pub struct Summary {
    pub statement: Value,
    pub promoted: Promoted,
}

/// The in-toto Statement of the VSA for `digest` in `env`, verified at
/// `now` (seconds since the epoch). What it states is verified first, not
/// read from the store's indexes: the promotion's proof (every entry it
/// rests on, their signatures under the policies in force, the gate
/// replayed, each entry's inclusion in the signed checkpoint) must verify
/// from `genesis` (by default the ledger's own genesis hash).
pub fn statement<S: Store>(
    ledger: &Ledger<S>,
    digest: &Digest,
    env: &str,
    genesis: Option<&crate::core::hash::EntryHash>,
    now: u64,
) -> Result<Summary, VsaError> {
    let genesis = match genesis {
        Some(g) => *g,
        None => ledger.genesis_hash()?.ok_or(LedgerError::Empty)?,
    };
    let proof = match super::proof::prove(ledger, digest, env) {
        Ok(p) => p,
        Err(super::proof::ProveError::Ledger(l)) => return Err(l.into()),
        // Never promoted: the promotions say where it went instead (or
        // that the environment is unknown).
        Err(e) => {
            promotions(ledger, env)?.promoted(digest, env)?;
            return Err(VsaError::Unverified(e.to_string()));
        }
    };
    let report = proof.verify(&genesis).map_err(|e| VsaError::Unverified(e.to_string()))?;
    let promoted = crate::promoted::Promotions::of_proof(&report).promoted(digest, env)?.clone();
    let proven: std::collections::BTreeMap<u64, crate::core::hash::EntryHash> =
        proof.entries.iter().map(|e| (e.inclusion.leaf_index, crate::core::entry::entry_hash(&e.entry))).collect();
    let base = format!("{ID_BASE}{genesis}");
    let log = ledger.policy()?.1.log().clone();
    let policy_index = ledger
        .store()
        .policy_entries()
        .map_err(LedgerError::from)?
        .into_iter()
        .rev()
        .find(|&i| i < promoted.promotion.index)
        .ok_or(LedgerError::Empty)?;
    let policy = ledger.policy_at(promoted.promotion.index)?;
    let checks = policy.environment(env).map(|e| e.required_checks.clone()).unwrap_or_default();
    // The image's name as its build entry's subject gives it.
    let build = ledger.read(promoted.build.index)?.statement;
    let name = build
        .subjects
        .iter()
        .find(|s| s.digest.get("sha256").is_some_and(|h| *h == digest.hex()))
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            LedgerError::Store(crate::store::StoreError::Corrupt(format!(
                "build entry {} does not name {digest}",
                promoted.build.index
            )))
        })?;
    // An entry as an in-toto ResourceDescriptor: its URI in this ledger,
    // the SHA-256 of its canonical bytes and its (domain-separated) entry
    // hash.
    let described = |r: &EntryRef| -> Result<Value, LedgerError> {
        let bytes = ledger.read(r.index)?.entry.encode();
        Ok(json!({
            "uri": format!("{base}/entries/{}", r.index),
            "digest": {"sha256": hex::encode(sha256(&bytes)), "provledgerEntry": r.hash.to_string()},
        }))
    };
    let mut inputs = vec![described(&promoted.build)?];
    for v in &promoted.validations {
        inputs.push(described(v)?);
    }
    inputs.push(described(&promoted.promotion)?);
    let policy_entry = ledger.read(policy_index)?.entry;
    // The policy named is one the proof verified the promotion under.
    if proven.get(&policy_index) != Some(&policy_entry.hash()) {
        return Err(VsaError::Unverified(format!("the policy entry {policy_index} is not among the proof's entries")));
    }
    let mut policy_ref = described(&EntryRef { index: policy_index, hash: policy_entry.hash() })?;
    policy_ref["uri"] = json!(format!("{base}/entries/{policy_index}#environment={env}"));
    policy_ref["annotations"] = json!({"environment": env, "requiredChecks": checks});
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest.hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {
                "id": format!("{base}/log/{}+{:08x}", log.name, log.hash),
                "version": {"provledger": env!("CARGO_PKG_VERSION")},
            },
            "timeVerified": rfc3339(now),
            "resourceUri": format!("oci://{name}@{digest}"),
            "policy": policy_ref,
            "inputAttestations": inputs,
            "verificationResult": "PASSED",
            "verifiedLevels": ["SLSA_BUILD_LEVEL_1"],
            "slsaVersion": "1.0",
        },
    });
    Ok(Summary { statement, promoted })
}
