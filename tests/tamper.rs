//! Tampering with the files of a ledger: whatever is changed, removed,
//! swapped or cut (rewritten with every frame and checksum valid, so that
//! the log itself sees nothing wrong), `provledger verify` exits 4 and names
//! the entry.

mod common;

#[path = "../examples/support/vectors.rs"]
#[allow(dead_code)]
mod vectors;

use common::{Env, build_envelope, image};
use provledger::ledger::LedgerError;
use provledger::store::Store;
use provledger::store::tamper::{self, Contents};
use provledger::verify::Failure;

/// A ledger of 6 entries: policy, builds and validations.
fn ledger() -> Env {
    let (env, _) = Env::initialised();
    for i in 0..2 {
        let img = image(&format!("t{i}"));
        env.build(&img);
        env.validate(&img, &["unit=pass"]);
    }
    env.build(&image("last"));
    assert_eq!(env.head().1, 6);
    env
}

fn edit(env: &Env, change: impl FnOnce(&mut Contents)) {
    tamper::edit(&env.ledger(), change).unwrap();
}

fn verify_fails_at(env: &Env, index: u64) -> String {
    let out = env.fails(4, &["verify"]);
    assert!(out.contains(&format!("entry {index}")), "expected entry {index} to be named:\n{out}");
    out
}

#[test]
fn one_changed_byte_in_any_entry_is_caught() {
    let env = ledger();
    let originals = tamper::read(&env.ledger()).unwrap().entries;
    for (index, original) in originals.iter().enumerate() {
        // A few positions per entry: the header, the middle, the signature end.
        for pos in [1, original.len() / 2, original.len() - 3] {
            edit(&env, |c| c.entries[index][pos] ^= 0x20);
            verify_fails_at(&env, index as u64);
            edit(&env, |c| c.entries[index][pos] ^= 0x20);
        }
    }
    env.ok(&["verify"]);
}

#[test]
fn a_deleted_entry_is_caught() {
    let env = ledger();
    edit(&env, |c| {
        c.entries.remove(3);
        c.head.count -= 1;
    });
    verify_fails_at(&env, 3);
}

#[test]
fn swapped_entries_are_caught() {
    let env = ledger();
    edit(&env, |c| c.entries.swap(2, 4));
    verify_fails_at(&env, 2);
}

#[test]
fn truncation_is_caught() {
    let env = ledger();
    let good = tamper::read(&env.ledger()).unwrap();
    // Cut to 4 entries, the head record left as it was.
    edit(&env, |c| {
        c.entries.truncate(4);
        c.head.count = 4;
    });
    let out = verify_fails_at(&env, 3);
    assert!(out.contains("does not match the head record"), "{out}");
    // The head record rewritten to match: the signed checkpoint (of 6) does not.
    let cut_head = provledger::core::entry::entry_hash(&good.entries[3]);
    edit(&env, |c| c.head.hash = cut_head);
    let out = env.fails(4, &["verify"]);
    assert!(out.contains("checkpoint"), "{out}");
    tamper::write(&env.ledger(), &good).unwrap();
    env.ok(&["verify"]);
}

#[test]
fn an_appended_foreign_entry_is_caught() {
    let env = ledger();
    edit(&env, |c| {
        let copy = c.entries[5].clone();
        c.entries.push(copy);
        c.head.count += 1;
    });
    verify_fails_at(&env, 6);
}

