//! The reports of `serve` and `sync`.

use super::*;

/// `serve`: its first line, once it listens.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Listening {
    /// Where it listens: `http://ADDRESS:PORT` (serve), `https://ADDRESS:PORT/validate` (admit).
    pub listening: String,
    pub ledger: PathBuf,
    /// Entries in the ledger served.
    pub size: u64,
}

impl Report for Listening {
    fn human(&self) {
        println!("listening on {}", self.listening);
    }
}

/// `sync --to oci://...`: the ledger published to a registry.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Published {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub to: String,
    /// The digest of the manifest published.
    pub manifest: String,
    pub entries: u64,
    pub blobs: usize,
    /// Blobs pushed by this publication.
    pub pushed: usize,
}

impl Report for Published {
    fn human(&self) {
        println!(
            "published {} entries to {} ({} blobs, {} pushed now); manifest {}",
            self.entries, self.to, self.blobs, self.pushed, self.manifest
        );
    }
}

/// `sync --from ...` (or with `--server`): the mirror brought up to the source.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Synced {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub source: String,
    pub mirror: PathBuf,
    /// The mirror's size before.
    pub from: u64,
    /// The mirror's size after.
    pub to: u64,
    pub fetched: u64,
    /// The source is behind the mirror, and a prefix of it: nothing fetched.
    pub source_behind: bool,
    /// The mirror's checkpoint (the source's, when it is behind).
    pub checkpoint: CheckpointReport,
}

impl Report for Synced {
    fn human(&self) {
        let cp = &self.checkpoint;
        if self.source_behind {
            println!(
                "{} is behind (size {} < ours {}), and a prefix of ours: nothing to fetch",
                self.source, cp.size, self.to
            );
        } else if self.to == self.from {
            println!("up to date with {} at size {}", self.source, self.to);
        } else {
            println!(
                "synced {} new entries from {} (size {} -> {}), verified; root {}",
                self.fetched, self.source, self.from, self.to, cp.root
            );
        }
    }
}

/// Every report of `sync`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum SyncReports {
    Published(Published),
    Synced(Synced),
}
