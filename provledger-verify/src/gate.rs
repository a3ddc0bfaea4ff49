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
    /// The registry tag the promotion is to move (`--tag-target`'s tag), if
    /// any: it must be bound to the target environment.
    pub tag: Option<&'a str>,
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
    if let Some(tag) = request.tag
        && let Some(why) = policy.tag_not_bound(request.to, tag)
    {
        reasons.push(format!("tag target: {why}"));
    }
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

// ---------------------------------------------------------------- releases

/// A build entry of a release, as the release rules read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseBuild {
    pub index: u64,
    pub artifact: String,
    /// The image digest; `None` for a dev-only build of a tag-only reference.
    pub digest: Option<Digest>,
    pub revision: Option<String>,
    pub dev_only: bool,
}

/// Why a build may not join a release: every build of one release names
/// the same source revision. `earlier` are the release's builds before it.
pub fn release_revision_conflict(release: &str, earlier: &[ReleaseBuild], revision: Option<&str>) -> Option<String> {
    let other = earlier.iter().find(|b| b.revision.as_deref() != revision)?;
    Some(format!(
        "release {release} is revision {} (entry {}); this build is revision {}",
        other.revision.as_deref().unwrap_or("-"),
        other.index,
        revision.unwrap_or("-")
    ))
}

/// The digests recorded for `artifact` in a release by builds that are not
/// dev-only, in order of first appearance, each with the entries recording it.
pub fn artifact_digests(builds: &[ReleaseBuild], artifact: &str) -> Vec<(Digest, Vec<u64>)> {
    let mut out: Vec<(Digest, Vec<u64>)> = Vec::new();
    for b in builds.iter().filter(|b| b.artifact == artifact && !b.dev_only) {
        let Some(d) = b.digest else { continue };
        match out.iter_mut().find(|(x, _)| *x == d) {
            Some((_, at)) => at.push(b.index),
            None => out.push((d, vec![b.index])),
        }
    }
    out
}

