//! Ed25519 keys, their text forms and key ids.
//!
//! The text forms cannot be confused: a secret key is
//! `PROVLEDGER-SECRET-KEY-ED25519:<base64 seed>` (upper case, like age's
//! `AGE-SECRET-KEY-`), a public key is `provledger-public-key-ed25519:<base64>`.
//! A key id is the SHA-256 of the 32-byte public key, in lowercase hex.
//!
//! Secret keys never implement `Display`, their `Debug` redacts, and their
//! bytes are zeroized on drop (ed25519-dalek's `SigningKey` does that).

use super::b64;
use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::FormatError;
use super::hash::sha256;

pub const SECRET_KEY_PREFIX: &str = "PROVLEDGER-SECRET-KEY-ED25519:";
pub const PUBLIC_KEY_PREFIX: &str = "provledger-public-key-ed25519:";
/// What [`redact_secret_keys`] leaves of a secret key's text.
pub const REDACTED_SECRET_KEY: &str = "PROVLEDGER-SECRET-KEY-ED25519:<redacted>";

/// Whether `text` holds secret key text (the prefix, in any case).
pub fn contains_secret_key(text: &str) -> bool {
    find_secret_prefix(text.as_bytes(), 0).is_some()
}

fn find_secret_prefix(b: &[u8], from: usize) -> Option<usize> {
    let p = SECRET_KEY_PREFIX.as_bytes();
    (from..b.len().saturating_sub(p.len() - 1)).find(|&i| b[i..i + p.len()].eq_ignore_ascii_case(p))
}

/// `text` with every secret key text in it, the prefix in any case and the
/// base64 after it (spaces between included), replaced by
/// [`REDACTED_SECRET_KEY`]: whatever a user pasted, and wherever an error or
/// an output quotes it, no key material is shown.
pub fn redact_secret_keys(text: &str) -> std::borrow::Cow<'_, str> {
    let b = text.as_bytes();
    let Some(mut at) = find_secret_prefix(b, 0) else { return text.into() };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    loop {
        out.push_str(&text[copied..at]);
        out.push_str(REDACTED_SECRET_KEY);
        let mut end = at + SECRET_KEY_PREFIX.len();
        while end < b.len() && matches!(b[end], b' ' | b'\t') {
            end += 1;
        }
        while end < b.len() && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'+' | b'/' | b'=' | b'-' | b'_')) {
            end += 1;
        }
        copied = end;
        match find_secret_prefix(b, end) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.push_str(&text[copied..]);
    out.into()
}

/// The only signature algorithm, as named in policies and envelopes.
pub const ALGORITHM: &str = "ed25519";

/// SHA-256 of a public key, lowercase hex in text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 32]);

impl KeyId {
    pub fn of(key: &PublicKey) -> KeyId {
        KeyId(sha256(key.0.as_bytes()))
    }

    pub fn parse(text: &str) -> Result<KeyId, FormatError> {
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(FormatError::Key(format!("key id must be 64 lowercase hex characters, got {text:?}")));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(|e| FormatError::Key(e.to_string()))?;
        Ok(KeyId(out))
    }

    /// First 8 hex characters, for tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KeyId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, FormatError> {
        let arr: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| FormatError::Key(format!("an ed25519 public key is 32 bytes, got {}", bytes.len())))?;
        let vk =
            VerifyingKey::from_bytes(arr).map_err(|_| FormatError::Key("not a valid ed25519 public key".into()))?;
        if vk.is_weak() {
            return Err(FormatError::Key("weak (small-order) ed25519 public key".into()));
        }
        Ok(PublicKey(vk))
    }

    pub fn from_hex(text: &str) -> Result<PublicKey, FormatError> {
        let bytes = hex::decode(text).map_err(|e| FormatError::Key(format!("public key hex: {e}")))?;
        PublicKey::from_bytes(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn id(&self) -> KeyId {
        KeyId::of(self)
    }

    /// Verifies with the strict rules (no malleable or small-order signatures).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok()
    }

    /// Non-strict verify, exposed for benchmarks that compare raw throughput.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_KEY_PREFIX}{}", b64::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl FromStr for PublicKey {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<PublicKey, FormatError> {
        let text = text.trim_end_matches(['\n', '\r']);
        if let Some(b64) = text.strip_prefix(PUBLIC_KEY_PREFIX) {
            let bytes = b64::decode(b64).map_err(|e| FormatError::Key(format!("public key base64: {e}")))?;
            return PublicKey::from_bytes(&bytes);
        }
        if text.starts_with(SECRET_KEY_PREFIX) {
            return Err(FormatError::Key(
                "this is a secret key where a public key was expected (public keys are the .pub files)".into(),
            ));
        }
        Err(FormatError::Key(format!("not a provledger public key (expected text starting with {PUBLIC_KEY_PREFIX})")))
    }
}

/// An ed25519 secret key. Not `Display`; `Debug` shows only the key id.
pub struct SecretKey(SigningKey);

