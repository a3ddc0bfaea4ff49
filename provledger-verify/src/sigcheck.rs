//! Signature checks done ahead of the chain walk, many at once.
//!
//! Verifying a chain spends most of its time on ed25519. The chain rules
//! ([`crate::verify::ChainState::verify_next`]) must run in order, but
//! whether a signature is valid under a given public key does not depend on
//! the chain, so it is decided here first, in batches spread over all cores:
//! ed25519-dalek's `verify_batch` on groups of [`BATCH`] signatures, and when
//! a batch fails, each of its signatures alone with the strict rules, so the
//! entry that fails is named exactly as a one-by-one check would name it.
//!
//! A result only says "this signature is (in)valid under *this* key". Which
//! keys may sign what is still decided in order, by the policy in force; a
//! [`SigCheck`] is used only when the policy's key for the signature's key id
//! is the very key it was checked with.
//!
//! Batch and strict verification differ on crafted signatures. Before a
//! signature enters a batch, the checks of strict verification that can be
//! made on its bytes are made here (`R` canonically encoded and not of small
//! order; `s` canonical is checked by ed25519-dalek; weak public keys are
//! refused when a policy is read). What remains is a signature whose `R`
//! carries a small torsion component: only the holder of the secret key can
//! make one, strict verification refuses it and a batch may accept it
//! (SECURITY.md, "Batch verification"). [`Mode::Strict`] checks each
//! signature alone instead.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;

use crate::core::dsse::Envelope;
use crate::core::keys::{KeyId, PublicKey};
use crate::core::statement::{Predicate, Statement};

/// Signatures per `verify_batch` call: large enough to amortise the
/// multiscalar multiplication, small enough to keep all cores busy on a
/// chunk of a few thousand entries.
pub const BATCH: usize = 256;

/// How signatures are checked ahead of the chain walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Batches, with strict one-by-one checks of any batch that fails.
    #[default]
    Batch,
    /// Each signature alone, with the strict rules (still on all cores).
    Strict,
}

/// The outcome of checking one signature with one public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigCheck {
    pub key: PublicKey,
    pub valid: bool,
}

/// Every public key met so far, by key id. The id is computed here from the
/// key, never taken from the document that carried it.
#[derive(Clone, Debug, Default)]
pub struct Keyring(HashMap<KeyId, PublicKey>);

impl Keyring {
    pub fn add(&mut self, key: PublicKey) {
        self.0.insert(key.id(), key);
    }

    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.0.get(id)
    }

    /// Adds the keys a policy statement lists (those that parse; a policy
    /// with a bad key is refused later, in order, by the chain rules).
    pub fn add_policy_keys(&mut self, statement: &Statement) {
        if let Predicate::Policy(p) = &statement.predicate {
            for k in &p.keys {
                if let Ok(key) = PublicKey::from_hex(&k.public) {
                    self.add(key);
                }
            }
        }
    }
}

impl<'a> FromIterator<&'a PublicKey> for Keyring {
    fn from_iter<I: IntoIterator<Item = &'a PublicKey>>(iter: I) -> Self {
        let mut k = Keyring::default();
        for key in iter {
            k.add(*key);
        }
        k
    }
}

/// One signature to check: envelope `item`, signature `sig` of it, with `key`.
struct Job {
    item: usize,
    sig: usize,
    key: PublicKey,
}

/// Checks every signature of every envelope whose key id the keyring knows.
/// Returns, per envelope, per signature in envelope order, the outcome, or
/// `None` where the key id is unknown or malformed (the chain walk then
/// decides, and refuses, on its own).
pub fn check_all(envelopes: &[&Envelope], keyring: &Keyring, mode: Mode) -> Vec<Vec<Option<SigCheck>>> {
    let mut out: Vec<Vec<Option<SigCheck>>> = envelopes.iter().map(|e| vec![None; e.signatures.len()]).collect();
    let mut jobs = Vec::with_capacity(envelopes.len());
    for (item, envelope) in envelopes.iter().enumerate() {
        for (sig, s) in envelope.signatures.iter().enumerate() {
            if let Ok(id) = KeyId::parse(&s.keyid)
                && let Some(key) = keyring.get(&id)
            {
                jobs.push(Job { item, sig, key: *key });
            }
        }
    }
    let results: Vec<Vec<bool>> = jobs
        .par_chunks(match mode {
            Mode::Batch => BATCH,
            Mode::Strict => 16,
        })
        .map(|group| check_group(envelopes, group, mode))
        .collect();
    for (job, valid) in jobs.iter().zip(results.into_iter().flatten()) {
        out[job.item][job.sig] = Some(SigCheck { key: job.key, valid });
    }
    out
}

