//! The offline audit bundle: every entry of a ledger and its latest signed
//! checkpoint in one versioned file, and its verification with nothing but
//! the genesis hash.
//!
//! Layout (all integers big-endian; `ledger-format/SPEC.md` section 10):
//!
//! ```text
//! magic       "PROVLEDGER-BUNDLE\n"      18 bytes
//! version     u16                        1
//! checkpoint  u32 length ‖ signed note   the ledger's latest checkpoint
//! count       u64                        number of entries, = checkpoint size
//! entries     count × (u32 length ‖ canonical entry bytes), index order
//! ```
//!
//! Nothing may follow the last entry. The reader is streaming: a bundle of
//! millions of entries is verified in one pass without holding it in memory.

use std::io::{self, Read, Write};

use crate::checkpoint::{SignedCheckpoint, leaf_of};
use crate::core::FormatError;
use crate::core::entry::MAX_ENTRY_LEN;
use crate::core::hash::EntryHash;
use crate::core::note::{Checkpoint, MAX_NOTE_SIZE, NoteVerifier};
use crate::tree::{Frontier, Hash};
use crate::verify::{ChainReport, Failure, VerifiedEntry, VerifyError, verify_chain_with};

pub const BUNDLE_MAGIC: &[u8; 18] = b"PROVLEDGER-BUNDLE\n";
/// Bundle format version written by this build.
pub const BUNDLE_VERSION: u16 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The file is not a well-formed bundle.
    #[error("bundle: {0}")]
    Malformed(String),
    #[error("bundle written by a newer provledger (bundle version {0}); upgrade provledger")]
    NewerVersion(u16),
    #[error("bundle: {0}")]
    Io(#[from] io::Error),
    /// The chain in the bundle does not hold.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The chain holds, but the checkpoint does not match it or is not the log's.
    #[error("{0}")]
    Checkpoint(String),
}

/// Writes a bundle header; the caller then writes exactly `count` entries.
pub fn write_header<W: Write>(w: &mut W, checkpoint_note: &str, count: u64) -> io::Result<()> {
    w.write_all(BUNDLE_MAGIC)?;
    w.write_all(&BUNDLE_VERSION.to_be_bytes())?;
    write_chunk(w, checkpoint_note.as_bytes())?;
    w.write_all(&count.to_be_bytes())
}

/// Writes one entry's canonical bytes.
pub fn write_entry<W: Write>(w: &mut W, entry: &[u8]) -> io::Result<()> {
    write_chunk(w, entry)
}

fn write_chunk<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("chunk larger than 4 GiB"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(bytes)
}

/// A bundle being read: the header is parsed, entries follow on demand.
pub struct BundleReader<R: Read> {
    r: R,
    /// The checkpoint note as stored, not yet verified.
    pub checkpoint_note: String,
    /// The entry count the header declares.
    pub count: u64,
    read: u64,
}

fn malformed(why: impl Into<String>) -> BundleError {
    BundleError::Malformed(why.into())
}

/// Reads exactly `buf.len()` bytes; running out is a truncated bundle.
fn read_exact<R: Read>(r: &mut R, buf: &mut [u8], what: &str) -> Result<(), BundleError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            malformed(format!("truncated in the {what}"))
        } else {
            BundleError::Io(e)
        }
    })
}

fn read_chunk<R: Read>(r: &mut R, max: usize, what: &str) -> Result<Vec<u8>, BundleError> {
    let mut len = [0u8; 4];
    read_exact(r, &mut len, what)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(malformed(format!("{what} of {len} bytes exceeds the limit of {max}")));
    }
    let mut buf = vec![0u8; len];
    read_exact(r, &mut buf, what)?;
    Ok(buf)
}

impl<R: Read> BundleReader<R> {
    /// Reads and checks the header.
    pub fn open(mut r: R) -> Result<BundleReader<R>, BundleError> {
        let mut magic = [0u8; 18];
        read_exact(&mut r, &mut magic, "header")?;
        if &magic != BUNDLE_MAGIC {
            return Err(malformed("not a provledger bundle (bad magic)"));
        }
        let mut version = [0u8; 2];
        read_exact(&mut r, &mut version, "header")?;
        let version = u16::from_be_bytes(version);
        if version > BUNDLE_VERSION {
            return Err(BundleError::NewerVersion(version));
        }
        if version != BUNDLE_VERSION {
            return Err(malformed(format!("unknown bundle version {version}")));
        }
        let note = read_chunk(&mut r, MAX_NOTE_SIZE, "checkpoint")?;
        let checkpoint_note = String::from_utf8(note).map_err(|_| malformed("checkpoint is not UTF-8"))?;
        let mut count = [0u8; 8];
        read_exact(&mut r, &mut count, "header")?;
        Ok(BundleReader { r, checkpoint_note, count: u64::from_be_bytes(count), read: 0 })
    }

    /// The next entry's bytes; `None` after `count` entries, once the file is
    /// known to end there.
    pub fn next_entry(&mut self) -> Option<Result<Vec<u8>, BundleError>> {
        if self.read == self.count {
            let mut probe = [0u8; 1];
            return match self.r.read(&mut probe) {
                Ok(0) => None,
                Ok(_) => Some(Err(malformed(format!("data after the last of {} entries", self.count)))),
                Err(e) => Some(Err(e.into())),
            };
        }
        let what = format!("entry {}", self.read);
        self.read += 1;
        Some(read_chunk(&mut self.r, MAX_ENTRY_LEN, &what))
    }
}

/// What a verified bundle shows.
#[derive(Clone, Debug)]
pub struct BundleReport {
    pub chain: ChainReport,
    pub checkpoint: SignedCheckpoint,
    /// The earlier checkpoint the bundle was proven consistent with.
    pub since: Option<SignedCheckpoint>,
}

