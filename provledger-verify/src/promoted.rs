//! "Is this digest promoted into ENV?": the question an admission webhook,
//! a deploy check and a verification summary all ask, answered only from
//! verified input, a chain verified entry by entry (feed each
//! [`VerifiedEntry`] to [`Promotions::record`] in chain order) or a
//! verified promotion proof ([`Promotions::of_proof`]).
//!
//! A digest is promoted into an environment once a promotion entry into it
//! names the digest: the chain rules accepted that entry only after the
//! promotion gate passed for it (the build, every required check passing
//! for the exact digest, signed by authorized keys). A later promotion of
//! another digest into the environment moves its current release; it
//! does not take the earlier digest's eligibility back (the ledger is
//! append-only, and a rollback is a promotion of the earlier digest).

use std::collections::{BTreeMap, HashMap};

use crate::core::digest::Digest;
use crate::core::entry::UnverifiedEntry;
use crate::core::statement::{EntryRef, Predicate, Statement};
use crate::proof::ProofReport;
use crate::verify::VerifiedEntry;

/// The newest promotion of one digest into one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promoted {
    pub promotion: EntryRef,
    /// The environment it had to pass first, if any.
    pub from: Option<String>,
    pub build: EntryRef,
    pub validations: Vec<EntryRef>,
    /// The promotion entry's integrated time (seconds since the epoch);
    /// `None` when known from a proof, which carries the entry but not
    /// this summary's time.
    pub time: Option<u64>,
}

/// Why a digest may not run in an environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotPromoted {
    #[error("{digest} was never promoted into {env}")]
    Never { digest: Digest, env: String },
    #[error("{digest} was never promoted into {env}; it was promoted into {}", .into.join(", "))]
    Elsewhere { digest: Digest, env: String, into: Vec<String> },
}

/// Every promotion a verified chain (or proof) holds, by digest.
#[derive(Clone, Debug, Default)]
pub struct Promotions {
    by_digest: HashMap<Digest, BTreeMap<String, Promoted>>,
    entries: u64,
}

impl Promotions {
    pub fn new() -> Promotions {
        Promotions::default()
    }

    /// Takes in one verified entry; call it for each entry, in chain order.
    pub fn record(&mut self, v: &VerifiedEntry) {
        self.record_stored(v.entry(), v.statement());
    }

    /// Takes in one entry of a store that verified it by the chain rules
    /// when it was written (the ledger's own store, a mirror's): only
    /// promotions count, in chain order.
    pub fn record_stored(&mut self, entry: &UnverifiedEntry, statement: &Statement) {
        self.entries = self.entries.max(entry.index + 1);
        let Predicate::Promotion(p) = &statement.predicate else { return };
        let promoted = Promoted {
            promotion: EntryRef { index: entry.index, hash: entry.hash() },
            from: p.from.clone(),
            build: p.build,
            validations: p.validations.clone(),
            time: Some(entry.integrated_time),
        };
        for digest in statement.subject_digests() {
            self.by_digest.entry(digest).or_default().insert(p.to.clone(), promoted.clone());
        }
    }

    /// The one promotion a verified proof shows.
    pub fn of_proof(report: &ProofReport) -> Promotions {
        let mut by_digest: HashMap<Digest, BTreeMap<String, Promoted>> = HashMap::new();
        by_digest.entry(report.digest).or_default().insert(
            report.environment.clone(),
            Promoted {
                promotion: report.promotion,
                from: report.from.clone(),
                build: report.build,
                validations: report.validations.clone(),
                time: None,
            },
        );
        Promotions { by_digest, entries: report.checkpoint.checkpoint.size }
    }

    /// The newest promotion of `digest` into `env`, or why there is none.
    pub fn promoted(&self, digest: &Digest, env: &str) -> Result<&Promoted, NotPromoted> {
        let envs = self.by_digest.get(digest);
        if let Some(p) = envs.and_then(|e| e.get(env)) {
            return Ok(p);
        }
        let into: Vec<String> = envs.map(|e| e.keys().cloned().collect()).unwrap_or_default();
        let (digest, env) = (*digest, env.to_string());
        Err(if into.is_empty() {
            NotPromoted::Never { digest, env }
        } else {
            NotPromoted::Elsewhere { digest, env, into }
        })
    }

    /// Entries taken in (the tree size the answers hold for).
    pub fn size(&self) -> u64 {
        self.entries
    }
}
