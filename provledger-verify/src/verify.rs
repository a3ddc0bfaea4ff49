//! The chain rules. [`ChainState::verify_next`] is the one place that decides
//! whether an entry may follow a chain prefix; appends and audits both go
//! through it, so a ledger can never hold an entry that `verify` would refuse.
//!
//! Depends only on the format core and the policy; never on the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::core::FormatError;
use crate::core::digest::Digest;
use crate::core::dsse::{Envelope, PAYLOAD_TYPE_IN_TOTO};
use crate::core::entry::{UnverifiedEntry, envelope_fingerprint};
use crate::core::hash::EntryHash;
use crate::core::keys::KeyId;
use crate::core::statement::{EntryRef, Predicate, Role, Statement};
use crate::gate::{self, Decision, Evidence, EvidenceKind, ReleaseBuild};
use crate::policy::{Policy, PolicyError};
use crate::sigcheck::{self, Keyring, SigCheck};

/// Why an entry was refused, which decides the exit code of the command that
/// met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The policy does not allow it: unknown key, wrong role, tag-only.
    Denied,
    /// The bytes do not hold: signature, link, encoding, binding.
    Invalid,
    /// Written by a newer provledger.
    Newer,
    /// The prefix could not be read.
    Io,
}

/// A stable code for the rule an entry broke: the `reason` of the reject
/// vectors (SPEC section 7) and of `--json` errors. The message says more;
/// the code does not change with its wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The entry's bytes: CBOR, canonical form, version 1 layout.
    EntryEncoding,
    /// DSSE envelope limits.
    Envelope,
    /// The statement's JSON, or a rule of the statement or its predicate.
    Statement,
    /// Written by a newer provledger.
    NewerVersion,
    /// The entry's index is not its place in the chain.
    Index,
    PrevHash,
    /// `integrated_time` goes back.
    TimeOrder,
    PayloadType,
    /// Entry 0 is not the genesis expected, or there is none.
    Genesis,
    GenesisNotPolicy,
    /// A policy entry does not name the policy in force as previous.
    PolicyPrevious,
    /// A policy breaks a rule of section 4.3.
    PolicyInvalid,
    /// A signature by a key the judging policy does not hold.
    UnknownKey,
    KeyId,
    BadSignature,
    DuplicateSigner,
    /// Too few signatures by keys holding the statement's role.
    Role,
    /// A validation's `build` does not hold.
    ValidationBuild,
    /// The statement names another ledger.
    OtherLedger,
    /// A build breaks its release's one source revision.
    ReleaseRevision,
    /// A release promotion's rebuilds do not hold.
    ReleaseRebuild,
    /// The replayed gate denies a promotion.
    GateDenied,
    /// The promotion names other evidence than the gate relies on.
    GateEvidence,
    /// The same signed statement is already in the chain.
    Replay,
    /// A new statement names no ledger (append only).
    Unbound,
    /// What a ledger stores beside its entries (head, tree, indexes,
    /// checkpoint) or receives with them does not match them.
    Stored,
    /// The prefix could not be read.
    Io,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EntryEncoding => "entry-encoding",
            Reason::Envelope => "envelope",
            Reason::Statement => "statement",
            Reason::NewerVersion => "newer-version",
            Reason::Index => "index",
            Reason::PrevHash => "prev-hash",
            Reason::TimeOrder => "time-order",
            Reason::PayloadType => "payload-type",
            Reason::Genesis => "genesis",
            Reason::GenesisNotPolicy => "genesis-not-policy",
            Reason::PolicyPrevious => "policy-previous",
            Reason::PolicyInvalid => "policy-invalid",
            Reason::UnknownKey => "unknown-key",
            Reason::KeyId => "key-id",
            Reason::BadSignature => "bad-signature",
            Reason::DuplicateSigner => "duplicate-signer",
            Reason::Role => "role",
            Reason::ValidationBuild => "validation-build",
            Reason::OtherLedger => "other-ledger",
            Reason::ReleaseRevision => "release-revision",
            Reason::ReleaseRebuild => "release-rebuild",
            Reason::GateDenied => "gate-denied",
            Reason::GateEvidence => "gate-evidence",
            Reason::Replay => "replay",
            Reason::Unbound => "unbound",
            Reason::Stored => "stored",
            Reason::Io => "io",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [Reason; 27] = [
        Reason::EntryEncoding,
        Reason::Envelope,
        Reason::Statement,
        Reason::NewerVersion,
        Reason::Index,
        Reason::PrevHash,
        Reason::TimeOrder,
        Reason::PayloadType,
        Reason::Genesis,
        Reason::GenesisNotPolicy,
        Reason::PolicyPrevious,
        Reason::PolicyInvalid,
        Reason::UnknownKey,
        Reason::KeyId,
        Reason::BadSignature,
        Reason::DuplicateSigner,
        Reason::Role,
        Reason::ValidationBuild,
        Reason::OtherLedger,
        Reason::ReleaseRevision,
        Reason::ReleaseRebuild,
        Reason::GateDenied,
        Reason::GateEvidence,
        Reason::Replay,
        Reason::Unbound,
        Reason::Stored,
        Reason::Io,
    ];
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("entry {index}: {reason}")]
pub struct VerifyError {
    pub index: u64,
    pub failure: Failure,
    /// The rule broken, as a stable code.
    pub code: Reason,
    pub reason: String,
}

