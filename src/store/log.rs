//! The engine-neutral log: what a ledger needs from storage that keeps its
//! chain, and nothing more.
//!
//! A log holds the canonical bytes of the entries in index order, the
//! Merkle tree nodes they complete, the latest signed checkpoint and the
//! head. It is appended to a group at a time, only if its head is still the
//! one the writer read; a group is all there or not there, and durable
//! before [`Log::append`] returns. A log never decides what may be
//! appended (the chain rules do) and keeps no index: indexes follow it.
//!
//! [`MemLog`] keeps everything in memory, for tests. Every implementation
//! passes the suite in [`conformance`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

use super::{Head, NodeWrite};
use crate::tree::Hash;

/// Why a log operation failed, in terms of what happened, not of an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The head is no longer the one the append expected: nothing was written.
    #[error("the ledger head moved during the append (another writer?); nothing was written")]
    HeadMoved,
    /// Another process holds the log.
    #[error("{what} is in use by another process (waited {waited:?} for its lock)")]
    Locked { what: String, waited: std::time::Duration },
    /// The file system (or database) had no room for the write: nothing
    /// acknowledged was lost, and the head is unchanged.
    #[error("no space left for the write at {}; nothing was written", path.display())]
    DiskFull { path: PathBuf },
    /// What the log holds does not read back as written.
    #[error("log is corrupt{}: {reason}", index.map(|i| format!(" at entry {i}")).unwrap_or_default())]
    Corrupt { index: Option<u64>, reason: String },
    /// The log was written by a newer provledger: nothing is read from it.
    #[error("{what} was written by a newer provledger; upgrade provledger")]
    Newer { what: String },
    /// The log's database cannot be reached, or a connection failed during
    /// an append whose outcome is then unknown (resubmit: a resubmission of
    /// the same statement is answered with the entry if it was written).
    #[error("the log is unavailable: {0}")]
    Unavailable(String),
    /// A group that does not extend the head it names (a caller's error).
    #[error("refused group: {0}")]
    Invalid(String),
    #[error("log I/O at {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Everything one append writes, atomically and durably.
#[derive(Clone, Copy, Debug)]
pub struct Group<'a> {
    /// The entries' canonical bytes, from index `head.count - entries.len()` on.
    pub entries: &'a [&'a [u8]],
    /// The tree nodes the new entries complete.
    pub nodes: &'a [NodeWrite],
    /// The signed checkpoint note of the new tree.
    pub checkpoint: &'a str,
    /// The head after the group.
    pub head: &'a Head,
}

impl Group<'_> {
    /// Refuses a group that does not extend `current` by its entries.
    pub fn check_extends(&self, current: Option<&Head>) -> Result<(), LogError> {
        let before = current.map_or(0, |h| h.count);
        let after = before.checked_add(self.entries.len() as u64);
        if self.entries.is_empty() || after != Some(self.head.count) {
            return Err(LogError::Invalid(format!(
                "{} entries after {before} cannot make a head of {} entries",
                self.entries.len(),
                self.head.count
            )));
        }
        if self.entries.iter().any(|e| e.is_empty()) {
            return Err(LogError::Invalid("an entry with no bytes".into()));
        }
        Ok(())
    }
}

/// Entries in index order, each with its index.
pub type LogIter<'a> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>), LogError>> + Send + 'a>;

