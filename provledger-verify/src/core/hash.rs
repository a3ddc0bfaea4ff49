//! Hashes with a domain: every SHA-256 the ledger computes over its own data
//! goes through [`labelled`], so that a hash of one kind can never be taken for
//! a hash of another. All labels live here, and nowhere else.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::FormatError;

/// Label of the entry hash: `SHA-256(LABEL_ENTRY ‖ 0x00 ‖ canonical CBOR entry)`.
pub const LABEL_ENTRY: &[u8] = b"provledger/v1/entry";
/// Label of the envelope fingerprint used to refuse a replayed envelope.
pub const LABEL_ENVELOPE: &[u8] = b"provledger/v1/envelope";

/// SHA-256 over `label ‖ 0x00 ‖ parts...`.
///
/// The NUL after the label ends it unambiguously: no label is a prefix of
/// another once the NUL is appended, and none contains a NUL.
pub fn labelled(label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    debug_assert!(!label.contains(&0));
    let mut h = Sha256::new();
    h.update(label);
    h.update([0u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Plain SHA-256, for the few places where an outside format fixes the input
/// (image digests, key ids).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The hash of a ledger entry. Its `Display` is 64 lowercase hex characters,
/// the form `init` prints as the genesis hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryHash([u8; 32]);

impl EntryHash {
    /// The `prev_hash` of entry 0.
    pub const ZERO: EntryHash = EntryHash([0u8; 32]);

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EntryHash(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, FormatError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| FormatError::Invalid(format!("entry hash must be 32 bytes, got {}", bytes.len())))?;
        Ok(EntryHash(arr))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lowercase hex characters.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(FormatError::Invalid(format!("entry hash must be 64 lowercase hex characters, got {text:?}")));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|e| FormatError::Invalid(format!("entry hash: {e}")))?;
        Ok(EntryHash(out))
    }
}

impl fmt::Display for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryHash({self})")
    }
}

impl serde::Serialize for EntryHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EntryHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EntryHash::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_separate_domains() {
        let data = b"same bytes";
        assert_ne!(labelled(LABEL_ENTRY, &[data]), labelled(LABEL_ENVELOPE, &[data]));
        assert_ne!(labelled(LABEL_ENTRY, &[data]), sha256(data));
        // The NUL terminator keeps label and data apart.
        assert_ne!(labelled(b"a", &[b"b"]), labelled(b"ab", &[b""]));
    }

    #[test]
    fn entry_hash_text_round_trip() {
        let h = EntryHash::from_bytes([0xab; 32]);
        assert_eq!(EntryHash::parse(&h.to_string()).unwrap(), h);
        assert!(EntryHash::parse(&h.to_string().to_uppercase()).is_err());
        assert!(EntryHash::parse("abcd").is_err());
    }
}