fn describe_digests(digests: &[(Digest, Vec<u64>)]) -> String {
    digests
        .iter()
        .map(|(d, at)| {
            let at: Vec<String> = at.iter().map(u64::to_string).collect();
            format!("{d} (entry {})", at.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The release rule for a promotion of `digest` as `artifact` of `release`:
/// the digest is a build of that artifact in the release, and every other
/// digest recorded for the artifact there (a rebuild within the release) is
/// exactly what the promotion says it sets aside. Returns why not.
pub fn release_promotion_conflict(
    release: &str,
    builds: &[ReleaseBuild],
    artifact: &str,
    digest: &Digest,
    supersedes: &[Digest],
) -> Option<String> {
    let digests = artifact_digests(builds, artifact);
    if !digests.iter().any(|(d, _)| d == digest) {
        return Some(format!("{digest} is not a build of artifact {artifact} in release {release}"));
    }
    let mut others: Vec<Digest> = digests.iter().map(|(d, _)| *d).filter(|d| d != digest).collect();
    others.sort();
    if others == supersedes {
        return None;
    }
    if supersedes.is_empty() {
        return Some(format!(
            "artifact {artifact} was rebuilt within release {release} with another digest ({}); the release \
             gate denies it until the rebuild is resolved explicitly",
            describe_digests(&digests)
        ));
    }
    Some(format!(
        "the promotion sets aside {} for artifact {artifact} of release {release}, but the release records {}",
        supersedes.iter().map(Digest::to_string).collect::<Vec<_>>().join(", "),
        describe_digests(&digests)
    ))
}

/// One artifact of a release, chosen for promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseChoice {
    pub artifact: String,
    pub digest: Digest,
    /// The newest build entry of the digest in the release.
    pub build_index: u64,
    /// The artifact's other digests in the release, set aside (ascending).
    pub supersedes: Vec<Digest>,
}

/// Chooses the digest of every artifact of a release: its one digest, or,
/// for an artifact rebuilt with another digest within the release, the one
/// `resolve` names for it. Returns every reason it cannot choose.
pub fn choose_release(
    release: &str,
    builds: &[ReleaseBuild],
    resolve: &BTreeMap<String, Digest>,
) -> Result<Vec<ReleaseChoice>, Vec<String>> {
    let mut reasons = Vec::new();
    let mut artifacts: Vec<&str> = builds.iter().map(|b| b.artifact.as_str()).collect();
    artifacts.sort();
    artifacts.dedup();
    for name in resolve.keys() {
        if !artifacts.contains(&name.as_str()) {
            reasons.push(format!("--resolve {name}: release {release} has no artifact {name}"));
        }
    }
    let mut chosen = Vec::new();
    for artifact in artifacts {
        let digests = artifact_digests(builds, artifact);
        let pick = match (digests.as_slice(), resolve.get(artifact)) {
            ([], _) => {
                reasons
                    .push(format!("{artifact}: only dev-only builds in release {release}; they never satisfy a gate"));
                continue;
            }
            (_, Some(want)) => match digests.iter().find(|(d, _)| d == want) {
                Some(p) => p,
                None => {
                    reasons.push(format!(
                        "--resolve {artifact}={want}: not a build of {artifact} in release {release} (it has {})",
                        describe_digests(&digests)
                    ));
                    continue;
                }
            },
            ([one], None) => one,
            (_, None) => {
                reasons.push(format!(
                    "{artifact}: rebuilt within release {release} with different digests: {}; choose one with \
                     --resolve {artifact}=<digest>",
                    describe_digests(&digests)
                ));
                continue;
            }
        };
        let mut supersedes: Vec<Digest> = digests.iter().map(|(d, _)| *d).filter(|d| *d != pick.0).collect();
        supersedes.sort();
        chosen.push(ReleaseChoice {
            artifact: artifact.to_string(),
            digest: pick.0,
            build_index: *pick.1.last().expect("a digest is recorded by at least one entry"),
            supersedes,
        });
    }
    if reasons.is_empty() { Ok(chosen) } else { Err(reasons) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::from_bytes([n; 32])
    }

    fn build(index: u64, artifact: &str, digest: u8) -> ReleaseBuild {
        ReleaseBuild {
            index,
            artifact: artifact.into(),
            digest: Some(d(digest)),
            revision: Some("a".repeat(40)),
            dev_only: false,
        }
    }

    /// A policy with a promoter, dev (unit) and prod (unit, e2e; requires dev).
    fn policy() -> (Policy, KeyId) {
        use crate::core::keys::SecretKey;
        use crate::core::statement::{PolicyEnvironment, PolicyKey, PolicyLog, PolicyPredicate};
        let key = |n: u8, name: &str, roles: Vec<Role>| {
            let k = SecretKey::from_seed(&[n; 32]).public();
            PolicyKey { name: name.into(), id: k.id(), algorithm: "ed25519".into(), public: k.to_hex(), roles }
        };
        let env = |name: &str, checks: &[&str], requires: Option<&str>| PolicyEnvironment {
            name: name.into(),
            required_checks: checks.iter().map(|c| c.to_string()).collect(),
            requires: requires.map(str::to_string),
            tags: Vec::new(),
        };
        let log = SecretKey::from_seed(&[9; 32]).public();
        let predicate = PolicyPredicate {
            version: 1,
            keys: vec![
                key(1, "root", vec![Role::Policy]),
                key(2, "release", vec![Role::Promotion]),
                key(3, "qa", vec![Role::Validation]),
            ],
            environments: vec![env("dev", &["unit"], None), env("prod", &["unit", "e2e"], Some("dev"))],
            policy_threshold: 1,
            log: PolicyLog { verifier_key: crate::core::note::NoteVerifier::new("test", log).unwrap().to_text() },
            previous: None,
        };
        (Policy::from_predicate(&predicate, "test").unwrap(), SecretKey::from_seed(&[2; 32]).public().id())
    }

    fn ev(index: u64, kind: EvidenceKind, dev_only: bool) -> Evidence {
        Evidence { index, hash: EntryHash::from_bytes([index as u8; 32]), kind, dev_only, signers: Vec::new() }
    }

    fn checks(list: &[(&str, CheckResult)]) -> EvidenceKind {
        EvidenceKind::Validation { checks: list.iter().map(|(n, r)| (n.to_string(), *r)).collect() }
    }

    fn request(promoter: KeyId, to: &str) -> Request<'_> {
        Request { digest: Some(d(7)), to, promoter, tag: None }
    }

    #[test]
    fn the_newest_outcome_of_each_check_counts() {
        let (p, promoter) = policy();
        let pass = CheckResult::Pass;
        let fail = CheckResult::Fail;
        let mut evidence = vec![ev(1, EvidenceKind::Build, false), ev(2, checks(&[("unit", fail)]), false)];
        assert!(!decide(&p, &evidence, &request(promoter, "dev")).is_allowed());
        evidence.push(ev(3, checks(&[("unit", pass)]), false));
        match decide(&p, &evidence, &request(promoter, "dev")) {
            Decision::Allow(a) => {
                assert_eq!((a.build.index, a.validations.iter().map(|v| v.index).collect::<Vec<_>>()), (1, vec![3]))
            }
            other => panic!("{other:?}"),
        }
        // A newer validation of another check leaves unit's outcome as it was.
        evidence.push(ev(4, checks(&[("e2e", pass)]), false));
        assert!(decide(&p, &evidence, &request(promoter, "dev")).is_allowed());
        // A failure after the pass is the outcome that counts.
        evidence.push(ev(5, checks(&[("unit", fail)]), false));
        let Decision::Deny(why) = decide(&p, &evidence, &request(promoter, "dev")) else { panic!("allowed") };
        assert!(why.iter().any(|w| w.contains("failed in validation entry 5")), "{why:?}");
    }

    #[test]
    fn every_reason_is_listed_and_dev_only_evidence_never_counts() {
        let (p, promoter) = policy();
        let evidence = vec![ev(1, EvidenceKind::Build, true), ev(2, checks(&[("unit", CheckResult::Pass)]), true)];
        let Decision::Deny(why) = decide(&p, &evidence, &request(promoter, "prod")) else { panic!("allowed") };
        let all = why.join("\n");
        assert!(all.contains("only dev-only build entries"), "{all}");
        assert!(all.contains("\"unit\"") && all.contains("dev-only validations in entry 2"), "{all}");
        assert!(all.contains("\"e2e\""), "{all}");
        assert!(all.contains("was not promoted to dev first"), "{all}");
        assert_eq!(why.len(), 4, "{all}");
        // An unknown promoter, an unknown environment, a tag-only reference.
        let stranger = crate::core::keys::SecretKey::from_seed(&[8; 32]).public().id();
        let Decision::Deny(why) = decide(&p, &evidence, &request(stranger, "qa")) else { panic!("allowed") };
        assert!(why[0].contains("not in the policy in force") && why[1].contains("\"qa\""), "{why:?}");
        let tag_only = Request { digest: None, ..request(promoter, "dev") };
        let Decision::Deny(why) = decide(&p, &[], &tag_only) else { panic!("allowed") };
        assert!(why.iter().any(|w| w.contains("tag-only reference can never be promoted")), "{why:?}");
    }

    #[test]
    fn a_required_environment_and_a_bound_tag() {
        let (p, promoter) = policy();
        let pass = CheckResult::Pass;
        let mut evidence =
            vec![ev(1, EvidenceKind::Build, false), ev(2, checks(&[("unit", pass), ("e2e", pass)]), false)];
        assert!(!decide(&p, &evidence, &request(promoter, "prod")).is_allowed(), "not in dev yet");
        evidence.push(ev(3, EvidenceKind::Promotion { to: "dev".into() }, false));
        let Decision::Allow(a) = decide(&p, &evidence, &request(promoter, "prod")) else { panic!("denied") };
        assert_eq!(a.from.as_deref(), Some("dev"));
        let tagged = |tag| Request { tag: Some(tag), ..request(promoter, "prod") };
        assert!(decide(&p, &evidence, &tagged("prod")).is_allowed());
        let Decision::Deny(why) = decide(&p, &evidence, &tagged("dev")) else { panic!("allowed") };
        assert!(why[0].starts_with("tag target:"), "{why:?}");
    }

    #[test]
    fn one_revision_per_release() {
        let earlier = [build(1, "backend", 1)];
        assert_eq!(release_revision_conflict("r", &earlier, Some(&"a".repeat(40))), None);
        let why = release_revision_conflict("r", &earlier, Some(&"b".repeat(40))).unwrap();
        assert!(why.contains("entry 1") && why.contains(&"b".repeat(40)), "{why}");
        assert!(release_revision_conflict("r", &earlier, None).is_some());
        assert_eq!(release_revision_conflict("r", &[], None), None);
    }

    #[test]
    fn a_rebuild_within_a_release_needs_an_explicit_choice() {
        let builds = [build(1, "backend", 1), build(2, "frontend", 2), build(5, "backend", 3), build(6, "backend", 1)];
        let why = choose_release("r", &builds, &BTreeMap::new()).unwrap_err();
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("backend: rebuilt") && why[0].contains("entry 1, 6") && why[0].contains("entry 5"));
        let resolve = BTreeMap::from([("backend".to_string(), d(3))]);
        let chosen = choose_release("r", &builds, &resolve).unwrap();
        assert_eq!(
            chosen[0],
            ReleaseChoice { artifact: "backend".into(), digest: d(3), build_index: 5, supersedes: vec![d(1)] }
        );
        assert_eq!(chosen[1].supersedes, Vec::<Digest>::new());
        // The chain rule agrees with the choice, and with nothing else.
        assert_eq!(release_promotion_conflict("r", &builds, "backend", &d(3), &[d(1)]), None);
        assert!(release_promotion_conflict("r", &builds, "backend", &d(3), &[]).unwrap().contains("rebuilt"));
        assert!(release_promotion_conflict("r", &builds, "backend", &d(2), &[]).unwrap().contains("not a build"));
        assert!(release_promotion_conflict("r", &builds, "backend", &d(1), &[d(2)]).unwrap().contains("sets aside"));
        assert_eq!(release_promotion_conflict("r", &builds, "frontend", &d(2), &[]), None);
        let bad = BTreeMap::from([("db".to_string(), d(1)), ("frontend".to_string(), d(9))]);
        let why = choose_release("r", &builds, &bad).unwrap_err();
        assert!(why.iter().any(|w| w.contains("no artifact db")) && why.iter().any(|w| w.contains("frontend=")));
    }
}
