//! C2SP signed notes and tlog checkpoints, with Ed25519 signatures.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature
//! lines `— <name> <base64(key hash ‖ signature)>`. The key hash is the first
//! 4 bytes (big-endian) of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), and a
//! verifier key is written `<name>+<hex8 key hash>+<base64(0x01 ‖ public key)>`.
//! A checkpoint is a note whose text is `<origin>\n<tree size>\n<base64 root>\n`
//! (optionally followed by extension lines).
//!
//! Opening a note parses and verifies in one step: nothing unverified comes out.

use super::b64;
use sha2::{Digest as _, Sha256};

use super::FormatError;
use super::keys::{PublicKey, SecretKey};

/// Largest note accepted.
pub const MAX_NOTE_SIZE: usize = 1 << 20;
/// Most signature lines accepted on one note.
pub const MAX_NOTE_SIGNATURES: usize = 100;
/// The signature type byte of Ed25519 in C2SP signed-note.
pub const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

fn bad(why: impl Into<String>) -> FormatError {
    FormatError::Invalid(format!("malformed note: {}", why.into()))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '+')
}

/// The 4-byte key hash of a named Ed25519 key.
pub fn key_hash(name: &str, public: &PublicKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A named key that verifies note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub hash: u32,
    pub public: PublicKey,
}

impl NoteVerifier {
    pub fn new(name: &str, public: PublicKey) -> Result<NoteVerifier, FormatError> {
        if !valid_name(name) {
            return Err(bad(format!("key name {name:?} has white space or '+'")));
        }
        Ok(NoteVerifier { name: name.to_string(), hash: key_hash(name, &public), public })
    }

    /// Parses `<name>+<hex8>+<base64(0x01 ‖ key)>`, checking the key hash.
    pub fn parse(text: &str) -> Result<NoteVerifier, FormatError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("verifier key is not name+hash+key"));
        };
        if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(bad("verifier key hash is not 8 lowercase hex digits"));
        }
        let hash = u32::from_str_radix(hash, 16).map_err(|_| bad("verifier key hash"))?;
        let key = b64::decode(key).map_err(|_| bad("verifier key is not base64"))?;
        if key.len() != 33 || key[0] != ALG_ED25519 {
            return Err(bad("verifier key is not an Ed25519 key"));
        }
        let v = NoteVerifier::new(name, PublicKey::from_bytes(&key[1..])?)?;
        if v.hash != hash {
            return Err(bad("verifier key hash does not match the key"));
        }
        Ok(v)
    }

    pub fn to_text(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.public.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, b64::encode(key))
    }
}

/// Signs a note text (non-empty, ending in a newline) with one key.
pub fn sign_note(text: &str, name: &str, key: &SecretKey) -> Result<String, FormatError> {
    // Ending in a blank line would make the split before the signatures ambiguous.
    if !text.ends_with('\n') || text.ends_with("\n\n") || text.trim().is_empty() {
        return Err(bad("note text must be non-empty and end in exactly one newline"));
    }
    let v = NoteVerifier::new(name, key.public())?;
    let mut sig = v.hash.to_be_bytes().to_vec();
    sig.extend_from_slice(&key.sign(text.as_bytes()));
    Ok(format!("{text}\n{SIG_PREFIX}{name} {}\n", b64::encode(sig)))
}

/// A note whose text was signed by at least one of the verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedNote {
    pub text: String,
    /// Names of the verifiers whose signatures verified.
    pub verified_by: Vec<String>,
}

/// Parses a signed note and verifies its signatures: every signature by a
/// known key must verify, and at least one must be by a known key.
pub fn open_note(msg: &str, verifiers: &[NoteVerifier]) -> Result<OpenedNote, FormatError> {
    if msg.len() > MAX_NOTE_SIZE {
        return Err(bad(format!("larger than {MAX_NOTE_SIZE} bytes")));
    }
    if msg.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad("control characters"));
    }
    let split = msg.rfind("\n\n").ok_or_else(|| bad("no blank line before the signatures"))?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(bad("signatures do not end in a newline"));
    }
    let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
    if lines.len() > MAX_NOTE_SIGNATURES {
        return Err(bad(format!("more than {MAX_NOTE_SIGNATURES} signatures")));
    }
    let mut verified_by = Vec::new();
    for line in lines {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| bad("a signature line does not start with '— '"))?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| bad("a signature line has no signature"))?;
        if !valid_name(name) || b64.contains(' ') {
            return Err(bad("a signature line is not '— name signature'"));
        }
        let raw = b64::decode(b64).map_err(|_| bad("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("a signature is too short"));
        }
        let hash = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let known: Vec<&NoteVerifier> = verifiers.iter().filter(|v| v.name == name && v.hash == hash).collect();
        match known.as_slice() {
            [] => continue,
            [v] => {
                if !v.public.verify(text.as_bytes(), &raw[4..]) {
                    return Err(FormatError::Invalid(format!("invalid signature for key {name}+{hash:08x}")));
                }
                if !verified_by.contains(&v.name) {
                    verified_by.push(v.name.clone());
                }
            }
            _ => return Err(FormatError::Invalid(format!("ambiguous key {name}+{hash:08x}"))),
        }
    }
    if verified_by.is_empty() {
        return Err(FormatError::Invalid("note has no verifiable signatures".into()));
    }
    Ok(OpenedNote { text: text.to_string(), verified_by })
}

/// A C2SP tlog checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: [u8; 32],
}

impl Checkpoint {
    pub fn to_text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, b64::encode(self.root))
    }

    /// Parses a checkpoint body: origin, tree size and root, each on its own
    /// line, and nothing else (SPEC section 9: no extension lines). The final
    /// newline may be absent, as it is where the note's body is cut at its
    /// blank line.
    pub fn parse(text: &str) -> Result<Checkpoint, FormatError> {
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body.split('\n').count() > 3 {
            return Err(bad("checkpoint has extension lines after its root; a provledger checkpoint has none"));
        }
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("checkpoint has no origin"))?;
        let size = lines.next().ok_or_else(|| bad("checkpoint has no tree size"))?;
        if size.is_empty() || (size.len() > 1 && size.starts_with('0')) || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("checkpoint tree size {size:?} is not a decimal number")));
        }
        let size = size.parse().map_err(|_| bad("checkpoint tree size out of range"))?;
        let root = b64::decode(lines.next().unwrap_or("")).map_err(|_| bad("checkpoint root is not base64"))?;
        let root: [u8; 32] = root.try_into().map_err(|_| bad("checkpoint root is not 32 bytes"))?;
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }
}