#[test]
fn a_replayed_envelope_is_refused_and_nothing_written() {
    let env = ledger();
    let ledger = env.writer();
    let envelope = build_envelope(env.dir.path(), "replay", 1_700_000_000);
    ledger.append(envelope.clone(), 1_800_000_000).unwrap();
    let head = ledger.store().head().unwrap();
    let err = ledger.append(envelope, 1_800_000_001).unwrap_err();
    match err {
        LedgerError::Verify(v) => {
            assert_eq!(v.index, 7);
            assert_eq!(v.failure, Failure::Invalid);
            assert!(v.reason.contains("already in the ledger"), "{}", v.reason);
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(ledger.store().head().unwrap(), head);
}

#[test]
fn a_batch_is_all_or_nothing() {
    let env = ledger();
    let ledger = env.writer();
    let head = ledger.store().head().unwrap();
    let good = build_envelope(env.dir.path(), "batch-good", 1);
    let mut bad = build_envelope(env.dir.path(), "batch-bad", 1);
    bad.payload.push(b' ');
    assert!(ledger.append_batch(vec![good.clone(), bad], 1_900_000_000).is_err());
    assert_eq!(ledger.store().head().unwrap(), head);
    let done = ledger.append_batch(vec![good, build_envelope(env.dir.path(), "batch-2", 1)], 1_900_000_000).unwrap();
    assert_eq!(done.len(), 2);
    assert_eq!(ledger.store().head().unwrap().unwrap().count, head.unwrap().count + 2);
    drop(ledger);
    env.ok(&["verify"]);
}

#[test]
fn a_store_of_a_newer_version_is_refused_with_upgrade() {
    let env = ledger();
    let before = env.head();
    let format = env.ledger().join("log").join("format");
    let original = std::fs::read_to_string(&format).unwrap();
    std::fs::write(&format, "provledger segment log, version 2\n").unwrap();
    let build = ["record", "build", "--key", &env.key("ci"), "--image", &image("n"), "--offline"];
    for args in [&["verify"][..], &["log"], &build] {
        let out = env.fails(1, args);
        assert!(out.contains("newer provledger") && out.contains("upgrade"), "{args:?}: {out}");
    }
    std::fs::write(&format, original).unwrap();
    assert_eq!(env.head(), before);
    // A store version 2 ledger whose version record is newer, or of the
    // pre-release version 1, is refused and left as it is: not converted.
    for (version, needles) in [(3u32, ["newer provledger", "upgrade"]), (1, ["pre-release", "store version 1"])] {
        let dir = tempfile::tempdir().unwrap();
        let old = common::unpack_v2_fixture(dir.path());
        {
            let db = sled::open(old.join("store")).unwrap();
            db.open_tree("meta").unwrap().insert("store_version", &version.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let d = old.display().to_string();
        for args in [&["--ledger", &d, "verify"][..], &["--ledger", &d, "migrate"]] {
            let out = env.fails(1, args);
            assert!(needles.iter().all(|n| out.contains(n)), "version {version}, {args:?}: {out}");
        }
        assert!(old.join("store").is_dir() && !old.join("log").exists(), "version {version}: converted anyway");
        assert!(!old.join("migrate.new").exists(), "version {version}: the staging folder is left");
    }
}

mod any_byte {
    use proptest::prelude::*;

    use super::vectors;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any single-byte change to any entry of a signed chain makes the
        /// chain fail verification, or (for the ledger-assigned time of the
        /// last entry, which nothing later covers) changes the head hash that
        /// the head record and checkpoints pin.
        #[test]
        fn any_single_byte_change_is_detected(entry in 0usize..6, pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let (chain, _) = vectors::valid_chain();
            let original_head = *chain.hashes.last().unwrap();
            let mut entries = chain.entries.clone();
            let i = pos.index(entries[entry].len());
            entries[entry][i] ^= flip;
            let items = entries.into_iter().enumerate().map(|(n, b)| Ok((n as u64, b)));
            match provledger::verify::verify_chain(items, Some(&chain.hashes[0]), |_| {}) {
                // Caught at the changed entry, or at the next one, whose
                // prev_hash covers the changed entry's ledger-assigned time.
                Err(e) => prop_assert!(e.index <= entry as u64 + 1, "failure named entry {}, changed entry {}", e.index, entry),
                Ok(report) => prop_assert_ne!(report.head, original_head),
            }
        }
    }
}

#[test]
fn a_changed_time_is_caught_by_the_next_entry() {
    // The deterministic case behind the property above: entry 2's
    // integrated_time moved by one second.
    let (chain, _) = vectors::valid_chain();
    let mut entries = chain.entries.clone();
    let last = entries[2].len() - 1;
    entries[2][last] ^= 0x01;
    let items = entries.into_iter().enumerate().map(|(n, b)| Ok((n as u64, b)));
    let err = provledger::verify::verify_chain(items, None, |_| {}).unwrap_err();
    assert_eq!(err.index, 3, "{err}");
    assert!(err.reason.contains("prev_hash"), "{err}");
}

#[test]
fn a_second_process_waits_for_the_lock_then_fails_clearly() {
    let env = ledger();
    let before = env.head();
    let held = env.store();
    let out = env.fails(
        1,
        &["--lock-timeout", "1", "record", "build", "--key", &env.key("ci"), "--image", &image("locked"), "--offline"],
    );
    assert!(out.contains("in use by another process"), "{out}");
    drop(held);
    assert_eq!(env.head(), before);
}

#[test]
fn a_missing_or_extra_index_row_is_caught() {
    let env = ledger();
    env.ok(&["promote", "--key", &env.key("release"), "--image", &image("t0"), "--to", "dev", "--offline"]);
    let before = env.head();
    let env_tree = |f: &dyn Fn(&sled::Tree)| {
        let db = sled::open(env.ledger().join("index")).unwrap();
        f(&db.open_tree("rows").unwrap());
        db.flush().unwrap();
    };
    // The promotion is entry 6; its environment row is (the environment
    // index's prefix byte, 3) "dev" 0x00 index.
    let mut key = b"\x03dev\0".to_vec();
    key.extend_from_slice(&6u64.to_be_bytes());
    env_tree(&|t| {
        assert!(t.remove(&key).unwrap().is_some());
    });
    let out = env.fails(4, &["verify"]);
    assert!(out.contains("entry 6") && out.contains("environment dev index lacks this entry"), "{out}");
    // Restored, then one row too many.
    env_tree(&|t| {
        t.insert(&key, &[][..]).unwrap();
        let mut extra = b"\x03prod\0".to_vec();
        extra.extend_from_slice(&2u64.to_be_bytes());
        t.insert(extra, &[][..]).unwrap();
    });
    let out = env.fails(4, &["verify"]);
    assert!(out.contains("the indexes hold rows the chain does not imply"), "{out}");
    assert_eq!(before.1, 7);
}

#[test]
fn a_changed_tree_node_or_checkpoint_is_caught_and_never_extended() {
    let env = ledger();
    let before = env.head();
    let good = tamper::read(&env.ledger()).unwrap();
    let good_checkpoint = good.checkpoint.clone();
    // Each stored node of a 6-leaf tree: leaves, pairs, the 4-leaf subtree.
    for (level, index) in [(0, 0), (0, 5), (1, 1), (1, 2), (2, 0)] {
        edit(&env, |c| c.node_mut(level, index).expect("a stored node").hash[0] ^= 1);
        let out = env.fails(4, &["verify"]);
        assert!(out.contains(&format!("Merkle tree node ({level}, {index}) does not match")), "{out}");
        edit(&env, |c| c.node_mut(level, index).unwrap().hash[0] ^= 1);
    }
    // A node taken away.
    edit(&env, |c| c.nodes.retain(|n| (n.level, n.index) != (1, 1)));
    let out = env.fails(4, &["verify"]);
    assert!(out.contains("Merkle tree node (1, 1) is missing"), "{out}");
    tamper::write(&env.ledger(), &good).unwrap();
    // A checkpoint signed by another key, or over another root.
    let body = good_checkpoint.split_once("\n\n").unwrap().0.to_string() + "\n";
    let origin = body.lines().next().unwrap().to_string();
    let other = provledger::keyfile::read_secret(std::path::Path::new(&env.key("root")), false).unwrap();
    let by_other = provledger::core::note::sign_note(&body, &origin, &other).unwrap();
    let log_key = provledger::keyfile::read_secret(&env.ledger().join("log.key"), false).unwrap();
    let wrong_size = provledger::core::note::sign_note(&body.replacen("\n6\n", "\n5\n", 1), &origin, &log_key).unwrap();
    for (forged, needle) in [(by_other, "no verifiable signatures"), (wrong_size, "does not match the chain")] {
        edit(&env, |c| c.checkpoint = forged.clone());
        let out = env.fails(4, &["verify"]);
        assert!(out.contains(needle), "{out}");
        // The ledger refuses to sign a checkpoint over a tree its last one does not describe.
        if needle == "does not match the chain" {
            let out = env.fails(4, &["record", "build", "--key", &env.key("ci"), "--image", &image("x"), "--offline"]);
            assert!(out.contains("refusing to sign a checkpoint"), "{out}");
        }
        edit(&env, |c| c.checkpoint = good_checkpoint.clone());
    }
    assert_eq!(env.head(), before);
}

#[test]
fn appends_need_the_log_key_the_policy_names() {
    let env = ledger();
    let before = env.head();
    let log_key = env.ledger().join("log.key");
    let saved = env.path("saved.log.key");
    std::fs::rename(&log_key, &saved).unwrap();
    let build = ["record", "build", "--key", &env.key("ci"), "--image", &image("needs-log"), "--offline"];
    let out = env.fails(1, &build);
    assert!(out.contains("no log key at") && out.contains("log.key"), "{out}");
    // Another key in its place cannot sign the checkpoint.
    std::fs::copy(env.key("ledger"), &log_key).unwrap();
    let out = env.fails(1, &build);
    assert!(out.contains("is not the one the policy names"), "{out}");
    // Reads and verification need no log key.
    env.ok(&["verify"]);
    std::fs::rename(&saved, &log_key).unwrap();
    assert_eq!(env.head(), before);
    env.ok(&build);
}