impl VerifyError {
    /// A refusal whose code follows from its failure class alone: what is
    /// stored or received beside the entries (`Stored`), I/O, newer formats.
    pub fn new(index: u64, failure: Failure, reason: impl Into<String>) -> Self {
        let code = match failure {
            Failure::Io => Reason::Io,
            Failure::Newer => Reason::NewerVersion,
            Failure::Denied | Failure::Invalid => Reason::Stored,
        };
        VerifyError::coded(index, failure, code, reason)
    }

    pub fn coded(index: u64, failure: Failure, code: Reason, reason: impl Into<String>) -> Self {
        VerifyError { index, failure, code, reason: reason.into() }
    }

    /// A stored or received entry that does not parse.
    pub fn format(index: u64, e: FormatError) -> Self {
        let (failure, code) = match &e {
            FormatError::NewerVersion(_) => (Failure::Newer, Reason::NewerVersion),
            FormatError::Entry(_) => (Failure::Invalid, Reason::EntryEncoding),
            FormatError::Envelope(_) => (Failure::Invalid, Reason::Envelope),
            _ => (Failure::Invalid, Reason::Statement),
        };
        VerifyError::coded(index, failure, code, e.to_string())
    }

    fn policy(index: u64, e: PolicyError) -> Self {
        let (failure, code) = match e {
            PolicyError::NewerVersion(_) => (Failure::Newer, Reason::NewerVersion),
            _ => (Failure::Invalid, Reason::PolicyInvalid),
        };
        VerifyError::coded(index, failure, code, e.to_string())
    }
}

/// Work on an entry that does not depend on its place in the chain, done
/// ahead of [`ChainState::verify_next_prepared`] (on all cores, see
/// [`prepare`]): its statement parsed, its signatures checked.
///
/// Its fields are private: the chain walk believes what it holds, so only
/// [`prepare`] makes one, from the very envelope it is then used with.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The parsed payload, or `None` to parse it in the chain walk.
    statement: Option<Result<Statement, FormatError>>,
    /// Per signature, in envelope order: its check, if made.
    signatures: Vec<Option<SigCheck>>,
    /// The envelope's fingerprint, if computed.
    fingerprint: Option<[u8; 32]>,
}

impl Prepared {
    /// Per signature, in envelope order: its check, if made.
    pub fn signatures(&self) -> &[Option<SigCheck>] {
        &self.signatures
    }
}

/// Parses the statements of `envelopes` and checks their signatures, on all
/// cores. The keys of every policy statement among them join `keyring`
/// first, so that a policy change and the entries signed under it are
/// checked together.
#[doc(hidden)]
pub fn prepare(envelopes: &[&Envelope], keyring: &mut Keyring, mode: sigcheck::Mode) -> Vec<Prepared> {
    use rayon::prelude::*;
    let parsed: Vec<(Result<Statement, FormatError>, [u8; 32])> = envelopes
        .par_iter()
        .with_min_len(64)
        .map(|e| (Statement::parse(&e.payload), envelope_fingerprint(e)))
        .collect();
    for (s, _) in &parsed {
        if let Ok(s) = s {
            keyring.add_policy_keys(s);
        }
    }
    let checks = sigcheck::check_all(envelopes, keyring, mode);
    parsed
        .into_iter()
        .zip(checks)
        .map(|((statement, fingerprint), signatures)| Prepared {
            statement: Some(statement),
            signatures,
            fingerprint: Some(fingerprint),
        })
        .collect()
}

/// What a later entry may need to know about a build entry.
#[derive(Clone, Debug)]
pub struct BuildSummary {
    pub hash: EntryHash,
    pub digests: Vec<Digest>,
    pub dev_only: bool,
}

impl BuildSummary {
    /// The summary of a build entry; `None` for any other statement.
    pub fn of(entry: &UnverifiedEntry, statement: &Statement) -> Option<BuildSummary> {
        match &statement.predicate {
            Predicate::Build(b) => Some(BuildSummary {
                hash: entry.hash(),
                digests: statement.subject_digests(),
                dev_only: b.flags().dev_only,
            }),
            _ => None,
        }
    }
}

/// Why the chain prefix could not be read: the error of whatever holds it
/// (a store, for the main package), kept whole. Its message is that error's.
#[derive(Debug)]
pub struct PrefixError(Box<dyn std::error::Error + Send + Sync>);

impl PrefixError {
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> PrefixError {
        PrefixError(e.into())
    }
}

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PrefixError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Read access to the chain prefix before the entry being checked. A read
/// that fails refuses the entry as [`Failure::Io`].
pub trait Prefix {
    /// The build entry at `index`, or `None` if that entry is not a build.
    fn build_at(&self, index: u64) -> Result<Option<BuildSummary>, PrefixError>;
    /// Whether an entry with this envelope fingerprint is already in the chain.
    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, PrefixError>;
    /// Every entry with `digest` among its subjects, ascending by index.
    fn evidence_for(&self, digest: &Digest) -> Result<Vec<Evidence>, PrefixError>;
    /// Every build entry in `release`, ascending by index.
    fn release_builds(&self, release: &str) -> Result<Vec<ReleaseBuild>, PrefixError>;
}

