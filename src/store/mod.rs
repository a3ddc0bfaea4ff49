//! Durable storage of the chain: the [`Store`] trait and its sled
//! implementation.
//!
//! A store keeps bytes and indexes; it never decides what may be appended
//! (that is `verify`'s job, driven by `ledger`). Every append writes the
//! entries, the secondary indexes, the Merkle tree nodes they complete, the
//! signed checkpoint and the new head in one sled transaction, then flushes
//! before returning, so an acknowledged append is on disk and a crash leaves
//! either all of it or none.

pub mod index;
pub mod local;
pub mod log;
pub mod logstore;
pub mod segment;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::core::digest::Digest;
use crate::core::hash::EntryHash;
use crate::tree::Hash;

/// Store format version written by this build. Version 1 (pre-release) kept
/// no Merkle tree and no checkpoint.
pub const STORE_VERSION: u32 = 2;
/// Name of the sled database inside a ledger directory.
pub const DB_DIR: &str = "store";

const TREE_ENTRIES: &str = "entries";
const TREE_META: &str = "meta";
pub(crate) const TREE_NODES: &str = "nodes";
const META_VERSION: &[u8] = b"store_version";
const META_HEAD: &[u8] = b"head";
const META_CHECKPOINT: &[u8] = b"checkpoint";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{0} is not a provledger ledger (no {DB_DIR}/ inside); run `provledger init` or pass --ledger")]
    NotALedger(PathBuf),
    #[error("{0} already holds a ledger")]
    AlreadyExists(PathBuf),
    #[error("ledger store written by a newer provledger (store version {0}); upgrade provledger")]
    NewerVersion(u32),
    #[error(
        "ledger store version {0} was written by a pre-release provledger without a Merkle tree; create a new ledger"
    )]
    OlderVersion(u32),
    #[error("ledger at {0} is in use by another process (waited {1:?} for its lock)")]
    Locked(PathBuf, Duration),
    #[error(
        "the file system of {path} has {available} bytes free; the store needs {needed} \
         (its writes plus the margin kept free so that no write is cut short by a full disk); nothing was written"
    )]
    DiskFull { path: PathBuf, available: u64, needed: u64 },
    #[error("the ledger head moved during the append (another writer?); nothing was written")]
    HeadMoved,
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("store I/O at {path}: {source}")]
    Io { path: PathBuf, source: sled::Error },
    /// The log of a [`logstore::LogStore`] failed.
    #[error(transparent)]
    Log(log::LogError),
}

/// The newest entry and what the next append needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Number of entries; the next index.
    pub count: u64,
    pub hash: EntryHash,
    pub last_time: u64,
    /// Index of the policy entry in force.
    pub policy_index: u64,
}

impl Head {
    const LEN: usize = 8 + 32 + 8 + 8;

    fn encode(&self) -> [u8; Head::LEN] {
        let mut out = [0u8; Head::LEN];
        out[..8].copy_from_slice(&self.count.to_be_bytes());
        out[8..40].copy_from_slice(self.hash.as_bytes());
        out[40..48].copy_from_slice(&self.last_time.to_be_bytes());
        out[48..].copy_from_slice(&self.policy_index.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Result<Head, StoreError> {
        if b.len() != Head::LEN {
            return Err(StoreError::Corrupt(format!("head record of {} bytes", b.len())));
        }
        let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().expect("8 bytes"));
        Ok(Head {
            count: u(0..8),
            hash: EntryHash::from_slice(&b[8..40]).expect("32 bytes"),
            last_time: u(40..48),
            policy_index: u(48..56),
        })
    }
}

/// One entry as the store writes it: its canonical bytes and the index rows
/// they imply, made by the ledger from a verified entry (without the bytes,
/// it is the rows [`Store::check_rows`] compares).
#[derive(Clone, Debug, Default)]
pub struct NewEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    pub subjects: Vec<Digest>,
    pub envelope_fingerprint: [u8; 32],
    /// For a promotion: the environment promoted into.
    pub promoted_to: Option<String>,
    /// For a build with a source revision: its [`source_key`].
    pub source: Option<Vec<u8>>,
    /// Whether the entry sets the policy.
    pub is_policy: bool,
    /// For a build in a release: the release id.
    pub release: Option<String>,
}