/// The chain's storage.
pub trait Log: Send + Sync {
    /// The head, or `None` for a log with no entry yet.
    fn head(&self) -> Result<Option<Head>, LogError>;
    /// The entry at `index`, or `None` past the head.
    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError>;
    /// The entries from `start` up to `end` (exclusive) or the head,
    /// whichever comes first, in order.
    fn range(&self, start: u64, end: u64) -> LogIter<'_>;
    /// A Merkle tree node (see [`crate::tree::Nodes`]), if the tree has it.
    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, LogError>;
    /// The latest signed checkpoint note.
    fn checkpoint(&self) -> Result<Option<String>, LogError>;
    /// Writes `group` atomically and durably, only if the head is still
    /// `expected` ([`LogError::HeadMoved`] otherwise, nothing written).
    fn append(&self, expected: Option<&Head>, group: &Group<'_>) -> Result<(), LogError>;
}

#[derive(Default)]
struct Mem {
    entries: Vec<Vec<u8>>,
    nodes: HashMap<(u32, u64), Hash>,
    checkpoint: Option<String>,
    head: Option<Head>,
}

/// A log in memory, for tests.
#[derive(Default)]
pub struct MemLog {
    mem: RwLock<Mem>,
}

impl MemLog {
    pub fn new() -> MemLog {
        MemLog::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Mem> {
        self.mem.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Log for MemLog {
    fn head(&self) -> Result<Option<Head>, LogError> {
        Ok(self.read().head)
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        Ok(usize::try_from(index).ok().and_then(|i| self.read().entries.get(i).cloned()))
    }

    fn range(&self, start: u64, end: u64) -> LogIter<'_> {
        let mem = self.read();
        let size = mem.entries.len() as u64;
        let rows: Vec<_> = (start..end.min(size)).map(|i| Ok((i, mem.entries[i as usize].clone()))).collect();
        Box::new(rows.into_iter())
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, LogError> {
        Ok(self.read().nodes.get(&(level, index)).copied())
    }

    fn checkpoint(&self) -> Result<Option<String>, LogError> {
        Ok(self.read().checkpoint.clone())
    }

    fn append(&self, expected: Option<&Head>, group: &Group<'_>) -> Result<(), LogError> {
        let mut mem = self.mem.write().unwrap_or_else(|e| e.into_inner());
        if mem.head.as_ref() != expected {
            return Err(LogError::HeadMoved);
        }
        group.check_extends(expected)?;
        mem.entries.extend(group.entries.iter().map(|e| e.to_vec()));
        for n in group.nodes {
            mem.nodes.insert((n.level, n.index), n.hash);
        }
        mem.checkpoint = Some(group.checkpoint.to_string());
        mem.head = Some(*group.head);
        Ok(())
    }
}

/// The tests every [`Log`] implementation must pass. `fresh` makes a new,
/// empty log; `reopen`, for a durable log, drops one and opens what it
/// left (`None` for a log that keeps nothing, like [`MemLog`]).
#[doc(hidden)]
pub mod conformance {
    use super::*;
    use crate::core::hash::EntryHash;

    /// Runs the whole suite; panics, naming the property, at the first failure.
    pub fn run<L: Log + 'static>(fresh: &dyn Fn() -> L, reopen: Option<&dyn Fn(L) -> L>) {
        empty(&fresh());
        appends_and_reads(&fresh());
        refuses_a_moved_head(&fresh());
        refuses_a_group_that_does_not_extend(&fresh());
        ranges(&fresh());
        one_of_two_racing_writers(fresh());
        if let Some(reopen) = reopen {
            survives_reopening(fresh(), reopen);
        }
    }

    /// Entry `i` of the test chains: distinct bytes, of varied lengths.
    pub fn entry_bytes(i: u64) -> Vec<u8> {
        let len = 1 + (i as usize * 7919) % 3000;
        (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
    }

    /// A head after `count` entries (its fields distinct per count).
    pub fn head(count: u64) -> Head {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&count.to_be_bytes());
        Head {
            count,
            hash: EntryHash::from_slice(&h).unwrap(),
            last_time: 1_700_000_000 + count,
            policy_index: count / 10,
        }
    }

    fn node(level: u32, index: u64) -> NodeWrite {
        let mut hash = [0u8; 32];
        hash[0] = level as u8;
        hash[1..9].copy_from_slice(&index.to_be_bytes());
        hash[31] = 0xa5;
        NodeWrite { level, index, hash }
    }

    /// Appends entries `from..to` as one group, expecting the head after `from`.
    pub fn append_range<L: Log + ?Sized>(log: &L, from: u64, to: u64) -> Result<(), LogError> {
        let entries: Vec<Vec<u8>> = (from..to).map(entry_bytes).collect();
        // The leaves, and each pair a leaf completes (as a ledger writes
        // them: every node once, by the group that completes it).
        let nodes: Vec<NodeWrite> =
            (from..to).map(|i| node(0, i)).chain((from..to).filter(|i| i % 2 == 1).map(|i| node(1, i / 2))).collect();
        let checkpoint = format!("test\n{to}\nroot\n\n— test sig{to}\n");
        let expected = (from > 0).then(|| head(from));
        log.append(
            expected.as_ref(),
            &Group {
                entries: &entries.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                nodes: &nodes,
                checkpoint: &checkpoint,
                head: &head(to),
            },
        )
    }

    /// Checks that `log` holds exactly entries `0..size` of the test chain.
    pub fn holds<L: Log + ?Sized>(log: &L, size: u64) {
        assert_eq!(log.head().unwrap(), (size > 0).then(|| head(size)), "the head after {size} entries");
        for i in [0, size / 2, size.saturating_sub(1)] {
            if i < size {
                assert_eq!(log.entry(i).unwrap(), Some(entry_bytes(i)), "entry {i} reads back as written");
            }
        }
        assert_eq!(log.entry(size).unwrap(), None, "no entry at the head's count");
        let all: Vec<_> = log.range(0, u64::MAX).map(Result::unwrap).collect();
        assert_eq!(all.len() as u64, size, "range(0, MAX) reads every entry");
        for (k, (i, bytes)) in all.into_iter().enumerate() {
            assert_eq!(i, k as u64, "range yields entries in index order");
            assert_eq!(bytes, entry_bytes(i), "range: entry {i}");
        }
        if size > 0 {
            let cp = log.checkpoint().unwrap().expect("a checkpoint once there are entries");
            assert!(cp.contains(&format!("\n{size}\n")), "the checkpoint of the last group: {cp:?}");
            assert_eq!(log.node(0, size - 1).unwrap(), Some(node(0, size - 1).hash), "leaf node {}", size - 1);
        }
    }

    fn empty<L: Log>(log: &L) {
        assert_eq!(log.head().unwrap(), None, "a new log has no head");
        assert_eq!(log.entry(0).unwrap(), None, "a new log has no entry 0");
        assert_eq!(log.checkpoint().unwrap(), None, "a new log has no checkpoint");
        assert_eq!(log.node(0, 0).unwrap(), None, "a new log has no node");
        assert_eq!(log.range(0, 10).count(), 0, "a new log's range is empty");
    }

    fn appends_and_reads<L: Log>(log: &L) {
        append_range(log, 0, 1).unwrap();
        holds(log, 1);
        append_range(log, 1, 40).unwrap();
        holds(log, 40);
        for i in 40..100 {
            append_range(log, i, i + 1).unwrap();
        }
        holds(log, 100);
        assert_eq!(log.node(1, 20).unwrap(), Some(node(1, 20).hash), "an inner node");
        assert_eq!(log.node(5, 0).unwrap(), None, "a node never written");
    }

    fn refuses_a_moved_head<L: Log>(log: &L) {
        append_range(log, 0, 5).unwrap();
        let err = log.append(None, &group_of(5, 6)).unwrap_err();
        assert!(matches!(err, LogError::HeadMoved), "an append expecting an empty log: {err:?}");
        let err = log.append(Some(&head(4)), &group_of(5, 6)).unwrap_err();
        assert!(matches!(err, LogError::HeadMoved), "an append expecting an older head: {err:?}");
        let mut other = head(5);
        other.last_time += 1;
        let err = log.append(Some(&other), &group_of(5, 6)).unwrap_err();
        assert!(matches!(err, LogError::HeadMoved), "an append expecting another head of the same size: {err:?}");
        holds(log, 5);
    }

    fn group_of(from: u64, to: u64) -> Group<'static> {
        let bytes: &'static [Vec<u8>] = Box::leak((from..to).map(entry_bytes).collect::<Vec<_>>().into_boxed_slice());
        let entries: &'static [&'static [u8]] =
            Box::leak(bytes.iter().map(Vec::as_slice).collect::<Vec<_>>().into_boxed_slice());
        let head: &'static Head = Box::leak(Box::new(head(to)));
        Group { entries, nodes: &[], checkpoint: "test\n", head }
    }