/// The release a build entry belongs to, as the release rules read it.
pub fn release_build_of(index: u64, statement: &Statement) -> Option<(&str, ReleaseBuild)> {
    let Predicate::Build(b) = &statement.predicate else { return None };
    let ext = &b.build_definition.external_parameters;
    let release = ext.release.as_deref()?;
    Some((
        release,
        ReleaseBuild {
            index,
            artifact: ext.artifact.clone().unwrap_or_default(),
            digest: statement.subject_digests().first().copied(),
            revision: b.git_commit().map(str::to_string),
            dev_only: b.flags().dev_only,
        },
    ))
}

/// What an entry contributes to the evidence of each of its subject digests.
/// Signers are read from the envelope's key ids: the entry was verified when
/// it was appended.
pub fn evidence_of(entry: &UnverifiedEntry, statement: &Statement) -> Option<Evidence> {
    let kind = match &statement.predicate {
        Predicate::Build(_) => EvidenceKind::Build,
        Predicate::Validation(v) => {
            EvidenceKind::Validation { checks: v.checks.iter().map(|c| (c.name.clone(), c.result)).collect() }
        }
        Predicate::Promotion(p) => EvidenceKind::Promotion { to: p.to.clone() },
        Predicate::Policy(_) => return None,
    };
    Some(Evidence {
        index: entry.index,
        hash: entry.hash(),
        kind,
        dev_only: statement.predicate.is_dev_only(),
        signers: entry.envelope.signatures.iter().filter_map(|s| KeyId::parse(&s.keyid).ok()).collect(),
    })
}

/// An entry that holds at its place in the chain, with what checking it
/// found (statement, signers, the policy it sets). Only
/// [`ChainState::verify_next`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedEntry {
    entry: UnverifiedEntry,
    statement: Statement,
    signers: Vec<KeyId>,
    new_policy: Option<Arc<Policy>>,
    fingerprint: [u8; 32],
}

impl VerifiedEntry {
    pub fn index(&self) -> u64 {
        self.entry.index
    }
    pub fn hash(&self) -> EntryHash {
        self.entry.hash()
    }
    pub fn entry(&self) -> &UnverifiedEntry {
        &self.entry
    }
    pub fn statement(&self) -> &Statement {
        &self.statement
    }
    /// Key ids whose signatures verified, in envelope order.
    pub fn signers(&self) -> &[KeyId] {
        &self.signers
    }
    pub fn entry_ref(&self) -> EntryRef {
        EntryRef { index: self.index(), hash: self.hash() }
    }
    /// The policy this entry puts in force, if it is a policy entry.
    pub fn new_policy(&self) -> Option<&Arc<Policy>> {
        self.new_policy.as_ref()
    }
    /// The envelope's fingerprint (see [`UnverifiedEntry::envelope_fingerprint`]).
    pub fn envelope_fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }
    pub fn build_summary(&self) -> Option<BuildSummary> {
        BuildSummary::of(&self.entry, &self.statement)
    }
}

/// Where the chain stands: what the next entry must link to, and the policy
/// in force.
#[derive(Clone, Debug)]
pub struct ChainState {
    pub next_index: u64,
    pub head: EntryHash,
    pub last_time: u64,
    policy: Option<(EntryRef, Arc<Policy>)>,
    /// The hash of entry 0, once there is one.
    genesis: Option<EntryHash>,
}

impl Default for ChainState {
    fn default() -> Self {
        ChainState::empty()
    }
}

impl ChainState {
    /// The state before the genesis entry.
    pub fn empty() -> ChainState {
        ChainState { next_index: 0, head: EntryHash::ZERO, last_time: 0, policy: None, genesis: None }
    }

    /// Resumes from a known head whose policy entry is already verified.
    pub fn resume(
        next_index: u64,
        head: EntryHash,
        last_time: u64,
        policy_entry: EntryRef,
        policy: Arc<Policy>,
        genesis: EntryHash,
    ) -> Self {
        ChainState { next_index, head, last_time, policy: Some((policy_entry, policy)), genesis: Some(genesis) }
    }

    /// The genesis hash of the chain (`None` before entry 0).
    pub fn genesis(&self) -> Option<EntryHash> {
        self.genesis
    }

    /// The policy in force and the entry that set it (`None` before genesis).
    pub fn policy(&self) -> Option<(&EntryRef, &Arc<Policy>)> {
        self.policy.as_ref().map(|(r, p)| (r, p))
    }

    /// Checks that `entry` may follow this state. Every rule of the chain is
    /// here: index, link, time, encoding, statement, signatures, roles,
    /// policy transitions, bindings to earlier entries, no replays.
    pub fn verify_next(&self, entry: UnverifiedEntry, prefix: &dyn Prefix) -> Result<VerifiedEntry, VerifyError> {
        self.verify_next_prepared(entry, Prepared::default(), prefix)
    }

