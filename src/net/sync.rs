//! Mirrors: pulling a ledger's new entries from another copy, and publishing
//! a ledger to an OCI registry.
//!
//! A mirror trusts only what it holds (its last verified checkpoint) and the
//! genesis hash it was started from. From a source it takes the latest
//! signed checkpoint; where the source serves them, a consistency proof from
//! the mirror's tree to that checkpoint is checked before any entry is
//! fetched. Then the new entries are verified as a chain extending the
//! mirror's, the tree they grow must have the checkpoint's root, and the
//! checkpoint must be signed by the log key of the policy in force. Only
//! then is anything written, in one atomic write. A source whose history is
//! not an extension of the mirror's (a fork) is refused, the mirror left
//! untouched, and the source's signed checkpoint saved as evidence.

use std::path::{Path, PathBuf};

use serde_json::json;
use thiserror::Error;

use crate::bundle;
use crate::core::hash::EntryHash;
use crate::core::image_ref::ImageRef;
use crate::core::note::{Checkpoint, MAX_NOTE_SIZE};
use crate::ledger::{Ledger, LedgerError, SignedCheckpoint, StoredEntry};
use crate::registry::{LedgerChunk, PublishedLedger, Registry, RegistryError};
use crate::remote::{Client, RemoteError};
use crate::store::Store;
use crate::store::any::LedgerStore;
use crate::tree::{self, Hash};

/// Entries per blob of a published ledger. Blob boundaries are fixed, so a
/// full blob, once pushed, is reused by every later publication.
pub const CHUNK_ENTRIES: u64 = 1024;
/// Entries fetched per request.
const PAGE: u64 = 1024;

