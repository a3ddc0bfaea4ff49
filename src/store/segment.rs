//! The embedded, durable [`Log`]: the chain in append-only segment files,
//! one write and one `fdatasync` per group.
//!
//! It keeps the entries' canonical bytes, the tree nodes, the checkpoint
//! and the head of one chain in a directory that it alone writes (a lock
//! file keeps a second opener out). It never decides what may be appended
//! and never drops, without saying so, anything an append acknowledged.
//!
//! # Files
//!
//! All integers are little-endian; "crc" is CRC-32 (IEEE, `crc32fast`).
//!
//! - `format`: the text `provledger segment log, version 1\n`, written
//!   atomically when the directory is created. A newer version is refused
//!   ("upgrade"); a directory without it (or with it damaged) and without
//!   any segment file is a creation cut short, and opens empty.
//! - `lock`: empty; held with an exclusive `flock` while the log is open.
//! - `seg-<first index, 20 digits>.log`, a segment: the canonical data. A
//!   24-byte header (`plseglog`, version u32 = 1, first index u64, crc of
//!   the 20 bytes before it), then frames. A group is never split: a new
//!   segment is started before a group once the segment holds at least the
//!   size bound ([`SegmentOptions::segment_bytes`], 64 MiB by default), so a
//!   segment may exceed the bound by its last group. The segments' first
//!   indexes are contiguous from 0.
//! - `seg-<first>.idx`, the segment's offset index (derived): for entry
//!   `first + i`, 16 bytes at `16 i`: frame offset u64, entry length u32,
//!   crc of (entry index u64, offset u64, length u32).
//! - `nodes-<level, 2 digits>.bin`, one per tree level (derived): node
//!   `index` is 36 bytes at `36 index`: hash, crc of (level u8, index u64,
//!   hash). 36 zero bytes (or a slot past the end) is a node not written.
//! - `state` (derived), written atomically at each segment roll, at a clean
//!   close and after a repair: the durable point. Segment first index u64,
//!   offset u64 and end u64 of the last commit frame it covers, the head's
//!   count u64, the number of node levels u32 and each level file's length
//!   in slots u64, all under `plsegste` and followed by their crc. It
//!   promises that the segment holds that commit frame and that every
//!   derived file was synced at that point.
//!
//! # Frames
//!
//! ```text
//! body length n: u32 | !n: u32 | kind: u8 | body: n bytes | crc of all before: u32 | 0xa5
//! ```
//!
//! The complement of the length lets a damaged length be told from a
//! frame that runs past the end of the file; the trailing `0xa5` means an
//! intact frame never ends in a zero byte. Kind 1, an entry: index u64,
//! then its canonical bytes. Kind 2, a commit, closing the group of the
//! entry frames since the previous commit: the new head (count u64, entry
//! hash 32 bytes, last time u64, policy index u64), the index of the
//! group's first entry u64, the number of nodes u32 and each node (level
//! u8, index u64, hash 32 bytes), the checkpoint note's length u32 and its
//! UTF-8 bytes.
//!
//! # Durability
//!
//! An append writes its entry frames and commit frame (after a segment
//! header if it starts a segment) with one positional write, then
//! `fdatasync`s the segment: that acknowledges the group. A new segment's
//! name is made durable (directory `fsync`) before the group is written
//! into it. Derived files are then written without a sync, and the head
//! published in memory; at a roll or a clean close they are synced and the
//! `state` replaced. A failed write (a full disk: [`LogError::DiskFull`])
//! is undone (the segment truncated back and synced, derived slots
//! restored) before the error is returned, so the head is unchanged; if
//! undoing fails too, the error says so and the log refuses appends until
//! it is reopened.
//!
//! # Opening: torn or corrupt
//!
//! Opening starts from the `state` (or, without a valid one, the start of
//! the last segment), checks that the segment is at least as long as the
//! state says and that the commit frame there is intact, validates every
//! derived slot before that point (rebuilding from the segments an offset
//! index or the node files if any slot is damaged or missing), and parses
//! every frame after it. Let `Z` be where the all-zero suffix of the
//! parsed bytes begins. Parsing stops, and the rest is a **torn tail** (a
//! write never acknowledged: truncated, synced, forgotten) at:
//!
//! - the end of the file after entry frames without their commit frame;
//! - a frame starting at or past `Z` (trailing zeros);
//! - fewer than 9 bytes left (a cut header);
//! - a header whose length check fails but which reaches past `Z`;
//! - a frame whose length is intact but which runs past the end of the
//!   file or past `Z` (cut short, or its pages never written);
//! - in the last segment only, when no commit frame is found after its
//!   start: the segment was created at a roll and its first group never
//!   became durable, so the file is removed.
//!
//! Any other damage is **corruption**, [`LogError::Corrupt`] naming an
//! entry index, and nothing is truncated: a complete frame (its length
//! intact, before `Z`) whose crc or end marker is wrong, a length check
//! failing before `Z`, an unknown kind, an entry frame holding the wrong
//! index, a commit frame that does not close exactly the entries before
//! it, a torn tail in a segment that a later segment follows, missing
//! entries between segments, a segment shorter than the `state` records,
//! or a damaged commit frame at the `state`'s point. The index named is
//! the damaged entry's when the frame still reads as that entry's
//! (kind 1 and its index field intact), else the first entry of the group
//! the frame belongs to. A single flipped byte anywhere in a group is
//! therefore always corruption, never a tail to drop; only the shapes a
//! cut-short write leaves (a prefix, or zeros from some point on) are
//! torn. A hole of zeros followed by data (a file system that persisted a
//! later page of an unacknowledged write before an earlier one) is
//! reported as corruption, not guessed at.
//!
//! Frames before the durable point are not re-read on open: a damaged
//! entry there is reported by the read that meets it (every read checks
//! the frame's crc, kind and index). A node slot zeroed whole reads as a
//! node never written: zeros are what an unwritten slot holds.
//!
//! # Costs
//!
//! An open reads the derived files whole (16 bytes an entry for the
//! offset indexes, about 72 for the nodes) and parses the segment bytes
//! after the durable point: at most one segment after a crash, nothing
//! after a clean close. `entry` is two positional reads (its slot, its
//! frame), `range` reads a batch of slots and their frames at once, `node`
//! one 36-byte read; `head` and `checkpoint` are in memory. Readers never
//! wait for a sync: the write lock is held only while the derived slots of
//! an acknowledged group are written and its head published.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::log::{Group, Log, LogError, LogIter};
use super::{Head, NodeWrite};
use crate::core::hash::EntryHash;
use crate::files::fsutil;
use crate::tree::Hash;

/// The size past which a new segment is started, by default.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// The largest frame body: an entry's bytes (plus its index) or a commit.
pub const MAX_FRAME_BODY: usize = 1 << 30;

const FORMAT_FILE: &str = "format";
const FORMAT_PREFIX: &str = "provledger segment log, version ";
const FORMAT_VERSION: u32 = 1;
const LOCK_FILE: &str = "lock";
const STATE_FILE: &str = "state";
const STATE_MAGIC: &[u8; 8] = b"plsegste";
const SEG_MAGIC: &[u8; 8] = b"plseglog";
const SEG_VERSION: u32 = 1;
const SEG_HEADER: usize = 24;

const KIND_ENTRY: u8 = 1;
const KIND_COMMIT: u8 = 2;
const FRAME_END: u8 = 0xa5;
/// Length, its complement, kind, crc, end marker.
const FRAME_OVERHEAD: usize = 14;
const IDX_SLOT: usize = 16;
const NODE_SLOT: usize = 36;
/// Levels 0..=63: a tree of up to 2^63 leaves.
const LEVELS: usize = 64;
const NODE_WIRE: usize = 1 + 8 + 32;
const HEAD_WIRE: usize = 8 + 32 + 8 + 8;
/// Entries a range reads per batch, and the most bytes it reads at once.
const RANGE_BATCH: usize = 256;
const RANGE_SPAN: u64 = 8 << 20;
/// Bytes read at a time when validating derived files.
const CHUNK: usize = 1 << 20;

