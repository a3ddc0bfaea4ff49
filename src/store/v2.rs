//! Reading a store version 2 ledger, to convert it.
//!
//! Version 2 kept everything in one sled database, `store/`: the entries
//! (tree `entries`, keyed by big-endian index), the head, the signed
//! checkpoint and the store version (tree `meta`), the Merkle tree nodes
//! and the indexes. This build no longer writes it; it reads the entries,
//! the head and the checkpoint, which is all a conversion needs (the tree
//! and the indexes are made again from the entries, and checked against
//! the checkpoint). The conversion itself is `LedgerDir::migrate`, in the
//! ledger layer above.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Head, StoreError};
use crate::core::hash::EntryHash;

/// The folder of a store version 2 database in a ledger directory.
pub const DB_DIR: &str = "store";
/// The one store version this module reads. Version 1 (pre-release) kept
/// no Merkle tree and no checkpoint.
pub const VERSION: u32 = 2;

const META_VERSION: &[u8] = b"store_version";
const META_HEAD: &[u8] = b"head";
const META_CHECKPOINT: &[u8] = b"checkpoint";

/// A store version 2 database, open (and locked by sled) to read.
pub struct V2Store {
    path: PathBuf,
    entries: sled::Tree,
    meta: sled::Tree,
}

/// Whether `dir` holds a store version 2 database (sled's files, not just
/// an empty folder).
pub fn present(dir: &Path) -> bool {
    dir.join(DB_DIR).join("conf").is_file()
}

impl V2Store {
    /// Opens the database of the ledger directory `dir`, waiting up to
    /// `lock_wait` for another process to close it. The version record is
    /// checked: a newer store asks for an upgrade, version 1 is refused.
    pub fn open(dir: &Path, lock_wait: Duration) -> Result<V2Store, StoreError> {
        let path = dir.join(DB_DIR);
        if !present(dir) {
            return Err(StoreError::NotALedger(dir.to_path_buf()));
        }
        let started = Instant::now();
        let db = loop {
            match sled::Config::new().path(&path).open() {
                Ok(db) => break db,
                // sled holds an exclusive file lock while a process has the
                // database open; we wait for it, within a bound.
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    if started.elapsed() >= lock_wait {
                        return Err(StoreError::Locked(dir.to_path_buf(), lock_wait));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(StoreError::Io { path, source: e }),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(|e| StoreError::Io { path: path.clone(), source: e });
        let store = V2Store { entries: tree("entries")?, meta: tree("meta")?, path: path.clone() };
        store.check_version()?;
        Ok(store)
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io { path: self.path.clone(), source }
    }

    fn check_version(&self) -> Result<(), StoreError> {
        match self.meta.get(META_VERSION).map_err(|e| self.io(e))? {
            // A creation cut short before its version record: it must be empty.
            None if self.entries.is_empty() && self.head()?.is_none() => Ok(()),
            None => Err(StoreError::Corrupt("entries without a store version record".into())),
            Some(v) => {
                let v: [u8; 4] =
                    v.as_ref().try_into().map_err(|_| StoreError::Corrupt("store version record".into()))?;
                match u32::from_be_bytes(v) {
                    VERSION => Ok(()),
                    1 => Err(StoreError::OlderVersion(1)),
                    v if v > VERSION => Err(StoreError::NewerVersion(v)),
                    v => Err(StoreError::Corrupt(format!("unknown store version {v}"))),
                }
            }
        }
    }

    /// The head record, or `None` for a store with no entry.
    pub fn head(&self) -> Result<Option<Head>, StoreError> {
        let Some(b) = self.meta.get(META_HEAD).map_err(|e| self.io(e))? else { return Ok(None) };
        if b.len() != 56 {
            return Err(StoreError::Corrupt(format!("head record of {} bytes", b.len())));
        }
        let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
        Ok(Some(Head {
            count: u(0..8),
            hash: EntryHash::from_slice(&b[8..40]).expect("32 bytes"),
            last_time: u(40..48),
            policy_index: u(48..56),
        }))
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        let Some(v) = self.meta.get(META_CHECKPOINT).map_err(|e| self.io(e))? else { return Ok(None) };
        String::from_utf8(v.to_vec()).map(Some).map_err(|_| StoreError::Corrupt("checkpoint is not UTF-8".into()))
    }

    /// The entries in index order, each with the index it is stored under.
    /// A gap is not this reader's to judge: the conversion replays the
    /// entries through the chain rules, which name it.
    pub fn entries(&self) -> impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + '_ {
        self.entries.iter().map(move |r| {
            let (k, v) = r.map_err(|e| self.io(e))?;
            let k: [u8; 8] =
                k.as_ref().try_into().map_err(|_| StoreError::Corrupt(format!("entry key of {} bytes", k.len())))?;
            Ok((u64::from_be_bytes(k), v.to_vec()))
        })
    }
}
