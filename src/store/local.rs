//! The store of a ledger directory, whichever layout it has.
//!
//! - Store version 2: one sled database, `store/`, holding entries, tree,
//!   checkpoint and indexes (every ledger made before the segment log).
//! - Store version 3: the segment log in `log/` holds the chain; the
//!   indexes follow it in their own sled database, `index/`, which can be
//!   lost and rebuilt. `provledger init --store log` makes one.
//!
//! A directory is opened as what it holds; a new one is made as asked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::index::Indexes;
use super::logstore::LogStore;
use super::segment::{SegmentLog, SegmentOptions};
use super::{Append, DB_DIR, EntryIter, Head, Mismatch, NewEntry, NodeWrite, SledStore, Store, StoreError};
use crate::core::digest::Digest;
use crate::tree::Hash;

/// The segment log's folder in a ledger directory.
pub const LOG_DIR: &str = "log";
/// The follower indexes' folder beside it.
pub const INDEX_DIR: &str = "index";

/// Which layout a new ledger directory gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Store version 2: everything in one sled database.
    #[default]
    Sled,
    /// Store version 3: the segment log, with follower indexes.
    Log,
}

/// A ledger directory's store.
/// (Both boxed: they differ in size, and a ledger holds one for its life.)
pub enum LocalStore {
    Sled(Box<SledStore>),
    Log(Box<LogStore<SegmentLog>>),
}

fn has_log(dir: &Path) -> bool {
    dir.join(LOG_DIR).join("format").is_file()
}

impl LocalStore {
    /// The layout of the ledger in `dir`, if it holds one.
    pub fn layout_of(dir: &Path) -> Option<Layout> {
        if has_log(dir) {
            Some(Layout::Log)
        } else if dir.join(DB_DIR).is_dir() {
            Some(Layout::Sled)
        } else {
            None
        }
    }

    /// Opens the store of an existing ledger directory.
    pub fn open(dir: &Path, lock_wait: Duration, min_free: u64) -> Result<LocalStore, StoreError> {
        match LocalStore::layout_of(dir) {
            Some(Layout::Log) => LocalStore::open_log(dir, lock_wait),
            _ => Ok(LocalStore::Sled(Box::new(SledStore::open_keeping(dir, lock_wait, min_free)?))),
        }
    }

    /// Opens the store of `dir`, creating an empty one of `layout` if there
    /// is none (a mirror before its first sync).
    pub fn open_or_create(
        dir: &Path,
        lock_wait: Duration,
        min_free: u64,
        layout: Layout,
    ) -> Result<LocalStore, StoreError> {
        match LocalStore::layout_of(dir).unwrap_or(layout) {
            Layout::Log => LocalStore::open_log(dir, lock_wait),
            Layout::Sled => {
                Ok(LocalStore::Sled(Box::new(SledStore::open_or_create_keeping(dir, lock_wait, min_free)?)))
            }
        }
    }

    /// Creates a new, empty store of `layout` in `dir`, which must not hold
    /// a ledger. A directory holding a store of the other layout is refused
    /// if that store has entries, and keeps its layout if it has none.
    pub fn create(dir: &Path, lock_wait: Duration, min_free: u64, layout: Layout) -> Result<LocalStore, StoreError> {
        match LocalStore::layout_of(dir).unwrap_or(layout) {
            Layout::Sled => Ok(LocalStore::Sled(Box::new(SledStore::create_keeping(dir, lock_wait, min_free)?))),
            Layout::Log => {
                let store = LocalStore::open_log(dir, lock_wait)?;
                if store.head()?.is_some() {
                    return Err(StoreError::AlreadyExists(dir.to_path_buf()));
                }
                Ok(store)
            }
        }
    }

    fn open_log(dir: &Path, lock_wait: Duration) -> Result<LocalStore, StoreError> {
        let log = SegmentLog::open_with(&dir.join(LOG_DIR), &SegmentOptions::new().lock_wait(lock_wait))?;
        let index_dir = dir.join(INDEX_DIR);
        // The indexes follow the log: an index store that does not open
        // (damaged, say, by a full disk) is made again from the log. The
        // log's lock, held from here on, keeps every other opener of this
        // ledger out, so no one else is using the index store.
        let indexes = match Indexes::open(&index_dir) {
            Ok(ix) => ix,
            Err(_) => {
                let removed = if index_dir.is_dir() {
                    std::fs::remove_dir_all(&index_dir)
                } else {
                    std::fs::remove_file(&index_dir)
                };
                removed.map_err(|e| StoreError::Corrupt(format!("{}: {e}", index_dir.display())))?;
                Indexes::open(&index_dir)?
            }
        };
        Ok(LocalStore::Log(Box::new(LogStore::new(log, indexes)?)))
    }

    /// Makes the indexes anew from the chain; returns the entries indexed,
    /// or `None` for a sled store (version 2), whose indexes are written in
    /// the same transactions as its entries and are not kept apart.
    pub fn reindex(&self) -> Result<Option<u64>, StoreError> {
        match self {
            LocalStore::Log(s) => {
                let n = s.indexes().rebuild(s.log())?;
                s.indexes().flush()?;
                Ok(Some(n))
            }
            LocalStore::Sled(_) => Ok(None),
        }
    }

    /// The folders this store keeps in its ledger directory.
    pub fn folders(dir: &Path) -> Vec<PathBuf> {
        vec![dir.join(DB_DIR), dir.join(LOG_DIR), dir.join(INDEX_DIR)]
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            LocalStore::Sled($s) => $e,
            LocalStore::Log($s) => $e,
        }
    };
}

impl Store for LocalStore {
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
