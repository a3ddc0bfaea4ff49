//! The offline audit bundle written from a ledger (SPEC section 10): every
//! entry and the latest checkpoint, hashed as they are copied, so that a
//! file that does not match the checkpoint it carries is never produced.

use std::io::Write;

use crate::bundle;
use crate::checkpoint::{SignedCheckpoint, leaf_of};
use crate::core::entry::entry_hash;
use crate::ledger::{Ledger, LedgerError};
use crate::store::Store;
use crate::tree::Frontier;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The store does not hold what its checkpoint says: nothing valid can be written.
    #[error("export refused: {0}")]
    Mismatch(String),
}

/// Writes the bundle of `ledger` to `w`, calling `on_entry` after each
/// entry; returns the checkpoint it carries.
pub fn export_bundle<S: Store, W: Write>(
    ledger: &Ledger<S>,
    w: &mut W,
    mut on_entry: impl FnMut(),
) -> Result<SignedCheckpoint, ExportError> {
    let cp = ledger.checkpoint()?;
    let count = cp.checkpoint.size;
    bundle::write_header(w, &cp.note, count)?;
    let mut frontier = Frontier::default();
    for item in ledger.store().entries_from(0).take(count as usize) {
        let (index, bytes) = item.map_err(LedgerError::from)?;
        if index != frontier.size() {
            return Err(ExportError::Mismatch(format!("entry {} is missing from the store", frontier.size())));
        }
        frontier.push(leaf_of(&entry_hash(&bytes)), |_, _, _| {});
        bundle::write_entry(w, &bytes)?;
        on_entry();
    }
    if frontier.size() != count || frontier.root() != cp.checkpoint.root {
        return Err(ExportError::Mismatch(format!("the stored entries do not match the checkpoint of size {count}")));
    }
    Ok(cp)
}