/// Verifies a bundle completely offline: every chain rule from the genesis
/// entry (whose hash must be `genesis`), the Merkle root of all entries
/// against the checkpoint, and the checkpoint's signature by the log key the
/// policy in force names. With `since` (an earlier checkpoint note), also
/// proves that checkpoint's tree a prefix of the bundle's: its root must be
/// the root of the bundle's first `size` entries and its signature by the log
/// key in force at that size. `on_entry` sees each verified entry.
pub fn verify_bundle<R: Read>(
    r: R,
    genesis: &EntryHash,
    since: Option<&str>,
    on_entry: impl FnMut(&VerifiedEntry),
) -> Result<BundleReport, BundleError> {
    verify_bundle_with(r, genesis, since, crate::sigcheck::Mode::Batch, on_entry)
}

/// [`verify_bundle`] with a choice of signature checks.
pub fn verify_bundle_with<R: Read>(
    r: R,
    genesis: &EntryHash,
    since: Option<&str>,
    mode: crate::sigcheck::Mode,
    mut on_entry: impl FnMut(&VerifiedEntry),
) -> Result<BundleReport, BundleError> {
    let mut reader = BundleReader::open(r)?;
    // Fail fast on a count that contradicts the checkpoint; its signature is
    // checked once the chain has named the log key.
    let claimed = checkpoint_body(&reader.checkpoint_note)?;
    if claimed.size != reader.count {
        return Err(malformed(format!("the header counts {} entries, the checkpoint {}", reader.count, claimed.size)));
    }
    let since = since.map(checkpoint_body_owned).transpose()?;
    if let Some((cp, _)) = &since
        && (cp.size == 0 || cp.size > reader.count)
    {
        return Err(BundleError::Checkpoint(format!(
            "the earlier checkpoint has tree size {}, the bundle {}: it can only be checked against a bundle at least as large",
            cp.size, reader.count
        )));
    }

    let note = reader.checkpoint_note.clone();
    let mut frontier = Frontier::default();
    let mut log: Option<NoteVerifier> = None;
    let mut at_since: Option<(Hash, NoteVerifier)> = None;
    let entries = std::iter::from_fn(|| {
        let at = reader.read;
        reader
            .next_entry()
            .map(|r| r.map(|bytes| (at, bytes)).map_err(|e| VerifyError::new(at, Failure::Invalid, e.to_string())))
    });
    let chain = verify_chain_with(entries, Some(genesis), mode, |v| {
        if let Some(p) = v.new_policy() {
            log = Some(p.log().clone());
        }
        frontier.push(leaf_of(&v.hash()), |_, _, _| {});
        if let Some((cp, _)) = &since
            && frontier.size() == cp.size
        {
            at_since = Some((frontier.root(), log.clone().expect("the genesis entry sets the log key")));
        }
        on_entry(v);
    })?;
    if chain.entries != claimed.size {
        return Err(malformed(format!("the bundle holds {} entries, the checkpoint {}", chain.entries, claimed.size)));
    }
    let (_, policy) = chain.state.policy().expect("a verified chain has a policy");
    let checkpoint =
        SignedCheckpoint::open(&note, policy.log()).map_err(|e| BundleError::Checkpoint(format!("checkpoint: {e}")))?;
    if checkpoint.checkpoint.root != frontier.root() {
        return Err(BundleError::Checkpoint(format!(
            "the checkpoint's root is not the Merkle root of the {} entries",
            chain.entries
        )));
    }
    let since = match (since, at_since) {
        (Some((_, note)), Some((root, key))) => {
            let earlier = SignedCheckpoint::open(&note, &key).map_err(|e| {
                BundleError::Checkpoint(format!(
                    "earlier checkpoint: {e} (the log key in force at that size is {})",
                    key.to_text()
                ))
            })?;
            if earlier.checkpoint.root != root {
                return Err(BundleError::Checkpoint(format!(
                    "history was rewritten: the earlier checkpoint's root for {} entries is not the root of the bundle's first {} entries",
                    earlier.checkpoint.size, earlier.checkpoint.size
                )));
            }
            Some(earlier)
        }
        (None, _) => None,
        (Some(_), None) => unreachable!("the size was checked against the count"),
    };
    Ok(BundleReport { chain, checkpoint, since })
}

fn checkpoint_body(note: &str) -> Result<Checkpoint, BundleError> {
    let text = note.split_once("\n\n").map(|(t, _)| format!("{t}\n")).unwrap_or_default();
    Checkpoint::parse(&text).map_err(|e: FormatError| malformed(format!("checkpoint: {e}")))
}

fn checkpoint_body_owned(note: &str) -> Result<(Checkpoint, String), BundleError> {
    let cp = checkpoint_body(note).map_err(|e| {
        BundleError::Checkpoint(format!("earlier checkpoint: {}", e.to_string().trim_start_matches("bundle: ")))
    })?;
    Ok((cp, note.to_string()))
}

/// Entries framed as in a bundle's body (each a u32 length, then its
/// bytes), without the header: the unit the server's entry range and an OCI
/// ledger blob carry.
pub fn encode_frames<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        write_chunk(&mut out, e).expect("writing to memory");
    }
    out
}

/// Reads back what [`encode_frames`] wrote: at most `max_count` entries,
/// each within the entry size limit, and nothing after the last.
pub fn decode_frames(mut bytes: &[u8], max_count: usize) -> Result<Vec<Vec<u8>>, BundleError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if out.len() == max_count {
            return Err(malformed(format!("more than {max_count} entries")));
        }
        let what = format!("entry {}", out.len());
        out.push(read_chunk(&mut bytes, MAX_ENTRY_LEN, &what)?);
    }
    Ok(out)
}
