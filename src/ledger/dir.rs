//! The ledger directory: its store, the ledger's own log key, and the
//! evidence a mirror keeps of forks and rollbacks. The one place that knows
//! the directory's layout.
//!
//! ```text
//! DIR/log/            the chain: the segment log (store version 3)
//! DIR/index/          the indexes, followers of the log (sled; can be rebuilt)
//! DIR/log.key(.pub)   the key that signs every checkpoint (0600)
//! DIR/log.key.next    a new log key, staged until the policy naming it is durable
//! DIR/evidence/       signed checkpoints of histories a mirror refused
//! DIR/store.v2/       a converted store version 2 ledger's files, kept
//! ```
//!
//! A store version 2 directory (one sled database, `DIR/store/`) is
//! converted when it is first opened ([`LedgerDir::migrate`]), and the
//! conversion announced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::dsse::Envelope;
use crate::core::entry::UnverifiedEntry;
use crate::core::hash::EntryHash;
use crate::core::keys::SecretKey;
use crate::files::{fsutil, keyfile};
use crate::ledger::{Ledger, LedgerError};
use crate::store::any::LedgerStore;
use crate::store::local::{Layout, LocalStore};
use crate::store::postgres::PgStore;
use crate::store::{Store as _, StoreError, v2};
use crate::verify::{ChainState, MemPrefix, VerifiedEntry};