#[derive(Debug, Error)]
pub enum SyncError {
    /// The source could not be read.
    #[error("{0}")]
    Source(String),
    /// The source's history is not an extension of ours.
    #[error("fork: {reason}")]
    Fork { reason: String, evidence: Option<PathBuf> },
    /// The log itself (a server) now serves a smaller tree than one it
    /// signed before: what the mirror holds, or a checkpoint it acknowledged
    /// a submission with.
    #[error("{server}: the server rolled back from size {from} to {to}")]
    Rollback { server: String, from: u64, to: u64, evidence: Option<PathBuf> },
    /// The source's answer does not verify (not a fork signed by the log).
    #[error("{0}")]
    Invalid(String),
    #[error("the mirror is empty: the first sync needs the genesis hash to trust (--genesis)")]
    NeedGenesis,
    /// What a server acknowledged is not what its log, mirrored, holds.
    #[error("{0}")]
    Acknowledged(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The mirror's directory could not be opened.
    #[error(transparent)]
    Dir(#[from] crate::ledger::dir::DirError),
}

impl From<RemoteError> for SyncError {
    fn from(e: RemoteError) -> SyncError {
        match e {
            RemoteError::Forged { .. } => SyncError::Invalid(e.to_string()),
            other => SyncError::Source(other.to_string()),
        }
    }
}

impl From<RegistryError> for SyncError {
    fn from(e: RegistryError) -> SyncError {
        match e {
            RegistryError::DigestMismatch { .. } => SyncError::Invalid(e.to_string()),
            other => SyncError::Source(other.to_string()),
        }
    }
}

/// Another copy of a ledger.
pub trait Source {
    fn describe(&self) -> String;
    /// The latest signed checkpoint note (verified by the caller).
    fn checkpoint(&mut self) -> Result<String, SyncError>;
    /// A consistency proof between two sizes, where the source serves them.
    fn consistency(&mut self, from: u64, to: u64) -> Result<Option<Vec<Hash>>, SyncError>;
    /// Entries from `start`, at most up to `end`; at least one if `start < end`.
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SyncError>;
    /// Whether the source is the log itself (a server), whose tree can only
    /// grow, rather than a copy (a directory, a publication) that may lag.
    fn is_the_log(&self) -> bool {
        false
    }
}

/// A ledger server.
pub struct ServerSource(pub Client);

impl Source for ServerSource {
    fn describe(&self) -> String {
        self.0.url().to_string()
    }
    fn checkpoint(&mut self) -> Result<String, SyncError> {
        Ok(self.0.checkpoint()?)
    }
    fn consistency(&mut self, from: u64, to: u64) -> Result<Option<Vec<Hash>>, SyncError> {
        Ok(Some(self.0.consistency(from, to)?))
    }
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SyncError> {
        Ok(self.0.entries(start, end)?)
    }
    fn is_the_log(&self) -> bool {
        true
    }
}

/// Another ledger directory on this machine.
pub struct DirSource {
    path: PathBuf,
    ledger: Ledger<LedgerStore>,
}

impl DirSource {
    pub fn open(path: &Path, lock_wait: std::time::Duration) -> Result<DirSource, SyncError> {
        let ledger =
            crate::ledger::dir::LedgerDir::new(path, lock_wait).open().map_err(|e| SyncError::Source(e.to_string()))?;
        Ok(DirSource { path: path.to_path_buf(), ledger })
    }
}

impl Source for DirSource {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
    fn checkpoint(&mut self) -> Result<String, SyncError> {
        self.ledger
            .store()
            .checkpoint()?
            .ok_or_else(|| SyncError::Source(format!("{}: no checkpoint", self.describe())))
    }
    fn consistency(&mut self, from: u64, to: u64) -> Result<Option<Vec<Hash>>, SyncError> {
        Ok(Some(self.ledger.consistency_proof(from, to)?))
    }
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SyncError> {
        let mut out = Vec::new();
        for item in self.ledger.store().entries_from(start).take(end.saturating_sub(start).min(PAGE) as usize) {
            out.push(item.map_err(LedgerError::from)?.1);
        }
        Ok(out)
    }
}

/// An exported bundle: the entries in order, and the checkpoint it carries.
/// Read once, front to back, as a mirror is filled from it.
pub struct BundleSource {
    path: PathBuf,
    reader: bundle::BundleReader<std::io::BufReader<std::fs::File>>,
    next: u64,
}

impl BundleSource {
    pub fn open(path: &Path) -> Result<BundleSource, SyncError> {
        let file = std::fs::File::open(path).map_err(|e| SyncError::Source(format!("{}: {e}", path.display())))?;
        let reader = bundle::BundleReader::open(std::io::BufReader::with_capacity(1 << 20, file))
            .map_err(|e| SyncError::Invalid(format!("{}: {e}", path.display())))?;
        Ok(BundleSource { path: path.to_path_buf(), reader, next: 0 })
    }
}

impl Source for BundleSource {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }
    fn checkpoint(&mut self) -> Result<String, SyncError> {
        Ok(self.reader.checkpoint_note.clone())
    }
    fn consistency(&mut self, _from: u64, _to: u64) -> Result<Option<Vec<Hash>>, SyncError> {
        Ok(None)
    }
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SyncError> {
        if start != self.next {
            return Err(SyncError::Source(format!(
                "{}: a bundle is read in order; entry {start} was asked after {}",
                self.describe(),
                self.next
            )));
        }
        let mut out = Vec::new();
        while self.next < end && (out.len() as u64) < PAGE {
            match self.reader.next_entry() {
                Some(Ok(e)) => out.push(e),
                Some(Err(e)) => return Err(SyncError::Invalid(format!("{}: {e}", self.describe()))),
                None => break,
            }
            self.next += 1;
        }
        Ok(out)
    }
}

impl From<crate::store::StoreError> for SyncError {
    fn from(e: crate::store::StoreError) -> SyncError {
        SyncError::Ledger(e.into())
    }
}

/// A ledger published to an OCI registry by [`publish`].
pub struct OciSource {
    registry: Registry,
    image: ImageRef,
    published: PublishedLedger,
    /// The last blob read, decoded.
    cached: Option<(u64, Vec<Vec<u8>>)>,
}

impl OciSource {
    pub fn open(registry: Registry, image: ImageRef) -> Result<OciSource, SyncError> {
        let published = registry
            .published_ledger(&image)?
            .ok_or_else(|| SyncError::Source(format!("no ledger is published at {image}")))?;
        Ok(OciSource { registry, image, published, cached: None })
    }
}

impl Source for OciSource {
    fn describe(&self) -> String {
        format!("oci://{}", self.image)
    }
    fn checkpoint(&mut self) -> Result<String, SyncError> {
        Ok(self.published.checkpoint.clone())
    }
    fn consistency(&mut self, _: u64, _: u64) -> Result<Option<Vec<Hash>>, SyncError> {
        Ok(None)
    }
    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SyncError> {
        let chunk = self
            .published
            .chunks
            .iter()
            .find(|c| c.start <= start && start < c.start + c.count)
            .cloned()
            .ok_or_else(|| SyncError::Invalid(format!("{}: no blob holds entry {start}", self.describe())))?;
        if self.cached.as_ref().is_none_or(|(s, _)| *s != chunk.start) {
            let bytes = self.registry.ledger_chunk(&self.image, &chunk)?;
            let entries = bundle::decode_frames(&bytes, chunk.count as usize)
                .map_err(|e| SyncError::Invalid(format!("{}: blob {}: {e}", self.describe(), chunk.digest)))?;
            if entries.len() as u64 != chunk.count {
                return Err(SyncError::Invalid(format!(
                    "{}: blob {} holds {} entries, its listing says {}",
                    self.describe(),
                    chunk.digest,
                    entries.len(),
                    chunk.count
                )));
            }
            self.cached = Some((chunk.start, entries));
        }
        let (s, entries) = self.cached.as_ref().expect("cached");
        let from = (start - s) as usize;
        let to = (end.min(s + entries.len() as u64) - s) as usize;
        Ok(entries[from..to].to_vec())
    }
}

/// What a sync did.
#[derive(Clone, Debug)]
pub struct SyncReport {
    pub source: String,
    /// Size of the mirror before and after.
    pub from: u64,
    pub to: u64,
    /// The checkpoint the mirror now holds (or the source's, when it is behind).
    pub checkpoint: SignedCheckpoint,
    /// The source is behind the mirror (a prefix of it): nothing to fetch.
    pub source_behind: bool,
}

use crate::core::b64::encode as b64;

/// Pulls what `source` has beyond the mirror, verified (see the module
/// documentation). `genesis` must be given for an empty mirror and, when
/// given, must be the mirror's. Fork evidence goes into `evidence_dir`.
pub fn pull<S: Store>(
    mirror: &Ledger<S>,
    source: &mut dyn Source,
    genesis: Option<&EntryHash>,
    evidence_dir: &Path,
) -> Result<SyncReport, SyncError> {
    let describe = source.describe();
    let note = source.checkpoint()?;
    if note.len() > MAX_NOTE_SIZE {
        return Err(SyncError::Invalid(format!("{describe}: checkpoint larger than {MAX_NOTE_SIZE} bytes")));
    }
    let remote = Checkpoint::parse(note.split_once("\n\n").map_or("", |(t, _)| t))
        .map_err(|e| SyncError::Invalid(format!("{describe}: checkpoint: {e}")))?;
    let head = mirror.store().head()?;
    let ours = head.as_ref().map_or(0, |h| h.count);
    let fork = |reason: String, size_policy: Option<u64>| -> SyncError {
        // Only a checkpoint the log key signed is evidence against the log.
        let signed = size_policy
            .and_then(|s| mirror.policy_at(s).ok())
            .is_some_and(|p| SignedCheckpoint::open(&note, p.log()).is_ok());
        if !signed {
            return SyncError::Invalid(format!("{describe}: {reason}; its checkpoint is not signed by the log key"));
        }
        let evidence = save_evidence(mirror, evidence_dir, "fork", &describe, &note, &reason).ok();
        SyncError::Fork { reason: format!("{describe}: {reason}"), evidence }
    };
    match head {
        None => {
            let genesis = genesis.ok_or(SyncError::NeedGenesis)?;
            // Entry 0 alone, checked against the genesis hash, before anything
            // else is fetched: its policy names the log key.
            let first = source.entries(0, 1)?;
            let Some(entry) = first.first().filter(|_| first.len() == 1) else {
                return Err(SyncError::Invalid(format!("{describe}: it serves no single entry 0")));
            };
            let got = crate::core::entry::entry_hash(entry);
            if got != *genesis {
                return Err(SyncError::Invalid(format!(
                    "{describe}: entry 0 hashes to {got}, not the genesis {genesis} given"
                )));
            }
            let mut replica = mirror.replica()?;
            replica.push(&first).map_err(replica_failure)?;
            let checkpoint = replicate(replica, source, &note, remote.size).map_err(|e| match e {
                SyncError::Ledger(l) => replica_failure(l),
                other => other,
            })?;
            Ok(SyncReport { source: describe, from: 0, to: remote.size, checkpoint, source_behind: false })
        }
        Some(_) => {
            if let Some(g) = genesis
                && mirror.genesis_hash()?.as_ref() != Some(g)
            {
                return Err(SyncError::Invalid(format!("the mirror's genesis is not {g}")));
            }
            let local = mirror.checkpoint()?;
            if remote.size <= ours {
                let policy = mirror.policy_at(remote.size)?;
                let signed = SignedCheckpoint::open(&note, policy.log())
                    .map_err(|e| SyncError::Invalid(format!("{describe}: checkpoint: {e}")))?;
                if mirror.root_at(remote.size)? != remote.root {
                    return Err(fork(
                        format!(
                            "its checkpoint of size {} has root {}, ours at that size is {}",
                            remote.size,
                            b64(remote.root),
                            b64(mirror.root_at(remote.size)?)
                        ),
                        Some(remote.size),
                    ));
                }
                let behind = remote.size < ours;
                if behind && source.is_the_log() {
                    // Both checkpoints are the log's: together they show it
                    // dropped entries it had published.
                    let reason = format!(
                        "it serves a checkpoint of size {}, ours of size {ours} is signed by the log too",
                        remote.size
                    );
                    let evidence = save_evidence(mirror, evidence_dir, "rollback", &describe, &note, &reason).ok();
                    return Err(SyncError::Rollback { server: describe, from: ours, to: remote.size, evidence });
                }
                let checkpoint = if behind { signed } else { local };
                return Ok(SyncReport { source: describe, from: ours, to: ours, checkpoint, source_behind: behind });
            }
            if let Some(proof) = source.consistency(ours, remote.size)?
                && let Err(e) =
                    tree::verify_consistency(ours, remote.size, &proof, &local.checkpoint.root, &remote.root)
            {
                return Err(fork(
                    format!("its checkpoint of size {} is not consistent with ours of size {ours}: {e}", remote.size),
                    Some(ours),
                ));
            }
            match replicate(mirror.replica()?, source, &note, remote.size) {
                Ok(checkpoint) => {
                    Ok(SyncReport { source: describe, from: ours, to: remote.size, checkpoint, source_behind: false })
                }
                // Entries that do not extend our chain, or a tree whose root
                // is not the signed one: a fork if the log signed it.
                Err(SyncError::Ledger(LedgerError::Verify(v))) => {
                    Err(fork(format!("entries do not extend ours: {v}"), Some(ours)))
                }
                Err(e) => Err(e),
            }
        }
    }
}

fn replica_failure(e: LedgerError) -> SyncError {
    match e {
        LedgerError::Verify(v) => SyncError::Invalid(v.to_string()),
        other => other.into(),
    }
}

/// Fetches the entries from the replica's size up to the checkpoint's
/// `size`, a page at a time, each page verified as extending the chain
/// before the next is asked for; then checks `note` against them and writes
/// them in one atomic write. Memory holds the verified entries and at most
/// one unverified page: a source cannot make the mirror hold more than the
/// ledger's keys signed, whatever size it claims, and nothing is allocated
/// by the claimed size. The checkpoint's signature is checked by the log key
/// of the policy in force after the entries ([`crate::ledger::Replica::finish`]):
/// a policy among them may rotate the key, so a checkpoint the key in force
/// at the start does not open is not refused before the entries are seen;
/// it is refused once they are, and fetching stops at the first page that
/// does not extend the chain.
fn replicate<S: Store>(
    mut replica: crate::ledger::Replica<'_, S>,
    source: &mut dyn Source,
    note: &str,
    size: u64,
) -> Result<SignedCheckpoint, SyncError> {
    let describe = source.describe();
    while replica.size() < size {
        let next = replica.size();
        let page = source.entries(next, size.min(next + PAGE))?;
        if page.is_empty() {
            return Err(SyncError::Invalid(format!(
                "{describe}: its checkpoint names {size} entries, it serves none from {next}"
            )));
        }
        if page.len() as u64 > size - next {
            return Err(SyncError::Invalid(format!("{describe}: it served more entries than asked for from {next}")));
        }
        replica.push(&page)?;
    }
    Ok(replica.finish(note)?)
}

/// Checks a checkpoint the log acknowledged a submission with against the
/// mirror, once the mirror has been brought up to the log's latest: the log
/// may not since have dropped the acknowledged entries (a rollback), and the
/// acknowledged tree must be the mirror's at its size (else a fork). Either
/// is refused with the acknowledged checkpoint kept as evidence in
/// `evidence_dir`.
pub fn check_acknowledged<S: Store>(
    mirror: &Ledger<S>,
    source: &str,
    acknowledged: &SignedCheckpoint,
    evidence_dir: &Path,
) -> Result<(), SyncError> {
    let ours = mirror.store().head()?.map_or(0, |h| h.count);
    let cp = &acknowledged.checkpoint;
    if cp.size > ours {
        let reason =
            format!("it acknowledged a submission with a checkpoint of size {}, now it serves {ours}", cp.size);
        let evidence = save_evidence(mirror, evidence_dir, "rollback", source, &acknowledged.note, &reason).ok();
        return Err(SyncError::Rollback { server: source.into(), from: cp.size, to: ours, evidence });
    }
    let root = mirror.root_at(cp.size)?;
    if root != cp.root {
        let reason = format!(
            "it acknowledged a submission with a checkpoint of size {} and root {}, ours at that size is {}",
            cp.size,
            b64(cp.root),
            b64(root)
        );
        let evidence = save_evidence(mirror, evidence_dir, "fork", source, &acknowledged.note, &reason).ok();
        return Err(SyncError::Fork { reason: format!("{source}: {reason}"), evidence });
    }
    Ok(())
}

/// Confirms acknowledged submissions against the mirror, once it has been
/// brought up to the server's latest checkpoint: each acknowledgement's
/// checkpoint is consistent with the mirror ([`check_acknowledged`]), and
/// each acknowledged entry is the mirror's at its index, signed under the
/// policy in force there. Returns the entries as the mirror holds them
/// (their signers, so checked, are [`StoredEntry::signers`]).
pub fn confirm_acknowledged<S: Store>(
    mirror: &Ledger<S>,
    source: &str,
    appended: &[crate::remote::Appended],
    evidence_dir: &Path,
) -> Result<Vec<StoredEntry>, SyncError> {
    for a in appended {
        check_acknowledged(mirror, source, &a.checkpoint, evidence_dir)?;
    }
    let mut out = Vec::with_capacity(appended.len());
    for a in appended {
        let index = a.entry.index;
        let e = mirror.read(index)?;
        if e.entry.hash() != a.entry.hash() {
            return Err(SyncError::Acknowledged(format!(
                "the server acknowledged entry {index} as {}, its log holds {}",
                a.entry.hash(),
                e.entry.hash()
            )));
        }
        crate::verify::envelope_signers(&*mirror.policy_at(index)?, &e.entry.envelope)
            .map_err(|(_, why)| SyncError::Acknowledged(format!("entry {index}: {why}")))?;
        out.push(e);
    }
    Ok(out)
}

/// Writes the conflicting checkpoint, with ours and why, to
/// `dir/<kind>-<unix time>-<size>.json` (atomically).
fn save_evidence<S: Store>(
    mirror: &Ledger<S>,
    dir: &Path,
    kind: &str,
    source: &str,
    note: &str,
    reason: &str,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let ours = mirror.store().checkpoint().ok().flatten().unwrap_or_default();
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let doc = json!({
        "source": source,
        "reason": reason,
        "time": time,
        "their_checkpoint": note,
        "our_checkpoint": ours,
    });
    let size = Checkpoint::parse(note.split_once("\n\n").map_or("", |(t, _)| t)).map_or(0, |c| c.size);
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    // Evidence is never overwritten, nor written through a planted link: a
    // second piece of the same kind and size in the same second gets a suffix.
    for n in 0..100 {
        let name = if n == 0 { format!("{kind}-{time}-{size}.json") } else { format!("{kind}-{time}-{size}-{n}.json") };
        let path = dir.join(name);
        match crate::fsutil::write_new(&path, crate::fsutil::OUTPUT, |w| {
            use std::io::Write as _;
            w.write_all(text.as_bytes())
        }) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!("{}: 100 pieces of evidence of one kind in one second", dir.display())))
}

