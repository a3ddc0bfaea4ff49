//! The offline audit bundle: export, verification with nothing but the
//! genesis hash, the tamper matrix, and consistency with earlier checkpoints.

mod common;

use common::{Env, image};
use provledger::bundle::{BundleError, BundleReader, verify_bundle};
use provledger::core::hash::EntryHash;
use provledger::verify::Failure;

/// A small ledger taken through dev, staging and prod, and its bundle.
fn exported() -> (Env, String, Vec<u8>) {
    let (env, genesis) = Env::initialised_with_log_key();
    env.release_to_prod(&image("bundle"));
    env.build(&image("bundle-2"));
    let out = env.path("ledger.bundle");
    env.ok(&["export", "--out", &out]);
    let bytes = std::fs::read(&out).unwrap();
    (env, genesis, bytes)
}

fn genesis_hash(g: &str) -> EntryHash {
    EntryHash::parse(g).unwrap()
}

/// The exit code the CLI gives a bundle error (see `verify --bundle`).
fn exit_code(e: &BundleError) -> i32 {
    match e {
        BundleError::Verify(v) if matches!(v.failure, Failure::Newer | Failure::Io) => 1,
        BundleError::NewerVersion(_) | BundleError::Io(_) => 1,
        _ => 4,
    }
}

/// The header and every entry, as read.
fn contents(bytes: &[u8]) -> Option<(String, Vec<Vec<u8>>)> {
    let mut r = BundleReader::open(bytes).ok()?;
    let mut entries = Vec::new();
    while let Some(e) = r.next_entry() {
        entries.push(e.ok()?);
    }
    Some((r.checkpoint_note, entries))
}

#[test]
fn a_bundle_verifies_offline_from_the_genesis_hash_alone() {
    let (env, genesis, _) = exported();
    let cp = env.json(&["checkpoint"]);
    let bundle = env.path("ledger.bundle");
    // No store: the ledger directory is gone.
    std::fs::remove_dir_all(env.ledger()).unwrap();
    let v = env.json(&["verify", "--bundle", &bundle, "--genesis", &genesis]);
    assert_eq!(v["entries"], 8);
    assert_eq!(v["checkpoint"]["root"], cp["root"]);
    assert_eq!(v["checkpoint"]["verifier_key"], cp["verifier_key"]);
    assert_eq!(v["head"].as_str().unwrap().len(), 64);
    // Without --genesis there is nothing to anchor it to.
    env.fails(2, &["verify", "--bundle", &bundle]);
}

#[test]
fn every_flipped_byte_fails_or_changes_nothing() {
    let (env, genesis, original) = exported();
    let genesis = genesis_hash(&genesis);
    verify_bundle(original.as_slice(), &genesis, None, |_| {}).unwrap();
    let unchanged = contents(&original).unwrap();
    let mut failures = [0usize; 5];
    for pos in 0..original.len() {
        for mask in [0x01u8, 0xff] {
            let mut b = original.clone();
            b[pos] ^= mask;
            match verify_bundle(b.as_slice(), &genesis, None, |_| {}) {
                Ok(_) => assert_eq!(contents(&b).as_ref(), Some(&unchanged), "byte {pos} ^ {mask:#x} verified"),
                Err(e) => {
                    let code = exit_code(&e);
                    // Only the version field can claim a newer format.
                    if code == 1 {
                        assert!((18..20).contains(&pos), "byte {pos}: {e}");
                        assert!(e.to_string().contains("upgrade"), "{e}");
                    }
                    failures[code as usize] += 1;
                }
            }
        }
    }
    assert_eq!(failures[4] + failures[1], 2 * original.len(), "every flip is refused");
    // The binary agrees on a spread of positions, including the header,
    // the checkpoint, and the first and last entries.
    let path = env.path("tampered.bundle");
    let g = genesis.to_string();
    for pos in (0..original.len()).step_by(original.len() / 23).chain([0, 19, 30, original.len() - 1]) {
        let mut b = original.clone();
        b[pos] ^= 0x01;
        std::fs::write(&path, &b).unwrap();
        // The version field (bytes 18..20) reads as newer (exit 1, "upgrade") or unknown.
        let newer = u16::from_be_bytes([b[18], b[19]]) > provledger::bundle::BUNDLE_VERSION;
        let want = if newer { 1 } else { 4 };
        let out = env.fails(want, &["verify", "--bundle", &path, "--genesis", &g]);
        assert!(out.contains("verification failed") || out.contains("upgrade"), "byte {pos}: {out}");
    }
}