/// The ledger's own key, in its directory.
pub const LOG_KEY_FILE: &str = "log.key";
/// A new log key, beside the ledger until the entry naming it is durable.
pub const STAGED_LOG_KEY_FILE: &str = "log.key.next";
/// Where a mirror keeps the signed checkpoints of histories it refused.
pub const EVIDENCE_DIR: &str = "evidence";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Key(#[from] keyfile::KeyFileError),
    #[error("no log key at {}: the ledger signs a checkpoint with it after every append", .0.display())]
    NoLogKey(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the policy entry is recorded, but moving {} to {}: {source}", from.display(), to.display())]
    KeyNotMoved { from: PathBuf, to: PathBuf, source: std::io::Error },
}

/// A ledger directory and how to open its store.
#[derive(Clone, Debug)]
pub struct LedgerDir {
    path: PathBuf,
    lock_wait: Duration,
    /// Told of a conversion made on open.
    on_migrate: Option<fn(&Migrated)>,
    /// The PostgreSQL database holding the chain, if it is not in the
    /// directory (which then keeps the log key and evidence only).
    database: Option<String>,
}

impl LedgerDir {
    pub fn new(path: impl Into<PathBuf>, lock_wait: Duration) -> LedgerDir {
        LedgerDir { path: path.into(), lock_wait, on_migrate: None, database: None }
    }

    /// Keeps the chain in the PostgreSQL database at `url` instead of the
    /// directory.
    pub fn with_database(mut self, url: Option<String>) -> LedgerDir {
        self.database = url;
        self
    }

    /// The database holding the chain, if not the directory.
    pub fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    fn connect(&self, url: &str) -> Result<LedgerStore, DirError> {
        Ok(LedgerStore::Postgres(Box::new(PgStore::connect(url)?)))
    }

    /// Calls `announce` after a store version 2 ledger is converted on open.
    pub fn on_migrate(mut self, announce: fn(&Migrated)) -> LedgerDir {
        self.on_migrate = Some(announce);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn log_key_path(&self) -> PathBuf {
        self.path.join(LOG_KEY_FILE)
    }

    pub fn evidence_dir(&self) -> PathBuf {
        self.path.join(EVIDENCE_DIR)
    }

    /// Whether the directory holds a store (possibly still empty); a
    /// database always does.
    pub fn has_store(&self) -> bool {
        self.database.is_some() || LocalStore::layout_of(&self.path).is_some()
    }

    /// Opens the ledger to read (converting a store version 2 ledger first).
    pub fn open(&self) -> Result<Ledger<LedgerStore>, DirError> {
        if let Some(url) = &self.database {
            return Ok(Ledger::new(self.connect(url)?));
        }
        self.convert_old()?;
        Ok(Ledger::new(LedgerStore::Dir(Box::new(LocalStore::open(&self.path, self.lock_wait)?))))
    }

    /// Opens the ledger, creating an empty store if there is none (a mirror
    /// before its first sync).
    pub fn open_or_create(&self) -> Result<Ledger<LedgerStore>, DirError> {
        if let Some(url) = &self.database {
            return Ok(Ledger::new(self.connect(url)?));
        }
        self.convert_old()?;
        Ok(Ledger::new(LedgerStore::Dir(Box::new(LocalStore::open_or_create(&self.path, self.lock_wait)?))))
    }

    /// Converts a store version 2 ledger, announcing it, or finishes a
    /// conversion cut short after its new log was in place.
    fn convert_old(&self) -> Result<(), DirError> {
        match LocalStore::layout_of(&self.path) {
            Some(Layout::Sled) => {
                if let Some(done) = self.migrate()?
                    && let Some(announce) = self.on_migrate
                {
                    announce(&done);
                }
            }
            Some(Layout::Log) if v2::present(&self.path) => {
                self.finish_migration()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The ledger's log key (`insecure`: accept a file others can read).
    pub fn log_key(&self, insecure: bool) -> Result<SecretKey, DirError> {
        let path = self.log_key_path();
        if !path.exists() {
            return Err(DirError::NoLogKey(path));
        }
        Ok(keyfile::read_secret(&path, insecure)?)
    }

    /// Opens the ledger to append, with its log key. Only `init` appends to
    /// a ledger with no entry.
    pub fn open_writer(&self, insecure: bool) -> Result<Ledger<LedgerStore>, DirError> {
        let ledger = self.open()?;
        if ledger.store().head()?.is_none() {
            return Err(LedgerError::Empty.into());
        }
        let key = self.log_key(insecure)?;
        Ok(ledger.with_log_key(key))
    }

    /// Creates the ledger with `genesis` (a signed policy statement) as
    /// entry 0, its checkpoints signed by `log_key`. The genesis entry is
    /// checked before anything is created on disk; a failure after that
    /// removes what this call created. A store with no entry (left by an
    /// `init` killed before its genesis was durable) is reused, and a log
    /// key left with it, which signed nothing, is replaced.
    pub fn init(&self, genesis: Envelope, log_key: SecretKey, now: u64) -> Result<VerifiedEntry, DirError> {
        let (probe, _) = UnverifiedEntry::build(0, EntryHash::ZERO, now, genesis.clone());
        ChainState::empty().verify_next(probe, &MemPrefix::default()).map_err(LedgerError::from)?;
        let store = match &self.database {
            Some(url) => {
                let store = self.connect(url)?;
                if store.head()?.is_some() {
                    return Err(StoreError::AlreadyExists(store.describe().into()).into());
                }
                std::fs::create_dir_all(&self.path)
                    .map_err(|source| DirError::Io { path: self.path.clone(), source })?;
                store
            }
            None => {
                if LocalStore::layout_of(&self.path) == Some(Layout::Sled) {
                    return Err(StoreError::AlreadyExists(self.path.clone()).into());
                }
                LedgerStore::Dir(Box::new(LocalStore::create(&self.path, self.lock_wait)?))
            }
        };
        // The ledger (and its lock) lives only inside the closure, so that a
        // failure can remove what was created.
        let result = (|| -> Result<VerifiedEntry, DirError> {
            let path = self.log_key_path();
            let stale = |source| DirError::Io { path: path.clone(), source };
            fsutil::remove_stale_temps(&path).map_err(stale)?;
            fsutil::remove_stale_temps(&keyfile::public_path(&path)).map_err(stale)?;
            keyfile::replace_key(&path, &log_key)?;
            Ok(Ledger::new(store).with_log_key(log_key).init(genesis, now)?)
        })();
        if result.is_err() {
            if self.database.is_none() {
                for folder in LocalStore::folders(&self.path) {
                    let _ = std::fs::remove_dir_all(folder);
                }
            }
            let _ = std::fs::remove_file(self.log_key_path());
            let _ = std::fs::remove_file(keyfile::public_path(&self.log_key_path()));
        }
        result
    }

    /// Removes the store, for a command that created it and leaves it empty
    /// (a first sync that failed). The caller holds no ledger open on it.
    pub fn remove_store(&self) {
        if self.database.is_some() {
            return;
        }
        for folder in LocalStore::folders(&self.path) {
            let _ = std::fs::remove_dir_all(folder);
        }
    }

    /// Stages `key` beside the ledger as the next log key: it takes the
    /// place of `log.key` only when [`StagedLogKey::commit`] is called, once
    /// the policy entry naming it is durable; dropped uncommitted, it is
    /// removed.
    pub fn stage_log_key(&self, key: &SecretKey) -> Result<StagedLogKey, DirError> {
        let staged = self.path.join(STAGED_LOG_KEY_FILE);
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_file(keyfile::public_path(&staged));
        keyfile::write_new_key(&staged, key)?;
        Ok(StagedLogKey { staged, target: self.log_key_path(), committed: false })
    }
}

/// A log key staged by [`LedgerDir::stage_log_key`].
#[derive(Debug)]
pub struct StagedLogKey {
    staged: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedLogKey {
    /// Makes the staged key the ledger's log key.
    pub fn commit(mut self) -> Result<(), DirError> {
        self.committed = true;
        for (from, to) in [
            (self.staged.clone(), self.target.clone()),
            (keyfile::public_path(&self.staged), keyfile::public_path(&self.target)),
        ] {
            std::fs::rename(&from, &to).map_err(|source| DirError::KeyNotMoved { from, to, source })?;
        }
        // The renames are durable once the directory is.
        let target = self.target.clone();
        crate::fsutil::sync_parent(&target).map_err(|source| DirError::KeyNotMoved {
            from: self.staged.clone(),
            to: target,
            source,
        })
    }
}

impl Drop for StagedLogKey {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.staged);
            let _ = std::fs::remove_file(keyfile::public_path(&self.staged));
        }
    }
}

/// What [`LedgerDir::migrate`] did.
#[derive(Clone, Debug)]
pub struct Migrated {
    pub entries: u64,
    pub head: EntryHash,
    /// The signed checkpoint, the same before and after.
    pub checkpoint: String,
    /// Where the store version 2 files are kept.
    pub kept: PathBuf,
}

/// The folder a migration builds the new store in, beside the old one.
const MIGRATE_STAGING: &str = "migrate.new";
/// The name the store version 2 files keep after a migration.
pub const MIGRATED_V2: &str = "store.v2";

impl LedgerDir {
    /// Converts a store version 2 ledger (sled) into store version 3 (the
    /// segment log, with follower indexes): the same entries, the same head
    /// and the same signed checkpoint. Every entry is replayed through the
    /// chain rules and the new tree must match the old signed checkpoint
    /// (verified before), and the new store is verified whole (after). The
    /// new store is built beside the old one (`migrate.new/`) while the old
    /// one's lock is held, so no writer runs meanwhile; `log/` then moves
    /// into place (from then on the directory is version 3), `index/`
    /// after it, and the old files are kept as `store.v2/`. Killed at any
    /// point, the directory is either the old ledger (a leftover
    /// `migrate.new/` is removed by the next try) or the new one.
    /// `Ok(None)` when the ledger is already version 3 (or was converted
    /// by another process meanwhile).
    ///
    /// The verified entries are held in memory until the new log is
    /// written in one group.
    pub fn migrate(&self) -> Result<Option<Migrated>, DirError> {
        use crate::store::index::Indexes;
        use crate::store::local::{INDEX_DIR, LOG_DIR};
        use crate::store::logstore::LogStore;
        use crate::store::segment::SegmentLog;
        match LocalStore::layout_of(&self.path) {
            None => return Err(StoreError::NotALedger(self.path.clone()).into()),
            Some(Layout::Log) => {
                self.finish_migration()?;
                return Ok(None);
            }
            Some(Layout::Sled) => {}
        }
        let old = v2::V2Store::open(&self.path, self.lock_wait)?;
        // Another process may have converted it while we waited for the lock.
        if LocalStore::layout_of(&self.path) != Some(Layout::Sled) {
            return Ok(None);
        }
        let old_head = old.head()?;
        let checkpoint = old.checkpoint()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DirError::Io { path, source }
        };
        let staging = self.path.join(MIGRATE_STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        let (entries, head) = {
            let log = SegmentLog::open(&staging.join(LOG_DIR)).map_err(StoreError::from)?;
            let indexes = Indexes::open(&staging.join(INDEX_DIR))?;
            let new = Ledger::new(LogStore::new(log, indexes)?);
            match (&old_head, &checkpoint) {
                (None, _) => {}
                (Some(_), None) => {
                    return Err(
                        StoreError::Corrupt("the store version 2 ledger has entries but no checkpoint".into()).into()
                    );
                }
                (Some(_), Some(checkpoint)) => {
                    let mut replica = new.replica()?;
                    let mut chunk = Vec::with_capacity(4096);
                    for item in old.entries() {
                        chunk.push(item?.1);
                        if chunk.len() == 4096 {
                            replica.push(&chunk)?;
                            chunk.clear();
                        }
                    }
                    replica.push(&chunk)?;
                    replica.finish(checkpoint)?;
                }
            }
            let new_head = crate::store::Store::head(new.store())?;
            if new_head != old_head {
                return Err(StoreError::Corrupt(format!(
                    "the store version 2 head record ({}) is not the head of its entries ({})",
                    describe(old_head.as_ref()),
                    describe(new_head.as_ref())
                ))
                .into());
            }
            let after = if new_head.is_some() { Some(new.verify(None, |_| {})?) } else { None };
            if let Some(after) = &after
                && (Some(after.head) != old_head.map(|h| h.hash)
                    || checkpoint.as_deref() != Some(new.checkpoint()?.note.as_str()))
            {
                return Err(StoreError::Corrupt("the migrated chain is not the one it was made from".into()).into());
            }
            new.store().indexes().flush()?;
            (after.as_ref().map_or(0, |a| a.entries), new_head.map_or(crate::core::hash::EntryHash::ZERO, |h| h.hash))
        };
        for folder in [LOG_DIR, INDEX_DIR] {
            let (from, to) = (staging.join(folder), self.path.join(folder));
            std::fs::rename(&from, &to).map_err(io(&to))?;
            fsutil::sync_parent(&to).map_err(io(&to))?;
        }
        drop(old);
        let kept = self.finish_migration()?.unwrap_or_else(|| self.path.join(MIGRATED_V2));
        Ok(Some(Migrated { entries, head, checkpoint: checkpoint.unwrap_or_default(), kept }))
    }

    /// The last steps of a conversion, once the new log is in place: the
    /// store version 2 files move aside (to `store.v2/`, or `store.v2.N/`
    /// if that is taken) and the staging folder goes. Returns where the old
    /// files went, if they were still in place. A conversion killed after
    /// its log moved is finished by the next open.
    fn finish_migration(&self) -> Result<Option<PathBuf>, DirError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DirError::Io { path, source }
        };
        let old = self.path.join(v2::DB_DIR);
        let mut kept = None;
        if old.exists() {
            let to = (0..)
                .map(|n| match n {
                    0 => self.path.join(MIGRATED_V2),
                    n => self.path.join(format!("{MIGRATED_V2}.{n}")),
                })
                .find(|p| !p.exists())
                .expect("a free name");
            std::fs::rename(&old, &to).map_err(io(&to))?;
            fsutil::sync_parent(&to).map_err(io(&to))?;
            kept = Some(to);
        }
        let staging = self.path.join(MIGRATE_STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        Ok(kept)
    }
}

fn describe(head: Option<&crate::store::Head>) -> String {
    head.map_or("no entry".into(), |h| format!("{} entries, head {}", h.count, h.hash))
}
