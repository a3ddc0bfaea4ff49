//! The secondary indexes of a ledger, in sled: which entries name a digest,
//! an envelope, an environment, a source revision, a release, a policy.
//!
//! Each row is implied by one entry's statement ([`NewEntry::of`]), so the
//! indexes can always be made again from the chain: they are followers of
//! the log. [`Indexes::catch_up`] applies what a [`Log`] holds beyond the
//! last entry the indexes applied (recorded with the rows, in the same
//! sled batch), and [`Indexes::rebuild`] makes them anew. Losing them costs
//! a rebuild, never an entry.

use std::path::{Path, PathBuf};

use crate::core::FormatError;
use crate::core::digest::Digest;
use crate::core::entry::UnverifiedEntry;
use crate::core::statement::{Predicate, Statement};

use super::log::{Log, LogError};
use super::{Mismatch, NewEntry, StoreError, source_key};

/// The one sled tree holding every index, each under a prefix byte: one
/// sled batch per append (sled syncs each buffer it writes, so fewer
/// operations is less waiting).
const TREE_ROWS: &str = "rows";
/// The trees of the first layout (one per index), made anew as `rows`.
const OLD_TREES: [&str; 2] = ["subjects", "follower"];
const TREE_SUBJECTS: u8 = 1;
const TREE_ENVELOPES: u8 = 2;
const TREE_ENVIRONMENTS: u8 = 3;
const TREE_SOURCES: u8 = 4;
const TREE_POLICIES: u8 = 5;
const TREE_RELEASES: u8 = 6;
/// The number of entries the indexes hold the rows of (a follower's mark).
const KEY_APPLIED: &[u8] = b"\xffapplied";

/// One index: the keys of [`TREE_ROWS`] under its prefix byte.
pub(super) struct Part {
    tree: sled::Tree,
    prefix: u8,
}

impl Part {
    fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(key.len() + 1);
        k.push(self.prefix);
        k.extend_from_slice(key);
        k
    }

    fn name(&self) -> &'static str {
        match self.prefix {
            TREE_SUBJECTS => "subjects",
            TREE_ENVELOPES => "envelopes",
            TREE_ENVIRONMENTS => "environments",
            TREE_SOURCES => "sources",
            TREE_POLICIES => "policies",
            _ => "releases",
        }
    }

    fn insert(&self, batch: &mut sled::Batch, key: &[u8], value: &[u8]) {
        batch.insert(self.key(key), value);
    }

    fn get(&self, key: &[u8]) -> sled::Result<Option<sled::IVec>> {
        self.tree.get(self.key(key))
    }

    /// The entries under `prefix`, with the part's prefix byte taken off.
    fn scan_prefix(&self, prefix: &[u8]) -> impl Iterator<Item = sled::Result<(Vec<u8>, sled::IVec)>> + '_ {
        self.tree.scan_prefix(self.key(prefix)).map(|r| r.map(|(k, v)| (k[1..].to_vec(), v)))
    }

    fn iter(&self) -> impl Iterator<Item = sled::Result<(Vec<u8>, sled::IVec)>> + '_ {
        self.scan_prefix(&[])
    }
}
/// Entries applied in one sled batch while catching up.
const CATCH_UP_BATCH: u64 = 4096;

impl NewEntry {
    /// The index rows an entry's statement implies (everything of a
    /// [`NewEntry`] but its bytes).
    pub fn of(index: u64, statement: &Statement, envelope_fingerprint: [u8; 32]) -> NewEntry {
        let mut subjects = statement.subject_digests();
        subjects.sort();
        subjects.dedup();
        let (promoted_to, source, release) = match &statement.predicate {
            Predicate::Promotion(p) => (Some(p.to.clone()), None, None),
            Predicate::Build(b) => {
                let ext = &b.build_definition.external_parameters;
                (None, b.git_commit().map(|sha| source_key(sha, ext.artifact.as_deref())), ext.release.clone())
            }
            _ => (None, None, None),
        };
        NewEntry {
            index,
            bytes: Vec::new(),
            subjects,
            envelope_fingerprint,
            promoted_to,
            source,
            is_policy: matches!(statement.predicate, Predicate::Policy(_)),
            release,
        }
    }