    /// [`ChainState::verify_next`], with work done ahead of time (see
    /// [`Prepared`]). The outcome is the same as without it, provided
    /// `prepared` was made by [`prepare`] from this entry's own envelope:
    /// the signature checks it carries are believed. (The main package's
    /// appends and this crate's chain walk are its only callers.)
    #[doc(hidden)]
    pub fn verify_next_prepared(
        &self,
        entry: UnverifiedEntry,
        prepared: Prepared,
        prefix: &dyn Prefix,
    ) -> Result<VerifiedEntry, VerifyError> {
        debug_assert!(
            prepared.fingerprint.is_none_or(|f| f == entry.envelope_fingerprint()),
            "work prepared for another envelope"
        );
        let index = self.next_index;
        let err = |f: Failure, c: Reason, r: String| VerifyError::coded(index, f, c, r);
        let io = |e: PrefixError| VerifyError::coded(index, Failure::Io, Reason::Io, e.to_string());
        if entry.index != index {
            let why = if entry.index > index {
                format!("entry {index} is missing (found index {} in its place)", entry.index)
            } else {
                format!("index {} is out of order (expected {index})", entry.index)
            };
            return Err(err(Failure::Invalid, Reason::Index, why));
        }
        if entry.prev_hash != self.head {
            let why = if index == 0 {
                "genesis entry must have an all-zero prev_hash".to_string()
            } else {
                format!("prev_hash {} does not match entry {} hash {}", entry.prev_hash, index - 1, self.head)
            };
            return Err(err(Failure::Invalid, Reason::PrevHash, why));
        }
        if entry.integrated_time < self.last_time {
            return Err(err(
                Failure::Invalid,
                Reason::TimeOrder,
                format!("integrated_time {} is before the previous entry's {}", entry.integrated_time, self.last_time),
            ));
        }
        if entry.envelope.payload_type != PAYLOAD_TYPE_IN_TOTO {
            return Err(err(
                Failure::Invalid,
                Reason::PayloadType,
                format!("payload type {:?} is not {PAYLOAD_TYPE_IN_TOTO}", entry.envelope.payload_type),
            ));
        }
        // Past the genesis entry the policy in force judges every signature,
        // whatever the statement says, so the signatures are checked before
        // the payload is interpreted: tampered bytes fail as a bad signature,
        // never as, say, a statement "from a newer provledger".
        let checks = &prepared.signatures;
        let signed = match &self.policy {
            Some((_, current)) => Some(check_signatures(current, &entry, index, checks)?),
            None => None,
        };
        let statement = match prepared.statement {
            Some(parsed) => parsed,
            None => Statement::parse(&entry.envelope.payload),
        }
        .map_err(|e| VerifyError::format(index, e))?;

        // The policy that judges the signatures, and the one in force after.
        let (judge, new_policy) = match (&self.policy, &statement.predicate) {
            (None, Predicate::Policy(p)) => {
                if p.previous.is_some() {
                    return Err(err(
                        Failure::Invalid,
                        Reason::PolicyPrevious,
                        "genesis policy must not name a previous policy".into(),
                    ));
                }
                let policy = Arc::new(
                    Policy::from_predicate(p, &format!("entry {index}")).map_err(|e| VerifyError::policy(index, e))?,
                );
                (policy.clone(), Some(policy))
            }
            (None, _) => {
                return Err(err(
                    Failure::Invalid,
                    Reason::GenesisNotPolicy,
                    "entry 0 must be a policy statement (the genesis policy)".into(),
                ));
            }
            (Some((current_ref, current)), Predicate::Policy(p)) => {
                if p.previous != Some(*current_ref) {
                    return Err(err(
                        Failure::Invalid,
                        Reason::PolicyPrevious,
                        format!(
                            "policy change must name the policy in force (entry {} {}) as previous",
                            current_ref.index, current_ref.hash
                        ),
                    ));
                }
                let policy = Arc::new(
                    Policy::from_predicate(p, &format!("entry {index}")).map_err(|e| VerifyError::policy(index, e))?,
                );
                (current.clone(), Some(policy))
            }
            (Some((_, current)), _) => (current.clone(), None),
        };
        let signers = match signed {
            Some(s) => s,
            None => check_signatures(&judge, &entry, index, checks)?,
        };
        if let Some(named) = statement.predicate.flags().and_then(|f| f.ledger)
            && Some(named) != self.genesis
        {
            return Err(err(
                Failure::Invalid,
                Reason::OtherLedger,
                format!(
                    "the statement is for the ledger with genesis {named}, not this one (genesis {})",
                    self.genesis.map_or_else(|| "-".to_string(), |g| g.to_string())
                ),
            ));
        }

        let role = statement.predicate.role();
        let mut lacking_role = Vec::new();
        let mut with_role = 0usize;
        for id in &signers {
            let key = judge.key(id).expect("signers are keys of the judging policy");
            if key.roles.contains(&role) {
                with_role += 1;
            } else {
                lacking_role.push(format!("key {id} ({}) does not hold the {role} role", key.name));
            }
        }
        let needed = judge.threshold(role);
        if with_role < needed {
            let mut why = lacking_role.join("; ");
            if why.is_empty() || needed > 1 {
                if !why.is_empty() {
                    why.push_str("; ");
                }
                why.push_str(&format!("{with_role} signature(s) with the {role} role, {needed} needed"));
            }
            return Err(err(Failure::Denied, Reason::Role, why));
        }
        if let Predicate::Validation(v) = &statement.predicate
            && let Some(build) = &v.build
        {
            if build.index >= index {
                return Err(err(
                    Failure::Invalid,
                    Reason::ValidationBuild,
                    format!("validation names build entry {}, which is not before it", build.index),
                ));
            }
            let summary = prefix.build_at(build.index).map_err(io)?.ok_or_else(|| {
                err(
                    Failure::Invalid,
                    Reason::ValidationBuild,
                    format!("validation names entry {}, which is not a build", build.index),
                )
            })?;
            if summary.hash != build.hash {
                return Err(err(
                    Failure::Invalid,
                    Reason::ValidationBuild,
                    format!(
                        "validation names build entry {} with hash {}, but its hash is {}",
                        build.index, build.hash, summary.hash
                    ),
                ));
            }
            for d in statement.subject_digests() {
                if !summary.digests.contains(&d) {
                    return Err(err(
                        Failure::Invalid,
                        Reason::ValidationBuild,
                        format!("validated digest {d} is not a subject of build entry {}", build.index),
                    ));
                }
            }
        }

        if let Some((release, build)) = release_build_of(index, &statement) {
            let earlier = prefix.release_builds(release).map_err(io)?;
            if let Some(why) = gate::release_revision_conflict(release, &earlier, build.revision.as_deref()) {
                return Err(err(Failure::Denied, Reason::ReleaseRevision, why));
            }
        }

        if let Predicate::Promotion(p) = &statement.predicate {
            // Verify replays the gate: a promotion that the gate would have
            // denied, or that names other evidence, does not hold.
            let digest = statement.subject_digests().first().copied();
            if let (Some(r), Some(d)) = (&p.release, &digest) {
                let builds = prefix.release_builds(&r.id).map_err(io)?;
                if let Some(why) = gate::release_promotion_conflict(&r.id, &builds, &r.artifact, d, &r.supersedes) {
                    return Err(err(
                        Failure::Denied,
                        Reason::ReleaseRebuild,
                        format!("the release gate denies this promotion: {why}"),
                    ));
                }
            }
            let tag = p.tag_target.as_deref().and_then(tag_of);
            let promoter = signers
                .iter()
                .find(|id| judge.key(id).is_some_and(|k| k.roles.contains(&Role::Promotion)))
                .copied()
                .expect("role threshold checked above");
            let evidence = match digest {
                Some(d) => prefix.evidence_for(&d).map_err(io)?,
                None => Vec::new(),
            };
            match gate::decide(&judge, &evidence, &gate::Request { digest, to: &p.to, promoter, tag: tag.as_deref() }) {
                Decision::Deny(reasons) => {
                    return Err(err(
                        Failure::Denied,
                        Reason::GateDenied,
                        format!("the gate denies this promotion: {}", reasons.join("; ")),
                    ));
                }
                Decision::Allow(a) => {
                    if a.build != p.build || a.validations != p.validations || a.from != p.from {
                        return Err(err(
                            Failure::Invalid,
                            Reason::GateEvidence,
                            format!(
                                "the promotion names build {:?}, validations {:?}, from {:?}; the gate relies on build {:?}, validations {:?}, from {:?}",
                                p.build.index,
                                p.validations.iter().map(|r| r.index).collect::<Vec<_>>(),
                                p.from,
                                a.build.index,
                                a.validations.iter().map(|r| r.index).collect::<Vec<_>>(),
                                a.from
                            ),
                        ));
                    }
                }
            }
        }

        let fingerprint = prepared.fingerprint.unwrap_or_else(|| entry.envelope_fingerprint());
        if prefix.has_envelope(&fingerprint).map_err(io)? {
            return Err(err(
                Failure::Invalid,
                Reason::Replay,
                "the same signed statement is already in the ledger (replayed envelope)".into(),
            ));
        }
        Ok(VerifiedEntry { entry, statement, signers, new_policy, fingerprint })
    }

