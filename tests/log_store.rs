//! A ledger of store version 3 (the chain in segment files, the indexes
//! following it; what `init` makes), through the real binary: the whole
//! story, a second writer kept out, lost indexes rebuilt, a torn tail
//! forgotten, a damaged entry reported, and a store version 2 ledger
//! converted.

mod common;

use std::path::PathBuf;

use common::{Env, digest, image};

fn log_ledger() -> (Env, String) {
    let env = Env::new();
    let genesis = env.init(&["--store", "log", "--log-key", &env.key("ledger")]);
    (env, genesis)
}

#[test]
fn init_makes_the_segment_log_and_refuses_to_make_store_version_2() {
    let (env, _) = Env::initialised_with_log_key();
    assert!(env.ledger().join("log").join("format").is_file() && env.ledger().join("index").is_dir());
    assert!(!env.ledger().join("store").exists(), "no sled store for the chain");
    let fresh = Env::new();
    let (root, policy) = (fresh.key("root"), fresh.path("policy.toml"));
    let out = fresh.fails(2, &["init", "--root-key", &root, "--policy", &policy, "--store", "sled"]);
    assert!(out.contains("no longer made"), "{out}");
    assert!(!fresh.ledger().exists(), "nothing was made");
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

/// The store version 2 fixture (made by the last build that wrote that
/// layout): `migrate` converts it to the same entries, head and signed
/// checkpoint, and every answer is the one that build gave; the converted
/// ledger verifies from its genesis and goes on taking appends; the old
/// files are kept; a second migrate has nothing to do. A conversion cut
/// short (its staging folder left) starts over; one cut short after its
/// log moved into place is finished by the next open.
#[test]
fn a_store_version_2_ledger_migrates_to_the_segment_log_unchanged() {
    let fixture = common::v2_fixture();
    let expected = |name: &str| std::fs::read_to_string(fixture.join("expected").join(name)).unwrap();
    let env = Env::new();
    let old = common::unpack_v2_fixture(&env.dir.path().join("v2"));
    let d = old.display().to_string();
    let report = env.json(&["--ledger", &d, "migrate"]);
    assert_eq!(report["migrated"], true);
    let verified: serde_json::Value = serde_json::from_str(expected("verify.json").lines().next().unwrap()).unwrap();
    assert_eq!(report["entries"], verified["entries"]);
    assert_eq!(report["head"], verified["head"]);
    assert!(old.join("log").join("format").is_file());
    assert!(old.join("store.v2").is_dir(), "the old files are kept");
    assert!(!old.join("store").exists() && !old.join("migrate.new").exists());
    // What the previous build answered, byte for byte.
    let run = |args: &[&str]| {
        let mut all = vec!["--ledger", &d];
        all.extend_from_slice(args);
        env.ok(&all)
    };
    let subject = expected("digest");
    assert_eq!(run(&["checkpoint"]), expected("checkpoint"), "the same signed checkpoint");
    assert_eq!(run(&["--json", "verify"]), expected("verify.json").lines().next().unwrap().to_string() + "\n");
    assert_eq!(run(&["--json", "show", subject.trim()]), expected("show.json"));
    assert_eq!(run(&["--json", "history", "--env", "prod"]), expected("history.json"));
    assert_eq!(run(&["--json", "log"]), expected("log.json"));
    run(&["verify", "--genesis", expected("genesis").trim()]);
    let ci = env.key("ci");
    run(&["record", "build", "--key", &ci, "--image", &image("new"), "--offline"]);
    assert_eq!(env.json(&["--ledger", &d, "verify"])["entries"], verified["entries"].as_u64().unwrap() + 1);
    assert_eq!(env.json(&["--ledger", &d, "migrate"])["migrated"], false, "nothing to do the second time");

    // Any command converts a store version 2 ledger as it opens it, and says so.
    let again = common::unpack_v2_fixture(&env.dir.path().join("opened"));
    let (code, out, err) = env.run(&["--ledger", &again.display().to_string(), "--json", "show", subject.trim()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expected("show.json"));
    assert!(err.contains("converted the ledger to store version 3") && err.contains("store.v2"), "{err}");

    // A migration cut short leaves its staging folder: the next one starts over.
    let cut = common::unpack_v2_fixture(&env.dir.path().join("cut"));
    std::fs::create_dir_all(cut.join("migrate.new").join("log")).unwrap();
    std::fs::write(cut.join("migrate.new").join("log").join("junk"), b"left by a kill").unwrap();
    let c = cut.display().to_string();
    assert_eq!(env.json(&["--ledger", &c, "migrate"])["entries"], verified["entries"]);
    env.ok(&["--ledger", &c, "verify"]);
    assert!(!cut.join("migrate.new").exists());

    // Cut short after the log moved into place: the old store is still
    // there and the index folder still staged. The next open finishes it.
    let late = common::unpack_v2_fixture(&env.dir.path().join("late"));
    let l = late.display().to_string();
    env.ok(&["--ledger", &l, "migrate"]);
    std::fs::rename(late.join("store.v2"), late.join("store")).unwrap();
    std::fs::create_dir_all(late.join("migrate.new")).unwrap();
    std::fs::rename(late.join("index"), late.join("migrate.new").join("index")).unwrap();
    assert_eq!(env.json(&["--ledger", &l, "verify"])["head"], verified["head"]);
    assert!(late.join("store.v2").is_dir() && !late.join("store").exists() && !late.join("migrate.new").exists());
}
