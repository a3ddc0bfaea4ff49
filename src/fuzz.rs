//! The bodies of the fuzz targets in `fuzz/` (each target is one call), and
//! of the regression test that replays every input they ever crashed on
//! (`tests/fuzz_regressions.rs`). Each parses untrusted bytes the way the
//! ledger does and, where the parse succeeds, checks that what it accepted
//! round-trips to the same value: a parser may refuse, never panic, hang or
//! accept two spellings of one thing.

use crate::bundle;
use crate::core::digest::Digest;
use crate::core::dsse::Envelope;
use crate::core::entry::UnverifiedEntry;
use crate::core::hash::EntryHash;
use crate::core::image_ref::ImageRef;
use crate::core::keys::SecretKey;
use crate::core::note::{self, Checkpoint, NoteVerifier};
use crate::core::statement::{PolicyLog, Statement};
use crate::policy::{Policy, ReadKeyError, parse_policy_toml};
use crate::proof::PromotionProof;

/// A target's body: parse the bytes, check what was accepted.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [(&str, Target); 9] = [
    ("image_ref", image_ref),
    ("digest", digest),
    ("dsse_envelope", dsse_envelope),
    ("entry", entry),
    ("statement", statement),
    ("policy", policy),
    ("checkpoint_note", checkpoint_note),
    ("bundle", bundle),
    ("proof", proof),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

pub fn image_ref(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Ok(r) = t.parse::<ImageRef>() {
        let again: ImageRef = r.to_string().parse().expect("a normalised reference parses");
        assert!(again == r, "{t:?} normalises to {r}, which parses as {again}");
    }
}

pub fn digest(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Ok(d) = t.parse::<Digest>() {
        assert_eq!(d.to_string(), t, "one spelling per digest");
    }
}

pub fn dsse_envelope(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(e) = Envelope::from_json_value(value) {
        let _ = e.check_limits();
        let again = Envelope::from_json_value(e.to_json_value()).expect("a written envelope reads back");
        assert_eq!(again, e);
    }
}

pub fn entry(data: &[u8]) {
    if let Ok(e) = UnverifiedEntry::decode(data) {
        assert_eq!(e.encode(), data, "an accepted entry is canonical");
    }
}

pub fn statement(data: &[u8]) {
    if let Ok(s) = Statement::parse(data) {
        let again = Statement::parse(&s.to_payload()).expect("a written statement reads back");
        assert_eq!(again, s);
    }
}

pub fn policy(data: &[u8]) {
    let Some(t) = text(data) else { return };
    let key = SecretKey::from_seed(&[7; 32]);
    let log = PolicyLog::new("fuzz.example/log", key.public()).expect("a valid log");
    let mut no_files = |_: &str| -> Result<String, ReadKeyError> { Err("no key files while fuzzing".into()) };
    if let Ok(p) = parse_policy_toml(t, "fuzz.toml", &mut no_files, Some(&log)) {
        Policy::from_predicate(&p, "fuzz").expect("a parsed policy is a valid policy");
    }
}

pub fn checkpoint_note(data: &[u8]) {
    let Some(t) = text(data) else { return };
    if let Ok(c) = Checkpoint::parse(t) {
        assert_eq!(Checkpoint::parse(&c.to_text()).expect("a written checkpoint reads back"), c);
    }
    if let Ok(v) = NoteVerifier::parse(t) {
        assert_eq!(NoteVerifier::parse(&v.to_text()).expect("a written verifier key reads back"), v);
    }
    let key = SecretKey::from_seed(&[9; 32]);
    let verifier = NoteVerifier::new("fuzz.example/log", key.public()).expect("a valid verifier");
    let _ = note::open_note(t, &[verifier]);
}

pub fn bundle(data: &[u8]) {
    let _ = bundle::verify_bundle(data, &EntryHash::ZERO, None, |_| {});
    let _ = bundle::decode_frames(data, 1024);
}

pub fn proof(data: &[u8]) {
    if let Ok(p) = PromotionProof::parse(data) {
        let _ = p.verify(&EntryHash::ZERO);
    }
}