/// How a [`SegmentLog`] is opened.
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    segment_bytes: u64,
    lock_wait: Duration,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions { segment_bytes: DEFAULT_SEGMENT_BYTES, lock_wait: Duration::ZERO }
    }
}

impl SegmentOptions {
    pub fn new() -> SegmentOptions {
        SegmentOptions::default()
    }

    /// A new segment is started before a group once the current one holds
    /// at least `bytes` (at least 1).
    pub fn segment_bytes(mut self, bytes: u64) -> SegmentOptions {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// How long to wait for another process to close the log before
    /// [`LogError::Locked`] (none by default).
    pub fn lock_wait(mut self, wait: Duration) -> SegmentOptions {
        self.lock_wait = wait;
        self
    }
}

/// The log in the segment files of one directory (see the module docs).
pub struct SegmentLog {
    dir: PathBuf,
    segment_bytes: u64,
    shared: RwLock<Shared>,
    writer: Mutex<Writer>,
    /// Set by [`SegmentLog::crash`]: dropped without the clean-close work.
    crashed: bool,
    _lock: File,
}

/// What readers see, changed only under the write lock, a group at a time.
struct Shared {
    head: Option<Head>,
    checkpoint: Option<String>,
    segments: Vec<Arc<Segment>>,
    nodes: NodeFiles,
}

/// The appender's own state, under its mutex.
struct Writer {
    active: Option<Arc<Segment>>,
    /// Bytes of the active segment (the end of its last commit frame).
    end: u64,
    /// Offset of the active segment's last commit frame.
    last_commit: u64,
    /// The head count the `state` file records.
    state_count: u64,
    /// Why appends are refused: a failed write that could not be undone.
    poisoned: Option<String>,
}

struct Segment {
    first: u64,
    path: PathBuf,
    file: File,
    idx_path: PathBuf,
    idx: File,
}

struct NodeFile {
    path: PathBuf,
    file: File,
}

/// The per-level node files, and how many slots each holds.
struct NodeFiles {
    dir: PathBuf,
    files: Vec<Option<Arc<NodeFile>>>,
    lens: [u64; LEVELS],
}

fn io_err(path: &Path, e: io::Error) -> LogError {
    let full = matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error());
    if full {
        LogError::DiskFull { path: path.to_path_buf() }
    } else {
        LogError::Io { path: path.to_path_buf(), source: e }
    }
}

fn corrupt(index: u64, reason: impl Into<String>) -> LogError {
    LogError::Corrupt { index: Some(index), reason: reason.into() }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn seg_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("seg-{first:020}.log"))
}

fn idx_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("seg-{first:020}.idx"))
}

fn node_path(dir: &Path, level: usize) -> PathBuf {
    dir.join(format!("nodes-{level:02}.bin"))
}

fn parse_seg_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

// ---------------------------------------------------------------- frames

fn put_frame(out: &mut Vec<u8>, kind: u8, parts: &[&[u8]]) {
    let n: usize = parts.iter().map(|p| p.len()).sum();
    let start = out.len();
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&(!(n as u32)).to_le_bytes());
    out.push(kind);
    for p in parts {
        out.extend_from_slice(p);
    }
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(FRAME_END);
}

fn entry_frame_len(len: u32) -> u64 {
    (FRAME_OVERHEAD + 8) as u64 + u64::from(len)
}

fn encode_head(h: &Head) -> [u8; HEAD_WIRE] {
    let mut out = [0u8; HEAD_WIRE];
    out[..8].copy_from_slice(&h.count.to_le_bytes());
    out[8..40].copy_from_slice(h.hash.as_bytes());
    out[40..48].copy_from_slice(&h.last_time.to_le_bytes());
    out[48..].copy_from_slice(&h.policy_index.to_le_bytes());
    out
}

fn commit_body(first: u64, head: &Head, nodes: &[NodeWrite], checkpoint: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEAD_WIRE + 16 + nodes.len() * NODE_WIRE + checkpoint.len());
    b.extend_from_slice(&encode_head(head));
    b.extend_from_slice(&first.to_le_bytes());
    b.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for n in nodes {
        b.push(n.level as u8);
        b.extend_from_slice(&n.index.to_le_bytes());
        b.extend_from_slice(&n.hash);
    }
    b.extend_from_slice(&(checkpoint.len() as u32).to_le_bytes());
    b.extend_from_slice(checkpoint.as_bytes());
    b
}

struct Commit {
    head: Head,
    first: u64,
    nodes: Vec<NodeWrite>,
    checkpoint: String,
}

fn decode_commit(b: &[u8]) -> Result<Commit, &'static str> {
    const FIXED: usize = HEAD_WIRE + 8 + 4;
    if b.len() < FIXED + 4 {
        return Err("a commit frame too short");
    }
    let head = Head {
        count: le64(&b[0..]),
        hash: EntryHash::from_slice(&b[8..40]).expect("32 bytes"),
        last_time: le64(&b[40..]),
        policy_index: le64(&b[48..]),
    };
    let first = le64(&b[56..]);
    let n = le32(&b[64..]) as usize;
    let nodes_end = n.checked_mul(NODE_WIRE).and_then(|x| x.checked_add(FIXED)).filter(|&e| e + 4 <= b.len());
    let Some(nodes_end) = nodes_end else { return Err("a commit frame whose node count overruns it") };
    let nodes = b[FIXED..nodes_end]
        .chunks_exact(NODE_WIRE)
        .map(|c| NodeWrite {
            level: u32::from(c[0]),
            index: le64(&c[1..]),
            hash: c[9..41].try_into().expect("32 bytes"),
        })
        .collect::<Vec<_>>();
    if nodes.iter().any(|n| n.level as usize >= LEVELS) {
        return Err("a commit frame with a node level past 63");
    }
    let cp_len = le32(&b[nodes_end..]) as usize;
    if nodes_end + 4 + cp_len != b.len() {
        return Err("a commit frame whose checkpoint length does not match it");
    }
    let checkpoint = std::str::from_utf8(&b[nodes_end + 4..])
        .map_err(|_| "a commit frame whose checkpoint is not UTF-8")?
        .to_string();
    Ok(Commit { head, first, nodes, checkpoint })
}

enum Parsed<'a> {
    Frame {
        kind: u8,
        body: &'a [u8],
        end: usize,
    },
    /// What a write cut short leaves.
    Torn(&'static str),
    /// What no cut-short write leaves.
    Damaged(&'static str),
}

/// The frame at `pos` of `buf`, whose all-zero suffix starts at `zero_from`.
fn parse_frame(buf: &[u8], pos: usize, zero_from: usize) -> Parsed<'_> {
    if pos >= zero_from {
        return Parsed::Torn("trailing zeros");
    }
    let rest = &buf[pos..];
    if rest.len() < 9 {
        return Parsed::Torn("an incomplete frame header");
    }
    let n = le32(rest);
    if le32(&rest[4..]) != !n {
        return if pos + 8 > zero_from {
            Parsed::Torn("a frame header cut by trailing zeros")
        } else {
            Parsed::Damaged("a frame whose length field is damaged")
        };
    }
    let n = n as usize;
    if n > MAX_FRAME_BODY {
        return Parsed::Damaged("a frame longer than any written");
    }
    let end = pos + FRAME_OVERHEAD + n;
    if end > buf.len() {
        return Parsed::Torn("an incomplete frame");
    }
    if end > zero_from {
        return Parsed::Torn("a frame cut by trailing zeros");
    }
    if crc32fast::hash(&rest[..9 + n]) != le32(&rest[9 + n..]) || buf[end - 1] != FRAME_END {
        return Parsed::Damaged("a frame whose checksum does not match");
    }
    Parsed::Frame { kind: rest[8], body: &rest[9..9 + n], end }
}