/// What a publication did.
#[derive(Clone, Debug)]
pub struct PublishReport {
    pub manifest: crate::core::digest::Digest,
    pub size: u64,
    /// Blobs pushed by this publication, and blobs in all.
    pub pushed: usize,
    pub blobs: usize,
}

/// Publishes `ledger` to `image`'s tag in a registry. Refuses to replace a
/// published ledger that is not a prefix of ours: a longer one (pull it
/// first), another genesis, or a fork (evidence saved in `evidence_dir`).
pub fn publish<S: Store>(
    ledger: &Ledger<S>,
    registry: &Registry,
    image: &ImageRef,
    evidence_dir: &Path,
) -> Result<PublishReport, SyncError> {
    let cp = ledger.checkpoint()?;
    let size = cp.checkpoint.size;
    let genesis = ledger.genesis_hash()?.map(|g| g.to_string()).unwrap_or_default();
    let existing = registry.published_ledger(image)?;
    let mut reuse: Vec<LedgerChunk> = Vec::new();
    if let Some(p) = &existing {
        if p.genesis != genesis {
            return Err(SyncError::Invalid(format!(
                "oci://{image} holds the ledger of genesis {}, not ours ({genesis})",
                p.genesis
            )));
        }
        let theirs = Checkpoint::parse(p.checkpoint.split_once("\n\n").map_or("", |(t, _)| t))
            .map_err(|e| SyncError::Invalid(format!("oci://{image}: checkpoint: {e}")))?;
        if theirs.size > size {
            return Err(SyncError::Source(format!(
                "oci://{image} holds {} entries, more than our {size}: pull them first (sync --from)",
                theirs.size
            )));
        }
        if ledger.root_at(theirs.size)? != theirs.root {
            let policy = ledger.policy_at(theirs.size)?;
            let reason = format!("its checkpoint of size {} is not a prefix of ours", theirs.size);
            if SignedCheckpoint::open(&p.checkpoint, policy.log()).is_err() {
                return Err(SyncError::Invalid(format!("oci://{image}: {reason}, and not signed by the log key")));
            }
            let evidence =
                save_evidence(ledger, evidence_dir, "fork", &format!("oci://{image}"), &p.checkpoint, &reason).ok();
            return Err(SyncError::Fork { reason: format!("oci://{image}: {reason}"), evidence });
        }
        reuse = p.chunks.clone();
    }
    let mut chunks = Vec::new();
    let mut pushed = 0;
    let mut start = 0;
    while start < size {
        let count = CHUNK_ENTRIES.min(size - start);
        if let Some(c) = reuse.iter().find(|c| c.start == start && c.count == count) {
            chunks.push(c.clone());
        } else {
            let mut entries = Vec::with_capacity(count as usize);
            for item in ledger.store().entries_from(start).take(count as usize) {
                entries.push(item.map_err(LedgerError::from)?.1);
            }
            let bytes = bundle::encode_frames(entries.iter().map(|e| e.as_slice()));
            chunks.push(registry.push_ledger_blob(image, start, count, &bytes)?);
            pushed += 1;
        }
        start += count;
    }
    let manifest = registry.push_ledger_manifest(image, &cp.note, &genesis, &chunks)?;
    Ok(PublishReport { manifest, size, pushed, blobs: chunks.len() })
}