    /// The index rows of an entry read back from a log (its place in the
    /// chain is `verify`'s to vouch for, not the indexes').
    pub fn of_bytes(index: u64, bytes: &[u8]) -> Result<NewEntry, FormatError> {
        let entry = UnverifiedEntry::decode(bytes)?;
        let statement = Statement::parse(&entry.envelope.payload)?;
        Ok(NewEntry::of(index, &statement, entry.envelope_fingerprint()))
    }
}

/// The six indexes and the follower's mark, in a sled database of their
/// own.
pub struct Indexes {
    path: PathBuf,
    db: sled::Db,
    rows: sled::Tree,
    subjects: Part,
    envelopes: Part,
    environments: Part,
    sources: Part,
    policies: Part,
    releases: Part,
}

impl Indexes {
    /// Opens (or creates) the index database at `path`. One of the first
    /// layout (a tree per index) is refused as corrupt, which costs a
    /// rebuild, as any damaged index store does.
    pub fn open(path: &Path) -> Result<Indexes, StoreError> {
        let db = sled::Config::new().path(path).open().map_err(|e| StoreError::sled(path, e))?;
        if db.tree_names().iter().any(|n| OLD_TREES.iter().any(|o| n.as_ref() == o.as_bytes())) {
            return Err(StoreError::Corrupt(format!("{}: an index store of an earlier layout", path.display())));
        }
        let rows = db.open_tree(TREE_ROWS).map_err(|e| StoreError::sled(path, e))?;
        let part = |prefix| Part { tree: rows.clone(), prefix };
        Ok(Indexes {
            subjects: part(TREE_SUBJECTS),
            envelopes: part(TREE_ENVELOPES),
            environments: part(TREE_ENVIRONMENTS),
            sources: part(TREE_SOURCES),
            policies: part(TREE_POLICIES),
            releases: part(TREE_RELEASES),
            rows,
            path: path.to_path_buf(),
            db,
        })
    }

    pub(super) fn io(&self, source: sled::Error) -> StoreError {
        StoreError::sled(&self.path, source)
    }

    /// How many entries, from index 0, the indexes hold the rows of.
    pub fn applied(&self) -> Result<u64, StoreError> {
        match self.rows.get(KEY_APPLIED).map_err(|e| self.io(e))? {
            None => Ok(0),
            Some(v) => index_of(&v),
        }
    }

    /// Adds the rows of entries `applied()..` and the new mark, in one
    /// sled batch (atomic).
    pub fn apply(&self, rows: &[NewEntry]) -> Result<(), StoreError> {
        let Some(first) = rows.first() else { return Ok(()) };
        let applied = self.applied()?;
        if first.index != applied || rows.windows(2).any(|w| w[1].index != w[0].index + 1) {
            return Err(StoreError::Corrupt(format!(
                "index rows from entry {} cannot follow the {applied} entries the indexes hold",
                first.index
            )));
        }
        let next = first.index + rows.len() as u64;
        let mut b = sled::Batch::default();
        for entry in rows {
            let i = entry.index;
            for d in &entry.subjects {
                self.subjects.insert(&mut b, &subject_key(d, i), &[]);
            }
            self.envelopes.insert(&mut b, &entry.envelope_fingerprint, &i.to_be_bytes());
            if let Some(env) = &entry.promoted_to {
                self.environments.insert(&mut b, &named_key(env.as_bytes(), i), &[]);
            }
            if let Some(src) = &entry.source {
                self.sources.insert(&mut b, &named_key(src, i), &[]);
            }
            if entry.is_policy {
                self.policies.insert(&mut b, &i.to_be_bytes(), &[]);
            }
            if let Some(r) = &entry.release {
                self.releases.insert(&mut b, &named_key(r.as_bytes(), i), &[]);
            }
        }
        b.insert(KEY_APPLIED, &next.to_be_bytes());
        self.rows.apply_batch(b).map_err(|e| self.io(e))
    }