    /// Moves past a verified entry.
    pub fn advance(&mut self, v: &VerifiedEntry) {
        debug_assert_eq!(v.index(), self.next_index);
        self.next_index += 1;
        self.head = v.hash();
        self.last_time = v.entry.integrated_time;
        if self.genesis.is_none() {
            self.genesis = Some(v.hash());
        }
        if let Some(p) = &v.new_policy {
            self.policy = Some((v.entry_ref(), p.clone()));
        }
    }
}

/// The tag of a recorded `REPO:TAG` tag target (checked when parsed).
fn tag_of(target: &str) -> Option<String> {
    target.parse::<crate::core::image_ref::ImageRef>().ok()?.tag().map(str::to_string)
}

/// Checks every signature of an entry's envelope against the keys of
/// `policy`: each key known, each signature valid, no key twice. Returns the
/// signers in envelope order.
fn check_signatures(
    policy: &Policy,
    entry: &UnverifiedEntry,
    index: u64,
    checks: &[Option<SigCheck>],
) -> Result<Vec<KeyId>, VerifyError> {
    signers_coded(policy, &entry.envelope, checks).map_err(|(f, code, why)| VerifyError::coded(index, f, code, why))
}

/// The rule of [`check_signatures`] for an envelope wherever it comes from:
/// each signature by a key of `policy`, each valid, no key twice. Returns
/// the signers in envelope order, or why not.
pub fn envelope_signers(policy: &Policy, envelope: &Envelope) -> Result<Vec<KeyId>, (Failure, String)> {
    envelope_signers_checked(policy, envelope, &[])
}