/// A group found by parsing a segment.
struct ScannedGroup {
    first: u64,
    /// Offset and length of each entry frame.
    entries: Vec<(u64, u32)>,
    commit_at: u64,
    commit: Commit,
}

struct Scanned {
    groups: Vec<ScannedGroup>,
    /// Where a torn tail starts, and what it is.
    torn: Option<(u64, &'static str)>,
    /// The end of the last commit frame (or where parsing started).
    end: u64,
}

/// Parses `buf`, the bytes of `path` from offset `base`, whose first
/// entry (if any) is `next`; `sealed` for a segment that a later one
/// follows (a torn tail there is corruption).
fn scan(buf: &[u8], base: u64, mut next: u64, sealed: bool, path: &Path) -> Result<Scanned, LogError> {
    let zero_from = buf.len() - buf.iter().rev().take_while(|&&b| b == 0).count();
    let at = |pos: usize| format!("{} at byte {}", path.display(), base + pos as u64);
    let mut groups = Vec::new();
    let mut pending: Vec<(u64, u32)> = Vec::new();
    let mut pos = 0;
    let mut committed = 0;
    let torn = loop {
        if pos == buf.len() {
            break (!pending.is_empty()).then_some("entries without their commit frame");
        }
        let want = next + pending.len() as u64;
        match parse_frame(buf, pos, zero_from) {
            Parsed::Torn(why) => break Some(why),
            Parsed::Damaged(why) => {
                // Name the entry if the frame still reads as its own.
                let b = &buf[pos..];
                let index = if b.len() >= 17 && b[8] == KIND_ENTRY && le64(&b[9..]) == want { want } else { next };
                return Err(corrupt(index, format!("{}: {why}", at(pos))));
            }
            Parsed::Frame { kind: KIND_ENTRY, body, end } => {
                if body.len() <= 8 || le64(body) != want {
                    return Err(corrupt(want, format!("{}: an entry frame that is not entry {want}", at(pos))));
                }
                pending.push((base + pos as u64, (body.len() - 8) as u32));
                pos = end;
            }
            Parsed::Frame { kind: KIND_COMMIT, body, end } => {
                let commit = decode_commit(body).map_err(|why| corrupt(next, format!("{}: {why}", at(pos))))?;
                let count = next + pending.len() as u64;
                if pending.is_empty() || commit.first != next || commit.head.count != count {
                    return Err(corrupt(
                        next,
                        format!(
                            "{}: a commit frame of entries {}..{} after entries {next}..{count}",
                            at(pos),
                            commit.first,
                            commit.head.count
                        ),
                    ));
                }
                groups.push(ScannedGroup {
                    first: next,
                    entries: std::mem::take(&mut pending),
                    commit_at: base + pos as u64,
                    commit,
                });
                next = count;
                pos = end;
                committed = pos;
            }
            Parsed::Frame { kind, .. } => {
                return Err(corrupt(next, format!("{}: a frame of unknown kind {kind}", at(pos))));
            }
        }
    };
    if let Some(why) = torn
        && sealed
    {
        return Err(corrupt(
            next,
            format!("{}: the segment ends with {why}, but a later segment follows", at(committed)),
        ));
    }
    let end = base + committed as u64;
    Ok(Scanned { groups, torn: torn.map(|why| (end, why)), end })
}

fn segment_header(first: u64) -> [u8; SEG_HEADER] {
    let mut h = [0u8; SEG_HEADER];
    h[..8].copy_from_slice(SEG_MAGIC);
    h[8..12].copy_from_slice(&SEG_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment's header: `false` if it is torn (cut short or zeros).
fn check_header(buf: &[u8], seg: &Segment) -> Result<bool, LogError> {
    let zero_from = buf.len() - buf.iter().rev().take_while(|&&b| b == 0).count();
    if buf.len() < SEG_HEADER || zero_from < SEG_HEADER {
        return Ok(false);
    }
    let h = &buf[..SEG_HEADER];
    let what = |why: &str| corrupt(seg.first, format!("{}: {why}", seg.path.display()));
    if &h[..8] != SEG_MAGIC {
        return Err(what("not a segment file (its header is damaged)"));
    }
    if crc32fast::hash(&h[..20]) != le32(&h[20..]) {
        return Err(what("its header's checksum does not match"));
    }
    let version = le32(&h[8..]);
    if version > SEG_VERSION {
        return Err(LogError::Newer { what: format!("{} (segment version {version})", seg.path.display()) });
    }
    if version != SEG_VERSION || le64(&h[12..]) != seg.first {
        return Err(what("its header does not match its name"));
    }
    Ok(true)
}

// ---------------------------------------------------------------- derived files

fn idx_slot(index: u64, offset: u64, len: u32) -> [u8; IDX_SLOT] {
    let mut s = [0u8; IDX_SLOT];
    s[..8].copy_from_slice(&offset.to_le_bytes());
    s[8..12].copy_from_slice(&len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(&s[..12]);
    s[12..].copy_from_slice(&h.finalize().to_le_bytes());
    s
}

fn read_idx_slot(s: &[u8], index: u64) -> Option<(u64, u32)> {
    let (offset, len) = (le64(s), le32(&s[8..]));
    (idx_slot(index, offset, len)[12..] == s[12..16]).then_some((offset, len))
}

fn node_slot(level: usize, index: u64, hash: &Hash) -> [u8; NODE_SLOT] {
    let mut s = [0u8; NODE_SLOT];
    s[..32].copy_from_slice(hash);
    let mut h = crc32fast::Hasher::new();
    h.update(&[level as u8]);
    h.update(&index.to_le_bytes());
    h.update(hash);
    s[32..].copy_from_slice(&h.finalize().to_le_bytes());
    s
}

/// A node slot: `Ok(None)` absent, `Err(())` damaged.
fn read_node_slot(s: &[u8], level: usize, index: u64) -> Result<Option<Hash>, ()> {
    if s.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let hash: Hash = s[..32].try_into().expect("32 bytes");
    if node_slot(level, index, &hash)[32..] == s[32..] { Ok(Some(hash)) } else { Err(()) }
}

/// Reads `len` bytes at `offset`; `Ok(None)` if the file is shorter.
fn read_exact(file: &File, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; len];
    match file.read_exact_at(&mut buf, offset) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// What an append changed in derived files, to put back if it fails.
struct Undo {
    lens: [u64; LEVELS],
    /// Node slots overwritten (level, index, old bytes).
    slots: Vec<(usize, u64, [u8; NODE_SLOT])>,
}

impl NodeFiles {
    fn open(dir: &Path) -> Result<NodeFiles, LogError> {
        let mut nodes = NodeFiles { dir: dir.to_path_buf(), files: vec![None; LEVELS], lens: [0; LEVELS] };
        for level in 0..LEVELS {
            let path = node_path(dir, level);
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => {
                    let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
                    nodes.lens[level] = len / NODE_SLOT as u64;
                    nodes.files[level] = Some(Arc::new(NodeFile { path, file }));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        Ok(nodes)
    }

    fn file(&mut self, level: usize) -> io::Result<Arc<NodeFile>> {
        if let Some(f) = &self.files[level] {
            return Ok(f.clone());
        }
        let path = node_path(&self.dir, level);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let f = Arc::new(NodeFile { path, file });
        self.files[level] = Some(f.clone());
        Ok(f)
    }

    fn path(&self, level: usize) -> PathBuf {
        node_path(&self.dir, level)
    }

    /// Writes `nodes`, contiguous runs of a level at once, noting in `undo`
    /// what it overwrites.
    fn write(&mut self, nodes: &[NodeWrite], mut undo: Option<&mut Undo>) -> Result<(), LogError> {
        let mut sorted: Vec<&NodeWrite> = nodes.iter().collect();
        sorted.sort_by_key(|n| (n.level, n.index));
        let mut i = 0;
        while i < sorted.len() {
            let level = sorted[i].level as usize;
            let start = sorted[i].index;
            let mut j = i + 1;
            while j < sorted.len()
                && sorted[j].level as usize == level
                && Some(sorted[j].index) == sorted[j - 1].index.checked_add(1)
            {
                j += 1;
            }
            let path = self.path(level);
            let f = self.file(level).map_err(|e| io_err(&path, e))?;
            if let Some(u) = undo.as_deref_mut() {
                for index in start..(start + (j - i) as u64).min(u.lens[level]) {
                    let old = read_exact(&f.file, index * NODE_SLOT as u64, NODE_SLOT).map_err(|e| io_err(&path, e))?;
                    let old = old.map_or([0; NODE_SLOT], |o| o.try_into().expect("a slot"));
                    u.slots.push((level, index, old));
                }
            }
            let mut buf = Vec::with_capacity((j - i) * NODE_SLOT);
            for n in &sorted[i..j] {
                buf.extend_from_slice(&node_slot(level, n.index, &n.hash));
            }
            f.file.write_all_at(&buf, start * NODE_SLOT as u64).map_err(|e| io_err(&path, e))?;
            self.lens[level] = self.lens[level].max(start + (j - i) as u64);
            i = j;
        }
        Ok(())
    }

    /// Puts back what [`NodeFiles::write`] changed, and syncs it.
    fn undo(&mut self, undo: &Undo) -> io::Result<()> {
        for &(level, index, old) in undo.slots.iter().rev() {
            let f = self.file(level)?;
            f.file.write_all_at(&old, index * NODE_SLOT as u64)?;
        }
        for level in 0..LEVELS {
            // A write cut short grows a file without growing `lens`: compare
            // with the file's own length.
            if let Some(f) = &self.files[level] {
                let want = undo.lens[level] * NODE_SLOT as u64;
                if f.file.metadata()?.len() != want || undo.slots.iter().any(|s| s.0 == level) {
                    f.file.set_len(want)?;
                    f.file.sync_data()?;
                }
            }
        }
        self.lens = undo.lens;
        Ok(())
    }

    /// Whether every slot below `lens` reads back (zero or intact).
    fn valid_up_to(&self, lens: &[u64]) -> Result<bool, LogError> {
        for (level, &want) in lens.iter().enumerate() {
            if want == 0 {
                continue;
            }
            let Some(Some(f)) = self.files.get(level) else { return Ok(false) };
            if self.lens[level] < want {
                return Ok(false);
            }
            let total = want * NODE_SLOT as u64;
            let mut offset = 0;
            while offset < total {
                let len = (total - offset).min((CHUNK / NODE_SLOT * NODE_SLOT) as u64) as usize;
                let Some(buf) = read_exact(&f.file, offset, len).map_err(|e| io_err(&f.path, e))? else {
                    return Ok(false);
                };
                let first = offset / NODE_SLOT as u64;
                for (k, s) in buf.chunks_exact(NODE_SLOT).enumerate() {
                    if read_node_slot(s, level, first + k as u64).is_err() {
                        return Ok(false);
                    }
                }
                offset += len as u64;
            }
        }
        Ok(true)
    }

    /// Cuts every level file to its length in [`NodeFiles::lens`].
    fn truncate_to_lens(&self) -> Result<(), LogError> {
        for (level, f) in self.files.iter().enumerate() {
            if let Some(f) = f {
                let want = self.lens[level] * NODE_SLOT as u64;
                let len = f.file.metadata().map_err(|e| io_err(&f.path, e))?.len();
                if len != want {
                    f.file.set_len(want).map_err(|e| io_err(&f.path, e))?;
                }
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), LogError> {
        for f in self.files.iter().flatten() {
            f.file.sync_data().map_err(|e| io_err(&f.path, e))?;
        }
        Ok(())
    }

    /// Slots per level, without the empty levels at the top.
    fn trimmed_lens(&self) -> Vec<u64> {
        let top = self.lens.iter().rposition(|&l| l > 0).map_or(0, |p| p + 1);
        self.lens[..top].to_vec()
    }
}

impl Segment {
    fn open(dir: &Path, first: u64, create: bool) -> Result<Segment, LogError> {
        let path = seg_path(dir, first);
        let file =
            OpenOptions::new().read(true).write(true).create_new(create).open(&path).map_err(|e| io_err(&path, e))?;
        let idx_path = idx_path(dir, first);
        let idx = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(create)
            .open(&idx_path)
            .map_err(|e| io_err(&idx_path, e))?;
        Ok(Segment { first, path, file, idx_path, idx })
    }

    fn len(&self) -> Result<u64, LogError> {
        Ok(self.file.metadata().map_err(|e| io_err(&self.path, e))?.len())
    }

    fn read(&self, from: u64, to: u64) -> Result<Vec<u8>, LogError> {
        read_exact(&self.file, from, (to - from) as usize)
            .map_err(|e| io_err(&self.path, e))?
            .ok_or_else(|| corrupt(self.first, format!("{} is shorter than {to} bytes", self.path.display())))
    }

    /// Parses the bytes from `from` to `to`, the header too if `from` is 0.
    fn scan(&self, from: u64, to: u64, next: u64, sealed: bool) -> Result<Scanned, LogError> {
        let buf = self.read(from, to)?;
        let mut skip = 0;
        if from == 0 {
            if !check_header(&buf, self)? {
                if sealed {
                    return Err(corrupt(self.first, format!("{}: an incomplete segment header", self.path.display())));
                }
                return Ok(Scanned { groups: Vec::new(), torn: Some((0, "an incomplete segment header")), end: 0 });
            }
            skip = SEG_HEADER;
        }
        scan(&buf[skip..], from + skip as u64, next, sealed, &self.path)
    }

    fn write_idx(&self, first_index: u64, entries: &[(u64, u32)]) -> Result<(), LogError> {
        let mut buf = Vec::with_capacity(entries.len() * IDX_SLOT);
        for (k, &(offset, len)) in entries.iter().enumerate() {
            buf.extend_from_slice(&idx_slot(first_index + k as u64, offset, len));
        }
        let at = (first_index - self.first) * IDX_SLOT as u64;
        self.idx.write_all_at(&buf, at).map_err(|e| io_err(&self.idx_path, e))
    }

    /// The offset index slots of entries `from..from + n`.
    fn slots(&self, from: u64, n: usize) -> Result<Vec<(u64, u32)>, LogError> {
        let at = (from - self.first) * IDX_SLOT as u64;
        let buf = read_exact(&self.idx, at, n * IDX_SLOT).map_err(|e| io_err(&self.idx_path, e))?.ok_or_else(|| {
            corrupt(
                from,
                format!("{} ends before entry {from} (reopen the log to rebuild it)", self.idx_path.display()),
            )
        })?;
        buf.chunks_exact(IDX_SLOT)
            .enumerate()
            .map(|(k, s)| {
                let i = from + k as u64;
                read_idx_slot(s, i).ok_or_else(|| {
                    corrupt(
                        i,
                        format!(
                            "{}: the slot of entry {i} is damaged (reopen the log to rebuild it)",
                            self.idx_path.display()
                        ),
                    )
                })
            })
            .collect()
    }

    /// Whether the offset index holds `n` intact slots, in order, of frames
    /// that end by `limit`; cuts off any slot past them.
    fn idx_valid(&self, n: u64, limit: u64) -> Result<bool, LogError> {
        let len = self.idx.metadata().map_err(|e| io_err(&self.idx_path, e))?.len();
        if len < n * IDX_SLOT as u64 {
            return Ok(false);
        }
        let mut prev_end = SEG_HEADER as u64;
        let per = (CHUNK / IDX_SLOT) as u64;
        let mut i = 0;
        while i < n {
            let k = (n - i).min(per);
            let Ok(slots) = self.slots(self.first + i, k as usize) else { return Ok(false) };
            for (offset, elen) in slots {
                if offset < prev_end {
                    return Ok(false);
                }
                prev_end = offset + entry_frame_len(elen);
            }
            i += k;
        }
        if prev_end > limit {
            return Ok(false);
        }
        if len > n * IDX_SLOT as u64 {
            self.idx.set_len(n * IDX_SLOT as u64).map_err(|e| io_err(&self.idx_path, e))?;
        }
        Ok(true)
    }

    /// Rebuilds the offset index from the segment's bytes up to `to`, which
    /// must hold exactly the entries up to `count`.
    fn rebuild_idx(&self, to: u64, count: u64) -> Result<(), LogError> {
        let s = self.scan(0, to, self.first, true)?;
        if s.end != to || s.groups.last().map_or(self.first, |g| g.commit.head.count) != count {
            return Err(corrupt(
                s.groups.last().map_or(self.first, |g| g.commit.head.count),
                format!(
                    "{} does not hold the entries up to {count} that follow from its neighbours",
                    self.path.display()
                ),
            ));
        }
        self.idx.set_len(0).map_err(|e| io_err(&self.idx_path, e))?;
        for g in &s.groups {
            self.write_idx(g.first, &g.entries)?;
        }
        self.idx.sync_data().map_err(|e| io_err(&self.idx_path, e))
    }

    /// Reads entry `index` whose slot is `(offset, len)` from `buf`, the
    /// bytes of the segment from `buf_at`.
    fn entry_in(&self, buf: &[u8], buf_at: u64, index: u64, (offset, len): (u64, u32)) -> Result<Vec<u8>, LogError> {
        let from = offset.checked_sub(buf_at).map(|f| f as usize);
        let frame = from.and_then(|f| buf.get(f..f + entry_frame_len(len) as usize));
        let damaged = || {
            corrupt(
                index,
                format!("{}: entry {index} at byte {offset} does not read back as written", self.path.display()),
            )
        };
        let frame = frame.ok_or_else(damaged)?;
        match parse_frame(frame, 0, frame.len()) {
            Parsed::Frame { kind: KIND_ENTRY, body, end }
                if end == frame.len() && body.len() > 8 && le64(body) == index =>
            {
                Ok(body[8..].to_vec())
            }
            _ => Err(damaged()),
        }
    }

    fn entry_at(&self, index: u64, slot: (u64, u32)) -> Result<Vec<u8>, LogError> {
        let buf = read_exact(&self.file, slot.0, entry_frame_len(slot.1) as usize)
            .map_err(|e| io_err(&self.path, e))?
            .unwrap_or_default();
        self.entry_in(&buf, slot.0, index, slot)
    }
}

// ---------------------------------------------------------------- state

struct State {
    segment: u64,
    commit: u64,
    end: u64,
    count: u64,
    node_lens: Vec<u64>,
}

impl State {
    fn encode(&self) -> Vec<u8> {
        let mut b = STATE_MAGIC.to_vec();
        for v in [self.segment, self.commit, self.end, self.count] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&(self.node_lens.len() as u32).to_le_bytes());
        for l in &self.node_lens {
            b.extend_from_slice(&l.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` for bytes that are not an intact state record.
    fn decode(b: &[u8]) -> Option<State> {
        let body = b.get(..b.len().checked_sub(4)?)?;
        if b.len() < 8 + 32 + 4 + 4 || &b[..8] != STATE_MAGIC || crc32fast::hash(body) != le32(&b[body.len()..]) {
            return None;
        }
        let n = le32(&b[40..]) as usize;
        if n > LEVELS || body.len() != 44 + 8 * n {
            return None;
        }
        let st = State {
            segment: le64(&b[8..]),
            commit: le64(&b[16..]),
            end: le64(&b[24..]),
            count: le64(&b[32..]),
            node_lens: b[44..body.len()].chunks_exact(8).map(le64).collect(),
        };
        (st.commit < st.end && st.count > st.segment).then_some(st)
    }

    fn read(dir: &Path) -> Result<Option<State>, LogError> {
        let path = dir.join(STATE_FILE);
        match fsutil::read_bounded(&path, 4096) {
            Ok(b) => Ok(State::decode(&b)),
            Err(fsutil::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(fsutil::ReadError::Io(e)) => Err(io_err(&path, e)),
            Err(fsutil::ReadError::TooLarge { .. }) => Ok(None),
        }
    }

    fn write(&self, dir: &Path) -> Result<(), LogError> {
        let path = dir.join(STATE_FILE);
        let bytes = self.encode();
        fsutil::write_replacing(&path, fsutil::OUTPUT, |w| w.write_all(&bytes)).map_err(|e| io_err(&path, e))
    }
}

// ---------------------------------------------------------------- opening

fn lock(dir: &Path, wait: Duration) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(LogError::Locked { what: format!("the log at {}", dir.display()), waited: wait });
                }
                std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&path, e)),
        }
    }
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut firsts = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        if let Some(first) = e.file_name().to_str().and_then(parse_seg_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Checks the format file, writing it for a directory that holds no
/// segment yet (a new one, or one whose creation was cut short).
fn check_format(dir: &Path) -> Result<(), LogError> {
    let path = dir.join(FORMAT_FILE);
    let version = match fsutil::read_bounded(&path, 256) {
        Ok(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|t| t.strip_prefix(FORMAT_PREFIX))
            .and_then(|t| t.strip_suffix('\n'))
            .and_then(|v| v.parse::<u32>().ok()),
        Err(fsutil::ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => None,
        Err(fsutil::ReadError::Io(e)) => return Err(io_err(&path, e)),
        Err(_) => None,
    };
    match version {
        Some(FORMAT_VERSION) => Ok(()),
        Some(v) if v > FORMAT_VERSION => {
            Err(LogError::Newer { what: format!("{} (segment log version {v})", dir.display()) })
        }
        _ if !list_segments(dir)?.is_empty() => Err(LogError::Corrupt {
            index: None,
            reason: format!("{} holds segment files but no intact {FORMAT_FILE} file", dir.display()),
        }),
        _ => fsutil::write_replacing(&path, fsutil::OUTPUT, |w| writeln!(w, "{FORMAT_PREFIX}{FORMAT_VERSION}"))
            .map_err(|e| io_err(&path, e)),
    }
}

/// What opening found.
struct Recovered {
    segments: Vec<Arc<Segment>>,
    nodes: NodeFiles,
    head: Option<Head>,
    checkpoint: Option<String>,
    end: u64,
    last_commit: u64,
    state_count: u64,
}

/// Where parsing starts.
struct Base {
    offset: u64,
    count: u64,
    head: Option<Head>,
    checkpoint: Option<String>,
    last_commit: u64,
    node_lens: Option<Vec<u64>>,
}

fn recover(dir: &Path) -> Result<Recovered, LogError> {
    loop {
        if let Some(r) = recover_once(dir)? {
            return Ok(r);
        }
    }
}

/// Opens what `dir` holds; `None` after removing a last segment that
/// holds nothing acknowledged (then it must be opened again).
fn recover_once(dir: &Path) -> Result<Option<Recovered>, LogError> {
    let firsts = list_segments(dir)?;
    let state = State::read(dir)?;
    let mut nodes = NodeFiles::open(dir)?;
    if firsts.is_empty() {
        if let Some(st) = &state {
            return Err(corrupt(
                0,
                format!("the state file records {} entries, but no segment file is left", st.count),
            ));
        }
        nodes.lens = [0; LEVELS];
        nodes.truncate_to_lens()?;
        let empty = Recovered {
            segments: Vec::new(),
            nodes,
            head: None,
            checkpoint: None,
            end: 0,
            last_commit: 0,
            state_count: 0,
        };
        return Ok(Some(empty));
    }
    if firsts[0] != 0 {
        return Err(corrupt(0, format!("no segment holds entry 0 (the first starts at entry {})", firsts[0])));
    }
    let segs: Vec<Arc<Segment>> =
        firsts.iter().map(|&f| Segment::open(dir, f, false).map(Arc::new)).collect::<Result<_, _>>()?;
    let lens: Vec<u64> = segs.iter().map(|s| s.len()).collect::<Result<_, _>>()?;
    let last = segs.len() - 1;

    // The durable point.
    let (k, base) = match &state {
        Some(st) => {
            let k = segs.iter().position(|s| s.first == st.segment).ok_or_else(|| {
                corrupt(st.segment, format!("the segment of the entries from {} is missing", st.segment))
            })?;
            let seg = &segs[k];
            if lens[k] < st.end {
                let cut = cut_index(seg, st.count, lens[k]);
                return Err(corrupt(
                    cut,
                    format!("{} is {} bytes, shorter than the {} acknowledged", seg.path.display(), lens[k], st.end),
                ));
            }
            let buf = seg.read(st.commit, st.end)?;
            let commit = match parse_frame(&buf, 0, buf.len()) {
                Parsed::Frame { kind: KIND_COMMIT, body, end } if end == buf.len() => decode_commit(body).ok(),
                _ => None,
            }
            .filter(|c| c.head.count == st.count)
            .ok_or_else(|| {
                corrupt(
                    st.count - 1,
                    format!(
                        "{}: the commit frame at byte {} (of entries up to {}) is damaged",
                        seg.path.display(),
                        st.commit,
                        st.count
                    ),
                )
            })?;
            let base = Base {
                offset: st.end,
                count: st.count,
                head: Some(commit.head),
                checkpoint: Some(commit.checkpoint),
                last_commit: st.commit,
                node_lens: Some(st.node_lens.clone()),
            };
            (k, base)
        }
        None => {
            let base = Base {
                offset: 0,
                count: segs[last].first,
                head: None,
                checkpoint: None,
                last_commit: 0,
                node_lens: None,
            };
            (last, base)
        }
    };
    let mut repaired = false;

    // Offset indexes before the durable point.
    for j in 0..k {
        let count = segs[j + 1].first;
        if !segs[j].idx_valid(count - segs[j].first, lens[j])? {
            segs[j].rebuild_idx(lens[j], count)?;
            repaired = true;
        }
    }
    if base.offset > 0 && !segs[k].idx_valid(base.count - segs[k].first, base.offset)? {
        segs[k].rebuild_idx(base.offset, base.count)?;
        repaired = true;
    }

    // Node files before the durable point.
    let trusted = match &base.node_lens {
        Some(l) => nodes.valid_up_to(l)?,
        None => false,
    };
    if trusted {
        let l = base.node_lens.as_deref().unwrap_or_default();
        nodes.lens = [0; LEVELS];
        nodes.lens[..l.len()].copy_from_slice(l);
    } else {
        nodes.lens = [0; LEVELS];
        nodes.truncate_to_lens()?;
        for j in 0..=k {
            let to = if j == k { base.offset } else { lens[j] };
            if to > 0 {
                for g in segs[j].scan(0, to, segs[j].first, true)?.groups {
                    nodes.write(&g.commit.nodes, None)?;
                }
                repaired = true;
            }
        }
    }

    // Every frame after it.
    let mut count = base.count;
    let mut head = base.head;
    let mut checkpoint = base.checkpoint;
    let mut last_commit = base.last_commit;
    let mut end = base.offset;
    for j in k..=last {
        let seg = &segs[j];
        let from = if j == k { base.offset } else { 0 };
        if j > k && seg.first != count {
            return Err(corrupt(
                count.min(seg.first),
                format!("the segments do not follow each other: entries up to {count}, then {}", seg.path.display()),
            ));
        }
        let s = seg.scan(from, lens[j], count, j < last)?;
        if j == last && from == 0 && s.groups.is_empty() {
            // Created at a roll; its first group never became durable.
            for p in [&seg.path, &seg.idx_path] {
                std::fs::remove_file(p).map_err(|e| io_err(p, e))?;
            }
            fsutil::sync_parent(&seg.path).map_err(|e| io_err(dir, e))?;
            return Ok(None);
        }
        for g in &s.groups {
            seg.write_idx(g.first, &g.entries)?;
            nodes.write(&g.commit.nodes, None)?;
            repaired = true;
        }
        if let Some(g) = s.groups.last() {
            count = g.commit.head.count;
            head = Some(g.commit.head);
            checkpoint = Some(g.commit.checkpoint.clone());
            last_commit = g.commit_at;
        }
        end = s.end;
        let want = (count - seg.first) * IDX_SLOT as u64;
        if seg.idx.metadata().map_err(|e| io_err(&seg.idx_path, e))?.len() != want {
            seg.idx.set_len(want).map_err(|e| io_err(&seg.idx_path, e))?;
        }
        if j == last
            && let Some((at, _why)) = s.torn
        {
            seg.file.set_len(at).and_then(|()| seg.file.sync_data()).map_err(|e| io_err(&seg.path, e))?;
        }
    }
    let seg = &segs[last];
    nodes.truncate_to_lens()?;

    let mut state_count = state.as_ref().map_or(0, |s| s.count);
    if repaired || state_count != count {
        // Record the repair, so that the next open starts from here; if it
        // cannot be recorded (a full disk), the next open repeats it.
        let st = State { segment: seg.first, commit: last_commit, end, count, node_lens: nodes.trimmed_lens() };
        let synced = segs[k..].iter().try_for_each(|s| s.idx.sync_data().map_err(|e| io_err(&s.idx_path, e)));
        if synced.and_then(|()| nodes.sync()).and_then(|()| st.write(dir)).is_ok() {
            state_count = count;
        }
    }
    Ok(Some(Recovered { segments: segs, nodes, head, checkpoint, end, last_commit, state_count }))
}

/// The first entry of `seg` (before `count`) whose frame does not fit in
/// `len` bytes, as far as its offset index tells.
fn cut_index(seg: &Segment, count: u64, len: u64) -> u64 {
    let n = count - seg.first;
    for i in 0..n {
        match seg.slots(seg.first + i, 1) {
            Ok(s) if s[0].0 + entry_frame_len(s[0].1) <= len => {}
            _ => return seg.first + i,
        }
    }
    count - 1
}

impl SegmentLog {
    /// Opens the log in `dir`, creating it (and the directory) if there is
    /// none, with the default options.
    pub fn open(dir: &Path) -> Result<SegmentLog, LogError> {
        SegmentLog::open_with(dir, &SegmentOptions::default())
    }

    /// Opens the log in `dir` with `options`: repairs what a crash left
    /// (see the module docs), or fails naming what is wrong.
    pub fn open_with(dir: &Path, options: &SegmentOptions) -> Result<SegmentLog, LogError> {
        let existed = dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        if !existed {
            fsutil::sync_parent(dir).map_err(|e| io_err(dir, e))?;
        }
        let lock = lock(dir, options.lock_wait)?;
        for name in [FORMAT_FILE, STATE_FILE] {
            let path = dir.join(name);
            fsutil::remove_stale_temps(&path).map_err(|e| io_err(&path, e))?;
        }
        check_format(dir)?;
        let r = recover(dir)?;
        let active = r.segments.last().cloned();
        Ok(SegmentLog {
            dir: dir.to_path_buf(),
            segment_bytes: options.segment_bytes,
            shared: RwLock::new(Shared {
                head: r.head,
                checkpoint: r.checkpoint,
                segments: r.segments,
                nodes: r.nodes,
            }),
            writer: Mutex::new(Writer {
                active,
                end: r.end,
                last_commit: r.last_commit,
                state_count: r.state_count,
                poisoned: None,
            }),
            crashed: false,
            _lock: lock,
        })
    }

    /// The directory of the log.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Drops the log as a crash would: without syncing its derived files
    /// or recording the durable point, so that the next open repairs
    /// (for tests of recovery).
    #[doc(hidden)]
    pub fn crash(mut self) {
        self.crashed = true;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Shared> {
        self.shared.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses a group this format cannot hold.
    fn check_limits(group: &Group<'_>) -> Result<(), LogError> {
        if let Some(e) = group.entries.iter().find(|e| e.len() > MAX_FRAME_BODY - 8) {
            return Err(LogError::Invalid(format!("an entry of {} bytes (at most {})", e.len(), MAX_FRAME_BODY - 8)));
        }
        if let Some(n) = group.nodes.iter().find(|n| n.level as usize >= LEVELS) {
            return Err(LogError::Invalid(format!("a tree node at level {}", n.level)));
        }
        if HEAD_WIRE + 16 + group.nodes.len() * NODE_WIRE + group.checkpoint.len() > MAX_FRAME_BODY {
            return Err(LogError::Invalid("a group's nodes and checkpoint too large for one commit".into()));
        }
        Ok(())
    }

    /// Starts the segment of the entries from `first`: syncs the derived
    /// files of the one it follows and records that point, then creates
    /// the file and makes its name durable.
    fn roll(&self, w: &mut Writer, first: u64) -> Result<Arc<Segment>, LogError> {
        if let Some(old) = &w.active {
            old.idx.sync_data().map_err(|e| io_err(&old.idx_path, e))?;
            let node_lens = {
                let shared = self.read();
                shared.nodes.sync()?;
                shared.nodes.trimmed_lens()
            };
            State { segment: old.first, commit: w.last_commit, end: w.end, count: first, node_lens }
                .write(&self.dir)?;
            w.state_count = first;
        }
        let seg = Segment::open(&self.dir, first, true)?;
        if let Err(e) = fsutil::sync_parent(&seg.path) {
            let _ = std::fs::remove_file(&seg.path);
            let _ = std::fs::remove_file(&seg.idx_path);
            return Err(io_err(&self.dir, e));
        }
        Ok(Arc::new(seg))
    }

    /// Undoes the segment write of a failed append: `err` if that worked,
    /// else an error saying that it did not (and appends stop).
    fn undo_segment(&self, w: &mut Writer, seg: &Segment, base: u64, created: bool, err: LogError) -> LogError {
        let undone = if created {
            std::fs::remove_file(&seg.path)
                .and_then(|()| std::fs::remove_file(&seg.idx_path))
                .and_then(|()| fsutil::sync_parent(&seg.path))
        } else {
            seg.file.set_len(base).and_then(|()| seg.file.sync_data())
        };
        match undone {
            Ok(()) => err,
            Err(e) => self.poison(w, &seg.path, &err, e),
        }
    }

    fn poison(&self, w: &mut Writer, path: &Path, err: &LogError, e: io::Error) -> LogError {
        let why = format!("{err}; undoing the write failed too ({e}): reopen the log");
        w.poisoned = Some(why.clone());
        LogError::Io { path: path.to_path_buf(), source: io::Error::other(why) }
    }
}

impl Log for SegmentLog {
    fn head(&self) -> Result<Option<Head>, LogError> {
        Ok(self.read().head)
    }

    fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LogError> {
        let seg = {
            let shared = self.read();
            if shared.head.is_none_or(|h| index >= h.count) {
                return Ok(None);
            }
            let k = shared.segments.partition_point(|s| s.first <= index) - 1;
            shared.segments[k].clone()
        };
        let slot = seg.slots(index, 1)?[0];
        seg.entry_at(index, slot).map(Some)
    }

    fn range(&self, start: u64, end: u64) -> LogIter<'_> {
        let shared = self.read();
        let count = shared.head.map_or(0, |h| h.count);
        Box::new(Range {
            segments: shared.segments.clone(),
            next: start,
            end: end.min(count),
            ready: std::collections::VecDeque::new(),
            failed: None,
            done: false,
        })
    }

    fn node(&self, level: u32, index: u64) -> Result<Option<Hash>, LogError> {
        let level = level as usize;
        let shared = self.read();
        let Some(Some(f)) = shared.nodes.files.get(level) else { return Ok(None) };
        let Some(at) = index.checked_mul(NODE_SLOT as u64) else { return Ok(None) };
        let Some(slot) = read_exact(&f.file, at, NODE_SLOT).map_err(|e| io_err(&f.path, e))? else { return Ok(None) };
        read_node_slot(&slot, level, index).map_err(|()| LogError::Corrupt {
            index: index.checked_shl(level as u32),
            reason: format!("{}: node {index} is damaged (reopen the log to rebuild it)", f.path.display()),
        })
    }

    fn checkpoint(&self) -> Result<Option<String>, LogError> {
        Ok(self.read().checkpoint.clone())
    }

    fn append(&self, expected: Option<&Head>, group: &Group<'_>) -> Result<(), LogError> {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = &w.poisoned {
            return Err(LogError::Io { path: self.dir.clone(), source: io::Error::other(why.clone()) });
        }
        if self.read().head.as_ref() != expected {
            return Err(LogError::HeadMoved);
        }
        group.check_extends(expected)?;
        SegmentLog::check_limits(group)?;
        let before = expected.map_or(0, |h| h.count);

        let created =
            if w.active.is_none() || w.end >= self.segment_bytes { Some(self.roll(&mut w, before)?) } else { None };
        let seg = created.clone().or_else(|| w.active.clone()).expect("a segment to write");
        let base = if created.is_some() { 0 } else { w.end };

        // One buffer: [header] entry frames, commit frame.
        let size: usize = group.entries.iter().map(|e| e.len() + FRAME_OVERHEAD + 8).sum::<usize>()
            + FRAME_OVERHEAD
            + HEAD_WIRE
            + 16
            + group.nodes.len() * NODE_WIRE
            + group.checkpoint.len()
            + SEG_HEADER;
        let mut buf = Vec::with_capacity(size);
        if created.is_some() {
            buf.extend_from_slice(&segment_header(before));
        }
        let mut slots = Vec::with_capacity(group.entries.len());
        for (k, e) in group.entries.iter().enumerate() {
            slots.push((base + buf.len() as u64, e.len() as u32));
            put_frame(&mut buf, KIND_ENTRY, &[&(before + k as u64).to_le_bytes(), e]);
        }
        let commit_at = base + buf.len() as u64;
        put_frame(&mut buf, KIND_COMMIT, &[&commit_body(before, group.head, group.nodes, group.checkpoint)]);

        if let Err(e) = seg.file.write_all_at(&buf, base).and_then(|()| seg.file.sync_data()) {
            let err = io_err(&seg.path, e);
            return Err(self.undo_segment(&mut w, &seg, base, created.is_some(), err));
        }

        // Acknowledged on disk; now the derived files and the head, which
        // readers see together.
        let mut shared = self.shared.write().unwrap_or_else(|e| e.into_inner());
        let mut undo = Undo { lens: shared.nodes.lens, slots: Vec::new() };
        let derived = seg.write_idx(before, &slots).and_then(|()| shared.nodes.write(group.nodes, Some(&mut undo)));
        if let Err(err) = derived {
            let old_idx = (before - seg.first) * IDX_SLOT as u64;
            let undone = shared.nodes.undo(&undo).and_then(|()| seg.idx.set_len(old_idx));
            drop(shared);
            return Err(match undone {
                Ok(()) => self.undo_segment(&mut w, &seg, base, created.is_some(), err),
                Err(e) => self.poison(&mut w, &self.dir, &err, e),
            });
        }
        shared.head = Some(*group.head);
        shared.checkpoint = Some(group.checkpoint.to_string());
        if let Some(seg) = &created {
            shared.segments.push(seg.clone());
        }
        drop(shared);
        if created.is_some() {
            w.active = Some(seg);
        }
        w.end = base + buf.len() as u64;
        w.last_commit = commit_at;
        Ok(())
    }
}

impl Drop for SegmentLog {
    /// A clean close: syncs the derived files and records the durable
    /// point, so that the next open parses nothing. Best effort: if it
    /// fails, the next open repairs from the last point recorded.
    fn drop(&mut self) {
        if self.crashed {
            return;
        }
        let w = self.writer.get_mut().unwrap_or_else(|e| e.into_inner());
        let shared = self.shared.get_mut().unwrap_or_else(|e| e.into_inner());
        let (Some(seg), Some(head), None) = (&w.active, shared.head, &w.poisoned) else { return };
        if w.state_count == head.count {
            return;
        }
        let st = State {
            segment: seg.first,
            commit: w.last_commit,
            end: w.end,
            count: head.count,
            node_lens: shared.nodes.trimmed_lens(),
        };
        if seg.idx.sync_data().is_ok() && shared.nodes.sync().is_ok() {
            let _ = st.write(&self.dir);
        }
    }
}

/// The entries of a range, read a batch at a time from a snapshot of the
/// segments (published entries never change).
struct Range {
    segments: Vec<Arc<Segment>>,
    next: u64,
    end: u64,
    ready: std::collections::VecDeque<(u64, Vec<u8>)>,
    /// The error met after the entries in `ready`, then nothing more.
    failed: Option<LogError>,
    done: bool,
}

impl Range {
    fn fill(&mut self) -> Result<(), LogError> {
        let k = self.segments.partition_point(|s| s.first <= self.next) - 1;
        let seg = &self.segments[k];
        let seg_end = self.segments.get(k + 1).map_or(u64::MAX, |s| s.first);
        let n = (self.end.min(seg_end) - self.next).min(RANGE_BATCH as u64) as usize;
        let slots = seg.slots(self.next, n)?;
        let from = slots[0].0;
        let to = slots[n - 1].0 + entry_frame_len(slots[n - 1].1);
        if to - from <= RANGE_SPAN {
            let buf = read_exact(&seg.file, from, (to - from) as usize).map_err(|e| io_err(&seg.path, e))?;
            let buf = buf.unwrap_or_default();
            for (k, slot) in slots.into_iter().enumerate() {
                let i = self.next + k as u64;
                self.ready.push_back((i, seg.entry_in(&buf, from, i, slot)?));
            }
        } else {
            for (k, slot) in slots.into_iter().enumerate() {
                let i = self.next + k as u64;
                self.ready.push_back((i, seg.entry_at(i, slot)?));
            }
        }
        self.next += n as u64;
        Ok(())
    }
}

impl Iterator for Range {
    type Item = Result<(u64, Vec<u8>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.ready.pop_front() {
                return Some(Ok(x));
            }
            if let Some(e) = self.failed.take() {
                self.done = true;
                return Some(Err(e));
            }
            if self.done || self.next >= self.end {
                return None;
            }
            if let Err(e) = self.fill() {
                self.failed = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::log::conformance;
    use super::*;

    /// New logs in directories under `root`.
    fn fresh(root: &Path, segment_bytes: u64) -> impl Fn() -> SegmentLog + '_ {
        let made = std::sync::atomic::AtomicUsize::new(0);
        move || {
            let n = made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = root.join(format!("log-{n}"));
            SegmentLog::open_with(&dir, &SegmentOptions::new().segment_bytes(segment_bytes)).unwrap()
        }
    }

    fn reopen(segment_bytes: u64) -> impl Fn(SegmentLog) -> SegmentLog {
        move |log| {
            let dir = log.path().to_path_buf();
            drop(log);
            SegmentLog::open_with(&dir, &SegmentOptions::new().segment_bytes(segment_bytes)).unwrap()
        }
    }

    #[test]
    fn the_segment_log_conforms() {
        let root = tempfile::tempdir().unwrap();
        conformance::run(&fresh(root.path(), DEFAULT_SEGMENT_BYTES), Some(&reopen(DEFAULT_SEGMENT_BYTES)));
    }

    #[test]
    fn the_segment_log_conforms_with_tiny_segments() {
        // Most groups start a segment of their own.
        let root = tempfile::tempdir().unwrap();
        conformance::run(&fresh(root.path(), 4096), Some(&reopen(4096)));
    }

    #[test]
    fn the_segment_log_conforms_after_crashes() {
        // Every reopen repairs from the last durable point instead of
        // finding a clean close.
        let crash_reopen = |log: SegmentLog| {
            let dir = log.path().to_path_buf();
            log.crash();
            SegmentLog::open_with(&dir, &SegmentOptions::new().segment_bytes(8192)).unwrap()
        };
        let root = tempfile::tempdir().unwrap();
        conformance::run(&fresh(root.path(), 8192), Some(&crash_reopen));
    }

    #[test]
    fn frames_round_trip_and_a_flipped_byte_is_caught() {
        let mut buf = Vec::new();
        put_frame(&mut buf, KIND_ENTRY, &[&7u64.to_le_bytes(), b"bytes"]);
        let Parsed::Frame { kind, body, end } = parse_frame(&buf, 0, buf.len()) else { panic!("an intact frame") };
        assert_eq!((kind, &body[8..], end), (KIND_ENTRY, &b"bytes"[..], buf.len()));
        assert_eq!(*buf.last().unwrap(), FRAME_END);
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0xff;
            assert!(matches!(parse_frame(&b, 0, b.len()), Parsed::Damaged(_)), "byte {i} flipped");
        }
        for cut in 0..buf.len() {
            assert!(matches!(parse_frame(&buf[..cut], 0, cut), Parsed::Torn(_)), "cut at {cut}");
        }
    }

    #[test]
    fn state_records_round_trip_and_damage_reads_as_none() {
        let st = State { segment: 10, commit: 100, end: 200, count: 20, node_lens: vec![20, 10, 5] };
        let b = st.encode();
        let back = State::decode(&b).unwrap();
        assert_eq!(
            (back.segment, back.commit, back.end, back.count, back.node_lens),
            (10, 100, 200, 20, vec![20, 10, 5])
        );
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x01;
            assert!(State::decode(&d).is_none(), "byte {i} flipped");
        }
        assert!(State::decode(&b[..b.len() - 1]).is_none());
    }
}