    /// Applies what `log` holds beyond [`Indexes::applied`], in batches;
    /// returns the number of entries applied. An index ahead of the log
    /// (the log lost entries the indexes saw, or another log) is refused.
    pub fn catch_up(&self, log: &dyn Log) -> Result<u64, StoreError> {
        let size = log.head().map_err(from_log)?.map_or(0, |h| h.count);
        let mut applied = self.applied()?;
        if applied > size {
            return Err(StoreError::Corrupt(format!(
                "the indexes hold rows of {applied} entries, the log only {size}: rebuild them (`provledger reindex`)"
            )));
        }
        let from = applied;
        while applied < size {
            let end = size.min(applied + CATCH_UP_BATCH);
            let read = log.range(applied, end).collect::<Result<Vec<_>, _>>().map_err(from_log)?;
            // Decoding and parsing the statements is most of the work: on all cores.
            use rayon::prelude::*;
            let rows = read
                .par_iter()
                .map(|(index, bytes)| {
                    NewEntry::of_bytes(*index, bytes)
                        .map_err(|e| StoreError::Corrupt(format!("entry {index} does not decode: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if rows.len() as u64 != end - applied {
                return Err(StoreError::Corrupt(format!("the log lacks entries {applied}..{end}")));
            }
            self.apply(&rows)?;
            applied = end;
        }
        Ok(applied - from)
    }

    /// Empties the indexes and applies the whole log again.
    pub fn rebuild(&self, log: &dyn Log) -> Result<u64, StoreError> {
        // The tree holds the indexes and the mark alone. (One batch of every
        // removal would hold them all in memory at once.)
        self.rows.clear().map_err(|e| self.io(e))?;
        self.catch_up(log)
    }

    /// Makes what was applied durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }

    pub fn entries_for_subject(&self, digest: &Digest) -> Result<Vec<u64>, StoreError> {
        self.subjects
            .scan_prefix(digest.as_bytes())
            .map(|r| {
                let (k, _) = r.map_err(|e| self.io(e))?;
                index_of(&k[32..])
            })
            .collect()
    }

    pub fn has_envelope(&self, fingerprint: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self.envelopes.get(fingerprint).map_err(|e| self.io(e))?.is_some())
    }

    pub fn envelope_entry(&self, fingerprint: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        self.envelopes.get(fingerprint).map_err(|e| self.io(e))?.map(|v| index_of(&v)).transpose()
    }

    pub fn promotions_into(&self, env: &str) -> Result<Vec<u64>, StoreError> {
        self.scan_named(&self.environments, env.as_bytes())
    }

    pub fn builds_of_source(&self, key: &[u8]) -> Result<Vec<u64>, StoreError> {
        self.scan_named(&self.sources, key)
    }

    pub fn builds_of_release(&self, release: &str) -> Result<Vec<u64>, StoreError> {
        self.scan_named(&self.releases, release.as_bytes())
    }

    pub fn policy_entries(&self) -> Result<Vec<u64>, StoreError> {
        self.policies
            .iter()
            .map(|r| {
                let (k, _) = r.map_err(|e| self.io(e))?;
                index_of(&k)
            })
            .collect()
    }

    fn scan_named(&self, tree: &Part, name: &[u8]) -> Result<Vec<u64>, StoreError> {
        let mut prefix = name.to_vec();
        prefix.push(0);
        tree.scan_prefix(&prefix)
            .map(|r| {
                let (k, _) = r.map_err(|e| self.io(e))?;
                index_of(&k[prefix.len()..])
            })
            .collect()
    }

    /// Compares every index with exactly the rows `entries` imply: the
    /// first row missing, differing or not implied, if any.
    pub fn check_rows(&self, entries: &[NewEntry]) -> Result<Option<Mismatch>, StoreError> {
        let mut subjects = Vec::new();
        let mut envelopes = Vec::with_capacity(entries.len());
        let mut environments = Vec::new();
        let mut sources = Vec::new();
        let mut policies = Vec::new();
        let mut releases = Vec::new();
        for e in entries {
            let index = e.index;
            let at = index.to_be_bytes().to_vec();
            for d in &e.subjects {
                subjects.push(Row {
                    key: subject_key(d, index).to_vec(),
                    value: Vec::new(),
                    index,
                    what: What::Subject(d),
                });
            }
            envelopes.push(Row {
                key: e.envelope_fingerprint.to_vec(),
                value: at.clone(),
                index,
                what: What::Envelope,
            });
            if let Some(env) = &e.promoted_to {
                let key = named_key(env.as_bytes(), index);
                environments.push(Row { key, value: Vec::new(), index, what: What::Environment(env) });
            }
            if let Some(src) = &e.source {
                sources.push(Row { key: named_key(src, index), value: Vec::new(), index, what: What::Source });
            }
            if e.is_policy {
                policies.push(Row { key: at, value: Vec::new(), index, what: What::Policy });
            }
            if let Some(r) = &e.release {
                releases.push(Row {
                    key: named_key(r.as_bytes(), index),
                    value: Vec::new(),
                    index,
                    what: What::Release(r),
                });
            }
        }
        let jobs = vec![
            (&self.subjects, subjects),
            (&self.envelopes, envelopes),
            (&self.environments, environments),
            (&self.sources, sources),
            (&self.policies, policies),
            (&self.releases, releases),
        ];
        compare_all(jobs, &|e| self.io(e))
    }
}

fn from_log(e: LogError) -> StoreError {
    StoreError::Corrupt(format!("reading the log: {e}"))
}

pub(super) fn subject_key(digest: &Digest, index: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(digest.as_bytes());
    k[32..].copy_from_slice(&index.to_be_bytes());
    k
}

/// `prefix ‖ 0x00 ‖ index`: rows of one name, in index order.
pub(super) fn named_key(name: &[u8], index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name);
    k.push(0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub(super) fn index_of(key: &[u8]) -> Result<u64, StoreError> {
    let b: [u8; 8] = key.try_into().map_err(|_| StoreError::Corrupt(format!("entry key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(b))
}

/// A row an index or the tree must hold, for [`compare`].
pub(super) struct Row<'a> {
    pub(super) key: Vec<u8>,
    pub(super) value: Vec<u8>,
    /// The entry the row belongs to.
    pub(super) index: u64,
    pub(super) what: What<'a>,
}

/// What a row is, for messages.
pub(super) enum What<'a> {
    Subject(&'a Digest),
    Envelope,
    Environment(&'a str),
    Source,
    Policy,
    Release(&'a str),
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Subject(d) => write!(f, "the subject {d} index"),
            What::Envelope => write!(f, "the envelope index"),
            What::Environment(e) => write!(f, "the environment {e} index"),
            What::Source => write!(f, "the source index"),
            What::Policy => write!(f, "the policy index"),
            What::Release(r) => write!(f, "the release {r} index"),
        }
    }
}

fn lacks(row: &Row<'_>) -> Mismatch {
    Mismatch { index: row.index, reason: format!("{} lacks this entry", row.what) }
}

type Io<'a> = &'a (dyn Fn(sled::Error) -> StoreError + Sync);

/// Runs [`compare`] on each tree at once, on all cores; reports the
/// mismatch of the lowest entry.
pub(super) fn compare_all(jobs: Vec<(&Part, Vec<Row<'_>>)>, io: Io<'_>) -> Result<Option<Mismatch>, StoreError> {
    use rayon::prelude::*;
    let found = jobs.into_par_iter().map(|(tree, rows)| compare(tree, rows, io)).collect::<Result<Vec<_>, _>>()?;
    Ok(found.into_iter().flatten().min_by_key(|m| m.index))
}

/// Walks `tree` in key order beside `rows` sorted the same way: the first
/// row missing, with another value, or stored but not in `rows`.
fn compare(tree: &Part, mut rows: Vec<Row<'_>>, io: Io<'_>) -> Result<Option<Mismatch>, StoreError> {
    rows.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let name = tree.name();
    let not_implied = |key: &[u8], value: &[u8]| {
        // The entry a stored row speaks for: the envelope index keeps it
        // as the value, every other index ends its key with it.
        let tail = |b: &[u8]| b.len().checked_sub(8).map_or(0, |at| index_of(&b[at..]).unwrap_or(0));
        let index = if tree.prefix == TREE_ENVELOPES { tail(value) } else { tail(key) };
        Mismatch {
            index,
            reason: format!(
                "the indexes hold rows the chain does not imply (a row of {name} with key {})",
                hex::encode(key)
            ),
        }
    };
    let mut stored = tree.iter();
    for row in &rows {
        let Some(item) = stored.next() else {
            return Ok(Some(lacks(row)));
        };
        let (key, value) = item.map_err(io)?;
        match key.as_slice().cmp(row.key.as_slice()) {
            std::cmp::Ordering::Less => return Ok(Some(not_implied(&key, &value))),
            std::cmp::Ordering::Greater => return Ok(Some(lacks(row))),
            std::cmp::Ordering::Equal if value.as_ref() != row.value.as_slice() => {
                let reason = format!("{} holds another value for this entry", row.what);
                return Ok(Some(Mismatch { index: row.index, reason }));
            }
            std::cmp::Ordering::Equal => {}
        }
    }
    match stored.next() {
        Some(item) => {
            let (key, value) = item.map_err(io)?;
            Ok(Some(not_implied(&key, &value)))
        }
        None => Ok(None),
    }
}
