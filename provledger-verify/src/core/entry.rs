//! Ledger entries: `{version, index, prev_hash, integrated_time, envelope}` in
//! deterministic CBOR (RFC 8949 section 4.2.1, core deterministic encoding).
//!
//! ciborium writes struct fields in declaration order and does not sort map
//! keys, so the wire structs below declare their fields in canonical order
//! (shorter encoded key first, then bytewise). Decoding re-encodes and refuses
//! any difference: indefinite lengths, non-minimal integers, reordered or
//! duplicated keys and trailing bytes all fail.
//!
//! Decoding gives an [`UnverifiedEntry`]: well-formed, not yet trusted. Only
//! `verify` turns it into something that may be appended or used.

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::dsse::Envelope;
use super::hash::{EntryHash, LABEL_ENTRY, LABEL_ENVELOPE, labelled};

/// Entry format version written by this build.
pub const ENTRY_VERSION: u64 = 1;
/// Largest encoded entry accepted.
pub const MAX_ENTRY_LEN: usize = 2 << 20;

/// Canonical key order: "index" (5), "version" (7), "envelope" (8),
/// "prev_hash" (9), "integrated_time" (15).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    index: u64,
    version: u64,
    envelope: Envelope,
    #[serde(with = "serde_bytes")]
    prev_hash: Vec<u8>,
    integrated_time: u64,
}

/// Read first, with every other field ignored, so that an entry of a newer
/// format is reported as such rather than as garbage.
#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

/// An entry decoded from canonical bytes of any origin (a store, a bundle, a
/// proof, a server), its signatures, links and roles not checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnverifiedEntry {
    pub index: u64,
    pub prev_hash: EntryHash,
    /// Seconds since the Unix epoch (UTC) when the ledger appended the entry.
    pub integrated_time: u64,
    pub envelope: Envelope,
    hash: EntryHash,
    encoded_len: usize,
}

impl UnverifiedEntry {
    /// Builds a new entry and returns it with its canonical bytes.
    pub fn build(
        index: u64,
        prev_hash: EntryHash,
        integrated_time: u64,
        envelope: Envelope,
    ) -> (UnverifiedEntry, Vec<u8>) {
        let bytes = encode_wire(&WireEntry {
            index,
            version: ENTRY_VERSION,
            envelope: envelope.clone(),
            prev_hash: prev_hash.as_bytes().to_vec(),
            integrated_time,
        });
        let hash = entry_hash(&bytes);
        let entry = UnverifiedEntry { index, prev_hash, integrated_time, envelope, hash, encoded_len: bytes.len() };
        (entry, bytes)
    }

    /// Decodes canonical CBOR. Fails on any non-canonical encoding, unknown
    /// field, newer version or size limit.
    pub fn decode(bytes: &[u8]) -> Result<UnverifiedEntry, FormatError> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(FormatError::Entry(format!("entry of {} bytes exceeds {MAX_ENTRY_LEN}", bytes.len())));
        }
        let wire: WireEntry = match ciborium::from_reader(bytes) {
            Ok(w) => w,
            Err(e) => {
                if let Ok(probe) = ciborium::from_reader::<VersionProbe, _>(bytes)
                    && probe.version > ENTRY_VERSION
                {
                    return Err(FormatError::NewerVersion(format!("entry version {}", probe.version)));
                }
                return Err(FormatError::Entry(format!("not a ledger entry: {e}")));
            }
        };
        if wire.version > ENTRY_VERSION {
            return Err(FormatError::NewerVersion(format!("entry version {}", wire.version)));
        }
        if wire.version != ENTRY_VERSION {
            return Err(FormatError::Entry(format!("unknown entry version {}", wire.version)));
        }
        if encode_wire(&wire) != bytes {
            return Err(FormatError::Entry("not in canonical CBOR encoding (RFC 8949 core deterministic)".into()));
        }
        let prev_hash = EntryHash::from_slice(&wire.prev_hash)?;
        wire.envelope.check_limits()?;
        Ok(UnverifiedEntry {
            index: wire.index,
            prev_hash,
            integrated_time: wire.integrated_time,
            envelope: wire.envelope,
            hash: entry_hash(bytes),
            encoded_len: bytes.len(),
        })
    }

    /// `SHA-256("provledger/v1/entry" ‖ 0x00 ‖ canonical CBOR)`.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The canonical bytes again (those [`UnverifiedEntry::build`] returned
    /// or [`UnverifiedEntry::decode`] accepted).
    pub fn encode(&self) -> Vec<u8> {
        encode_wire(&WireEntry {
            index: self.index,
            version: ENTRY_VERSION,
            envelope: self.envelope.clone(),
            prev_hash: self.prev_hash.as_bytes().to_vec(),
            integrated_time: self.integrated_time,
        })
    }

    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// Identifies the signed content regardless of where it sits in the chain,
    /// so that an envelope appended twice is noticed.
    pub fn envelope_fingerprint(&self) -> [u8; 32] {
        envelope_fingerprint(&self.envelope)
    }
}