/// One group of signatures: one `verify_batch` when every signature may
/// enter a batch and the batch holds; otherwise each alone, strictly.
fn check_group(envelopes: &[&Envelope], group: &[Job], mode: Mode) -> Vec<bool> {
    // Each envelope's PAE once, however many of its signatures are here.
    let mut messages: HashMap<usize, Vec<u8>> = HashMap::new();
    for job in group {
        messages.entry(job.item).or_insert_with(|| envelopes[job.item].pae());
    }
    let strict = |job: &Job| job.key.verify(&messages[&job.item], &envelopes[job.item].signatures[job.sig].sig);
    // A batch of one costs as much as a strict check, which is exact.
    if mode == Mode::Strict || group.len() == 1 {
        return group.iter().map(strict).collect();
    }
    // Signatures strict verification would refuse on their bytes alone are
    // checked alone; the others go into one batch.
    let mut results = vec![false; group.len()];
    let mut batched = Vec::with_capacity(group.len());
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(group.len());
    let mut sigs: Vec<Signature> = Vec::with_capacity(group.len());
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(group.len());
    for (i, job) in group.iter().enumerate() {
        match Signature::from_slice(&envelopes[job.item].signatures[job.sig].sig) {
            Ok(sig) if batchable_r(sig.r_bytes()) => {
                batched.push(i);
                msgs.push(&messages[&job.item]);
                sigs.push(sig);
                keys.push(*job.key.verifying_key());
            }
            _ => results[i] = strict(job),
        }
    }
    if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok() {
        for i in batched {
            results[i] = true;
        }
    } else {
        for i in batched {
            results[i] = strict(&group[i]);
        }
    }
    results
}

/// The canonical encodings of the eight points of small order (order 1, 2,
/// 4 and 8). The unit tests check that each decodes to a point of small
/// order and that they are eight distinct encodings.
const SMALL_ORDER: [[u8; 32]; 8] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
];

/// Whether a signature's `R` may be checked in a batch: canonically encoded
/// (its y below the field prime p = 2^255 - 19, and no sign bit on a point
/// whose x is 0) and not of small order. Strict verification refuses every
/// other `R`; a batch might not.
fn batchable_r(r: &[u8; 32]) -> bool {
    let mut y = *r;
    y[31] &= 0x7f;
    // y >= p: the top 250 bits all set and the low byte at least 0xed.
    let y_too_big = y[0] >= 0xed && y[1..31].iter().all(|&b| b == 0xff) && y[31] == 0x7f;
    // x = 0 only for y = 1 and y = p - 1; the sign bit must then be clear.
    let one = SMALL_ORDER[0];
    let minus_one = SMALL_ORDER[1];
    let negative_zero = r[31] & 0x80 != 0 && (y == one || y == minus_one);
    !y_too_big && !negative_zero && !SMALL_ORDER.contains(r)
}

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a hex digit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dsse::PAYLOAD_TYPE_IN_TOTO;
    use crate::core::keys::SecretKey;

    #[test]
    fn the_small_order_list_is_the_eight_torsion_points() {
        let mut distinct = SMALL_ORDER.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 8);
        for enc in SMALL_ORDER {
            let point = VerifyingKey::from_bytes(&enc).expect("decodes");
            assert!(point.is_weak(), "{} is of small order", hex::encode(enc));
            assert_eq!(point.as_bytes(), &enc, "canonical");
            assert!(!batchable_r(&enc));
        }
    }

    #[test]
    fn non_canonical_r_is_not_batched() {
        // y = p (non-canonical 0) and y = p + 1 (non-canonical 1).
        let mut p = hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        assert!(!batchable_r(&p));
        p[0] = 0xee;
        assert!(!batchable_r(&p));
        // y = 1 with the sign bit set: x = 0 cannot be negative.
        let mut one = SMALL_ORDER[0];
        one[31] |= 0x80;
        assert!(!batchable_r(&one));
        // An honest signature's R is batchable.
        let key = SecretKey::from_seed(&[7; 32]);
        let sig = Signature::from_slice(&key.sign(b"m")).unwrap();
        assert!(batchable_r(sig.r_bytes()));
    }

    fn envelopes(n: usize, key: &SecretKey) -> Vec<Envelope> {
        (0..n).map(|i| Envelope::sign(PAYLOAD_TYPE_IN_TOTO, format!("payload {i}").into_bytes(), &[key])).collect()
    }

    #[test]
    fn a_bad_signature_in_a_batch_is_found_alone() {
        let key = SecretKey::from_seed(&[1; 32]);
        let mut envs = envelopes(BATCH * 2 + 5, &key);
        envs[BATCH + 17].signatures[0].sig[3] ^= 1;
        let keyring: Keyring = [key.public()].iter().collect();
        for mode in [Mode::Batch, Mode::Strict] {
            let refs: Vec<&Envelope> = envs.iter().collect();
            let out = check_all(&refs, &keyring, mode);
            for (i, checks) in out.iter().enumerate() {
                assert_eq!(checks, &vec![Some(SigCheck { key: key.public(), valid: i != BATCH + 17 })], "{mode:?} {i}");
            }
        }
    }

    #[test]
    fn unknown_keys_and_small_order_r_are_left_or_refused() {
        let key = SecretKey::from_seed(&[1; 32]);
        let other = SecretKey::from_seed(&[2; 32]);
        let mut envs = envelopes(10, &key);
        envs[2] = envelopes(1, &other).remove(0);
        // A signature whose R is the identity: refused without a batch.
        envs[5].signatures[0].sig[..32].copy_from_slice(&SMALL_ORDER[0]);
        let keyring: Keyring = [key.public()].iter().collect();
        let refs: Vec<&Envelope> = envs.iter().collect();
        let out = check_all(&refs, &keyring, Mode::Batch);
        assert_eq!(out[2], vec![None], "unknown key left to the chain walk");
        assert_eq!(out[5], vec![Some(SigCheck { key: key.public(), valid: false })]);
        assert!(out.iter().enumerate().filter(|(i, _)| *i != 2 && *i != 5).all(|(_, c)| c[0].unwrap().valid));
    }
}
