//! The store of a ledger directory (store version 3): the segment log in
//! `log/` holds the chain; the indexes follow it in their own sled
//! database, `index/`, which can be lost and rebuilt.
//!
//! A directory of store version 2 (one sled database, `store/`) is not
//! opened here: the ledger layer above (`LedgerDir`) converts it first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::index::Indexes;
use super::log::Log as _;
use super::logstore::LogStore;
use super::segment::{SegmentLog, SegmentOptions};
use super::{StoreError, v2};

/// The segment log's folder in a ledger directory.
pub const LOG_DIR: &str = "log";
/// The follower indexes' folder beside it.
pub const INDEX_DIR: &str = "index";

/// What a ledger directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Store version 2: everything in one sled database (to convert).
    Sled,
    /// Store version 3: the segment log, with follower indexes.
    Log,
}

/// A ledger directory's store.
pub type LocalStore = LogStore<SegmentLog>;

fn has_log(dir: &Path) -> bool {
    dir.join(LOG_DIR).join("format").is_file()
}

impl LogStore<SegmentLog> {
    /// The layout of the ledger in `dir`, if it holds one. A segment log
    /// wins over sled files beside it (a conversion's old files).
    pub fn layout_of(dir: &Path) -> Option<Layout> {
        if has_log(dir) {
            Some(Layout::Log)
        } else if v2::present(dir) {
            Some(Layout::Sled)
        } else {
            None
        }
    }

    /// Opens the store of an existing ledger directory.
    pub fn open(dir: &Path, lock_wait: Duration) -> Result<LocalStore, StoreError> {
        match LocalStore::layout_of(dir) {
            Some(Layout::Log) => LocalStore::open_log(dir, lock_wait),
            Some(Layout::Sled) => Err(StoreError::NeedsMigration(dir.to_path_buf())),
            None => Err(StoreError::NotALedger(dir.to_path_buf())),
        }
    }

    /// Opens the store of `dir`, creating an empty one if there is none (a
    /// mirror before its first sync).
    pub fn open_or_create(dir: &Path, lock_wait: Duration) -> Result<LocalStore, StoreError> {
        match LocalStore::layout_of(dir) {
            Some(Layout::Sled) => Err(StoreError::NeedsMigration(dir.to_path_buf())),
            _ => LocalStore::open_log(dir, lock_wait),
        }
    }

    /// Creates a new, empty store in `dir`, which must not hold a ledger.
    /// A store with no entry (a creation cut short) is reused.
    pub fn create(dir: &Path, lock_wait: Duration) -> Result<LocalStore, StoreError> {
        let store = LocalStore::open_or_create(dir, lock_wait)?;
        if store.log().head()?.is_some() {
            return Err(StoreError::AlreadyExists(dir.to_path_buf()));
        }
        Ok(store)
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
            // Not damage: the disk is full (sled writes as it opens).
            Err(e @ StoreError::DiskFull { .. }) => return Err(e),
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
        LogStore::new(log, indexes)
    }

    /// Makes the indexes anew from the chain; returns the entries indexed.
    pub fn reindex(&self) -> Result<u64, StoreError> {
        let n = self.indexes().rebuild(self.log())?;
        self.indexes().flush()?;
        Ok(n)
    }

    /// The folders a store keeps in its ledger directory.
    pub fn folders(dir: &Path) -> Vec<PathBuf> {
        vec![dir.join(LOG_DIR), dir.join(INDEX_DIR)]
    }
}
