//! The indexes as followers of the log: made from the entries alone, they
//! answer every query as the store that wrote them with the entries does,
//! catch up from where they stopped, refuse to run ahead of the log, and
//! can be rebuilt.

mod common;

use std::time::Duration;

use common::{Env, GIT_SHA, digest, image};
use provledger::store::index::Indexes;
use provledger::store::local::LocalStore;
use provledger::store::log::{Group, Log, MemLog};
use provledger::store::{NewEntry, Store, source_key};

/// A ledger with every kind of row: builds (one in a release, with its
/// artifact), validations, promotions into two environments, and a second
/// policy entry.
fn ledger() -> Env {
    let (env, _) = Env::initialised_with_log_key();
    let app = image("app");
    env.release_to_prod(&app);
    let api = format!("registry.example.com/acme/api:r1@{}", digest("api"));
    env.build_with(&api, &["--git-sha", GIT_SHA, "--release", "r1", "--artifact", "api"]);
    env.ok(&["record", "policy", "--key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    env.validate(&api, &["unit=pass"]);
    env
}

/// The chain's entries, copied into a log of their own (one group per
/// `chunk` entries, so that catching up crosses groups).
fn log_of(store: &LocalStore, upto: u64, chunk: usize) -> MemLog {
    let entries: Vec<Vec<u8>> = store.entries_from(0).take(upto as usize).map(|r| r.unwrap().1).collect();
    let head = store.head().unwrap().unwrap();
    let log = MemLog::new();
    let mut done = 0u64;
    let mut before = None;
    for group in entries.chunks(chunk) {
        done += group.len() as u64;
        let h = provledger::store::Head { count: done, ..head };
        log.append(
            before.as_ref(),
            &Group {
                entries: &group.iter().map(Vec::as_slice).collect::<Vec<_>>(),
                nodes: &[],
                checkpoint: "cp\n",
                head: &h,
            },
        )
        .unwrap();
        before = Some(h);
    }
    log
}

fn store(env: &Env) -> LocalStore {
    LocalStore::open(&env.ledger(), Duration::from_secs(5)).unwrap()
}

/// Every query, asked of both.
fn same_answers(store: &LocalStore, ix: &Indexes) {
    for seed in ["app", "api", "absent"] {
        let d: provledger::core::digest::Digest = digest(seed).parse().unwrap();
        assert_eq!(ix.entries_for_subject(&d).unwrap(), store.entries_for_subject(&d).unwrap(), "subject {seed}");
    }
    for env in ["dev", "staging", "prod", "qa"] {
        assert_eq!(ix.promotions_into(env).unwrap(), store.promotions_into(env).unwrap(), "environment {env}");
    }
    assert_eq!(ix.policy_entries().unwrap(), store.policy_entries().unwrap(), "policies");
    assert_eq!(ix.policy_entries().unwrap().len(), 2, "the genesis and the second policy");
    assert_eq!(ix.builds_of_release("r1").unwrap(), store.builds_of_release("r1").unwrap(), "release r1");
    assert_eq!(ix.builds_of_release("r1").unwrap().len(), 1);
    for artifact in [None, Some("api")] {
        let key = source_key(GIT_SHA, artifact);
        assert_eq!(ix.builds_of_source(&key).unwrap(), store.builds_of_source(&key).unwrap(), "source {artifact:?}");
    }
    for item in store.entries_from(0) {
        let (index, bytes) = item.unwrap();
        let row = NewEntry::of_bytes(index, &bytes).unwrap();
        let fp = row.envelope_fingerprint;
        assert!(ix.has_envelope(&fp).unwrap());
        assert_eq!(ix.envelope_entry(&fp).unwrap(), Some(index), "envelope of entry {index}");
    }
}

fn rows(store: &LocalStore) -> Vec<NewEntry> {
    store.entries_from(0).map(|r| r.unwrap()).map(|(i, b): (u64, Vec<u8>)| NewEntry::of_bytes(i, &b).unwrap()).collect()
}

#[test]
fn indexes_made_from_the_log_alone_answer_as_the_store_does() {
    let env = ledger();
    let store = store(&env);
    let size = store.head().unwrap().unwrap().count;
    let log = log_of(&store, size, 3);
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(&dir.path().join("index")).unwrap();
    assert_eq!(ix.catch_up(&log).unwrap(), size);
    assert_eq!(ix.applied().unwrap(), size);
    same_answers(&store, &ix);
    // Every row, and no other, as the chain implies them; the store's own
    // indexes agree with the same rows.
    let rows = rows(&store);
    assert_eq!(ix.check_rows(&rows).unwrap(), None);
    assert_eq!(store.check_rows(&rows).unwrap(), None);
    // A row short is found, at its entry.
    let mut fewer = rows.clone();
    fewer[4].subjects.clear();
    let m = ix.check_rows(&fewer).unwrap().expect("a row the chain does not imply");
    assert_eq!(m.index, 4, "{m:?}");
}

#[test]
fn a_follower_catches_up_from_where_it_stopped_and_survives_reopening() {
    let env = ledger();
    let store = store(&env);
    let size = store.head().unwrap().unwrap().count;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    {
        let ix = Indexes::open(&path).unwrap();
        assert_eq!(ix.catch_up(&log_of(&store, 5, 2)).unwrap(), 5);
        ix.flush().unwrap();
    }
    let ix = Indexes::open(&path).unwrap();
    assert_eq!(ix.applied().unwrap(), 5, "the mark survives reopening");
    let full = log_of(&store, size, 4);
    assert_eq!(ix.catch_up(&full).unwrap(), size - 5, "only what is new is applied");
    assert_eq!(ix.catch_up(&full).unwrap(), 0, "caught up: nothing to do");
    same_answers(&store, &ix);
    assert_eq!(ix.check_rows(&rows(&store)).unwrap(), None, "no row applied twice or missed");
}

#[test]
fn indexes_ahead_of_the_log_are_refused_and_rebuilt() {
    let env = ledger();
    let store = store(&env);
    let size = store.head().unwrap().unwrap().count;
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(&dir.path().join("index")).unwrap();
    ix.catch_up(&log_of(&store, size, 5)).unwrap();
    // Another, shorter log: the indexes hold rows it does not.
    let short = log_of(&store, 3, 3);
    let err = ix.catch_up(&short).unwrap_err().to_string();
    assert!(err.contains("rebuild"), "{err}");
    assert_eq!(ix.rebuild(&short).unwrap(), 3);
    assert_eq!(ix.applied().unwrap(), 3);
    assert_eq!(ix.check_rows(&rows(&store)[..3]).unwrap(), None, "exactly the rows of the short log");
    // Rows out of order are refused, and change nothing.
    let later = rows(&store)[5..6].to_vec();
    assert!(ix.apply(&later).is_err());
    assert_eq!(ix.applied().unwrap(), 3);
}

#[test]
fn a_deleted_index_store_costs_a_rebuild_not_an_entry() {
    let env = ledger();
    let store = store(&env);
    let size = store.head().unwrap().unwrap().count;
    let log = log_of(&store, size, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    {
        let ix = Indexes::open(&path).unwrap();
        ix.catch_up(&log).unwrap();
        ix.flush().unwrap();
    }
    std::fs::remove_dir_all(&path).unwrap();
    let ix = Indexes::open(&path).unwrap();
    assert_eq!(ix.applied().unwrap(), 0);
    assert_eq!(ix.catch_up(&log).unwrap(), size);
    same_answers(&store, &ix);
}

/// A ledger on an in-memory log and follower indexes: a chain replicated
/// into it verifies, appends through it follow the chain rules, and every
/// audit answer matches the ledger directory it came from.
#[test]
fn a_ledger_on_a_log_with_follower_indexes_verifies_appends_and_answers() {
    use provledger::ledger::Ledger;
    use provledger::store::logstore::LogStore;
    let env = ledger();
    let (dir_ledger, entries, checkpoint) = chain(&env);
    let dir = tempfile::tempdir().unwrap();
    let logged = LogStore::new(MemLog::new(), Indexes::open(&dir.path().join("index")).unwrap()).unwrap();
    let ledger = Ledger::new(logged);
    ledger.append_replicated(&entries, &checkpoint).unwrap();
    let report = ledger.verify(None, |_| {}).unwrap();
    assert_eq!(report.entries, entries.len() as u64);
    assert_eq!(ledger.checkpoint().unwrap().note, checkpoint, "the same signed checkpoint");
    answers_alike(&ledger, &dir_ledger);
    // Appending: the rules hold (a replay is refused, by the follower's
    // envelope index), a new build is appended and indexed.
    let key = provledger::keyfile::read_secret(&env.ledger().join("log.key"), false).unwrap();
    let ledger = ledger.with_log_key(key);
    let replay = provledger::core::entry::UnverifiedEntry::decode(&entries[1]).unwrap().envelope;
    let err = ledger.append(replay, 2_000_000_000).unwrap_err().to_string();
    assert!(err.contains("replayed"), "{err}");
    let fresh = common::build_envelope(env.dir.path(), "fresh", 2_000_000_000);
    let v = ledger.append(fresh, 2_000_000_000).unwrap();
    assert_eq!(v.index(), entries.len() as u64);
    let d: provledger::core::digest::Digest = digest("fresh").parse().unwrap();
    assert_eq!(ledger.store().entries_for_subject(&d).unwrap(), vec![v.index()]);
    ledger.verify(None, |_| {}).unwrap();
}

/// The same on the embedded segment log, across a clean reopen and a crash
/// (the log dropped without its clean-close work): the chain and the
/// indexes come back, and indexes deleted meanwhile are rebuilt on open.
#[test]
fn a_ledger_on_the_segment_log_survives_reopening_a_crash_and_lost_indexes() {
    use provledger::ledger::Ledger;
    use provledger::store::logstore::LogStore;
    use provledger::store::segment::SegmentLog;
    let env = ledger();
    let (dir_ledger, entries, checkpoint) = chain(&env);
    let dir = tempfile::tempdir().unwrap();
    let (log_dir, index_dir) = (dir.path().join("log"), dir.path().join("index"));
    let open = || {
        let store = LogStore::new(SegmentLog::open(&log_dir).unwrap(), Indexes::open(&index_dir).unwrap()).unwrap();
        Ledger::new(store)
    };
    let ledger = open();
    ledger.append_replicated(&entries, &checkpoint).unwrap();
    drop(ledger);
    let ledger = open();
    assert_eq!(ledger.verify(None, |_| {}).unwrap().entries, entries.len() as u64);
    assert_eq!(ledger.checkpoint().unwrap().note, checkpoint);
    let key = provledger::keyfile::read_secret(&env.ledger().join("log.key"), false).unwrap();
    let ledger = ledger.with_log_key(key);
    let build = |seed: &str| common::build_envelope(env.dir.path(), seed, 2_000_000_000);
    ledger.append(build("before-crash"), 2_000_000_000).unwrap();
    let v = ledger.append(build("after"), 2_000_000_000).unwrap();
    let (log, indexes) = ledger.into_store().into_parts();
    log.crash();
    drop(indexes);
    std::fs::remove_dir_all(&index_dir).unwrap();
    let ledger = open();
    assert_eq!(ledger.store().head().unwrap().unwrap().count, v.index() + 1, "the acknowledged append survived");
    let d: provledger::core::digest::Digest = digest("after").parse().unwrap();
    assert_eq!(ledger.store().entries_for_subject(&d).unwrap(), vec![v.index()], "indexes rebuilt from the log");
    ledger.verify(None, |_| {}).unwrap();
    answers_alike(&ledger, &dir_ledger);
}

type DirLedger = provledger::ledger::Ledger<LocalStore>;

/// The ledger of `env`, its entries' bytes and its signed checkpoint.
fn chain(env: &Env) -> (DirLedger, Vec<Vec<u8>>, String) {
    let ledger = provledger::ledger::Ledger::new(store(env));
    let entries = ledger.store().entries_from(0).map(|r| r.unwrap().1).collect();
    let checkpoint = ledger.checkpoint().unwrap().note;
    (ledger, entries, checkpoint)
}

/// `show` and `history` answer alike on both ledgers.
fn answers_alike<S: Store>(ledger: &provledger::ledger::Ledger<S>, dir_ledger: &DirLedger) {
    for seed in ["app", "api"] {
        let d = digest(seed).parse().unwrap();
        let ours = serde_json::to_value(provledger::audit::show(ledger, &d).unwrap()).unwrap();
        let theirs = serde_json::to_value(provledger::audit::show(dir_ledger, &d).unwrap()).unwrap();
        assert_eq!(ours, theirs, "show {seed}");
    }
    for env in ["dev", "prod"] {
        let ours = serde_json::to_value(provledger::audit::history(ledger, env).unwrap()).unwrap();
        let theirs = serde_json::to_value(provledger::audit::history(dir_ledger, env).unwrap()).unwrap();
        assert_eq!(ours, theirs, "history {env}");
    }
}

/// An index store of the first layout (one sled tree per index, before they
/// shared one tree) is made anew from the log when the ledger opens.
#[test]
fn an_index_store_of_the_first_layout_is_made_anew() {
    let env = ledger();
    let head = env.head();
    let before = env.json(&["show", &digest("app")]);
    let index = env.ledger().join("index");
    std::fs::remove_dir_all(&index).unwrap();
    {
        let db = sled::open(&index).unwrap();
        db.open_tree("subjects").unwrap().insert(b"stale", b"").unwrap();
        db.open_tree("follower").unwrap().insert(b"applied", &99u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    env.ok(&["verify"]);
    assert_eq!(env.head(), head);
    assert_eq!(env.json(&["show", &digest("app")]), before, "the same answers from the indexes made anew");
    let db = sled::open(&index).unwrap();
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"subjects"), "the old trees are gone");
}
