//! The ledger: appends and whole-ledger verification over a [`Store`].
//!
//! Every append runs the entry through [`ChainState::verify_next`] against the
//! stored prefix before it is written, so the store only ever receives
//! entries the auditor's verifier accepts.

use std::collections::HashMap;
use std::sync::Arc;

pub mod dir;
pub mod record;

use crate::core::FormatError;
use crate::core::digest::Digest;
use crate::core::dsse::Envelope;
use crate::core::entry::UnverifiedEntry;
use crate::core::hash::EntryHash;
use crate::core::keys::{KeyId, SecretKey};
use crate::core::note::{self, Checkpoint, NoteVerifier};

use crate::core::statement::{EntryRef, Predicate, Statement};
use crate::gate::{self, Allowed, Decision, Evidence, ReleaseBuild, ReleaseChoice};
use crate::policy::Policy;
use crate::sigcheck::{self, Keyring};
use crate::store::{Append, Head, NewEntry, NodeWrite, Store, StoreError};
use crate::tree::{self, Frontier, Hash, Nodes, TreeError};
use crate::verify::{
    BuildSummary, ChainReport, ChainState, Failure, MemPrefix, Prefix, PrefixError, Prepared, VerifiedEntry,
    VerifyError, evidence_of, prepare, release_build_of, verify_chain_with,
};
pub use provledger_verify::checkpoint::{SignedCheckpoint, leaf_of};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("the ledger has no genesis entry; run `provledger init`")]
    Empty,
    #[error("the ledger already has a genesis entry")]
    AlreadyInitialised,
    #[error("stored entry {index}: {source}")]
    Stored { index: u64, source: FormatError },
    #[error("no log key to sign the checkpoint with; the ledger keeps it as log.key in its directory")]
    NoLogKey,
    #[error("the log key at hand ({have}) is not the one the policy names ({want}); the checkpoint cannot be signed")]
    LogKeyMismatch { have: String, want: String },
    #[error("Merkle tree: {0}")]
    Tree(#[from] TreeError),
    #[error("checkpoint: {0}")]
    Checkpoint(FormatError),
}

/// A ledger over a store.
pub struct Ledger<S: Store> {
    store: S,
    log_key: Option<SecretKey>,
}

/// Entries from another copy of the ledger, verified as a chain extending
/// the stored one and not yet written (see [`Ledger::replica`]).
pub struct Replica<'a, S: Store> {
    ledger: &'a Ledger<S>,
    expected: Option<Head>,
    state: ChainState,
    prefix: StorePrefix<'a, S>,
    verified: Vec<VerifiedEntry>,
    writes: Vec<NewEntry>,
}

impl<S: Store> Replica<'_, S> {
    /// Decodes `entries` strictly and verifies them as the chain's next.
    pub fn push(&mut self, entries: &[Vec<u8>]) -> Result<(), LedgerError> {
        let next = self.state.next_index;
        let decoded = entries
            .iter()
            .enumerate()
            .map(|(i, bytes)| UnverifiedEntry::decode(bytes).map_err(|e| VerifyError::format(next + i as u64, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let prepared = prepare_for(&self.state, decoded.iter().map(|e| &e.envelope));
        for ((entry, prepared), bytes) in decoded.into_iter().zip(prepared).zip(entries) {
            let v = self.state.verify_next_prepared(entry, prepared, &self.prefix)?;
            self.writes.push(NewEntry { bytes: bytes.clone(), ..index_rows(&v) });
            self.prefix.pending.record(&v);
            self.state.advance(&v);
            self.verified.push(v);
        }
        Ok(())
    }

    /// Size of the chain with the entries pushed.
    pub fn size(&self) -> u64 {
        self.state.next_index
    }

    /// Checks `checkpoint` against the entries pushed (signed by the log key
    /// in force after them, their tree's size and root) and writes them with
    /// it in one atomic, durable write; on any failure nothing is.
    pub fn finish(self, checkpoint: &str) -> Result<SignedCheckpoint, LedgerError> {
        let Replica { ledger, expected, state, verified, writes, .. } = self;
        let (policy_ref, policy) = state.policy().ok_or(LedgerError::Empty)?;
        let last = state.next_index.saturating_sub(1);
        let signed = SignedCheckpoint::open(checkpoint, policy.log())
            .map_err(|e| VerifyError::new(last, Failure::Invalid, format!("received checkpoint: {e}")))?;
        let (nodes, frontier) = ledger.grow_tree(expected.as_ref(), &verified)?;
        if signed.checkpoint.size != frontier.size() || signed.checkpoint.root != frontier.root() {
            return Err(VerifyError::new(
                last,
                Failure::Invalid,
                format!(
                    "the received checkpoint (size {}, root {}) does not match the entries received \
                     (size {}, root {})",
                    signed.checkpoint.size,
                    base64_root(&signed.checkpoint.root),
                    frontier.size(),
                    base64_root(&frontier.root())
                ),
            )
            .into());
        }
        if verified.is_empty() {
            return Ok(signed);
        }
        let new_head = Head {
            count: state.next_index,
            hash: state.head,
            last_time: state.last_time,
            policy_index: policy_ref.index,
        };
        let append = Append { entries: &writes, nodes: &nodes, checkpoint, head: &new_head };
        ledger.store.append(expected.as_ref(), &append)?;
        Ok(signed)
    }
}

/// Tree nodes from the store, plus those of a batch being appended.
struct StoreNodes<'a, S: Store> {
    store: &'a S,
    pending: HashMap<(u32, u64), Hash>,
}

impl<S: Store> Nodes for StoreNodes<'_, S> {
    type Error = LedgerError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        if let Some(h) = self.pending.get(&(level, index)) {
            return Ok(*h);
        }
        self.store
            .node(level, index)?
            .ok_or_else(|| StoreError::Corrupt(format!("Merkle tree node ({level}, {index}) is missing")).into())
    }
}