/// Re-assembles a bundle from a header and entries.
fn assemble(note: &str, count: u64, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    provledger::bundle::write_header(&mut out, note, count).unwrap();
    for e in entries {
        provledger::bundle::write_entry(&mut out, e).unwrap();
    }
    out
}

#[test]
fn removed_reordered_inserted_entries_and_foreign_checkpoints_fail() {
    let (env, genesis, original) = exported();
    let g = genesis_hash(&genesis);
    let (note, entries) = contents(&original).unwrap();
    let n = entries.len() as u64;
    let check = |what: &str, bytes: Vec<u8>, needle: &str| {
        let e = verify_bundle(bytes.as_slice(), &g, None, |_| {}).expect_err(what);
        assert_eq!(exit_code(&e), 4, "{what}: {e}");
        assert!(e.to_string().contains(needle), "{what}: {e} lacks {needle:?}");
    };
    let mut removed = entries.clone();
    removed.remove(4);
    check("entry removed", assemble(&note, n, &removed), "entry 4 is missing");
    check("entry removed, count fixed", assemble(&note, n - 1, &removed), "the checkpoint 8");
    let mut last_removed = entries.clone();
    last_removed.pop();
    check("last entry removed, count fixed", assemble(&note, n - 1, &last_removed), "the checkpoint 8");
    let mut swapped = entries.clone();
    swapped.swap(3, 4);
    check("entries reordered", assemble(&note, n, &swapped), "entry 3");
    let mut inserted = entries.clone();
    inserted.insert(5, entries[4].clone());
    check("entry duplicated", assemble(&note, n + 1, &inserted), "the checkpoint 8");
    check("entry duplicated, count kept", assemble(&note, n, &inserted), "index 4 is out of order");
    let mut appended = entries.clone();
    appended.push(entries[7].clone());
    check("trailing garbage", [original.clone(), vec![0u8; 3]].concat(), "data after the last");
    check("entry appended", assemble(&note, n + 1, &appended), "the checkpoint 8");
    check("empty file", Vec::new(), "truncated");
    check("not a bundle", b"{\"entries\": []}\n plus some more text here".to_vec(), "not a provledger bundle");

    // The same checkpoint text signed by another key, under the log's name.
    let text = note.split_once("\n\n").unwrap().0.to_string() + "\n";
    let origin = text.lines().next().unwrap();
    let other = provledger::keyfile::read_secret(std::path::Path::new(&env.key("root")), false).unwrap();
    let forged = provledger::core::note::sign_note(&text, origin, &other).unwrap();
    check("checkpoint by another key", assemble(&forged, n, &entries), "no verifiable signatures");
    // Another key, and the verifier key of that key as the origin.
    let name = "attacker.example/log";
    let forged = provledger::core::note::sign_note(&text.replacen(origin, name, 1), name, &other).unwrap();
    check("checkpoint of another log", assemble(&forged, n, &entries), "checkpoint");

    // A different genesis: the bundle is someone else's ledger.
    let other_genesis = genesis_hash(&"ab".repeat(32));
    let e = verify_bundle(original.as_slice(), &other_genesis, None, |_| {}).unwrap_err();
    assert!(e.to_string().contains("genesis hash is"), "{e}");
    let path = env.path("ledger.bundle");
    let out = env.fails(4, &["verify", "--bundle", &path, "--genesis", &"ab".repeat(32)]);
    assert!(out.contains("entry 0") && out.contains("genesis hash is"), "{out}");
}

