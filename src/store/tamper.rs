//! For tamper tests and forensic drills only: rewriting what a ledger
//! directory's log holds, with every frame and checksum valid, as someone
//! with write access to its files could. The log's own checks see nothing
//! wrong; `verify` must.
//!
//! The indexes (`index/`) are left as they were, as a careless attacker
//! would leave them.

use std::path::Path;

use super::local::LOG_DIR;
use super::log::{Group, Log, LogError};
use super::segment::SegmentLog;
use super::{Head, NodeWrite};

/// Everything a log holds, as plain values.
#[derive(Clone, Debug)]
pub struct Contents {
    pub entries: Vec<Vec<u8>>,
    /// Every stored tree node, by level then index.
    pub nodes: Vec<NodeWrite>,
    pub checkpoint: String,
    pub head: Head,
}

impl Contents {
    /// The stored node `(level, index)`, to change in place.
    pub fn node_mut(&mut self, level: u32, index: u64) -> Option<&mut NodeWrite> {
        self.nodes.iter_mut().find(|n| n.level == level && n.index == index)
    }
}

/// Reads the whole log of the ledger directory `dir`.
pub fn read(dir: &Path) -> Result<Contents, LogError> {
    let log = SegmentLog::open(&dir.join(LOG_DIR))?;
    let head = log.head()?.ok_or_else(|| LogError::Invalid("an empty log".into()))?;
    let entries = log.range(0, head.count).map(|r| r.map(|(_, b)| b)).collect::<Result<Vec<_>, _>>()?;
    let mut nodes = Vec::new();
    for level in 0..64u32 {
        let width = head.count >> level;
        if width == 0 {
            break;
        }
        for index in 0..width {
            if let Some(hash) = log.node(level, index)? {
                nodes.push(NodeWrite { level, index, hash });
            }
        }
    }
    let checkpoint = log.checkpoint()?.unwrap_or_default();
    Ok(Contents { entries, nodes, checkpoint, head })
}

/// Replaces the log of the ledger directory `dir` with one holding exactly
/// `contents`, in one group. `contents.head.count` must count its entries
/// (a log holds no head its entries do not reach); its hash, time and
/// policy index are written as given.
pub fn write(dir: &Path, contents: &Contents) -> Result<(), LogError> {
    let io = |e: std::io::Error| LogError::Io { path: dir.to_path_buf(), source: e };
    let staging = dir.join("log.tampered");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io)?;
    }
    {
        let log = SegmentLog::open(&staging)?;
        let entries: Vec<&[u8]> = contents.entries.iter().map(Vec::as_slice).collect();
        let group =
            Group { entries: &entries, nodes: &contents.nodes, checkpoint: &contents.checkpoint, head: &contents.head };
        log.append(None, &group)?;
    }
    std::fs::remove_dir_all(dir.join(LOG_DIR)).map_err(io)?;
    std::fs::rename(&staging, dir.join(LOG_DIR)).map_err(io)?;
    Ok(())
}

/// Reads, edits and writes back the log of the ledger directory `dir`.
pub fn edit(dir: &Path, change: impl FnOnce(&mut Contents)) -> Result<(), LogError> {
    let mut contents = read(dir)?;
    change(&mut contents);
    write(dir, &contents)
}
