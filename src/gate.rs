//! The promotion gate: a pure, deterministic function of (evidence in the
//! chain prefix, policy in force, request) that allows a promotion or denies
//! it with *every* reason.
//!
//! Evidence is what the chain already holds for one exact digest. Every entry
//! in it was verified when it was appended (signature, role under the policy
//! in force at that entry), so a key revoked later still counts for the
//! entries it signed before its revocation, and never after.
//!
//! Supersession: for each required check, the outcome that counts is the one
//! in the *newest* validation entry (highest index) that names that check. A
//! newer validation that does not name a check leaves the older outcome of
//! that check in place.

use std::collections::BTreeMap;

use crate::core::digest::Digest;
use crate::core::hash::EntryHash;
use crate::core::keys::KeyId;
use crate::core::statement::{CheckResult, EntryRef, Role};
use crate::policy::Policy;

/// What an entry says about one digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceKind {
    Build,
    Validation { checks: Vec<(String, CheckResult)> },
    Promotion { to: String },
}

/// One entry with the digest among its subjects.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub index: u64,
    pub hash: EntryHash,
    pub kind: EvidenceKind,
    pub dev_only: bool,
    pub signers: Vec<KeyId>,
}

impl Evidence {
    pub fn entry_ref(&self) -> EntryRef {
        EntryRef { index: self.index, hash: self.hash }
    }
}

/// A promotion request.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// `None` for a tag-only reference, which is always denied.
    pub digest: Option<Digest>,
    pub to: &'a str,
    pub promoter: KeyId,
}

/// The evidence an allowed promotion rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The environment the digest had to pass through first.
    pub from: Option<String>,
    /// The newest non-dev-only build of the digest.
    pub build: EntryRef,
    /// The validation entries holding the counted outcome of each required
    /// check, ascending by index, without duplicates.
    pub validations: Vec<EntryRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Allowed),
    Deny(Vec<String>),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Decides a promotion. `evidence` is every entry of the prefix with the
/// requested digest among its subjects, in ascending index order.
pub fn decide(policy: &Policy, evidence: &[Evidence], request: &Request<'_>) -> Decision {
    let mut reasons = Vec::new();
    match policy.key(&request.promoter) {
        None => reasons.push(format!("promoter key {} is not in the policy in force", request.promoter)),
        Some(k) if !k.roles.contains(&Role::Promotion) => {
            reasons.push(format!("promoter key {} ({}) does not hold the promotion role", request.promoter, k.name))
        }
        Some(_) => {}
    }
    let Some(env) = policy.environment(request.to) else {
        reasons.push(format!("environment {:?} is not in the policy in force", request.to));
        return Decision::Deny(reasons);
    };
    let Some(digest) = request.digest else {
        reasons.push("the reference has no digest: a tag-only reference can never be promoted".to_string());
        return Decision::Deny(reasons);
    };

    let builds: Vec<&Evidence> = evidence.iter().filter(|e| e.kind == EvidenceKind::Build).collect();
    let build = builds.iter().rev().find(|e| !e.dev_only);
    if build.is_none() {
        if builds.is_empty() {
            reasons.push(format!("no build entry for {digest}"));
        } else {
            let idx: Vec<String> = builds.iter().map(|e| e.index.to_string()).collect();
            reasons.push(format!(
                "only dev-only build entries for {digest} (entry {}); they never satisfy a gate",
                idx.join(", ")
            ));
        }
    }

    // The counted outcome of each check: the newest non-dev-only validation naming it.
    let mut latest: BTreeMap<&str, (CheckResult, &Evidence)> = BTreeMap::new();
    let mut dev_only_validations = Vec::new();
    for e in evidence {
        if let EvidenceKind::Validation { checks } = &e.kind {
            if e.dev_only {
                dev_only_validations.push(e.index.to_string());
                continue;
            }
            for (name, result) in checks {
                latest.insert(name.as_str(), (*result, e));
            }
        }
    }
    let mut used = Vec::new();
    for check in &env.required_checks {
        match latest.get(check.as_str()) {
            None => {
                let mut why = format!("required check {check:?} for {} has no validation of {digest}", env.name);
                if !dev_only_validations.is_empty() {
                    why.push_str(&format!(
                        " (dev-only validations in entry {} do not count)",
                        dev_only_validations.join(", ")
                    ));
                }
                reasons.push(why);
            }
            Some((CheckResult::Fail, e)) => {
                let by = e.signers.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
                reasons
                    .push(format!("required check {check:?} failed in validation entry {} (signed by {by})", e.index));
            }
            Some((CheckResult::Pass, e)) => used.push(e.entry_ref()),
        }
    }

    if let Some(required) = &env.requires {
        let promoted = evidence.iter().any(|e| matches!(&e.kind, EvidenceKind::Promotion { to } if to == required));
        if !promoted {
            reasons.push(format!("{digest} was not promoted to {required} first, and {} requires it", env.name));
        }
    }

    match (reasons.is_empty(), build) {
        (true, Some(b)) => {
            used.sort_by_key(|r| r.index);
            used.dedup();
            Decision::Allow(Allowed { from: env.requires.clone(), build: b.entry_ref(), validations: used })
        }
        _ => Decision::Deny(reasons),
    }
}
