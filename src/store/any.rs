//! The store a ledger is opened on: its directory's own (the segment log
//! and its follower indexes, [`LocalStore`]) or a PostgreSQL database
//! ([`PgStore`], chosen with `--store postgres://...`).

use super::local::LocalStore;
use super::postgres::PgStore;
use super::{Append, EntryIter, Head, Mismatch, NewEntry, NodeWrite, Store, StoreError};
use crate::core::digest::Digest;
use crate::tree::Hash;

/// Either store. (Both boxed: they differ in size, and a ledger holds one
/// for its life.)
pub enum LedgerStore {
    Dir(Box<LocalStore>),
    Postgres(Box<PgStore>),
}

impl LedgerStore {
    /// The directory's store, if the ledger is in its directory.
    pub fn local(&self) -> Option<&LocalStore> {
        match self {
            LedgerStore::Dir(s) => Some(s),
            LedgerStore::Postgres(_) => None,
        }
    }

    /// Where the chain is, for messages (a database without its password).
    pub fn describe(&self) -> String {
        match self {
            LedgerStore::Dir(s) => s.log().path().display().to_string(),
            LedgerStore::Postgres(s) => s.describe().to_string(),
        }
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            LedgerStore::Dir($s) => $e,
            LedgerStore::Postgres($s) => $e,
        }
    };
}

impl Store for LedgerStore {
    fn head(&self) -> Result<Option<Head>, StoreError> {
        each!(self, s => s.head())
    }
    fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => s.get(index))
    }
    fn entries_from(&self, start: u64) -> EntryIter<'_> {
        each!(self, s => s.entries_from(start))
    }
    fn entries_for_subject(&self, digest: &Digest) -> Result<Vec<u64>, StoreError> {
        each!(self, s => s.entries_for_subject(digest))
    }
    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, StoreError> {
        each!(self, s => s.has_envelope(fingerprint))
    }
    fn envelope_entry(&self, fingerprint: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        each!(self, s => s.envelope_entry(fingerprint))
    }
    fn envelope_entries(&self, fingerprints: &[[u8; 32]]) -> Result<Vec<Option<u64>>, StoreError> {
        each!(self, s => s.envelope_entries(fingerprints))
    }
    fn promotions_into(&self, env: &str) -> Result<Vec<u64>, StoreError> {
        each!(self, s => s.promotions_into(env))
    }
    fn builds_of_source(&self, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        each!(self, s => s.builds_of_source(key))
    }
    fn builds_of_release(&self, release: &str) -> Result<Vec<u64>, StoreError> {
        each!(self, s => s.builds_of_release(release))
    }
    fn policy_entries(&self) -> Result<Vec<u64>, StoreError> {
        each!(self, s => s.policy_entries())
    }
    fn check_rows(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError> {
        each!(self, s => s.check_rows(entries))
    }
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        each!(self, s => s.node(level, index))
    }
    fn check_nodes(&self, nodes: &[NodeWrite]) -> Result<Option<Mismatch>, StoreError> {
        each!(self, s => s.check_nodes(nodes))
    }
    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        each!(self, s => s.checkpoint())
    }
    fn append(&self, expected: Option<&Head>, append: &Append<'_>) -> Result<(), StoreError> {
        each!(self, s => s.append(expected, append))
    }
}