/// [`envelope_signers`], using `checks` (per signature, in envelope order)
/// where a signature was already checked with the very key the policy
/// names for it; any other signature is verified here.
pub fn envelope_signers_checked(
    policy: &Policy,
    envelope: &Envelope,
    checks: &[Option<SigCheck>],
) -> Result<Vec<KeyId>, (Failure, String)> {
    signers_coded(policy, envelope, checks).map_err(|(f, _, why)| (f, why))
}

fn signers_coded(
    policy: &Policy,
    envelope: &Envelope,
    checks: &[Option<SigCheck>],
) -> Result<Vec<KeyId>, (Failure, Reason, String)> {
    let mut message = None;
    let mut signers = Vec::with_capacity(envelope.signatures.len());
    for (i, sig) in envelope.signatures.iter().enumerate() {
        let id = KeyId::parse(&sig.keyid)
            .map_err(|e| (Failure::Invalid, Reason::KeyId, format!("signature key id: {e}")))?;
        let Some(key) = policy.key(&id) else {
            return Err((Failure::Denied, Reason::UnknownKey, format!("key {id} is not in the policy in force")));
        };
        let valid = match checks.get(i).copied().flatten() {
            Some(c) if c.key == key.public => c.valid,
            _ => key.public.verify(message.get_or_insert_with(|| envelope.pae()), &sig.sig),
        };
        if !valid {
            return Err((
                Failure::Invalid,
                Reason::BadSignature,
                format!("signature by key {id} ({}) does not verify", key.name),
            ));
        }
        if signers.contains(&id) {
            return Err((Failure::Invalid, Reason::DuplicateSigner, format!("key {id} ({}) signed twice", key.name)));
        }
        signers.push(id);
    }
    Ok(signers)
}

/// A prefix held in memory, for verifying a chain from its first entry.
#[derive(Default)]
pub struct MemPrefix {
    builds: HashMap<u64, BuildSummary>,
    envelopes: HashSet<[u8; 32]>,
    evidence: HashMap<Digest, Vec<Evidence>>,
    releases: HashMap<String, Vec<ReleaseBuild>>,
}

impl MemPrefix {
    pub fn record(&mut self, v: &VerifiedEntry) {
        if let Some(b) = v.build_summary() {
            self.builds.insert(v.index(), b);
        }
        if let Some((release, build)) = release_build_of(v.index(), &v.statement) {
            self.releases.entry(release.to_string()).or_default().push(build);
        }
        self.envelopes.insert(v.fingerprint);
        if let Some(ev) = evidence_of(&v.entry, &v.statement) {
            let mut digests = v.statement.subject_digests();
            digests.sort();
            digests.dedup();
            for d in digests {
                self.evidence.entry(d).or_default().push(ev.clone());
            }
        }
    }
}

impl Prefix for MemPrefix {
    fn build_at(&self, index: u64) -> Result<Option<BuildSummary>, PrefixError> {
        Ok(self.builds.get(&index).cloned())
    }
    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, PrefixError> {
        Ok(self.envelopes.contains(fingerprint))
    }
    fn evidence_for(&self, digest: &Digest) -> Result<Vec<Evidence>, PrefixError> {
        Ok(self.evidence.get(digest).cloned().unwrap_or_default())
    }
    fn release_builds(&self, release: &str) -> Result<Vec<ReleaseBuild>, PrefixError> {
        Ok(self.releases.get(release).cloned().unwrap_or_default())
    }
}

/// The outcome of a whole-chain verification.
#[derive(Clone, Debug)]
pub struct ChainReport {
    pub entries: u64,
    pub genesis: Option<EntryHash>,
    pub head: EntryHash,
    pub state: ChainState,
}

/// Entries per chunk of the verification pipeline: a chunk is decoded and
/// its signatures checked on all cores while the previous one is walked.
const CHUNK: usize = 2048;

/// A stored entry after the parallel stage: where it was stored, and the
/// entry decoded with its prepared work (or why it does not decode).
type Decoded = (u64, Result<(UnverifiedEntry, Prepared), FormatError>);

/// Verifies a whole chain from entry 0, in order. `entries` yields each
/// stored entry's bytes with the index it is stored under. Stops at the first
/// failure, naming the entry. Signatures are checked in batches
/// ([`sigcheck::Mode::Batch`]).
pub fn verify_chain<I>(
    entries: I,
    expected_genesis: Option<&EntryHash>,
    on_entry: impl FnMut(&VerifiedEntry),
) -> Result<ChainReport, VerifyError>
where
    I: IntoIterator<Item = Result<(u64, Vec<u8>), VerifyError>>,
{
    verify_chain_with(entries, expected_genesis, sigcheck::Mode::Batch, on_entry)
}

