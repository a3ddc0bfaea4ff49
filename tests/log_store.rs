//! A ledger made with `init --store log` (store version 3: the chain in
//! segment files, the indexes following it), through the real binary: the
//! whole story, a second writer kept out, lost indexes rebuilt, a torn tail
//! forgotten, and a damaged entry reported.

mod common;

use std::path::PathBuf;

use common::{Env, digest, image};

fn log_ledger() -> (Env, String) {
    let env = Env::new();
    let genesis = env.init(&["--store", "log", "--log-key", &env.key("ledger")]);
    (env, genesis)
}

fn segments(env: &Env) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = std::fs::read_dir(env.ledger().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    s.sort();
    s
}

#[test]
fn the_whole_story_runs_on_the_segment_log() {
    let (env, genesis) = log_ledger();
    assert!(env.ledger().join("log").join("format").is_file(), "the chain is in log/");
    assert!(!env.ledger().join("store").exists(), "no sled store of the chain");
    let app = image("story");
    env.release_to_prod(&app);
    let (_, size) = env.head();
    assert_eq!(size, 7);
    env.ok(&["verify", "--genesis", &genesis]);
    // Offline evidence made from it verifies.
    let bundle = env.path("b.bundle");
    env.ok(&["export", "--out", &bundle]);
    env.ok(&["verify", "--bundle", &bundle, "--genesis", &genesis]);
    let proof = env.path("p.json");
    env.ok(&["prove", &digest("story"), "--env", "prod", "--out", &proof]);
    env.ok(&["verify", "--proof", &proof, "--genesis", &genesis]);
    let shown = env.json(&["show", &digest("story")]);
    assert_eq!(shown["promotions"].as_array().unwrap().len(), 3);
    let history = env.json(&["history", "--env", "prod"]);
    assert_eq!(history["current"], digest("story").as_str());
    // The rules hold: a failed check denies, a replay is refused.
    let other = image("failing");
    env.build(&other);
    env.validate(&other, &["unit=fail"]);
    let key = env.key("release");
    let out = env.fails(3, &["promote", "--key", &key, "--image", &other, "--to", "dev", "--offline"]);
    assert!(out.contains("\"unit\" failed"), "{out}");
    let out = env.fails(1, &["init", "--root-key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    assert!(out.contains("already holds a ledger"), "{out}");
}

#[test]
fn lost_indexes_are_rebuilt_and_answers_do_not_change() {
    let (env, genesis) = log_ledger();
    env.release_to_prod(&image("ix"));
    let before = env.json(&["show", &digest("ix")]);
    std::fs::remove_dir_all(env.ledger().join("index")).unwrap();
    assert_eq!(env.json(&["show", &digest("ix")]), before, "the same answer from rebuilt indexes");
    env.ok(&["verify", "--genesis", &genesis]);
    // Garbage in place of the index store: made again as well.
    std::fs::remove_dir_all(env.ledger().join("index")).unwrap();
    std::fs::write(env.ledger().join("index"), b"not a database").unwrap();
    assert_eq!(env.json(&["show", &digest("ix")]), before, "made again from the log");
    // reindex makes them anew on demand, from every entry.
    let (_, size) = env.head();
    assert_eq!(env.json(&["reindex"])["entries"], size);
    assert_eq!(env.json(&["show", &digest("ix")]), before, "the same answer after reindex");
}

#[test]
fn a_torn_tail_is_forgotten_and_a_damaged_entry_is_reported() {
    let (env, genesis) = log_ledger();
    env.build(&image("t1"));
    env.build(&image("t2"));
    let (head, size) = env.head();
    // Bytes of a write cut short after the last acknowledged group.
    let seg = segments(&env).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let acknowledged = bytes.len();
    bytes.extend_from_slice(&[0x40, 0, 0, 0, 0xbf, 0xff]);
    std::fs::write(&seg, &bytes).unwrap();
    assert_eq!(env.head(), (head.clone(), size), "the torn tail is not an entry");
    env.build(&image("t3"));
    assert_eq!(env.head().1, size + 1, "appends go on after it");
    // A flipped byte inside an acknowledged entry is corruption, exit 4.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[acknowledged / 2] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let out = env.fails(4, &["verify", "--genesis", &genesis]);
    assert!(out.contains("corrupt at entry"), "{out}");
}

#[test]
fn a_second_writer_is_kept_out_while_the_ledger_is_served() {
    let (env, _) = log_ledger();
    let mut served = common::server::Served::start(&env.ledger(), &[]);
    let key = env.key("ci");
    let img = image("locked");
    let out = env.fails(
        1,
        &[
            "--lock-timeout",
            "1",
            "record",
            "build",
            "--key",
            &key,
            "--image",
            &img,
            "--offline",
            "--git-sha",
            common::GIT_SHA,
        ],
    );
    assert!(out.contains("in use"), "{out}");
    served.kill();
    env.build(&img);
}

/// A ledger of the previous layout (store version 2, sled, made by `init`
/// without `--store`) is migrated: the same entries, head and signed
/// checkpoint, the same answers, verified from its genesis; it goes on
/// taking appends; the old files are kept; a second migrate has nothing to do.
#[test]
fn a_store_version_2_ledger_migrates_to_the_segment_log_unchanged() {
    let (env, genesis) = Env::initialised_with_log_key();
    assert!(env.ledger().join("store").is_dir(), "the previous layout");
    env.release_to_prod(&image("old"));
    let head = env.head();
    let note = env.ok(&["checkpoint"]);
    let shown = env.json(&["show", &digest("old")]);
    let history = env.json(&["history", "--env", "prod"]);
    let report = env.json(&["migrate"]);
    assert_eq!(report["migrated"], true);
    assert_eq!(report["entries"], head.1);
    assert_eq!(report["head"], head.0.as_str());
    assert!(env.ledger().join("log").join("format").is_file());
    assert!(env.ledger().join("store.v2").is_dir(), "the old files are kept");
    assert!(!env.ledger().join("store").exists());
    assert!(!env.ledger().join("migrate.new").exists());
    assert_eq!(env.head(), head, "the same head");
    assert_eq!(env.ok(&["checkpoint"]), note, "the same signed checkpoint");
    assert_eq!(env.json(&["show", &digest("old")]), shown);
    assert_eq!(env.json(&["history", "--env", "prod"]), history);
    env.ok(&["verify", "--genesis", &genesis]);
    env.build(&image("new"));
    assert_eq!(env.head().1, head.1 + 1);
    assert_eq!(env.json(&["migrate"])["migrated"], false, "nothing to do the second time");
    // A migration cut short leaves its staging folder: the next one starts over.
    let (env2, _) = Env::initialised_with_log_key();
    env2.build(&image("again"));
    std::fs::create_dir_all(env2.ledger().join("migrate.new").join("log")).unwrap();
    std::fs::write(env2.ledger().join("migrate.new").join("log").join("junk"), b"left by a kill").unwrap();
    assert_eq!(env2.json(&["migrate"])["entries"], 2);
    env2.ok(&["verify"]);
}