/// The rule for new appends, beyond the chain rules that every copy of the
/// ledger checks: a statement that is not a policy must name the ledger it
/// is for, so that a statement signed for another ledger trusting the same
/// key cannot be replayed here. (The chain rules refuse one naming another
/// ledger; entries from before the binding existed carry none and still
/// verify.)
fn require_binding(v: VerifiedEntry) -> Result<VerifiedEntry, VerifyError> {
    match v.statement().predicate.flags() {
        Some(f) if f.ledger.is_none() => Err(VerifyError::coded(
            v.index(),
            Failure::Denied,
            crate::verify::Reason::Unbound,
            "the statement names no ledger (internalParameters.provledger.ledger / provledger.ledger): \
             new statements must be bound to the genesis hash of the ledger they are for",
        )),
        _ => Ok(v),
    }
}

/// Reads the prefix from the store, plus entries of the batch being appended.
struct StorePrefix<'a, S: Store> {
    store: &'a S,
    pending: MemPrefix,
    /// Envelope fingerprints the store was asked about at once and does
    /// not hold (asked after the head the entries extend was read, so
    /// absent from it too).
    absent: std::collections::HashSet<[u8; 32]>,
}

impl<'a, S: Store> StorePrefix<'a, S> {
    fn new(store: &'a S) -> Self {
        StorePrefix { store, pending: MemPrefix::default(), absent: Default::default() }
    }

    /// Asks the store about every one of `envelopes` in one call.
    fn look_up(&mut self, envelopes: &[Envelope]) -> Result<(), StoreError> {
        let fingerprints: Vec<[u8; 32]> = envelopes.iter().map(crate::core::entry::envelope_fingerprint).collect();
        let found = self.store.envelope_entries(&fingerprints)?;
        self.absent.extend(fingerprints.into_iter().zip(found).filter(|(_, i)| i.is_none()).map(|(f, _)| f));
        Ok(())
    }
}

impl<S: Store> Prefix for StorePrefix<'_, S> {
    fn build_at(&self, index: u64) -> Result<Option<BuildSummary>, PrefixError> {
        if let Some(b) = self.pending.build_at(index)? {
            return Ok(Some(b));
        }
        let stored = read_stored(self.store, index).map_err(PrefixError::new)?;
        Ok(stored.and_then(|e| BuildSummary::of(&e.entry, &e.statement)))
    }

    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, PrefixError> {
        if self.pending.has_envelope(fingerprint)? {
            return Ok(true);
        }
        Ok(!self.absent.contains(fingerprint) && self.store.has_envelope(fingerprint).map_err(PrefixError::new)?)
    }

    fn evidence_for(&self, digest: &Digest) -> Result<Vec<Evidence>, PrefixError> {
        let mut out = stored_evidence(self.store, digest).map_err(PrefixError::new)?;
        out.extend(self.pending.evidence_for(digest)?);
        Ok(out)
    }

    fn release_builds(&self, release: &str) -> Result<Vec<ReleaseBuild>, PrefixError> {
        let mut out = stored_release_builds(self.store, release).map_err(PrefixError::new)?;
        out.extend(self.pending.release_builds(release)?);
        Ok(out)
    }
}