/// [`verify_chain`] with a choice of signature checks.
///
/// Two stages run at once: a helper thread takes chunks of stored bytes and,
/// on all cores, decodes them, parses their statements and checks their
/// signatures ([`prepare`]); the calling thread reads the store and walks the
/// chain in order with [`ChainState::verify_next_prepared`]. The outcome,
/// including which entry is named on failure, is that of walking the chain
/// one entry at a time.
pub fn verify_chain_with<I>(
    entries: I,
    expected_genesis: Option<&EntryHash>,
    mode: sigcheck::Mode,
    mut on_entry: impl FnMut(&VerifiedEntry),
) -> Result<ChainReport, VerifyError>
where
    I: IntoIterator<Item = Result<(u64, Vec<u8>), VerifyError>>,
{
    use std::sync::mpsc::sync_channel;
    type Chunk<T> = Vec<Result<T, VerifyError>>;

    let mut state = ChainState::empty();
    let mut prefix = MemPrefix::default();
    let mut genesis = None;
    std::thread::scope(|scope| {
        // At most 3 chunks in flight against queues of 2 each way: neither
        // side can block the other for good.
        let (raw_tx, raw_rx) = sync_channel::<Chunk<(u64, Vec<u8>)>>(2);
        let (ready_tx, ready_rx) = sync_channel::<Chunk<Decoded>>(2);
        scope.spawn(move || {
            let mut keyring = Keyring::default();
            for chunk in raw_rx {
                if ready_tx.send(decode_chunk(chunk, &mut keyring, mode)).is_err() {
                    break;
                }
            }
        });
        let mut input = entries.into_iter().fuse();
        let mut in_flight = 0;
        loop {
            while in_flight < 3 {
                let chunk: Vec<_> = input.by_ref().take(CHUNK).collect();
                if chunk.is_empty() {
                    break;
                }
                raw_tx.send(chunk).expect("the preparing thread is running");
                in_flight += 1;
            }
            if in_flight == 0 {
                break;
            }
            let chunk = ready_rx.recv().expect("the preparing thread is running");
            in_flight -= 1;
            for item in chunk {
                let (stored_at, decoded) = item?;
                let expected = state.next_index;
                if stored_at != expected {
                    let why = if stored_at > expected {
                        format!("entry {expected} is missing")
                    } else {
                        format!("entry stored under index {stored_at} is out of order")
                    };
                    return Err(VerifyError::coded(expected, Failure::Invalid, Reason::Index, why));
                }
                let (entry, prepared) = decoded.map_err(|e| VerifyError::format(expected, e))?;
                // The genesis hash is checked before anything in the entry is
                // believed: a different genesis is a different ledger, whatever it says.
                if expected == 0
                    && let Some(want) = expected_genesis
                    && entry.hash() != *want
                {
                    return Err(VerifyError::coded(
                        0,
                        Failure::Invalid,
                        Reason::Genesis,
                        format!("genesis hash is {}, expected {want}", entry.hash()),
                    ));
                }
                let v = state.verify_next_prepared(entry, prepared, &prefix)?;
                if expected == 0 {
                    genesis = Some(v.hash());
                }
                on_entry(&v);
                prefix.record(&v);
                state.advance(&v);
            }
        }
        Ok(())
    })?;
    if state.next_index == 0 && expected_genesis.is_some() {
        return Err(VerifyError::coded(0, Failure::Invalid, Reason::Genesis, "the ledger is empty: no genesis entry"));
    }
    Ok(ChainReport { entries: state.next_index, genesis, head: state.head, state })
}