impl SecretKey {
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::generate(&mut rand::rng()))
    }

    /// From a 32-byte RFC 8032 seed (test vectors use this).
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn id(&self) -> KeyId {
        self.public().id()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The secret text form. The returned string is zeroized on drop.
    pub fn to_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.0.to_bytes());
        let mut s = Zeroizing::new(String::with_capacity(SECRET_KEY_PREFIX.len() + 45));
        s.push_str(SECRET_KEY_PREFIX);
        b64::encode_to(seed.as_slice(), &mut s);
        s.push('\n');
        s
    }

    /// Parses the secret text form. Error messages never contain key material.
    pub fn from_text(text: &str) -> Result<SecretKey, FormatError> {
        let text = text.trim_end_matches(['\n', '\r']);
        let Some(b64) = text.strip_prefix(SECRET_KEY_PREFIX) else {
            if text.starts_with(PUBLIC_KEY_PREFIX) {
                return Err(FormatError::Key(
                    "this is a public key where a secret key was expected (use the file without .pub)".into(),
                ));
            }
            return Err(FormatError::Key(format!(
                "not a provledger secret key (expected text starting with {SECRET_KEY_PREFIX})"
            )));
        };
        let bytes =
            Zeroizing::new(b64::decode(b64).map_err(|_| FormatError::Key("secret key is not valid base64".into()))?);
        let seed: &[u8; 32] =
            bytes.as_slice().try_into().map_err(|_| FormatError::Key("an ed25519 secret key is 32 bytes".into()))?;
        Ok(SecretKey(SigningKey::from_bytes(seed)))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, id {})", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_cannot_be_swapped() {
        let sk = SecretKey::generate();
        let text = sk.to_text();
        let back = SecretKey::from_text(&text).unwrap();
        assert_eq!(back.id(), sk.id());
        let pub_text = sk.public().to_string();
        assert_eq!(pub_text.parse::<PublicKey>().unwrap(), sk.public());
        let e = SecretKey::from_text(&pub_text).unwrap_err().to_string();
        assert!(e.contains("public key where a secret key"), "{e}");
        let e = text.parse::<PublicKey>().unwrap_err().to_string();
        assert!(e.contains("secret key where a public key"), "{e}");
        assert!(!e.contains(&text[SECRET_KEY_PREFIX.len()..SECRET_KEY_PREFIX.len() + 10]));
    }

    #[test]
    fn secret_key_text_is_redacted_in_any_case_wherever_it_is() {
        let text = SecretKey::generate().to_text();
        let body = text.trim()[SECRET_KEY_PREFIX.len()..].to_string();
        for s in [
            format!("image reference {:?}: invalid", text.trim()),
            format!("--check {}=pass and {}", text.trim().to_lowercase(), text.trim()),
            format!("{{\"to\":\"{}: {body}\"}}", &SECRET_KEY_PREFIX[..SECRET_KEY_PREFIX.len() - 1]),
            format!("x{SECRET_KEY_PREFIX} {body}y"),
        ] {
            let r = redact_secret_keys(&s);
            assert!(!r.contains(&body[..8]) && !r.to_lowercase().contains(&body[..8].to_lowercase()), "{r}");
        }
        assert_eq!(redact_secret_keys(&format!("a {} b", text.trim())), format!("a {REDACTED_SECRET_KEY} b"));
        assert!(matches!(redact_secret_keys("nothing secret"), std::borrow::Cow::Borrowed(_)));
        assert!(contains_secret_key(&text.to_lowercase()) && !contains_secret_key(PUBLIC_KEY_PREFIX));
    }

    #[test]
    fn debug_redacts() {
        let sk = SecretKey::generate();
        let dbg = format!("{sk:?}");
        let text = sk.to_text();
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&text[SECRET_KEY_PREFIX.len()..SECRET_KEY_PREFIX.len() + 12]));
    }

    #[test]
    fn rfc8032_test1_key_id_and_signature() {
        // RFC 8032 section 7.1 TEST 1: empty message.
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let sk = SecretKey::from_seed(&seed);
        assert_eq!(sk.public().to_hex(), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = sk.sign(b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(sk.public().verify(b"", &sig));
        assert!(!sk.public().verify(b"x", &sig));
        assert_eq!(sk.id().to_string(), hex::encode(sha256(sk.public().as_bytes())));
    }

    #[test]
    fn rejects_bad_keys() {
        assert!(format!("{PUBLIC_KEY_PREFIX}AAAA").parse::<PublicKey>().is_err());
        assert!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI".parse::<PublicKey>().is_err());
        assert!(SecretKey::from_text("-----BEGIN PRIVATE KEY-----").is_err());
        assert!(SecretKey::from_text(&format!("{SECRET_KEY_PREFIX}AAAA")).is_err());
        // The identity point is a small-order key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert!(PublicKey::from_bytes(&ident).is_err());
    }
}