/// The build entries of a release, from the release index.
fn stored_release_builds<S: Store>(store: &S, release: &str) -> Result<Vec<ReleaseBuild>, LedgerError> {
    let mut out = Vec::new();
    for index in store.builds_of_release(release)? {
        let e = read_stored(store, index)?
            .ok_or_else(|| StoreError::Corrupt(format!("indexed entry {index} is missing")))?;
        match release_build_of(index, &e.statement) {
            Some((r, b)) if r == release => out.push(b),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "the release index lists entry {index} under {release}, but it is no build of it"
                ))
                .into());
            }
        }
    }
    Ok(out)
}

/// Evidence for `digest` from the subject index: reads only the entries that
/// name the digest, so a decision costs the same on a large ledger as on a
/// small one.
fn stored_evidence<S: Store>(store: &S, digest: &Digest) -> Result<Vec<Evidence>, LedgerError> {
    let mut out = Vec::new();
    for index in store.entries_for_subject(digest)? {
        let e = read_stored(store, index)?
            .ok_or_else(|| StoreError::Corrupt(format!("indexed entry {index} is missing")))?;
        out.extend(evidence_of(&e.entry, &e.statement));
    }
    Ok(out)
}

/// Reads, decodes and parses one stored entry; `None` when there is none.
fn read_stored<S: Store>(store: &S, index: u64) -> Result<Option<StoredEntry>, LedgerError> {
    let Some(bytes) = store.get(index)? else { return Ok(None) };
    let entry = UnverifiedEntry::decode(&bytes).map_err(|source| LedgerError::Stored { index, source })?;
    let statement =
        Statement::parse(&entry.envelope.payload).map_err(|source| LedgerError::Stored { index, source })?;
    Ok(Some(StoredEntry { entry, statement }))
}

/// The release gate's answer.
#[derive(Clone, Debug)]
pub enum ReleaseDecision {
    /// Every artifact, with the digest chosen and the gate's evidence.
    Allow(Vec<ReleaseArtifact>),
    /// Every reason, each naming its artifact.
    Deny(Vec<String>),
}

/// One artifact of an allowed release promotion.
#[derive(Clone, Debug)]
pub struct ReleaseArtifact {
    pub choice: ReleaseChoice,
    /// The image reference its build recorded.
    pub image: String,
    pub allowed: Allowed,
}

/// An entry read back from the ledger's own store, decoded and its statement
/// parsed, for queries (its place in the chain is vouched for by `verify`,
/// not re-checked here).
#[derive(Clone, Debug)]
pub struct StoredEntry {
    pub entry: UnverifiedEntry,
    pub statement: Statement,
}

impl StoredEntry {
    /// The key ids the envelope's signatures name, in envelope order: its
    /// signers, since the chain rules accepted the entry (each signature by
    /// a key of the policy in force, valid, no key twice) before it was stored.
    pub fn signers(&self) -> Vec<KeyId> {
        self.entry.envelope.signatures.iter().filter_map(|s| KeyId::parse(&s.keyid).ok()).collect()
    }
}

impl<S: Store> Ledger<S> {
    /// A ledger that can read and verify; appends need [`Ledger::with_log_key`].
    pub fn new(store: S) -> Ledger<S> {
        Ledger { store, log_key: None }
    }

    /// The ledger's own key, which signs a checkpoint after every append.
    pub fn with_log_key(mut self, key: SecretKey) -> Ledger<S> {
        self.log_key = Some(key);
        self
    }

