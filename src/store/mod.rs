//! Durable storage of the chain: the [`Store`] trait the ledger uses, and
//! what implements it.
//!
//! A store keeps bytes and indexes; it never decides what may be appended
//! (that is `verify`'s job, driven by `ledger`).
//!
//! - [`log`]: the engine-neutral [`log::Log`] that holds the chain (entries,
//!   tree nodes, checkpoint, head), with an in-memory implementation and
//!   the conformance suite every implementation passes;
//! - [`segment`]: the embedded log, append-only segment files;
//! - [`index`]: the secondary indexes, in sled, followers of a log;
//! - [`logstore`]: a log and its indexes as a [`Store`];
//! - [`local`]: the store of a ledger directory (store version 3);
//! - [`postgres`]: the log and its index rows in a PostgreSQL database;
//! - [`any`]: whichever of the two a ledger is opened on;
//! - [`v2`]: reading a store version 2 ledger (one sled database), to
//!   convert it.

pub mod any;
pub mod index;
pub mod local;
pub mod log;
pub mod logstore;
pub mod postgres;
pub mod segment;
#[doc(hidden)]
pub mod tamper;
pub mod v2;

use std::path::PathBuf;
use std::time::Duration;

use crate::core::digest::Digest;
use crate::core::hash::EntryHash;
use crate::tree::Hash;

/// Store format version written by this build: the segment log with
/// follower indexes ([`local`]). Version 2 was one sled database ([`v2`]),
/// version 1 (pre-release) kept no Merkle tree and no checkpoint.
pub const STORE_VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{0} is not a provledger ledger (no log/ inside); run `provledger init` or pass --ledger")]
    NotALedger(PathBuf),
    #[error("{0} holds a store version 2 ledger; `provledger migrate` converts it")]
    NeedsMigration(PathBuf),
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
    #[error("the ledger head moved during the append (another writer?); nothing was written")]
    HeadMoved,
    /// The index store met a full disk; the chain (the log) is unchanged by it.
    #[error("no space left on the file system of {}; the chain is unchanged", path.display())]
    DiskFull { path: PathBuf },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("store I/O at {}: {source}", path.display())]
    Io { path: PathBuf, source: sled::Error },
    /// The log of a [`logstore::LogStore`] failed.
    #[error(transparent)]
    Log(log::LogError),
}

impl StoreError {
    /// The error of sled at `path`: a full disk says so.
    pub(crate) fn sled(path: &std::path::Path, source: sled::Error) -> StoreError {
        match &source {
            sled::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) => {
                StoreError::DiskFull { path: path.to_path_buf() }
            }
            _ => StoreError::Io { path: path.to_path_buf(), source },
        }
    }
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
    /// [`Store::envelope_entry`] for each of `fingerprints`, in their order
    /// (a store across a network answers in one round trip).
    fn envelope_entries(&self, fingerprints: &[[u8; 32]]) -> Result<Vec<Option<u64>>, StoreError> {
        fingerprints.iter().map(|f| self.envelope_entry(f)).collect()
    }
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