/// Brings the mirror of a ledger server up to the server's latest
/// checkpoint, verified. The genesis trusted is `pinned`, else the one the
/// mirror already holds; an empty mirror with nothing pinned trusts the
/// server's own genesis on first use, and `on_first_use` is told which.
pub fn pull_server<S: Store>(
    mirror: &Ledger<S>,
    client: &Client,
    pinned: Option<&EntryHash>,
    evidence_dir: &Path,
    on_first_use: impl FnOnce(&EntryHash),
) -> Result<SyncReport, SyncError> {
    let genesis = match (pinned, mirror.store().head()?) {
        (Some(g), _) => Some(*g),
        (None, Some(_)) => None,
        (None, None) => {
            let info = client.info()?;
            let g = EntryHash::parse(&info.genesis)
                .map_err(|e| SyncError::Invalid(format!("{}: the server's genesis hash: {e}", client.url())))?;
            on_first_use(&g);
            Some(g)
        }
    };
    pull(mirror, &mut ServerSource(client.clone()), genesis.as_ref(), evidence_dir)
}

/// Pulls `source` into the ledger directory `dir`, creating its store if
/// there is none; a store created for this pull is removed again when the
/// pull fails, so that a failed first sync leaves no empty mirror behind.
pub fn pull_into_dir(
    dir: &crate::ledger::dir::LedgerDir,
    source: &mut dyn Source,
    genesis: Option<&EntryHash>,
) -> Result<SyncReport, SyncError> {
    let created = !dir.has_store();
    let ledger = dir.open_or_create()?;
    let result = pull(&ledger, source, genesis, &dir.evidence_dir());
    if result.is_err() && created {
        drop(ledger);
        dir.remove_store();
    }
    result
}
