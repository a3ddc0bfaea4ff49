//! The ledger: appends and whole-ledger verification over a [`Store`].
//!
//! Every append runs the entry through [`ChainState::verify_next`] against the
//! stored prefix before it is written, so the store only ever receives
//! entries the auditor's verifier accepts.

use std::sync::Arc;

use crate::core::FormatError;
use crate::core::digest::Digest;
use crate::core::dsse::Envelope;
use crate::core::entry::UnverifiedEntry;
use crate::core::hash::EntryHash;
use crate::core::statement::{EntryRef, Predicate, Statement};
use crate::gate::{self, Decision, Evidence};
use crate::policy::Policy;
use crate::store::{Head, IndexCounts, IndexRow, NewEntry, Store, StoreError, source_key};
use crate::verify::{
    BuildSummary, ChainReport, ChainState, Failure, MemPrefix, Prefix, VerifiedEntry, VerifyError, evidence_of,
    verify_chain,
};

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
}

/// A ledger over a store.
pub struct Ledger<S: Store> {
    store: S,
}

/// Reads the prefix from the store, plus entries of the batch being appended.
struct StorePrefix<'a, S: Store> {
    store: &'a S,
    pending: MemPrefix,
}

impl<S: Store> Prefix for StorePrefix<'_, S> {
    fn build_at(&self, index: u64) -> Result<Option<BuildSummary>, String> {
        if let Some(b) = self.pending.build_at(index)? {
            return Ok(Some(b));
        }
        let stored = read_stored(self.store, index).map_err(|e| e.to_string())?;
        Ok(stored.and_then(|e| BuildSummary::of(&e.entry, &e.statement)))
    }

    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, String> {
        Ok(self.pending.has_envelope(fingerprint)?
            || self.store.has_envelope(fingerprint).map_err(|e| e.to_string())?)
    }

    fn evidence_for(&self, digest: &Digest) -> Result<Vec<Evidence>, String> {
        let mut out = stored_evidence(self.store, digest).map_err(|e| e.to_string())?;
        out.extend(self.pending.evidence_for(digest)?);
        Ok(out)
    }
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

/// A stored entry read back for a query, decoded and parsed (its place in
/// the chain is vouched for by `verify`, not re-checked here).
#[derive(Clone, Debug)]
pub struct StoredEntry {
    pub entry: UnverifiedEntry,
    pub statement: Statement,
}

impl<S: Store> Ledger<S> {
    pub fn new(store: S) -> Ledger<S> {
        Ledger { store }
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
        Ok(ChainState::resume(
            head.count,
            head.hash,
            head.last_time,
            EntryRef { index: head.policy_index, hash: policy_entry.entry.hash() },
            Arc::new(policy),
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
        let expected = self.store.head()?;
        let mut state = self.state()?;
        let mut prefix = StorePrefix { store: &self.store, pending: MemPrefix::default() };
        let mut verified = Vec::with_capacity(envelopes.len());
        let mut writes = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let time = now.max(state.last_time);
            let (entry, bytes) = UnverifiedEntry::build(state.next_index, state.head, time, envelope);
            let v = state.verify_next(entry, &prefix)?;
            writes.push(NewEntry { bytes, ..index_rows(&v) });
            prefix.pending.record(&v);
            state.advance(&v);
            verified.push(v);
        }
        if verified.is_empty() {
            return Ok(verified);
        }
        let policy_index = state.policy().map(|(r, _)| r.index).expect("a verified entry implies a policy");
        let new_head = Head { count: state.next_index, hash: state.head, last_time: state.last_time, policy_index };
        self.store.append(expected.as_ref(), &writes, &new_head)?;
        Ok(verified)
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

    /// Verifies the whole stored chain from entry 0, that the head record
    /// matches it, and that the subject index holds exactly its subjects.
    /// `on_entry` sees each entry once it has verified.
    pub fn verify(
        &self,
        genesis: Option<&EntryHash>,
        mut on_entry: impl FnMut(&VerifiedEntry),
    ) -> Result<ChainReport, LedgerError> {
        let head = self.store.head()?;
        let mut rows: Vec<NewEntry> = Vec::new();
        let entries =
            self.store.entries_from(0).map(|r| r.map_err(|e| VerifyError::new(0, Failure::Io, e.to_string())));
        let report = verify_chain(entries, genesis, |v| {
            rows.push(index_rows(v));
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
        self.check_indexes(&rows, report.entries)?;
        Ok(report)
    }

    /// The secondary indexes hold exactly the rows the chain implies.
    fn check_indexes(&self, rows: &[NewEntry], entries: u64) -> Result<(), LedgerError> {
        let mut want = IndexCounts::default();
        for r in rows {
            let mut expected: Vec<IndexRow<'_>> = r.subjects.iter().map(IndexRow::Subject).collect();
            expected.extend(r.promoted_to.as_deref().map(IndexRow::Environment));
            expected.extend(r.source.as_deref().map(IndexRow::Source));
            expected.extend(r.release.as_deref().map(IndexRow::Release));
            for row in expected {
                if !self.store.indexed(row, r.index)? {
                    let what = match row {
                        IndexRow::Subject(d) => format!("subject {d}"),
                        IndexRow::Environment(e) => format!("environment {e}"),
                        IndexRow::Source(_) => "source".to_string(),
                        IndexRow::Release(rel) => format!("release {rel}"),
                    };
                    let reason = format!("the {what} index lacks this entry");
                    return Err(VerifyError::new(r.index, Failure::Invalid, reason).into());
                }
            }
            want.subjects += r.subjects.len() as u64;
            want.environments += r.promoted_to.is_some() as u64;
            want.sources += r.source.is_some() as u64;
            want.policies += r.is_policy as u64;
            want.releases += r.release.is_some() as u64;
        }
        let policies: Vec<u64> = rows.iter().filter(|r| r.is_policy).map(|r| r.index).collect();
        let have = self.store.index_counts()?;
        if have != want || self.store.policy_entries()? != policies {
            return Err(VerifyError::new(
                entries,
                Failure::Invalid,
                format!("the indexes hold rows the chain does not imply (index {have:?}, chain {want:?})"),
            )
            .into());
        }
        Ok(())
    }
}

/// The index rows of a verified entry (everything of a [`NewEntry`] but its bytes).
fn index_rows(v: &VerifiedEntry) -> NewEntry {
    let mut subjects = v.statement().subject_digests();
    subjects.sort();
    subjects.dedup();
    let (promoted_to, source, release) = match &v.statement().predicate {
        Predicate::Promotion(p) => (Some(p.to.clone()), None, None),
        Predicate::Build(b) => {
            let ext = &b.build_definition.external_parameters;
            (None, b.git_commit().map(|sha| source_key(sha, ext.artifact.as_deref())), ext.release.clone())
        }
        _ => (None, None, None),
    };
    NewEntry {
        index: v.index(),
        bytes: Vec::new(),
        subjects,
        envelope_fingerprint: v.entry().envelope_fingerprint(),
        promoted_to,
        source,
        is_policy: matches!(v.statement().predicate, Predicate::Policy(_)),
        release,
    }
}