    fn nodes(&self) -> StoreNodes<'_, S> {
        StoreNodes { store: &self.store, pending: HashMap::new() }
    }

    /// The store, giving the ledger up.
    pub fn into_store(self) -> S {
        self.store
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The chain state at the head: next index, head hash, policy in force.
    pub fn state(&self) -> Result<ChainState, LedgerError> {
        let Some(head) = self.store.head()? else {
            return Ok(ChainState::empty());
        };
        let policy_entry = self.read(head.policy_index)?;
        let Predicate::Policy(p) = &policy_entry.statement.predicate else {
            return Err(StoreError::Corrupt(format!(
                "head names entry {} as the policy, but it is not one",
                head.policy_index
            ))
            .into());
        };
        let policy = Policy::from_predicate(p, &format!("entry {}", head.policy_index))
            .map_err(|e| VerifyError::new(head.policy_index, Failure::Invalid, e.to_string()))?;
        let genesis = self.genesis_hash()?.ok_or_else(|| StoreError::Corrupt("entry 0 is missing".into()))?;
        Ok(ChainState::resume(
            head.count,
            head.hash,
            head.last_time,
            EntryRef { index: head.policy_index, hash: policy_entry.entry.hash() },
            Arc::new(policy),
            genesis,
        ))
    }

    /// The policy in force at the head.
    pub fn policy(&self) -> Result<(EntryRef, Arc<Policy>), LedgerError> {
        let state = self.state()?;
        let (r, p) = state.policy().ok_or(LedgerError::Empty)?;
        Ok((*r, p.clone()))
    }

    /// Writes the genesis entry: the policy statement signed by the root key(s).
    pub fn init(&self, envelope: Envelope, now: u64) -> Result<VerifiedEntry, LedgerError> {
        if self.store.head()?.is_some() {
            return Err(LedgerError::AlreadyInitialised);
        }
        Ok(self.append_batch(vec![envelope], now)?.remove(0))
    }

    /// Appends one signed statement, durably. Nothing is written on error.
    pub fn append(&self, envelope: Envelope, now: u64) -> Result<VerifiedEntry, LedgerError> {
        Ok(self.append_batch(vec![envelope], now)?.remove(0))
    }

    /// Appends several statements in order as one atomic, durable write: all
    /// or none.
    pub fn append_batch(&self, envelopes: Vec<Envelope>, now: u64) -> Result<Vec<VerifiedEntry>, LedgerError> {
        self.append_batch_prepared(envelopes, None, now)
    }

    /// [`Ledger::append_batch`], with each envelope's statement and
    /// signature checks already made ([`crate::verify::prepare`], one per
    /// envelope, in order): a check is used only where it was made with the
    /// very key the policy in force at the entry names, any other signature
    /// is verified here.
    pub fn append_batch_prepared(
        &self,
        envelopes: Vec<Envelope>,
        prepared: Option<Vec<Prepared>>,
        now: u64,
    ) -> Result<Vec<VerifiedEntry>, LedgerError> {
        let mut results = self.append_each(envelopes, prepared, now, true)?;
        results.drain(..).collect::<Result<Vec<_>, _>>().map_err(LedgerError::from)
    }

    /// Group commit: appends, in order, every statement the chain rules
    /// accept, in one atomic, durable write. A refused statement takes no
    /// index and is answered in its place; the others do not depend on it.
    pub fn append_group(
        &self,
        envelopes: Vec<Envelope>,
        now: u64,
    ) -> Result<Vec<Result<VerifiedEntry, VerifyError>>, LedgerError> {
        self.append_each(envelopes, None, now, false)
    }

    /// [`Ledger::append_group`], with the work of [`crate::verify::prepare`]
    /// already done (see [`Ledger::append_batch_prepared`]).
    pub fn append_group_prepared(
        &self,
        envelopes: Vec<Envelope>,
        prepared: Vec<Prepared>,
        now: u64,
    ) -> Result<Vec<Result<VerifiedEntry, VerifyError>>, LedgerError> {
        self.append_each(envelopes, Some(prepared), now, false)
    }

    /// With `all_or_none`, the first refusal refuses the batch (and is the
    /// only error returned); otherwise each refusal stands alone.
    fn append_each(
        &self,
        envelopes: Vec<Envelope>,
        prepared: Option<Vec<Prepared>>,
        now: u64,
        all_or_none: bool,
    ) -> Result<Vec<Result<VerifiedEntry, VerifyError>>, LedgerError> {
        let expected = self.store.head()?;
        let mut state = self.state()?;
        let mut prefix = StorePrefix::new(&self.store);
        prefix.look_up(&envelopes)?;
        let mut results = Vec::with_capacity(envelopes.len());
        let mut verified = Vec::with_capacity(envelopes.len());
        let mut writes = Vec::with_capacity(envelopes.len());
        let prepared = match prepared {
            Some(p) if p.len() == envelopes.len() => p,
            _ => prepare_for(&state, envelopes.iter()),
        };
        for (envelope, prepared) in envelopes.into_iter().zip(prepared) {
            let time = now.max(state.last_time);
            let (entry, bytes) = UnverifiedEntry::build(state.next_index, state.head, time, envelope);
            match state.verify_next_prepared(entry, prepared, &prefix).and_then(require_binding) {
                Ok(v) => {
                    writes.push(NewEntry { bytes, ..index_rows(&v) });
                    prefix.pending.record(&v);
                    state.advance(&v);
                    verified.push(v);
                    results.push(Ok(verified.len() - 1));
                }
                Err(e) if all_or_none => return Err(e.into()),
                Err(e) => results.push(Err(e)),
            }
        }
        if !verified.is_empty() {
            let (policy_ref, policy) = state.policy().expect("a verified entry implies a policy");
            let (nodes, frontier) = self.grow_tree(expected.as_ref(), &verified)?;
            let checkpoint = self.sign_checkpoint(&frontier, policy.log())?;
            let new_head = Head {
                count: state.next_index,
                hash: state.head,
                last_time: state.last_time,
                policy_index: policy_ref.index,
            };
            let append = Append { entries: &writes, nodes: &nodes, checkpoint: &checkpoint, head: &new_head };
            self.store.append(expected.as_ref(), &append)?;
        }
        let mut verified: Vec<Option<VerifiedEntry>> = verified.into_iter().map(Some).collect();
        Ok(results.into_iter().map(|r| r.map(|i| verified[i].take().expect("each once"))).collect())
    }

    /// Appends entries another copy of this ledger holds (a mirror's sync):
    /// each is decoded strictly and verified against the chain as it stands,
    /// the tree they grow must have exactly the root and size of
    /// `checkpoint`, and the note must be signed by the log key of the policy
    /// in force after them. Then entries, tree nodes and the note are written
    /// in one atomic, durable write; on any failure nothing is.
    pub fn append_replicated(&self, entries: &[Vec<u8>], checkpoint: &str) -> Result<SignedCheckpoint, LedgerError> {
        let mut replica = self.replica()?;
        replica.push(entries)?;
        replica.finish(checkpoint)
    }

    /// [`Ledger::append_replicated`] in steps: entries are verified as they
    /// are pushed, page by page, so that a source is refused at the first
    /// page that does not extend the chain; [`Replica::finish`] writes them.
    pub fn replica(&self) -> Result<Replica<'_, S>, LedgerError> {
        Ok(Replica {
            ledger: self,
            expected: self.store.head()?,
            state: self.state()?,
            prefix: StorePrefix::new(&self.store),
            verified: Vec::new(),
            writes: Vec::new(),
        })
    }

    /// The policy in force for the tree of the first `size` entries: that of
    /// the newest policy entry below `size`.
    pub fn policy_at(&self, size: u64) -> Result<Arc<Policy>, LedgerError> {
        let index = self.store.policy_entries()?.into_iter().rev().find(|&i| i < size).ok_or(LedgerError::Empty)?;
        let Predicate::Policy(p) = &self.read(index)?.statement.predicate else {
            return Err(
                StoreError::Corrupt(format!("the policy index names entry {index}, which is not a policy")).into()
            );
        };
        let policy = Policy::from_predicate(p, &format!("entry {index}"))
            .map_err(|e| VerifyError::new(index, Failure::Invalid, e.to_string()))?;
        Ok(Arc::new(policy))
    }

    /// The tree nodes `entries` complete, and the frontier of the grown
    /// tree. Refuses unless the stored checkpoint describes exactly the tree
    /// being extended, so no two checkpoints this ledger holds can be
    /// inconsistent.
    fn grow_tree(
        &self,
        head: Option<&Head>,
        entries: &[VerifiedEntry],
    ) -> Result<(Vec<NodeWrite>, Frontier), LedgerError> {
        let size = head.map_or(0, |h| h.count);
        let mut frontier = Frontier::load(&self.nodes(), size)?;
        match (self.store.checkpoint()?, head) {
            (None, None) => {}
            (Some(note), Some(_)) => {
                let stored = Checkpoint::parse(note.split_once("\n\n").map_or("", |(text, _)| text))
                    .map_err(LedgerError::Checkpoint)?;
                if stored.size != size || stored.root != frontier.root() {
                    // Another writer of the same store (a second server on
                    // one database) may have appended since `head` was read.
                    if self.store.head()?.as_ref() != head {
                        return Err(StoreError::HeadMoved.into());
                    }
                    return Err(StoreError::Corrupt(format!(
                        "the stored checkpoint (size {}) does not describe the stored tree (size {size}); \
                         refusing to sign a checkpoint that might contradict it; run `provledger verify`",
                        stored.size
                    ))
                    .into());
                }
            }
            (None, Some(_)) => {
                return Err(StoreError::Corrupt("the ledger has entries but no checkpoint".into()).into());
            }
            (Some(_), None) => return Err(StoreError::Corrupt("a checkpoint is stored but no head".into()).into()),
        }
        let mut nodes = Vec::with_capacity(entries.len() * 2);
        for v in entries {
            frontier.push(leaf_of(&v.hash()), |level, index, hash| nodes.push(NodeWrite { level, index, hash: *hash }));
        }
        Ok((nodes, frontier))
    }

    /// The checkpoint of the tree `frontier` describes, signed with the log key.
    fn sign_checkpoint(&self, frontier: &Frontier, log: &NoteVerifier) -> Result<String, LedgerError> {
        let key = self.log_key.as_ref().ok_or(LedgerError::NoLogKey)?;
        if key.public() != log.public {
            return Err(LedgerError::LogKeyMismatch { have: key.id().to_string(), want: log.public.id().to_string() });
        }
        let checkpoint = Checkpoint { origin: log.name.clone(), size: frontier.size(), root: frontier.root() };
        note::sign_note(&checkpoint.to_text(), &log.name, key).map_err(LedgerError::Checkpoint)
    }

    /// The latest checkpoint, its signature verified with the policy's log key.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        let (_, policy) = self.policy()?;
        let note = self.store.checkpoint()?.ok_or(LedgerError::Empty)?;
        SignedCheckpoint::open(&note, policy.log()).map_err(LedgerError::Checkpoint)
    }

    /// The Merkle root of the first `size` entries, from stored nodes.
    pub fn root_at(&self, size: u64) -> Result<Hash, LedgerError> {
        self.check_size(size)?;
        tree::root_at(&self.nodes(), size)
    }

    /// The inclusion proof of entry `index` in the tree of the first `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(size)?;
        tree::inclusion_proof_at(&self.nodes(), index, size)
    }

    /// The consistency proof from the tree of `size1` entries to that of `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, LedgerError> {
        self.check_size(size2)?;
        tree::consistency_proof_at(&self.nodes(), size1, size2)
    }

    fn check_size(&self, size: u64) -> Result<(), LedgerError> {
        let count = self.store.head()?.map_or(0, |h| h.count);
        if size > count {
            return Err(TreeError::IndexOutOfRange { index: size - 1, size: count }.into());
        }
        Ok(())
    }

    /// Reads and parses one stored entry.
    pub fn read(&self, index: u64) -> Result<StoredEntry, LedgerError> {
        read_stored(&self.store, index)?.ok_or_else(|| StoreError::Corrupt(format!("entry {index} is missing")).into())
    }

    /// The newest build entry with `digest` among its subjects.
    pub fn latest_build_for(&self, digest: &Digest) -> Result<Option<(EntryRef, StoredEntry)>, LedgerError> {
        for index in self.store.entries_for_subject(digest)?.into_iter().rev() {
            let e = self.read(index)?;
            if matches!(e.statement.predicate, Predicate::Build(_)) {
                return Ok(Some((EntryRef { index, hash: e.entry.hash() }, e)));
            }
        }
        Ok(None)
    }

    /// Every entry naming `digest`, ascending by index.
    pub fn evidence_for(&self, digest: &Digest) -> Result<Vec<Evidence>, LedgerError> {
        stored_evidence(&self.store, digest)
    }

    /// The gate's decision for a promotion at the head.
    pub fn decide(&self, request: &gate::Request<'_>) -> Result<Decision, LedgerError> {
        let (_, policy) = self.policy()?;
        let evidence = match request.digest {
            Some(d) => self.evidence_for(&d)?,
            None => Vec::new(),
        };
        Ok(gate::decide(&policy, &evidence, request))
    }

    /// The genesis hash, if the ledger has entries.
    pub fn genesis_hash(&self) -> Result<Option<EntryHash>, LedgerError> {
        match self.store.get(0)? {
            None => Ok(None),
            Some(b) => {
                Ok(Some(UnverifiedEntry::decode(&b).map_err(|source| LedgerError::Stored { index: 0, source })?.hash()))
            }
        }
    }

    /// A fresh binding of a new statement to this ledger.
    pub fn binding(&self) -> Result<crate::core::statement::Binding, LedgerError> {
        let genesis = self.genesis_hash()?.ok_or(LedgerError::Empty)?;
        Ok(crate::core::statement::Binding::fresh(genesis))
    }

    /// The build entries of a release, ascending by index.
    pub fn release_builds(&self, release: &str) -> Result<Vec<ReleaseBuild>, LedgerError> {
        stored_release_builds(&self.store, release)
    }

    /// The release gate at the head: every artifact of `release` gets its
    /// digest chosen ([`gate::choose_release`], with `resolve` for an
    /// artifact rebuilt within the release) and passes the promotion gate,
    /// or the release is denied with every reason, each naming its artifact.
    pub fn decide_release(
        &self,
        release: &str,
        to: &str,
        promoter: crate::core::keys::KeyId,
        resolve: &std::collections::BTreeMap<String, Digest>,
    ) -> Result<ReleaseDecision, LedgerError> {
        let builds = self.release_builds(release)?;
        if builds.is_empty() {
            return Ok(ReleaseDecision::Deny(vec![format!("release {release} has no build in the ledger")]));
        }
        let choices = match gate::choose_release(release, &builds, resolve) {
            Ok(c) => c,
            Err(reasons) => return Ok(ReleaseDecision::Deny(reasons)),
        };
        let mut reasons = Vec::new();
        let mut allowed = Vec::new();
        for choice in choices {
            let request = gate::Request { digest: Some(choice.digest), to, promoter, tag: None };
            match self.decide(&request)? {
                Decision::Deny(rs) => {
                    reasons.extend(rs.into_iter().map(|r| format!("{} ({}): {r}", choice.artifact, choice.digest)))
                }
                Decision::Allow(a) => {
                    let Predicate::Build(b) = self.read(choice.build_index)?.statement.predicate else {
                        return Err(StoreError::Corrupt(format!("entry {} is not a build", choice.build_index)).into());
                    };
                    allowed.push(ReleaseArtifact {
                        image: b.build_definition.external_parameters.image,
                        choice,
                        allowed: a,
                    });
                }
            }
        }
        Ok(if reasons.is_empty() { ReleaseDecision::Allow(allowed) } else { ReleaseDecision::Deny(reasons) })
    }

    /// Verifies the whole stored chain from entry 0, that the head record
    /// matches it, and that the subject index holds exactly its subjects.
    /// `on_entry` sees each entry once it has verified.
    pub fn verify(
        &self,
        genesis: Option<&EntryHash>,
        on_entry: impl FnMut(&VerifiedEntry),
    ) -> Result<ChainReport, LedgerError> {
        self.verify_with(genesis, sigcheck::Mode::Batch, on_entry)
    }

    /// [`Ledger::verify`] with a choice of signature checks.
    pub fn verify_with(
        &self,
        genesis: Option<&EntryHash>,
        mode: sigcheck::Mode,
        mut on_entry: impl FnMut(&VerifiedEntry),
    ) -> Result<ChainReport, LedgerError> {
        let head = self.store.head()?;
        let mut rows: Vec<NewEntry> = Vec::new();
        let mut frontier = Frontier::default();
        let mut nodes = Vec::new();
        let report = verify_chain_with(self.stored_entries(), genesis, mode, |v| {
            rows.push(index_rows(v));
            frontier.push(leaf_of(&v.hash()), |level, index, hash| nodes.push(NodeWrite { level, index, hash: *hash }));
            on_entry(v);
        })?;
        let Some(head) = head else {
            if report.entries == 0 {
                return Err(LedgerError::Empty);
            }
            return Err(
                VerifyError::new(0, Failure::Invalid, "entries are stored but the head record is missing").into()
            );
        };
        if report.entries < head.count {
            return Err(VerifyError::new(
                report.entries,
                Failure::Invalid,
                format!(
                    "entry {} is missing: the head records {} entries, the chain ends after {}",
                    report.entries, head.count, report.entries
                ),
            )
            .into());
        }
        if report.entries > head.count {
            return Err(VerifyError::new(
                head.count,
                Failure::Invalid,
                format!("entry {} is beyond the head, which records {} entries", head.count, head.count),
            )
            .into());
        }
        if report.head != head.hash {
            let last = head.count - 1;
            return Err(VerifyError::new(
                last,
                Failure::Invalid,
                format!("hash {} of the last entry does not match the head record {}", report.head, head.hash),
            )
            .into());
        }
        // The tree and the checkpoint belong to the chain; the indexes
        // only follow it, so they are checked last.
        self.check_tree(&nodes, &frontier, &report)?;
        self.check_indexes(&rows)?;
        Ok(report)
    }

    /// The stored entries from 0, for verification: one that does not read
    /// back as written fails verification at its index; any other read
    /// error is I/O.
    fn stored_entries(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), VerifyError>> + '_ {
        self.store.entries_from(0).map(|r| {
            r.map_err(|e| match e {
                StoreError::Log(crate::store::log::LogError::Corrupt { index: Some(i), .. }) => {
                    VerifyError::new(i, Failure::Invalid, e.to_string())
                }
                StoreError::Corrupt(_) => VerifyError::new(0, Failure::Invalid, e.to_string()),
                e => VerifyError::new(0, Failure::Io, e.to_string()),
            })
        })
    }

    /// Verifies the first `size` entries while others may be appended: the
    /// chain rules from entry 0 (as [`Ledger::verify_with`]), then that the
    /// stored tree's root at `size` is the verified entries' root, and that
    /// the latest checkpoint is signed by the log key over the stored tree.
    /// For a server, which verifies what it serves while it serves.
    pub fn verify_prefix(
        &self,
        size: u64,
        mut on_entry: impl FnMut(&VerifiedEntry),
    ) -> Result<(ChainReport, SignedCheckpoint), LedgerError> {
        let mut frontier = Frontier::default();
        let entries = self.stored_entries().take(size as usize);
        let report = verify_chain_with(entries, None, sigcheck::Mode::Batch, |v| {
            frontier.push(leaf_of(&v.hash()), |_, _, _| {});
            on_entry(v);
        })?;
        let last = report.entries.saturating_sub(1);
        let bad = |why: String| -> LedgerError { VerifyError::new(last, Failure::Invalid, why).into() };
        if report.entries != size {
            return Err(bad(format!("the chain ends after {} entries, not {size}", report.entries)));
        }
        if self.root_at(size)? != frontier.root() {
            return Err(bad(format!("the stored tree's root at size {size} is not the chain's")));
        }
        let note = self.store.checkpoint()?.ok_or_else(|| bad("no signed checkpoint is stored".into()))?;
        let size_signed =
            provledger_verify::core::note::Checkpoint::parse(note.split_once("\n\n").map_or("", |(t, _)| t))
                .map_err(|e| bad(format!("stored checkpoint: {e}")))?
                .size;
        let policy = self.policy_at(size_signed)?;
        let signed = SignedCheckpoint::open(&note, policy.log()).map_err(|e| bad(format!("stored checkpoint: {e}")))?;
        if signed.checkpoint.size < size || self.root_at(signed.checkpoint.size)? != signed.checkpoint.root {
            return Err(bad(format!(
                "the stored checkpoint (size {}) does not match the stored tree",
                signed.checkpoint.size
            )));
        }
        Ok((report, signed))
    }

    /// The stored tree holds exactly the nodes the chain implies, and the
    /// stored checkpoint is signed by the policy's log key over its root.
    fn check_tree(&self, nodes: &[NodeWrite], frontier: &Frontier, report: &ChainReport) -> Result<(), LedgerError> {
        if let Some(m) = self.store.check_nodes(nodes)? {
            return Err(VerifyError::new(m.index, Failure::Invalid, m.reason).into());
        }
        let last = report.entries.saturating_sub(1);
        let bad = |why: String| -> LedgerError { VerifyError::new(last, Failure::Invalid, why).into() };
        let (_, policy) = report.state.policy().expect("a verified chain has a policy");
        let note = self.store.checkpoint()?.ok_or_else(|| bad("no signed checkpoint is stored".into()))?;
        let signed = SignedCheckpoint::open(&note, policy.log()).map_err(|e| bad(format!("stored checkpoint: {e}")))?;
        let cp = &signed.checkpoint;
        if cp.size != report.entries || cp.root != frontier.root() {
            return Err(bad(format!(
                "the stored checkpoint (size {}) does not match the chain (size {}, root {})",
                cp.size,
                report.entries,
                base64_root(&frontier.root())
            )));
        }
        Ok(())
    }

    /// The secondary indexes hold exactly the rows the chain implies.
    fn check_indexes(&self, rows: &[NewEntry]) -> Result<(), LedgerError> {
        match self.store.check_rows(rows)? {
            Some(m) => Err(VerifyError::new(m.index, Failure::Invalid, m.reason).into()),
            None => Ok(()),
        }
    }
}

fn base64_root(root: &Hash) -> String {
    crate::core::b64::encode(root)
}

/// Statements parsed and signatures checked ahead of the chain walk, on all
/// cores, with the keys of the policy in force and of any policy among them.
fn prepare_for<'a>(state: &ChainState, envelopes: impl Iterator<Item = &'a Envelope>) -> Vec<Prepared> {
    let envelopes: Vec<&Envelope> = envelopes.collect();
    let mut keyring: Keyring = match state.policy() {
        Some((_, policy)) => policy.keys().map(|(_, k)| &k.public).collect(),
        None => Keyring::default(),
    };
    prepare(&envelopes, &mut keyring, sigcheck::Mode::Batch)
}

/// The index rows of a verified entry (everything of a [`NewEntry`] but its bytes).
fn index_rows(v: &VerifiedEntry) -> NewEntry {
    NewEntry::of(v.index(), v.statement(), v.envelope_fingerprint())
}
