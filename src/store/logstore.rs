//! A [`Store`] made of a [`Log`], which holds the chain, and [`Indexes`]
//! that follow it.
//!
//! An append goes to the log first (atomic and durable there), then its
//! rows to the indexes. An index that is behind the log (a crash between
//! the two, or indexes deleted) is caught up before any query answers from
//! it: no answer comes from a stale index.

use std::sync::Mutex;

use super::index::Indexes;
use super::log::{Group, Log, LogError};
use super::{Append, EntryIter, Head, Mismatch, NewEntry, NodeWrite, Store, StoreError};
use crate::core::digest::Digest;
use crate::tree::Hash;

/// A log and the indexes that follow it.
pub struct LogStore<L: Log> {
    log: L,
    indexes: Indexes,
    /// Held while the indexes are brought up to the log, so that two
    /// callers do not apply the same rows.
    catching_up: Mutex<()>,
}

impl From<LogError> for StoreError {
    fn from(e: LogError) -> StoreError {
        match e {
            LogError::HeadMoved => StoreError::HeadMoved,
            other => StoreError::Log(other),
        }
    }
}

impl<L: Log> LogStore<L> {
    /// Joins `log` and `indexes`, bringing the indexes up to the log. An
    /// index store that cannot catch up (an entry that does not decode, a
    /// full disk) does not keep the log from opening: every query that
    /// needs the indexes tries again and fails with the reason, while the
    /// chain itself can still be read and verified (which names an entry
    /// at fault).
    pub fn new(log: L, indexes: Indexes) -> Result<LogStore<L>, StoreError> {
        let store = LogStore { log, indexes, catching_up: Mutex::new(()) };
        let _ = store.current();
        Ok(store)
    }

    /// The log and the indexes, apart.
    pub fn into_parts(self) -> (L, Indexes) {
        (self.log, self.indexes)
    }

    pub fn log(&self) -> &L {
        &self.log
    }

    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    /// The indexes, once they hold the rows of every entry of the log.
    fn current(&self) -> Result<&Indexes, StoreError> {
        let size = self.log.head()?.map_or(0, |h| h.count);
        if self.indexes.applied()? != size {
            let _held = self.catching_up.lock().unwrap_or_else(|e| e.into_inner());
            self.indexes.catch_up(&self.log)?;
        }
        Ok(&self.indexes)
    }
}

impl<L: Log> Store for LogStore<L> {
    fn head(&self) -> Result<Option<Head>, StoreError> {
        Ok(self.log.head()?)
    }

    fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.log.entry(index)?)
    }

    fn entries_from(&self, start: u64) -> EntryIter<'_> {
        Box::new(self.log.range(start, u64::MAX).map(|r| r.map_err(StoreError::from)))
    }

    fn entries_for_subject(&self, digest: &Digest) -> Result<Vec<u64>, StoreError> {
        self.current()?.entries_for_subject(digest)
    }

    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, StoreError> {
        self.current()?.has_envelope(fingerprint)
    }

    fn envelope_entry(&self, fingerprint: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        self.current()?.envelope_entry(fingerprint)
    }

    fn promotions_into(&self, env: &str) -> Result<Vec<u64>, StoreError> {
        self.current()?.promotions_into(env)
    }

    fn builds_of_source(&self, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.current()?.builds_of_source(key)
    }

    fn builds_of_release(&self, release: &str) -> Result<Vec<u64>, StoreError> {
        self.current()?.builds_of_release(release)
    }

    fn policy_entries(&self) -> Result<Vec<u64>, StoreError> {
        self.current()?.policy_entries()
    }

    fn check_rows(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError> {
        self.current()?.check_rows(entries)
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        Ok(self.log.node(level, index)?)
    }

    /// Each node the chain implies must be stored with its hash. A log
    /// writes nodes only with the groups that complete them, so it holds
    /// none the chain does not imply; they are not listed.
    fn check_nodes(&self, nodes: &[NodeWrite]) -> Result<Option<Mismatch>, StoreError> {
        for n in nodes {
            let index = ((n.index + 1) << n.level) - 1;
            match self.log.node(n.level, n.index)? {
                Some(h) if h == n.hash => {}
                Some(_) => {
                    let reason = format!("Merkle tree node ({}, {}) does not match the chain", n.level, n.index);
                    return Ok(Some(Mismatch { index, reason }));
                }
                None => {
                    let reason = format!("Merkle tree node ({}, {}) is missing", n.level, n.index);
                    return Ok(Some(Mismatch { index, reason }));
                }
            }
        }
        Ok(None)
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        Ok(self.log.checkpoint()?)
    }

    fn append(&self, expected: Option<&Head>, append: &Append<'_>) -> Result<(), StoreError> {
        let bytes: Vec<&[u8]> = append.entries.iter().map(|e| e.bytes.as_slice()).collect();
        let group = Group { entries: &bytes, nodes: append.nodes, checkpoint: append.checkpoint, head: append.head };
        self.log.append(expected, &group)?;
        // The chain holds the group now, durably: the append has succeeded,
        // whatever the indexes do. They follow; if they cannot take the
        // rows here, the next query catches them up from the log.
        let _held = self.catching_up.lock().unwrap_or_else(|e| e.into_inner());
        let before = append.head.count - append.entries.len() as u64;
        if self.indexes.applied().is_ok_and(|n| n == before) {
            let _ = self.indexes.apply(append.entries);
        }
        Ok(())
    }
}