/// Key of the source index: git revision ‖ 0x00 ‖ artifact name (may be empty).
pub fn source_key(git_commit: &str, artifact: Option<&str>) -> Vec<u8> {
    let mut k = git_commit.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(artifact.unwrap_or("").as_bytes());
    k
}

/// Where the stored indexes or tree differ from what the chain implies:
/// the entry concerned and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub index: u64,
    pub reason: String,
}

/// One Merkle tree node: the root of the perfect subtree of `2^level` leaves
/// starting at leaf `index << level` (see [`crate::tree::Nodes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeWrite {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

/// Everything one append writes, atomically.
#[derive(Clone, Copy, Debug)]
pub struct Append<'a> {
    pub entries: &'a [NewEntry],
    /// The tree nodes the new entries complete.
    pub nodes: &'a [NodeWrite],
    /// The signed checkpoint note of the new tree.
    pub checkpoint: &'a str,
    pub head: &'a Head,
}

pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + 'a>;

/// What the ledger needs from storage.
pub trait Store {
    /// The head, or `None` for a store with no entry yet.
    fn head(&self) -> Result<Option<Head>, StoreError>;
    fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// Entries in index order from `start`, each with the index it is stored under.
    fn entries_from(&self, start: u64) -> EntryIter<'_>;
    /// Indexes of the entries with `digest` among their subjects, ascending.
    fn entries_for_subject(&self, digest: &Digest) -> Result<Vec<u64>, StoreError>;
    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, StoreError>;
    /// The entry recorded with this envelope fingerprint, if any.
    fn envelope_entry(&self, fingerprint: &[u8; 32]) -> Result<Option<u64>, StoreError>;
    /// Indexes of promotions into `env`, ascending.
    fn promotions_into(&self, env: &str) -> Result<Vec<u64>, StoreError>;
    /// Indexes of builds of a [`source_key`], ascending.
    fn builds_of_source(&self, key: &[u8]) -> Result<Vec<u64>, StoreError>;
    /// Indexes of the builds of a release, ascending.
    fn builds_of_release(&self, release: &str) -> Result<Vec<u64>, StoreError>;
    /// Indexes of policy entries, ascending.
    fn policy_entries(&self) -> Result<Vec<u64>, StoreError>;
    /// Compares every secondary index with exactly the rows `entries`
    /// imply (their bytes are not read): the first row missing, differing
    /// or not implied, if any.
    fn check_rows(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError>;
    /// A Merkle tree node, if stored.
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError>;
    /// Compares the stored tree with exactly `nodes`: the first node
    /// missing, differing or not implied, if any.
    fn check_nodes(&self, nodes: &[NodeWrite]) -> Result<Option<Mismatch>, StoreError>;
    /// The latest signed checkpoint note.
    fn checkpoint(&self) -> Result<Option<String>, StoreError>;
    /// Writes `append` atomically and durably, only if the current head is
    /// still `expected`.
    fn append(&self, expected: Option<&Head>, append: &Append<'_>) -> Result<(), StoreError>;
}

/// Free space an append leaves on the file system by default: 64 MiB.
pub const DEFAULT_MIN_FREE: u64 = 64 << 20;

/// Refuses a write of about `bytes` under `path` unless the file system
/// keeps `min_free` free after it (sled writes each byte about twice: log
/// and pages). sled does not survive a write cut short by a full disk: its
/// files are left unreadable (spacejam/sled#1509), so the store refuses to
/// come that close. `min_free` 0 turns the check off.
fn check_space(path: &Path, min_free: u64, bytes: u64) -> Result<(), StoreError> {
    if min_free == 0 {
        return Ok(());
    }
    let st = rustix::fs::statvfs(path)
        .map_err(|e| StoreError::Io { path: path.to_path_buf(), source: sled::Error::Io(e.into()) })?;
    let available = st.f_bavail.saturating_mul(st.f_frsize);
    let needed = min_free.saturating_add(bytes.saturating_mul(2));
    if available < needed {
        return Err(StoreError::DiskFull { path: path.to_path_buf(), available, needed });
    }
    Ok(())
}

/// The sled store of a ledger directory.
pub struct SledStore {
    path: PathBuf,
    /// Bytes an append leaves free on the file system (see [`SledStore::with_min_free`]).
    min_free: u64,
    db: sled::Db,
    entries: sled::Tree,
    meta: sled::Tree,
    /// The secondary indexes, written in the same transaction as the entries.
    indexes: index::Indexes,
    nodes: sled::Tree,
}

impl SledStore {
    /// Creates a new, empty store in `dir` (which may exist but must not hold
    /// a ledger), keeping [`DEFAULT_MIN_FREE`] bytes free.
    pub fn create(dir: &Path, lock_wait: Duration) -> Result<SledStore, StoreError> {
        SledStore::create_keeping(dir, lock_wait, DEFAULT_MIN_FREE)
    }

    /// Opens the store of an existing ledger directory, keeping
    /// [`DEFAULT_MIN_FREE`] bytes free.
    pub fn open(dir: &Path, lock_wait: Duration) -> Result<SledStore, StoreError> {
        SledStore::open_keeping(dir, lock_wait, DEFAULT_MIN_FREE)
    }

    /// [`SledStore::create`], keeping `min_free` bytes free (see [`SledStore::with_min_free`]).
    ///
    /// What decides that a directory holds a ledger is a durable head, not
    /// the presence of sled's files: a creation killed before its first
    /// append (sled's files half made, the version record missing, no
    /// entry) leaves a store with no head, which is empty, and is reused.
    pub fn create_keeping(dir: &Path, lock_wait: Duration, min_free: u64) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io { path: dir.to_path_buf(), source: e.into() })?;
        check_space(dir, min_free, 0)?;
        // Decided under sled's lock, so that of two creators one sees the other's head.
        let store = SledStore::open_db(dir, lock_wait)?.with_min_free(min_free);
        if store.head()?.is_some() {
            return Err(StoreError::AlreadyExists(dir.to_path_buf()));
        }
        store.check_version()?;
        store.meta.insert(META_VERSION, &STORE_VERSION.to_be_bytes()).map_err(|e| store.io(e))?;
        store.db.flush().map_err(|e| store.io(e))?;
        Ok(store)
    }

