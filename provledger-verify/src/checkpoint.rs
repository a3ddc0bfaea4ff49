//! Signed checkpoints: a C2SP checkpoint note whose signature verified with
//! the log key a policy names, and the tree leaf of an entry
//! (`ledger-format/SPEC.md` section 9).

use crate::core::FormatError;
use crate::core::hash::EntryHash;
use crate::core::note::{self, Checkpoint, NoteVerifier};
use crate::tree::{self, Hash};

/// A checkpoint note whose signature verified with the policy's log key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub note: String,
    pub checkpoint: Checkpoint,
    pub verifier: NoteVerifier,
}

impl SignedCheckpoint {
    /// Opens a checkpoint note with `verifier`, whose name must be its origin.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<SignedCheckpoint, FormatError> {
        let opened = note::open_note(note, std::slice::from_ref(verifier))?;
        let checkpoint = Checkpoint::parse(&opened.text)?;
        if checkpoint.origin != verifier.name {
            return Err(FormatError::Invalid(format!(
                "checkpoint origin {:?} is not the log's origin {:?}",
                checkpoint.origin, verifier.name
            )));
        }
        Ok(SignedCheckpoint { note: note.to_string(), checkpoint, verifier: verifier.clone() })
    }
}

/// The leaf of the Merkle tree for an entry: SHA-256(0x00 ‖ entry hash).
pub fn leaf_of(hash: &EntryHash) -> Hash {
    tree::leaf_hash(hash.as_bytes())
}
