//! Promotion proofs, written from a ledger: the newest promotion of a digest
//! into an environment with everything it rests on. Their format and their
//! verification are the auditor's crate's ([`provledger_verify::proof`]).

use crate::core::digest::Digest;
use crate::core::statement::Predicate;
use crate::ledger::{Ledger, LedgerError};
use crate::store::Store;

pub use provledger_verify::proof::*;

/// Why a proof could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    #[error("{digest} was never promoted to {env}")]
    NotPromoted { digest: Digest, env: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Builds the proof for the newest promotion of `digest` into `env`, against
/// the ledger's latest checkpoint.
pub fn prove<S: Store>(ledger: &Ledger<S>, digest: &Digest, env: &str) -> Result<PromotionProof, ProveError> {
    let store = ledger.store();
    let subject = store.entries_for_subject(digest).map_err(LedgerError::from)?;
    // The newest promotion of the digest into `env` before `before`, found
    // among the few entries that name the digest (never by scanning every
    // promotion into `env`, which grows with the ledger).
    let newest_into = |env: &str, before: u64| -> Result<Option<u64>, ProveError> {
        for &i in subject.iter().rev().filter(|i| **i < before) {
            if let Predicate::Promotion(p) = &ledger.read(i)?.statement.predicate
                && p.to == env
            {
                return Ok(Some(i));
            }
        }
        Ok(None)
    };
    let not_promoted = || ProveError::NotPromoted { digest: *digest, env: env.to_string() };
    let promotion = newest_into(env, u64::MAX)?.ok_or_else(not_promoted)?;
    let signed = ledger.checkpoint()?;
    let size = signed.checkpoint.size;
    let mut indexes: Vec<u64> = store.policy_entries().map_err(LedgerError::from)?;
    indexes.retain(|i| *i < size);
    // Each promotion rests on its build, its validations and the promotion
    // into the environment it required, which rests on its own: the proof
    // carries the whole path (dev -> staging -> prod) so that every gate
    // can be replayed.
    let mut pending = vec![promotion];
    while let Some(at) = pending.pop() {
        let Predicate::Promotion(p) = ledger.read(at)?.statement.predicate else {
            return Err(LedgerError::from(crate::store::StoreError::Corrupt(format!(
                "entry {at} is indexed as a promotion but is not one"
            )))
            .into());
        };
        indexes.push(at);
        indexes.push(p.build.index);
        indexes.extend(p.validations.iter().map(|v| v.index));
        // A release promotion's rule reads every build of its artifact in
        // the release (the rebuilds it set aside among them).
        if let Some(r) = &p.release {
            let builds = ledger.release_builds(&r.id)?;
            indexes.extend(builds.iter().filter(|b| b.index < at && b.artifact == r.artifact).map(|b| b.index));
        }
        if let Some(from) = &p.from {
            pending.extend(newest_into(from, at)?);
        }
    }
    indexes.sort_unstable();
    indexes.dedup();
    let mut entries = Vec::with_capacity(indexes.len());
    for index in indexes {
        let bytes = store
            .get(index)
            .map_err(LedgerError::from)?
            .ok_or_else(|| LedgerError::from(crate::store::StoreError::Corrupt(format!("entry {index} is missing"))))?;
        let hashes = ledger.inclusion_proof(index, size)?;
        entries.push(ProofEntry {
            entry: bytes,
            inclusion: Inclusion {
                leaf_index: index,
                tree_size: size,
                hashes: hashes.iter().map(|h| h.to_vec()).collect(),
            },
        });
    }
    Ok(PromotionProof {
        version: PROOF_VERSION,
        digest: digest.to_string(),
        environment: env.to_string(),
        promotion,
        checkpoint: signed.note,
        verifier_key: signed.verifier.to_text(),
        entries,
    })
}