    /// [`SledStore::open`], keeping `min_free` bytes free. sled writes when
    /// it opens a store (a new snapshot of its log), so even a store opened
    /// to read is refused on a file system with less free. A store whose
    /// creation was cut short (no version record, no entry) opens as an
    /// empty one.
    pub fn open_keeping(dir: &Path, lock_wait: Duration, min_free: u64) -> Result<SledStore, StoreError> {
        if !dir.join(DB_DIR).is_dir() {
            return Err(StoreError::NotALedger(dir.to_path_buf()));
        }
        check_space(dir, min_free, 0)?;
        let store = SledStore::open_db(dir, lock_wait)?.with_min_free(min_free);
        store.check_version()?;
        Ok(store)
    }

    /// Opens the store of `dir`, creating an empty one if there is none or if
    /// its creation was cut short (a mirror before its first sync).
    pub fn open_or_create_keeping(dir: &Path, lock_wait: Duration, min_free: u64) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io { path: dir.to_path_buf(), source: e.into() })?;
        check_space(dir, min_free, 0)?;
        let store = SledStore::open_db(dir, lock_wait)?.with_min_free(min_free);
        if store.check_version()?.is_none() {
            store.meta.insert(META_VERSION, &STORE_VERSION.to_be_bytes()).map_err(|e| store.io(e))?;
            store.db.flush().map_err(|e| store.io(e))?;
        }
        Ok(store)
    }

    /// The store version, refused unless this build reads it; `None` for a
    /// store whose creation was cut short before the version was written
    /// (which must then hold nothing).
    fn check_version(&self) -> Result<Option<u32>, StoreError> {
        match self.meta.get(META_VERSION).map_err(|e| self.io(e))? {
            None => {
                let empty = self.head()?.is_none() && self.entries.is_empty();
                if !empty {
                    return Err(StoreError::Corrupt("entries without a store version record".into()));
                }
                Ok(None)
            }
            Some(v) => {
                let v: [u8; 4] =
                    v.as_ref().try_into().map_err(|_| StoreError::Corrupt("store version record".into()))?;
                let v = u32::from_be_bytes(v);
                if v > STORE_VERSION {
                    return Err(StoreError::NewerVersion(v));
                }
                if v == 1 {
                    return Err(StoreError::OlderVersion(v));
                }
                if v != STORE_VERSION {
                    return Err(StoreError::Corrupt(format!("unknown store version {v}")));
                }
                Ok(Some(v))
            }
        }
    }

    fn open_db(dir: &Path, lock_wait: Duration) -> Result<SledStore, StoreError> {
        let db_path = dir.join(DB_DIR);
        let started = Instant::now();
        let db = loop {
            match sled::Config::new().path(&db_path).open() {
                Ok(db) => break db,
                // sled holds an exclusive file lock while a process has the
                // store open; another writer waits for it, within a bound.
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    if started.elapsed() >= lock_wait {
                        return Err(StoreError::Locked(dir.to_path_buf(), lock_wait));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(StoreError::Io { path: db_path, source: e }),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(|e| StoreError::Io { path: db_path.clone(), source: e });
        Ok(SledStore {
            entries: tree(TREE_ENTRIES)?,
            meta: tree(TREE_META)?,
            indexes: index::Indexes::in_db(&db, &db_path)?,
            nodes: tree(TREE_NODES)?,
            path: db_path.clone(),
            min_free: DEFAULT_MIN_FREE,
            db,
        })
    }

    /// Sets the free space an append must leave on the file system. sled
    /// does not survive a write cut short by a full disk (its log is left
    /// unreadable), so an append that would come close is refused before
    /// anything is written. 0 turns the check off.
    pub fn with_min_free(mut self, bytes: u64) -> SledStore {
        self.min_free = bytes;
        self
    }

    fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io { path: self.path.clone(), source }
    }

    /// Bypasses every check and index: overwrites or inserts raw entry bytes.
    /// For tamper tests and forensic tools only; `verify` will notice.
    #[doc(hidden)]
    pub fn raw_put(&self, index: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.entries.insert(index.to_be_bytes(), bytes).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Bypasses every check: overwrites a tree node or the checkpoint.
    /// For tamper tests only; `verify` will notice.
    #[doc(hidden)]
    pub fn raw_put_tree(&self, node: Option<NodeWrite>, checkpoint: Option<&str>) -> Result<(), StoreError> {
        if let Some(n) = node {
            self.nodes.insert(node_key(n.level, n.index), &n.hash[..]).map_err(|e| self.io(e))?;
        }
        if let Some(c) = checkpoint {
            self.meta.insert(META_CHECKPOINT, c.as_bytes()).map_err(|e| self.io(e))?;
        }
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Bypasses every check and index: removes raw entry bytes.
    #[doc(hidden)]
    pub fn raw_remove(&self, index: u64) -> Result<(), StoreError> {
        self.entries.remove(index.to_be_bytes()).map_err(|e| self.io(e))?;
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }
}

fn node_key(level: u32, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level as u8;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

use index::{Row, What, index_of};

impl Store for SledStore {
    fn head(&self) -> Result<Option<Head>, StoreError> {
        self.meta.get(META_HEAD).map_err(|e| self.io(e))?.map(|v| Head::decode(&v)).transpose()
    }

    fn get(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.get(index.to_be_bytes()).map_err(|e| self.io(e))?.map(|v| v.to_vec()))
    }

    fn entries_from(&self, start: u64) -> EntryIter<'_> {
        Box::new(self.entries.range(start.to_be_bytes()..).map(move |r| {
            let (k, v) = r.map_err(|e| self.io(e))?;
            Ok((index_of(&k)?, v.to_vec()))
        }))
    }

    fn entries_for_subject(&self, digest: &Digest) -> Result<Vec<u64>, StoreError> {
        self.indexes.entries_for_subject(digest)
    }

    fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, StoreError> {
        self.indexes.has_envelope(fingerprint)
    }

    fn envelope_entry(&self, fingerprint: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        self.indexes.envelope_entry(fingerprint)
    }

    fn promotions_into(&self, env: &str) -> Result<Vec<u64>, StoreError> {
        self.indexes.promotions_into(env)
    }

    fn builds_of_source(&self, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.indexes.builds_of_source(key)
    }

    fn builds_of_release(&self, release: &str) -> Result<Vec<u64>, StoreError> {
        self.indexes.builds_of_release(release)
    }

    fn policy_entries(&self) -> Result<Vec<u64>, StoreError> {
        self.indexes.policy_entries()
    }

    fn check_rows(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError> {
        self.indexes.check_rows(entries)
    }

    fn check_nodes(&self, nodes: &[NodeWrite]) -> Result<Option<Mismatch>, StoreError> {
        let rows = nodes
            .iter()
            .map(|n| Row {
                key: node_key(n.level, n.index).to_vec(),
                value: n.hash.to_vec(),
                // The entry whose append completed the node.
                index: ((n.index + 1) << n.level) - 1,
                what: What::Node(n.level, n.index),
            })
            .collect();
        index::compare_all(vec![(&self.nodes, rows)], &|e| self.io(e))
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, StoreError> {
        let Some(v) = self.nodes.get(node_key(level, index)).map_err(|e| self.io(e))? else { return Ok(None) };
        let h: Hash = v.as_ref().try_into().map_err(|_| {
            StoreError::Corrupt(format!("tree node ({level}, {index}) holds {} bytes, not 32", v.len()))
        })?;
        Ok(Some(h))
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        let Some(v) = self.meta.get(META_CHECKPOINT).map_err(|e| self.io(e))? else { return Ok(None) };
        String::from_utf8(v.to_vec()).map(Some).map_err(|_| StoreError::Corrupt("checkpoint is not UTF-8".into()))
    }

    fn append(&self, expected: Option<&Head>, append: &Append<'_>) -> Result<(), StoreError> {
        let bytes: usize = append.entries.iter().map(|e| e.bytes.len() + 256).sum::<usize>()
            + append.nodes.len() * 48
            + append.checkpoint.len();
        check_space(&self.path, self.min_free, bytes as u64)?;
        let expected = expected.map(Head::encode);
        let ix = &self.indexes;
        let trees = (
            &self.entries,
            &self.meta,
            &ix.subjects,
            &ix.envelopes,
            &ix.environments,
            &ix.sources,
            &ix.policies,
            &ix.releases,
            &self.nodes,
        );
        let result = trees.transaction(|(e, m, s, v, envs, srcs, pols, rels, nodes)| {
            let current = m.get(META_HEAD)?;
            if current.as_deref() != expected.as_ref().map(|h| h.as_slice()) {
                return Err(ConflictableTransactionError::Abort(()));
            }
            for n in append.nodes {
                nodes.insert(&node_key(n.level, n.index)[..], &n.hash[..])?;
            }
            for entry in append.entries {
                e.insert(&entry.index.to_be_bytes(), entry.bytes.as_slice())?;
                index::insert_rows((s, v, envs, srcs, pols, rels), entry)?;
            }
            m.insert(META_CHECKPOINT, append.checkpoint.as_bytes())?;
            m.insert(META_HEAD, &append.head.encode()[..])?;
            Ok(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(())) => return Err(StoreError::HeadMoved),
            Err(TransactionError::Storage(e)) => return Err(self.io(e)),
        }
        self.db.flush().map_err(|e| self.io(e))?;
        Ok(())
    }
}