    fn refuses_a_group_that_does_not_extend<L: Log>(log: &L) {
        append_range(log, 0, 3).unwrap();
        let mut g = group_of(3, 5);
        let wrong = head(6);
        g.head = Box::leak(Box::new(wrong));
        let err = log.append(Some(&head(3)), &g).unwrap_err();
        assert!(matches!(err, LogError::Invalid(_)), "a head that does not count the group's entries: {err:?}");
        let err = log.append(Some(&head(3)), &group_of(3, 3)).unwrap_err();
        assert!(matches!(err, LogError::Invalid(_)), "an empty group: {err:?}");
        holds(log, 3);
    }

    fn ranges<L: Log>(log: &L) {
        for (from, to) in [(0, 7), (7, 8), (8, 30)] {
            append_range(log, from, to).unwrap();
        }
        for (start, end) in [(0, 0), (3, 9), (7, 8), (29, 100), (30, 40), (100, 200)] {
            let got: Vec<u64> = log.range(start, end).map(|r| r.unwrap().0).collect();
            let want: Vec<u64> = (start..end.min(30)).collect();
            assert_eq!(got, want, "range({start}, {end}) of 30 entries");
        }
    }

    fn one_of_two_racing_writers<L: Log + 'static>(log: L) {
        append_range(&log, 0, 2).unwrap();
        let log = std::sync::Arc::new(log);
        let results: Vec<_> = (0..2)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || append_range(&*log, 2, 4))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "of two appends expecting the same head, exactly one succeeds: {results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(LogError::HeadMoved))), "the other is told the head moved");
        holds(&*log, 4);
    }

    fn survives_reopening<L: Log>(log: L, reopen: &dyn Fn(L) -> L) {
        let log = reopen(log);
        empty(&log);
        append_range(&log, 0, 10).unwrap();
        let log = reopen(log);
        holds(&log, 10);
        append_range(&log, 10, 11).unwrap();
        append_range(&log, 11, 50).unwrap();
        let log = reopen(log);
        holds(&log, 50);
        assert_eq!(log.node(1, 5).unwrap(), Some(node(1, 5).hash), "inner nodes survive reopening");
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_memory_log_conforms() {
            super::run(&super::super::MemLog::new, None);
        }
    }
}