/// `SHA-256("provledger/v1/envelope" ‖ 0x00 ‖ PAE(type, payload))`: the same
/// statement counts once however it is signed.
pub fn envelope_fingerprint(envelope: &Envelope) -> [u8; 32] {
    labelled(LABEL_ENVELOPE, &[&envelope.pae()])
}

pub fn entry_hash(canonical: &[u8]) -> EntryHash {
    EntryHash::from_bytes(labelled(LABEL_ENTRY, &[canonical]))
}

fn encode_wire(w: &WireEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(w.envelope.payload.len() + 256);
    ciborium::into_writer(w, &mut out).expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dsse::{EnvelopeSignature, PAYLOAD_TYPE_IN_TOTO};
    use proptest::prelude::*;

    fn sample(payload: Vec<u8>, index: u64, time: u64) -> (UnverifiedEntry, Vec<u8>) {
        let env = Envelope {
            payload,
            payload_type: PAYLOAD_TYPE_IN_TOTO.into(),
            signatures: vec![EnvelopeSignature { sig: vec![7; 64], keyid: "k".repeat(64) }],
        };
        UnverifiedEntry::build(index, EntryHash::from_bytes([9; 32]), time, env)
    }

    #[test]
    fn layout_is_canonical_map_order() {
        let (_, bytes) = sample(b"{}".to_vec(), 1, 2);
        // a5 = map(5); first key "index" (65 69 6e 64 65 78), value 1.
        assert_eq!(&bytes[..8], &[0xa5, 0x65, b'i', b'n', b'd', b'e', b'x', 0x01]);
        // then "version" = 1
        assert_eq!(&bytes[8..17], &[0x67, b'v', b'e', b'r', b's', b'i', b'o', b'n', 0x01]);
    }

    #[test]
    fn rejects_non_canonical_and_newer() {
        let (_, bytes) = sample(b"{}".to_vec(), 1, 2);
        // Trailing byte.
        let mut t = bytes.clone();
        t.push(0);
        assert!(UnverifiedEntry::decode(&t).is_err());
        // index as a non-minimal integer: 0x18 0x01 instead of 0x01.
        let mut nm = bytes[..7].to_vec();
        nm.extend_from_slice(&[0x18, 0x01]);
        nm.extend_from_slice(&bytes[8..]);
        let e = UnverifiedEntry::decode(&nm).unwrap_err();
        assert!(e.to_string().contains("canonical"), "{e}");
        // version 2.
        let mut v2 = bytes.clone();
        v2[16] = 0x02;
        let e = UnverifiedEntry::decode(&v2).unwrap_err();
        assert!(matches!(e, FormatError::NewerVersion(_)), "{e}");
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..300), index in any::<u64>(), time in any::<u64>()) {
            let (entry, bytes) = sample(payload, index, time);
            let back = UnverifiedEntry::decode(&bytes).unwrap();
            prop_assert_eq!(back.hash(), entry.hash());
            prop_assert_eq!(back, entry);
        }

        #[test]
        fn any_byte_change_changes_hash_or_fails_decode(payload in proptest::collection::vec(any::<u8>(), 0..64), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let (entry, bytes) = sample(payload, 3, 4);
            let mut changed = bytes.clone();
            let i = pos.index(changed.len());
            changed[i] ^= flip;
            if let Ok(e) = UnverifiedEntry::decode(&changed) {
                prop_assert_ne!(e.hash(), entry.hash());
            }
        }
    }
}