#[test]
fn an_earlier_checkpoint_proves_the_bundle_extends_it_and_a_rewrite_fails() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.release_to_prod(&image("since"));
    let seen = env.path("seen.checkpoint");
    env.ok(&["checkpoint", "--out", &seen]);
    // A copy of the ledger at this point, whose history goes another way below.
    let fork_env = Env::new();
    common::copy_dir(&env.ledger(), &fork_env.ledger());
    env.build(&image("later"));
    env.validate(&image("later"), &["unit=pass"]);
    let bundle = env.path("later.bundle");
    env.ok(&["export", "--out", &bundle]);
    let v = env.json(&["verify", "--bundle", &bundle, "--genesis", &genesis, "--since", &seen]);
    let seen_size = v["since"]["size"].as_u64().unwrap();
    assert_eq!(seen_size, 7);
    assert_eq!(v["entries"], 9);

    // The copy records another entry 7: from there on, two histories.
    fork_env.build(&image("rewritten"));
    let fork_seen = env.path("fork.checkpoint");
    fork_env.ok(&["checkpoint", "--out", &fork_seen]);
    // The fork's checkpoint (size 8) against the main history (size 9).
    let out = env.fails(4, &["verify", "--bundle", &bundle, "--genesis", &genesis, "--since", &fork_seen]);
    assert!(out.contains("history was rewritten"), "{out}");
    // And the main history's checkpoint against the fork's bundle.
    let fork_bundle = env.path("fork.bundle");
    fork_env.ok(&["export", "--out", &fork_bundle]);
    let main_seen = env.path("main.checkpoint");
    env.ok(&["checkpoint", "--out", &main_seen]);
    let out = env.fails(4, &["verify", "--bundle", &fork_bundle, "--genesis", &genesis, "--since", &main_seen]);
    assert!(out.contains("tree size 9, the bundle 8"), "{out}");
    // The checkpoint both saw verifies against both.
    fork_env.ok(&["verify", "--bundle", &fork_bundle, "--genesis", &genesis, "--since", &seen]);

    // An earlier checkpoint signed by another key is refused.
    let text = std::fs::read_to_string(&seen).unwrap();
    let body = text.split_once("\n\n").unwrap().0.to_string() + "\n";
    let origin = body.lines().next().unwrap();
    let other = provledger::keyfile::read_secret(std::path::Path::new(&env.key("qa")), false).unwrap();
    std::fs::write(&seen, provledger::core::note::sign_note(&body, origin, &other).unwrap()).unwrap();
    let out = env.fails(4, &["verify", "--bundle", &bundle, "--genesis", &genesis, "--since", &seen]);
    assert!(out.contains("earlier checkpoint"), "{out}");
}

#[test]
fn stored_tree_proofs_verify_against_signed_roots() {
    use provledger::tree;
    let (env, _) = Env::initialised_with_log_key();
    env.release_to_prod(&image("tree"));
    env.build(&image("tree-2"));
    let ledger = provledger::ledger::Ledger::new(env.store());
    let cp = ledger.checkpoint().unwrap();
    let n = cp.checkpoint.size;
    assert_eq!(n, 8);
    assert_eq!(ledger.root_at(n).unwrap(), cp.checkpoint.root);
    let leaves: Vec<tree::Hash> =
        (0..n).map(|i| provledger::ledger::leaf_of(&ledger.read(i).unwrap().entry.hash())).collect();
    for m in 1..=n {
        let root_m = ledger.root_at(m).unwrap();
        assert_eq!(root_m, tree::root(&leaves[..m as usize]), "root at {m}");
        let p = ledger.consistency_proof(m, n).unwrap();
        tree::verify_consistency(m, n, &p, &root_m, &cp.checkpoint.root).unwrap();
        for i in 0..m {
            let p = ledger.inclusion_proof(i, m).unwrap();
            tree::verify_inclusion(i, m, &leaves[i as usize], &p, &root_m).unwrap();
        }
    }
    assert!(ledger.root_at(n + 1).is_err(), "no root beyond the head");
    assert!(ledger.inclusion_proof(0, n + 1).is_err());
}

#[test]
fn no_progress_output_when_not_on_a_terminal() {
    let (env, genesis, _) = exported();
    let (code, out, err) = env.run(&["verify", "--bundle", &env.path("ledger.bundle"), "--genesis", &genesis]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: bundle of 8 entries"), "{out}");
    assert!(err.is_empty(), "standard error is not a terminal here: {err:?}");
}

#[test]
fn a_store_that_does_not_match_its_checkpoint_is_never_exported() {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("first"));
    env.build(&image("second"));
    provledger::store::tamper::edit(&env.ledger(), |c| {
        c.entries.remove(1);
        c.head.count -= 1;
    })
    .unwrap();
    let out = env.path("gap.bundle");
    let msg = env.fails(4, &["export", "--out", &out]);
    assert!(msg.contains("export refused") && msg.contains("do not match the checkpoint of size 3"), "{msg}");
    assert!(!std::path::Path::new(&out).exists(), "no file is left");
}
