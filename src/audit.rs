//! The audit answers: everything the ledger knows about one digest, and the
//! promotion history of an environment. Read through the indexes only, so an
//! answer costs the same on a large ledger as on a small one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::digest::Digest;
use crate::core::keys::KeyId;
use crate::core::statement::{Check, CiRun, Predicate, rfc3339};
use crate::ledger::{Ledger, LedgerError, StoredEntry};
use crate::store::{Store, source_key};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Signer {
    pub key_id: String,
    /// The key's name in the policy that listed it.
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BuildInfo {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub image: String,
    pub tag: Option<String>,
    pub artifact: Option<String>,
    pub git_sha: Option<String>,
    pub source_repository: Option<String>,
    pub builder_id: String,
    pub ci: Option<CiRun>,
    pub signers: Vec<Signer>,
    pub dev_only: bool,
    pub registry_confirmed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ValidationInfo {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub build_index: Option<u64>,
    pub checks: Vec<Check>,
    pub signers: Vec<Signer>,
    pub dev_only: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PromotionInfo {
    pub index: u64,
    pub hash: String,
    pub recorded_at: String,
    pub digest: String,
    pub from: Option<String>,
    pub to: String,
    pub build_index: u64,
    pub validation_indexes: Vec<u64>,
    pub signers: Vec<Signer>,
    pub registry_confirmed: bool,
}

/// Everything the chain says about one digest.
#[derive(Clone, Debug, Serialize)]
pub struct DigestReport {
    pub digest: String,
    pub builds: Vec<BuildInfo>,
    pub validations: Vec<ValidationInfo>,
    pub promotions: Vec<PromotionInfo>,
    /// Things an auditor should look at: rebuilds of the same revision and
    /// policy changes after the digest was first recorded.
    pub findings: Vec<String>,
}

/// Promotions into one environment, newest first.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryReport {
    pub environment: String,
    pub promotions: Vec<PromotionInfo>,
    /// The digest most recently promoted into the environment.
    pub current: Option<String>,
    /// The previous, different digest legitimately promoted there.
    pub rollback_target: Option<String>,
}

/// Key names from every policy the chain has had (a key keeps its name after
/// it is rotated out).
fn key_names<S: Store>(ledger: &Ledger<S>) -> Result<BTreeMap<KeyId, String>, LedgerError> {
    let mut names = BTreeMap::new();
    for index in ledger.store().policy_entries()? {
        if let Predicate::Policy(p) = ledger.read(index)?.statement.predicate {
            for k in p.keys {
                names.insert(k.id, k.name);
            }
        }
    }
    Ok(names)
}

fn signers(e: &StoredEntry, names: &BTreeMap<KeyId, String>) -> Vec<Signer> {
    e.entry
        .envelope
        .signatures
        .iter()
        .map(|s| Signer {
            key_id: s.keyid.clone(),
            name: KeyId::parse(&s.keyid).ok().and_then(|id| names.get(&id).cloned()),
        })
        .collect()
}

fn promotion_info(e: &StoredEntry, names: &BTreeMap<KeyId, String>) -> Option<PromotionInfo> {
    let Predicate::Promotion(p) = &e.statement.predicate else { return None };
    Some(PromotionInfo {
        index: e.entry.index,
        hash: e.entry.hash().to_string(),
        recorded_at: rfc3339(e.entry.integrated_time),
        digest: e.statement.subject_digests().first().map(|d| d.to_string()).unwrap_or_default(),
        from: p.from.clone(),
        to: p.to.clone(),
        build_index: p.build.index,
        validation_indexes: p.validations.iter().map(|r| r.index).collect(),
        signers: signers(e, names),
        registry_confirmed: p.provledger.registry_confirmed,
    })
}

/// The audit answer for `digest`, or `None` when no entry names it.
pub fn show<S: Store>(ledger: &Ledger<S>, digest: &Digest) -> Result<Option<DigestReport>, LedgerError> {
    let indexes = ledger.store().entries_for_subject(digest)?;
    if indexes.is_empty() {
        return Ok(None);
    }
    let names = key_names(ledger)?;
    let mut report = DigestReport {
        digest: digest.to_string(),
        builds: Vec::new(),
        validations: Vec::new(),
        promotions: Vec::new(),
        findings: Vec::new(),
    };
    for index in &indexes {
        let e = ledger.read(*index)?;
        // Always false today (dev-only statements are tag-only, so they name
        // no digest), kept in the report so that it says so explicitly.
        let dev_only = e.statement.predicate.is_dev_only();
        match &e.statement.predicate {
            Predicate::Build(b) => {
                let ext = &b.build_definition.external_parameters;
                let git_sha = b.git_commit().map(str::to_string);
                if let Some(sha) = &git_sha {
                    for other in ledger.store().builds_of_source(&source_key(sha, ext.artifact.as_deref()))? {
                        let o = ledger.read(other)?;
                        for d in o.statement.subject_digests() {
                            if d != *digest {
                                let when = if other < *index { "before" } else { "after" };
                                report.findings.push(format!(
                                    "rebuild: revision {sha}{} was also built as {d} (entry {other}, {when} entry {index}); \
                                     a rebuilt digest needs its own validation",
                                    ext.artifact.as_deref().map(|a| format!(" artifact {a}")).unwrap_or_default()
                                ));
                            }
                        }
                    }
                }
                report.builds.push(BuildInfo {
                    index: *index,
                    hash: e.entry.hash().to_string(),
                    recorded_at: rfc3339(e.entry.integrated_time),
                    image: ext.image.clone(),
                    tag: ext.tag.clone(),
                    artifact: ext.artifact.clone(),
                    git_sha,
                    source_repository: b
                        .build_definition
                        .resolved_dependencies
                        .iter()
                        .find_map(|r| r.uri.as_deref())
                        .map(|u| u.trim_start_matches("git+").to_string()),
                    builder_id: b.run_details.builder.id.clone(),
                    ci: ext.ci.clone(),
                    signers: signers(&e, &names),
                    dev_only,
                    registry_confirmed: b.flags().registry_confirmed,
                });
            }
            Predicate::Validation(v) => report.validations.push(ValidationInfo {
                index: *index,
                hash: e.entry.hash().to_string(),
                recorded_at: rfc3339(e.entry.integrated_time),
                build_index: v.build.map(|b| b.index),
                checks: v.checks.clone(),
                signers: signers(&e, &names),
                dev_only,
            }),
            Predicate::Promotion(_) => report.promotions.extend(promotion_info(&e, &names)),
            Predicate::Policy(_) => {}
        }
    }
    let first = indexes[0];
    for p in ledger.store().policy_entries()? {
        if p > first {
            report.findings.push(format!(
                "the policy changed at entry {p}, after this digest was first recorded (entry {first}); \
                 later entries were judged by the new policy"
            ));
        }
    }
    report.findings.dedup();
    Ok(Some(report))
}

/// Promotions into `env`, newest first, with the current digest and the
/// rollback target.
pub fn history<S: Store>(ledger: &Ledger<S>, env: &str) -> Result<HistoryReport, LedgerError> {
    let names = key_names(ledger)?;
    let mut promotions = Vec::new();
    for index in ledger.store().promotions_into(env)?.into_iter().rev() {
        promotions.extend(promotion_info(&ledger.read(index)?, &names));
    }
    let current = promotions.first().map(|p| p.digest.clone());
    let rollback_target = promotions.iter().map(|p| &p.digest).find(|d| Some(*d) != current.as_ref()).cloned();
    Ok(HistoryReport { environment: env.to_string(), promotions, current, rollback_target })
}
