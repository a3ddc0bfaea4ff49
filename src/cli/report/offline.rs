//! The reports of `verify`, `export`, `prove` and `checkpoint`.

use super::*;

/// `verify`: the local ledger (or a server's mirror) verified.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Verified {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub entries: u64,
    #[schemars(pattern(HASH))]
    pub genesis: String,
    #[schemars(pattern(HASH))]
    pub head: String,
    pub checkpoint: CheckpointReport,
}

impl Report for Verified {
    fn human(&self) {
        let cp = &self.checkpoint;
        println!("ok: {} entries verified; the Merkle tree and the signed checkpoint match", self.entries);
        println!("genesis {}", self.genesis);
        println!("head    {}", self.head);
        println!("root    {} (checkpoint {}, size {})", cp.root, cp.origin, cp.size);
    }
}

/// `verify --bundle`: a bundle verified offline.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BundleVerified {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub entries: u64,
    #[schemars(pattern(HASH))]
    pub genesis: String,
    #[schemars(pattern(HASH))]
    pub head: String,
    pub checkpoint: CheckpointReport,
    /// The earlier checkpoint (`--since`) the bundle extends.
    pub since: Option<CheckpointReport>,
}

impl Report for BundleVerified {
    fn human(&self) {
        let cp = &self.checkpoint;
        println!("ok: bundle of {} entries verified offline against genesis {}", self.entries, self.genesis);
        println!("checkpoint {} size {} root {} signed by {}", cp.origin, cp.size, cp.root, cp.verifier_key);
        if let Some(s) = &self.since {
            println!("consistent with the earlier checkpoint of size {} (root {})", s.size, s.root);
        }
    }
}

/// `verify --proof`: a promotion proof verified offline.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProofVerified {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    pub environment: String,
    pub promotion: EntryId,
    /// The environment the digest was promoted from.
    pub from: Option<String>,
    pub build: EntryId,
    pub validations: Vec<EntryId>,
    pub checkpoint: CheckpointReport,
}

impl Report for ProofVerified {
    fn human(&self) {
        println!(
            "ok: {} was legitimately promoted to {} (entry {})",
            self.digest, self.environment, self.promotion.index
        );
        println!(
            "  build entry {}, validation entries {:?}; included in checkpoint {} of size {}",
            self.build.index,
            self.validations.iter().map(|r| r.index).collect::<Vec<_>>(),
            self.checkpoint.origin,
            self.checkpoint.size
        );
    }
}

/// Every report of `verify`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(super) enum VerifyReports {
    Ledger(Verified),
    Bundle(BundleVerified),
    Proof(ProofVerified),
}

/// `migrate`: a store version 2 ledger converted to version 3, or found
/// already there.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Migrated {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    /// False: the ledger was already store version 3.
    pub migrated: bool,
    /// The entries moved (0 when nothing was to do).
    pub entries: u64,
    /// The head, the same before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(HASH))]
    pub head: Option<String>,
    /// Where the store version 2 files are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// The store version the ledger now has.
    pub store_version: u32,
}

impl Report for Migrated {
    fn human(&self) {
        match (&self.head, &self.kept) {
            (Some(head), Some(kept)) => {
                println!(
                    "migrated {} entries to store version 3 (segment log); the same head {head} and checkpoint, verified",
                    self.entries
                );
                println!("the store version 2 files are kept in {}", kept.display());
            }
            _ => println!("already store version 3: nothing to migrate"),
        }
    }
}

/// `reindex`: the indexes made anew from the chain.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Reindexed {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    /// The entries indexed.
    pub entries: u64,
    /// How long the rebuild took.
    pub seconds: f64,
}

impl Report for Reindexed {
    fn human(&self) {
        println!("rebuilt the indexes of {} entries from the chain in {:.2} s", self.entries, self.seconds);
    }
}

/// `export`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Exported {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub out: PathBuf,
    pub entries: u64,
    pub bytes: u64,
    pub checkpoint: CheckpointReport,
}

impl Report for Exported {
    fn human(&self) {
        let n = self.entries;
        println!(
            "wrote {n} entries and the checkpoint of size {} to {} ({} bytes)",
            self.checkpoint.size,
            self.out.display(),
            self.bytes
        );
    }
}

/// `prove`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Proven {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub out: PathBuf,
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    pub environment: String,
    /// The promotion's entry index.
    pub promotion: u64,
    /// How many entries the proof carries.
    pub entries: usize,
    pub bytes: usize,
}

/// `vsa`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct VsaWritten {
    /// Always true.
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub out: PathBuf,
    #[schemars(pattern(DIGEST))]
    pub digest: String,
    pub environment: String,
    /// The promotion's entry index.
    pub promotion: u64,
    /// The key id of the signature.
    pub signed_by: String,
    pub predicate_type: String,
}

impl Report for VsaWritten {
    fn human(&self) {
        println!(
            "wrote the verification summary that {} was promoted into {} (entry {}), signed by {}, to {}",
            self.digest,
            self.environment,
            self.promotion,
            self.signed_by,
            self.out.display()
        );
    }
}

impl Report for Proven {
    fn human(&self) {
        println!(
            "wrote the proof that {} was promoted to {} (entry {}; {} entries, {} bytes) to {}",
            self.digest,
            self.environment,
            self.promotion,
            self.entries,
            self.bytes,
            self.out.display()
        );
    }
}

/// `checkpoint`: the latest signed checkpoint (the note itself, for people).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct CheckpointShown {
    pub checkpoint: CheckpointReport,
    /// Where it was written (`--out`).
    #[serde(skip)]
    pub out: Option<PathBuf>,
}

impl Report for CheckpointShown {
    fn human(&self) {
        match &self.out {
            None => print!("{}", self.checkpoint.note),
            Some(path) => println!("wrote the checkpoint of size {} to {}", self.checkpoint.size, path.display()),
        }
    }
}

/// `report`: the audit view written as a static site.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReportWritten {
    /// Always true (a failed verification is an error report, after the site is written).
    #[schemars(extend("const" = true))]
    pub ok: bool,
    pub out: PathBuf,
    /// Pages written (each as HTML and JSON).
    pub pages: usize,
    pub entries: u64,
    #[schemars(pattern(HASH))]
    pub genesis: String,
    pub checkpoint: CheckpointReport,
}

impl Report for ReportWritten {
    fn human(&self) {
        println!("verified {} entries from genesis {}", self.entries, self.genesis);
        println!(
            "wrote {} pages to {}; open {}",
            self.pages,
            self.out.display(),
            self.out.join("index.html").display()
        );
    }
}
