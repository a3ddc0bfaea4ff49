//! Whole-chain verification checks signatures ahead of the chain walk, in
//! batches on all cores. These chains are longer than one pipeline chunk
//! (2,048 entries) and one signature batch (256), so the checks here cross
//! both boundaries: the outcome, and the entry named on failure, must be those
//! of checking one entry at a time.

#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use provledger::core::dsse::Envelope;
use provledger::core::entry::UnverifiedEntry;
use provledger::core::statement::EntryRef;
use provledger::sigcheck::Mode;
use provledger::verify::{Failure, VerifyError, verify_chain_with};

const MODES: [Mode; 2] = [Mode::Batch, Mode::Strict];

/// Policy, then builds and validations, with the CI key rotated to `ci2`
/// by a policy change at entry `rotate_at` (builds after it are by `ci2`).
fn chain(len: usize, rotate_at: usize) -> vectors::Chain {
    let mut c = vectors::Chain::default();
    let genesis = c.push(vectors::sign(&vectors::policy(None, "ci"), "root"));
    let mut ci = "ci";
    let mut n = 0;
    while c.entries.len() < len {
        if c.entries.len() == rotate_at {
            c.push(vectors::sign(&vectors::policy(Some(genesis), "ci2"), "root"));
            ci = "ci2";
            continue;
        }
        let b = c.push(vectors::sign(&vectors::build(n), ci));
        if c.entries.len() < len && c.entries.len() != rotate_at {
            c.push(vectors::sign(&vectors::validation(n, b), "qa"));
        }
        n += 1;
    }
    c
}

fn verify(entries: &[Vec<u8>], mode: Mode) -> Result<u64, VerifyError> {
    let items = entries.iter().enumerate().map(|(i, e)| Ok((i as u64, e.clone())));
    verify_chain_with(items, None, mode, |_| {}).map(|r| r.entries)
}

/// Rewrites entry `at` with `change` applied to its envelope, keeping its
/// place (index, link, time); later entries then no longer link to it.
fn rewrite(c: &mut vectors::Chain, at: usize, change: impl FnOnce(&mut Envelope)) {
    let mut e = UnverifiedEntry::decode(&c.entries[at]).unwrap();
    change(&mut e.envelope);
    let (_, bytes) = UnverifiedEntry::build(e.index, e.prev_hash, e.integrated_time, e.envelope);
    c.entries[at] = bytes;
}

#[test]
fn a_long_chain_with_a_key_rotation_verifies_in_both_modes() {
    let c = chain(5_000, 3_001);
    for mode in MODES {
        assert_eq!(verify(&c.entries, mode).unwrap(), 5_000, "{mode:?}");
    }
}

#[test]
fn a_bad_signature_deep_in_the_chain_is_named_exactly() {
    let mut c = chain(4_500, 4_400);
    // Inside the second chunk and the middle of a signature batch.
    rewrite(&mut c, 2_600, |e| e.signatures[0].sig[10] ^= 0x40);
    for mode in MODES {
        let err = verify(&c.entries, mode).unwrap_err();
        assert_eq!((err.index, err.failure), (2_600, Failure::Invalid), "{mode:?}: {err}");
        assert!(err.reason.contains("does not verify"), "{mode:?}: {err}");
    }
}

#[test]
fn a_key_checked_ahead_gains_no_authority_before_its_policy() {
    // ci2 becomes a build key at entry 3,001. A build it signed at entry
    // 2,990 (same chunk as the policy change, so its signature was checked
    // ahead with ci2's key, and is valid) is still refused: the policy in
    // force there does not know the key.
    let mut c = chain(3_100, 3_001);
    let forged = vectors::sign(&vectors::build(999_999), "ci2");
    rewrite(&mut c, 2_990, |e| *e = forged);
    for mode in MODES {
        let err = verify(&c.entries, mode).unwrap_err();
        assert_eq!((err.index, err.failure), (2_990, Failure::Denied), "{mode:?}: {err}");
        assert!(err.reason.contains("is not in the policy in force"), "{mode:?}: {err}");
    }
}

#[test]
fn a_retired_key_is_refused_after_the_rotation() {
    // After the rotation ci is no longer a build key: a later build by ci,
    // with a valid signature, is denied.
    let mut c = chain(3_100, 1_000);
    let by_old_key = vectors::sign(&vectors::build(888_888), "ci");
    rewrite(&mut c, 2_051, |e| *e = by_old_key);
    for mode in MODES {
        let err = verify(&c.entries, mode).unwrap_err();
        assert_eq!(err.index, 2_051, "{mode:?}: {err}");
        assert_eq!(err.failure, Failure::Denied, "{mode:?}: {err}");
    }
}

/// A second validation of image 0 (another time, so not a replay of the first).
fn revalidation(build: EntryRef) -> Envelope {
    use provledger::core::statement::{Check, CheckResult};
    let s = provledger::record::validation_statement(provledger::record::ValidationInput {
        image: format!("registry.example.com/acme/app@{}", vectors::digest(0)).parse().unwrap(),
        build: Some(build),
        checks: vec![Check { name: "unit".into(), result: CheckResult::Pass, evidence: None }],
        ci: Default::default(),
        registry_confirmed: false,
        registry: None,
        time: vectors::T0 + 50_000,
        binding: Some(vectors::binding("revalidation", 0)),
    });
    vectors::sign(&s, "qa")
}

#[test]
fn a_validation_naming_a_build_in_an_earlier_chunk_is_checked() {
    // The validation at the end names the build at entry 1: the walk still
    // finds it, thousands of entries and two chunks back.
    let mut c = chain(4_200, 5_000);
    let first_build = EntryRef { index: 1, hash: c.hashes[1] };
    c.push(revalidation(first_build));
    for mode in MODES {
        assert_eq!(verify(&c.entries, mode).unwrap(), 4_201, "{mode:?}");
    }
    // Named with a wrong hash, it is refused at its own index.
    let wrong = EntryRef { index: 1, hash: c.hashes[2] };
    c.entries.pop();
    c.hashes.pop();
    c.push(revalidation(wrong));
    for mode in MODES {
        let err = verify(&c.entries, mode).unwrap_err();
        assert_eq!(err.index, 4_200, "{mode:?}: {err}");
    }
}
