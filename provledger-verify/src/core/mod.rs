//! The format core: digests, image references, keys, DSSE envelopes, in-toto
//! statements, ledger entries and their canonical encoding and hashing.
//!
//! Pure functions over bytes. This module must never do I/O, touch the store,
//! or depend on any module above it: an auditor's verifier is built from it.

pub mod b64;
pub mod digest;
pub mod dsse;
pub mod entry;
pub mod hash;
pub mod image_ref;
pub mod keys;
pub mod note;
pub mod statement;

/// Errors in reading or checking the ledger's formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    #[error("invalid digest: {0}")]
    Digest(String),
    #[error("invalid image reference {0}")]
    ImageRef(String),
    #[error("invalid key: {0}")]
    Key(String),
    #[error("invalid envelope: {0}")]
    Envelope(String),
    #[error("invalid statement: {0}")]
    Statement(String),
    #[error("invalid entry encoding: {0}")]
    Entry(String),
    #[error("{0} written by a newer provledger; upgrade provledger to read it")]
    NewerVersion(String),
    #[error("{0}")]
    Invalid(String),
}