/// The parallel stage of [`verify_chain_with`]: decodes a chunk and prepares
/// its entries. Read errors pass through in their place.
fn decode_chunk(
    chunk: Vec<Result<(u64, Vec<u8>), VerifyError>>,
    keyring: &mut Keyring,
    mode: sigcheck::Mode,
) -> Vec<Result<Decoded, VerifyError>> {
    use rayon::prelude::*;
    type Read = Result<(u64, Result<UnverifiedEntry, FormatError>), VerifyError>;
    let decoded: Vec<Read> = chunk
        .into_par_iter()
        .with_min_len(64)
        .map(|item| item.map(|(at, bytes)| (at, UnverifiedEntry::decode(&bytes))))
        .collect();
    let envelopes: Vec<&Envelope> =
        decoded.iter().filter_map(|d| d.as_ref().ok()?.1.as_ref().ok()).map(|e| &e.envelope).collect();
    let mut prepared = prepare(&envelopes, keyring, mode).into_iter();
    decoded
        .into_iter()
        .map(|item| {
            item.map(|(at, entry)| (at, entry.map(|e| (e, prepared.next().expect("one prepared per decoded entry")))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::SecretKey;
    use crate::core::statement::{
        BUILD_TYPE, BuildDefinition, BuildMetadata, BuildPredicate, Builder, ExternalParameters, InternalParameters,
        LedgerFlags, PolicyKey, PolicyLog, PolicyPredicate, RunDetails, Subject,
    };

    const T: u64 = 1_900_000_000;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed(&[n; 32])
    }

    /// Key 1 holds the policy role, key 2 the build role.
    fn genesis_policy(previous: Option<EntryRef>) -> Statement {
        let k = |n: u8, name: &str, role: Role| {
            let p = key(n).public();
            PolicyKey {
                name: name.into(),
                id: p.id(),
                algorithm: "ed25519".into(),
                public: p.to_hex(),
                roles: vec![role],
            }
        };
        let log = crate::core::note::NoteVerifier::new("test", key(9).public()).unwrap();
        Statement {
            subjects: vec![Subject::pinned("provledger-policy".into(), Digest::of(b"policy"))],
            predicate: Predicate::Policy(PolicyPredicate {
                version: 1,
                keys: vec![k(1, "root", Role::Policy), k(2, "ci", Role::Build)],
                environments: Vec::new(),
                policy_threshold: 1,
                log: PolicyLog { verifier_key: log.to_text() },
                previous,
            }),
        }
    }

    fn build(n: u8, ledger: Option<EntryHash>) -> Statement {
        let digest = Digest::of(&[n]);
        Statement {
            subjects: vec![Subject::pinned("registry.example.com/app".into(), digest)],
            predicate: Predicate::Build(BuildPredicate {
                build_definition: BuildDefinition {
                    build_type: BUILD_TYPE.into(),
                    external_parameters: ExternalParameters {
                        image: format!("registry.example.com/app@{digest}"),
                        tag: None,
                        artifact: None,
                        release: None,
                        ci: None,
                        media_type: None,
                        platforms: Vec::new(),
                    },
                    internal_parameters: InternalParameters {
                        provledger: LedgerFlags { ledger, ..LedgerFlags::default() },
                    },
                    resolved_dependencies: Vec::new(),
                },
                run_details: RunDetails {
                    builder: Builder { id: "https://ci.example/builder".into() },
                    metadata: BuildMetadata { invocation_id: None, finished_on: crate::core::statement::rfc3339(T) },
                },
            }),
        }
    }

    fn signed(s: &Statement, by: u8) -> Envelope {
        Envelope::sign(PAYLOAD_TYPE_IN_TOTO, s.to_payload(), &[&key(by)])
    }

    /// A chain of the genesis policy and `rest`; the state after it, or the
    /// first refusal.
    fn walk(rest: &[Envelope]) -> Result<ChainState, VerifyError> {
        let mut state = ChainState::empty();
        let mut prefix = MemPrefix::default();
        for envelope in std::iter::once(signed(&genesis_policy(None), 1)).chain(rest.iter().cloned()) {
            let (entry, _) = UnverifiedEntry::build(state.next_index, state.head, T, envelope);
            let v = state.verify_next(entry, &prefix)?;
            prefix.record(&v);
            state.advance(&v);
        }
        Ok(state)
    }

    fn genesis_hash() -> EntryHash {
        walk(&[]).unwrap().genesis().unwrap()
    }

    #[test]
    fn a_chain_of_a_policy_and_builds_holds() {
        let g = genesis_hash();
        let state = walk(&[signed(&build(1, Some(g)), 2), signed(&build(2, None), 2)]).unwrap();
        assert_eq!((state.next_index, state.genesis()), (3, Some(g)));
    }

    #[test]
    fn each_rule_is_refused_with_its_code() {
        let g = genesis_hash();
        let code = |rest: &[Envelope]| walk(rest).unwrap_err().code;
        assert_eq!(code(&[signed(&build(1, Some(g)), 1)]), Reason::Role, "the root key holds no build role");
        assert_eq!(code(&[signed(&build(1, Some(g)), 3)]), Reason::UnknownKey);
        let elsewhere = EntryHash::from_bytes([7; 32]);
        assert_eq!(code(&[signed(&build(1, Some(elsewhere)), 2)]), Reason::OtherLedger);
        let once = signed(&build(1, Some(g)), 2);
        assert_eq!(code(&[once.clone(), once]), Reason::Replay);
        let mut tampered = signed(&build(1, Some(g)), 2);
        tampered.payload.push(b' ');
        assert_eq!(code(&[tampered]), Reason::BadSignature);
        let wrong_previous = EntryRef { index: 0, hash: EntryHash::from_bytes([1; 32]) };
        assert_eq!(code(&[signed(&genesis_policy(Some(wrong_previous)), 1)]), Reason::PolicyPrevious);
    }

    #[test]
    fn the_links_between_entries_are_checked_first() {
        let state = walk(&[]).unwrap();
        let prefix = MemPrefix::default();
        let envelope = signed(&build(1, None), 2);
        let at = |index, prev, time| {
            let (entry, _) = UnverifiedEntry::build(index, prev, time, envelope.clone());
            state.verify_next(entry, &prefix).unwrap_err().code
        };
        assert_eq!(at(2, state.head, T), Reason::Index);
        assert_eq!(at(1, EntryHash::ZERO, T), Reason::PrevHash);
        assert_eq!(at(1, state.head, T - 1), Reason::TimeOrder);
        let (entry, _) = UnverifiedEntry::build(0, EntryHash::ZERO, T, envelope.clone());
        assert_eq!(ChainState::empty().verify_next(entry, &prefix).unwrap_err().code, Reason::GenesisNotPolicy);
    }
}
