//! DSSE envelopes (Dead Simple Signing Envelope, v1.0).
//!
//! The signature covers `PAE(payloadType, payload)` and the payload bytes are
//! kept verbatim, so no JSON canonicalisation is ever involved. On write the
//! key id is always set and base64 is the standard alphabet with padding; on
//! read both alphabets are accepted, with or without padding, as the protocol
//! requires.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::FormatError;
use super::b64;
use super::keys::{PublicKey, SecretKey};

/// Payload type of every statement the ledger signs.
pub const PAYLOAD_TYPE_IN_TOTO: &str = "application/vnd.in-toto+json";
/// Largest payload accepted.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;
/// Most signatures accepted on one envelope.
pub const MAX_SIGNATURES: usize = 16;
/// Longest key id string accepted.
pub const MAX_KEYID_LEN: usize = 256;

/// The pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes of the UTF-8 encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature. Field order is the canonical CBOR key order (`sig`, `keyid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
    pub keyid: String,
}

/// A DSSE envelope. Field order is the canonical CBOR key order
/// (`payload`, `signatures`, `payloadType`: shorter keys first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
    #[serde(rename = "payloadType")]
    pub payload_type: String,
}

/// The JSON wire form, as other DSSE tools read and write it: base64 in
/// either alphabet, padded or not, decoded as it is parsed.
#[derive(Serialize, Deserialize)]
struct EnvelopeJson<'a> {
    #[serde(with = "b64::lenient")]
    payload: Cow<'a, [u8]>,
    #[serde(rename = "payloadType")]
    payload_type: Cow<'a, str>,
    signatures: Vec<SignatureJson<'a>>,
}

#[derive(Serialize, Deserialize)]
struct SignatureJson<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyid: Option<Cow<'a, str>>,
    #[serde(with = "b64::lenient")]
    sig: Cow<'a, [u8]>,
}

impl Envelope {
    /// Signs `payload` with every key given (at least one); each signature
    /// carries the signer's key id.
    pub fn sign(payload_type: &str, payload: Vec<u8>, keys: &[&SecretKey]) -> Envelope {
        assert!(!keys.is_empty(), "an envelope needs at least one signature");
        let message = pae(payload_type, &payload);
        let signatures = keys
            .iter()
            .map(|k| EnvelopeSignature { sig: k.sign(&message).to_vec(), keyid: k.id().to_string() })
            .collect();
        Envelope { payload, signatures, payload_type: payload_type.to_string() }
    }

    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Checks the size limits every decoded envelope must meet.
    pub fn check_limits(&self) -> Result<(), FormatError> {
        if self.payload.len() > MAX_PAYLOAD_LEN {
            return Err(FormatError::Envelope(format!("payload larger than {MAX_PAYLOAD_LEN} bytes")));
        }
        if self.signatures.is_empty() {
            return Err(FormatError::Envelope("envelope has no signature".into()));
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(FormatError::Envelope(format!("more than {MAX_SIGNATURES} signatures")));
        }
        if self.signatures.iter().any(|s| s.keyid.len() > MAX_KEYID_LEN) {
            return Err(FormatError::Envelope(format!("key id longer than {MAX_KEYID_LEN} bytes")));
        }
        Ok(())
    }

    /// The standard JSON form (standard base64 with padding, keyid always set).
    pub fn to_json_value(&self) -> serde_json::Value {
        let j = EnvelopeJson {
            payload: Cow::Borrowed(&self.payload),
            payload_type: Cow::Borrowed(&self.payload_type),
            signatures: self
                .signatures
                .iter()
                .map(|s| SignatureJson { keyid: Some(Cow::Borrowed(&s.keyid)), sig: Cow::Borrowed(&s.sig) })
                .collect(),
        };
        serde_json::to_value(j).expect("envelope serialises")
    }

    /// Reads the JSON form. A signature without a keyid gets an empty one.
    pub fn from_json_value(value: serde_json::Value) -> Result<Envelope, FormatError> {
        let j: EnvelopeJson =
            serde_json::from_value(value).map_err(|e| FormatError::Envelope(format!("envelope JSON: {e}")))?;
        let env = Envelope {
            payload: j.payload.into_owned(),
            payload_type: j.payload_type.into_owned(),
            signatures: j
                .signatures
                .into_iter()
                .map(|s| EnvelopeSignature {
                    sig: s.sig.into_owned(),
                    keyid: s.keyid.map(Cow::into_owned).unwrap_or_default(),
                })
                .collect(),
        };
        env.check_limits()?;
        Ok(env)
    }

    /// DSSE protocol verification: accept when at least `threshold` distinct
    /// trusted keys produced a valid signature and the payload type is one the
    /// caller supports. A trusted key with an id only matches signatures that
    /// carry the same key id or none. Returns the indexes of the keys that
    /// signed.
    pub fn verify_threshold(
        &self,
        trusted: &[(Option<&str>, PublicKey)],
        threshold: usize,
        supported_payload_types: &[&str],
    ) -> Result<BTreeSet<usize>, FormatError> {
        if threshold == 0 {
            return Err(FormatError::Envelope("threshold must be at least 1".into()));
        }
        if !supported_payload_types.contains(&self.payload_type.as_str()) {
            return Err(FormatError::Envelope(format!("unsupported payload type {:?}", self.payload_type)));
        }
        let message = self.pae();
        let mut signed = BTreeSet::new();
        for sig in &self.signatures {
            for (i, (keyid, key)) in trusted.iter().enumerate() {
                let id_matches = sig.keyid.is_empty() || keyid.is_none_or(|k| k == sig.keyid);
                if id_matches && key.verify(&message, &sig.sig) {
                    signed.insert(i);
                }
            }
        }
        if signed.len() < threshold {
            return Err(FormatError::Envelope(format!(
                "{} distinct trusted signature(s), threshold is {threshold}",
                signed.len()
            )));
        }
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn json_round_trip_and_both_alphabets() {
        let sk = SecretKey::generate();
        let env = Envelope::sign(PAYLOAD_TYPE_IN_TOTO, b"\xfb\xff\xbf>?".to_vec(), &[&sk]);
        let back = Envelope::from_json_value(env.to_json_value()).unwrap();
        assert_eq!(back, env);
        let mut json = env.to_json_value();
        let standard = json["payload"].as_str().unwrap().to_string();
        assert_eq!(standard, "+/+/Pj8=");
        json["payload"] = "-_-_Pj8".into();
        assert_eq!(Envelope::from_json_value(json.clone()).unwrap(), env);
        json["payload"] = "+/+/Pj8!".into();
        let e = Envelope::from_json_value(json).unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
        let keys = [(Some(sk.id().to_string()), sk.public())];
        let keys: Vec<_> = keys.iter().map(|(id, k)| (id.as_deref(), *k)).collect();
        assert!(env.verify_threshold(&keys, 1, &[PAYLOAD_TYPE_IN_TOTO]).is_ok());
        let mut tampered = env.clone();
        tampered.payload[0] ^= 1;
        assert!(tampered.verify_threshold(&keys, 1, &[PAYLOAD_TYPE_IN_TOTO]).is_err());
    }
}
