//! The ledger in PostgreSQL, against real servers started here (see
//! `common/pg.rs`): the log conformance suite, a chain replicated in that
//! verifies and answers as its ledger directory does, the schema's version
//! kept in the database, and append-only enforced in the database and,
//! when an operator goes around that, caught by `verify`.

mod common;

use common::pg::Cluster;
use common::{Env, digest, image};
use provledger::ledger::Ledger;
use provledger::store::Store as _;
use provledger::store::log::{LogError, conformance};
use provledger::store::postgres::{PgLog, PgStore};

#[test]
fn the_postgres_log_conforms() {
    let cluster = Cluster::start();
    let n = std::cell::Cell::new(0);
    let fresh = || {
        n.set(n.get() + 1);
        PgLog::connect(&cluster.create_db(&format!("conform_{}", n.get()))).unwrap()
    };
    let reopen = |log: PgLog| {
        let url = cluster.url(&format!("conform_{}", n.get()));
        drop(log);
        PgLog::connect(&url).unwrap()
    };
    conformance::run(&fresh, Some(&reopen));
    // Two logs (as two servers would hold) on one database: the head row's
    // lock orders them; one append of two expecting the same head succeeds.
    let url = cluster.create_db("two");
    let (a, b) = (PgLog::connect(&url).unwrap(), PgLog::connect(&url).unwrap());
    conformance::append_range(&a, 0, 3).unwrap();
    conformance::holds(&b, 3);
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| conformance::append_range(&a, 3, 5));
        let tb = s.spawn(|| conformance::append_range(&b, 3, 6));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(ra.is_ok() != rb.is_ok(), "exactly one of two racing appends succeeds: {ra:?} {rb:?}");
    assert!(matches!(ra.as_ref().err().or(rb.as_ref().err()), Some(LogError::HeadMoved)), "{ra:?} {rb:?}");
    let size = if ra.is_ok() { 5 } else { 6 };
    conformance::holds(&a, size);
    conformance::holds(&b, size);
}

/// A server's log keeps the tree nodes it has read or written; a database
/// that went back (a backup restored, an asynchronous standby promoted)
/// is seen at the next head read, and nothing stale is answered: not a
/// node the database no longer holds, nor one a different chain replaced.
#[test]
fn a_database_that_went_back_is_not_answered_from_memory() {
    use provledger::store::NodeWrite;
    use provledger::store::log::{Group, Log as _};
    let cluster = Cluster::start();
    let url = cluster.create_db("went_back");
    let (a, b) = (PgLog::connect(&url).unwrap(), PgLog::connect(&url).unwrap());
    conformance::append_range(&a, 0, 8).unwrap();
    let leaf5 = a.node(0, 5).unwrap().expect("leaf 5");
    let go_back = || {
        cluster.sql(
            "went_back",
            "ALTER TABLE provledger_entries DISABLE TRIGGER USER; ALTER TABLE provledger_nodes DISABLE TRIGGER USER; \
             ALTER TABLE provledger_head DISABLE TRIGGER USER; \
             DELETE FROM provledger_entries WHERE idx >= 4; DELETE FROM provledger_nodes WHERE ((idx + 1) << level) > 4; \
             UPDATE provledger_head SET count = 4, indexed = 4, last_time = 1700000004, policy_index = 0, \
             hash = decode('0000000000000004' || repeat('0', 48), 'hex'); \
             ALTER TABLE provledger_entries ENABLE TRIGGER USER; ALTER TABLE provledger_nodes ENABLE TRIGGER USER; \
             ALTER TABLE provledger_head ENABLE TRIGGER USER",
        );
    };
    // Gone back, nothing written since: the head says so and the node is gone.
    go_back();
    assert_eq!(a.head().unwrap().map(|h| h.count), Some(4));
    assert_eq!(a.node(0, 5).unwrap(), None, "a node the database no longer holds");
    // Back to size 8 with other entries (written by another process):
    // the same count, another head hash.
    conformance::append_range(&a, 4, 8).unwrap();
    assert_eq!(a.node(0, 5).unwrap(), Some(leaf5));
    go_back();
    let entries: Vec<Vec<u8>> = (4..8u64).map(|i| vec![0xee; 10 + i as usize]).collect();
    let nodes: Vec<NodeWrite> = (4..8).map(|i| NodeWrite { level: 0, index: i, hash: [i as u8 ^ 0x5a; 32] }).collect();
    let mut other = conformance::head(8);
    other.hash = provledger::core::hash::EntryHash::from_slice(&[0x77; 32]).unwrap();
    b.append(
        Some(&conformance::head(4)),
        &Group {
            entries: &entries.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            nodes: &nodes,
            checkpoint: "other\n8\n",
            head: &other,
        },
    )
    .unwrap();
    assert_eq!(a.head().unwrap(), Some(other));
    assert_eq!(a.node(0, 5).unwrap(), Some([5 ^ 0x5a; 32]), "the node of the chain the database holds now");
}

#[test]
fn a_newer_schema_is_refused_with_upgrade() {
    let cluster = Cluster::start();
    let url = cluster.create_db("newer");
    drop(PgLog::connect(&url).unwrap());
    cluster.sql("newer", "UPDATE provledger_schema SET version = version + 1");
    let err = PgLog::connect(&url).err().expect("refused");
    assert!(matches!(err, LogError::Newer { .. }) && err.to_string().contains("upgrade"), "{err}");
    // An unreachable server is named, without the password.
    let err = PgLog::connect("postgres://postgres:s3cret@127.0.0.1:1/none").err().expect("refused");
    assert!(matches!(err, LogError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:1") && !err.to_string().contains("s3cret"), "{err}");
}

/// A ledger directory's chain, replicated into PostgreSQL.
fn replicated(env: &Env, cluster: &Cluster, db: &str) -> Ledger<PgStore> {
    let dir = Ledger::new(env.store());
    let entries: Vec<Vec<u8>> = dir.store().entries_from(0).map(|r| r.unwrap().1).collect();
    let checkpoint = dir.checkpoint().unwrap().note;
    let ledger = Ledger::new(PgStore::connect(&cluster.create_db(db)).unwrap());
    ledger.append_replicated(&entries, &checkpoint).unwrap();
    ledger
}

#[test]
fn a_chain_in_postgres_verifies_appends_and_answers_as_its_directory_does() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.release_to_prod(&image("app"));
    env.build(&image("other"));
    let cluster = Cluster::start();
    let ledger = replicated(&env, &cluster, "chain");
    let g = provledger::core::hash::EntryHash::parse(&genesis).unwrap();
    let report = ledger.verify(Some(&g), |_| {}).unwrap();
    let dir = Ledger::new(env.store());
    assert_eq!(report.head, dir.verify(None, |_| {}).unwrap().head);
    for seed in ["app", "other"] {
        let d = digest(seed).parse().unwrap();
        let ours = serde_json::to_value(provledger::audit::show(&ledger, &d).unwrap()).unwrap();
        let theirs = serde_json::to_value(provledger::audit::show(&dir, &d).unwrap()).unwrap();
        assert_eq!(ours, theirs, "show {seed}");
    }
    let ours = serde_json::to_value(provledger::audit::history(&ledger, "prod").unwrap()).unwrap();
    assert_eq!(ours, serde_json::to_value(provledger::audit::history(&dir, "prod").unwrap()).unwrap());
    drop(dir);
    // Appends follow the chain rules: a replay is refused, a new build lands.
    let key = provledger::keyfile::read_secret(&env.ledger().join("log.key"), false).unwrap();
    let ledger = ledger.with_log_key(key);
    let replay = provledger::core::entry::UnverifiedEntry::decode(&ledger.store().get(1).unwrap().unwrap()).unwrap();
    assert!(ledger.append(replay.envelope, 2_000_000_000).unwrap_err().to_string().contains("replayed"));
    let v = ledger.append(common::build_envelope(env.dir.path(), "pg", 2_000_000_000), 2_000_000_000).unwrap();
    let d = digest("pg").parse().unwrap();
    assert_eq!(ledger.store().entries_for_subject(&d).unwrap(), vec![v.index()]);
    ledger.verify(Some(&g), |_| {}).unwrap();
}

#[test]
fn the_database_refuses_changes_and_verify_catches_an_operator_who_goes_around_it() {
    let (env, _) = Env::initialised_with_log_key();
    env.release_to_prod(&image("app"));
    let cluster = Cluster::start();
    let ledger = replicated(&env, &cluster, "guarded");
    let before = ledger.store().head().unwrap();
    // The triggers refuse, even to the owner: no update, delete or truncate
    // of entries, nodes or index rows; no head that goes back.
    for sql in [
        "UPDATE provledger_entries SET bytes = bytes || '\\x00'::bytea WHERE idx = 1",
        "DELETE FROM provledger_entries WHERE idx = 3",
        "TRUNCATE provledger_entries",
        "UPDATE provledger_nodes SET hash = hash WHERE idx = 0",
        "DELETE FROM provledger_rows",
        "UPDATE provledger_head SET count = 2",
        "DELETE FROM provledger_head",
    ] {
        let (ok, out) = cluster.try_sql("guarded", sql);
        assert!(!ok && out.contains("provledger:"), "{sql}: {out}");
    }
    assert_eq!(ledger.store().head().unwrap(), before);
    ledger.verify(None, |_| {}).unwrap();
    // An operator who disables the triggers and edits an entry is caught.
    cluster.sql(
        "guarded",
        "ALTER TABLE provledger_entries DISABLE TRIGGER USER; \
         UPDATE provledger_entries SET bytes = overlay(bytes placing '\\x00'::bytea from 200 for 1) WHERE idx = 2; \
         ALTER TABLE provledger_entries ENABLE TRIGGER USER",
    );
    let err = ledger.verify(None, |_| {}).unwrap_err().to_string();
    assert!(err.contains("entry 2"), "{err}");
}

/// The whole story with `--store postgres://...` (and `PROVLEDGER_STORE`):
/// init, build, validation, promotions, audit answers, export and an
/// offline verification of the bundle; a second init is refused; a
/// directory ledger's entries are moved into another database with `sync`,
/// verified.
#[test]
fn the_whole_story_runs_on_postgres() {
    let cluster = Cluster::start();
    let url = cluster.create_db("story");
    let env = Env::new();
    let genesis = env.init(&["--store", &url, "--log-key", &env.key("ledger")]);
    assert!(!env.ledger().join("log").exists(), "the chain is not in the directory");
    let pg = |args: &[&str]| {
        let mut all = vec!["--store", url.as_str()];
        all.extend_from_slice(args);
        env.ok(&all)
    };
    let app = image("app");
    pg(&["record", "build", "--key", &env.key("ci"), "--image", &app, "--git-sha", common::GIT_SHA, "--offline"]);
    pg(&[
        "record",
        "validation",
        "--key",
        &env.key("qa"),
        "--image",
        &app,
        "--check",
        "unit=pass",
        "--check",
        "integration=pass",
        "--check",
        "e2e=pass",
        "--check",
        "vuln-scan=pass",
        "--offline",
    ]);
    for to in ["dev", "staging", "prod"] {
        pg(&["promote", "--key", &env.key("release"), "--image", &app, "--to", to, "--offline"]);
    }
    // The same through the environment variable.
    let (code, out, err) = {
        let mut c = env.cmd();
        c.env("PROVLEDGER_STORE", &url).args(["--json", "history", "--env", "prod"]);
        let o = c.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&digest("app")), "{out}");
    let verified: serde_json::Value = serde_json::from_str(&pg(&["--json", "verify", "--genesis", &genesis])).unwrap();
    assert_eq!(verified["entries"], 6);
    let bundle = env.path("pg.bundle");
    pg(&["export", "--out", &bundle]);
    env.ok(&["verify", "--bundle", &bundle, "--genesis", &genesis]);
    let out =
        env.fails(1, &["--store", &url, "init", "--root-key", &env.key("root"), "--policy", &env.path("policy.toml")]);
    assert!(out.contains("already holds a ledger") && out.contains("story"), "{out}");
    // Moving a directory ledger into PostgreSQL: sync from it, verified.
    let (dir_env, dir_genesis) = Env::initialised_with_log_key();
    dir_env.release_to_prod(&image("moved"));
    let moved = cluster.create_db("moved");
    let from = dir_env.ledger().display().to_string();
    let target = env.dir.path().join("moved-keys").display().to_string();
    env.ok(&["--ledger", &target, "--store", &moved, "sync", "--from", &from, "--genesis", &dir_genesis]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&[
        "--ledger",
        &target,
        "--store",
        &moved,
        "--json",
        "verify",
        "--genesis",
        &dir_genesis,
    ]))
    .unwrap();
    assert_eq!(v["head"], dir_env.json(&["verify"])["head"]);
    assert!(
        env.fails(
            2,
            &["--store", "sled", "init", "--root-key", &env.key("root"), "--policy", &env.path("policy.toml")]
        )
        .contains("no longer made")
    );
}

/// Two servers on one database take submissions at once: every statement
/// acknowledged by either is in the chain exactly once, the acknowledgements
/// verify, and the chain verifies.
#[test]
fn two_servers_on_one_database_write_one_chain() {
    use common::server::Served;
    let cluster = Cluster::start();
    let url = cluster.create_db("two_servers");
    let env = Env::new();
    let genesis = env.init(&["--store", &url, "--log-key", &env.key("ledger")]);
    let servers = [Served::start(&env.ledger(), &["--store", &url]), Served::start(&env.ledger(), &["--store", &url])];
    let per_client = 8;
    let acked: Vec<(String, String)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for c in 0..8 {
            let server = &servers[c % 2];
            let (env, genesis) = (&env, &genesis);
            handles.push(s.spawn(move || {
                let mirror = env.dir.path().join(format!("mirror-{c}")).display().to_string();
                let mut acked = Vec::new();
                for i in 0..per_client {
                    let img = image(&format!("two-{c}-{i}"));
                    let (code, out, err) = env.run(&[
                        "--server",
                        &server.url,
                        "--mirror",
                        &mirror,
                        "--server-genesis",
                        genesis,
                        "--json",
                        "record",
                        "build",
                        "--key",
                        &env.key("ci"),
                        "--image",
                        &img,
                        "--offline",
                    ]);
                    assert_eq!(code, 0, "client {c}, statement {i}: {out}{err}");
                    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
                    acked.push((img, v["hash"].as_str().unwrap().to_string()));
                }
                acked
            }));
        }
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(acked.len(), 8 * per_client);
    let log = env.json(&["--store", &url, "log"]);
    let hashes: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["hash"].as_str().unwrap()).collect();
    for (img, hash) in &acked {
        assert_eq!(
            hashes.iter().filter(|h| *h == hash).count(),
            1,
            "{img}: acknowledged entry {hash} is in the chain once"
        );
    }
    assert_eq!(hashes.len(), 1 + acked.len(), "nothing else was written");
    env.ok(&["--store", &url, "verify", "--genesis", &genesis]);
}

/// A primary with a synchronous streaming standby; two servers on a
/// multi-host connection string put under load by four clients; the
/// primary SIGKILLed and the standby promoted. Submissions cut off are
/// answered "resubmit" (or the server is unreachable) and resubmitted as
/// they were; afterwards every acknowledged statement is in the chain
/// exactly once, the chain verifies, and a mirror synced before the
/// failover syncs on after it.
#[test]
fn a_standby_takes_over_with_nothing_acknowledged_lost() {
    use common::pg::{SyncPair, failover_under_load};
    use common::server::Served;

    let mut pair = SyncPair::start("ha");
    let url = pair.url.clone();
    let env = Env::new();
    let genesis = env.init(&["--store", &url, "--log-key", &env.key("ledger")]);
    let servers = [Served::start(&env.ledger(), &["--store", &url]), Served::start(&env.ledger(), &["--store", &url])];
    let mirror = env.dir.path().join("mirror").display().to_string();
    env.ok(&["--ledger", &mirror, "sync", "--from", &servers[0].url, "--genesis", &genesis]);

    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 30;
    let run = failover_under_load(&env, &mut pair, &[&servers[0].url, &servers[1].url], CLIENTS, PER_CLIENT);
    println!(
        "failover: {} statements acknowledged, {} resubmissions; first acknowledgement {:?} after the kill",
        run.acked.len(),
        run.resubmitted,
        run.first_ack_after_kill
    );
    assert_eq!(run.acked.len(), CLIENTS * PER_CLIENT);
    assert_eq!(run.lost_or_doubled(), Vec::<&String>::new(), "acknowledged entries not in the chain exactly once");
    assert_eq!(run.chain.len(), 1 + run.acked.len(), "nothing else was written");
    env.ok(&["--store", &url, "verify", "--genesis", &genesis]);
    // The mirror synced before the failover extends across it.
    let synced = env.json(&["--ledger", &mirror, "sync", "--from", &servers[1].url, "--genesis", &genesis]);
    assert_eq!(env.json(&["--ledger", &mirror, "verify"])["entries"], run.chain.len(), "{synced}");
}

/// A submission the database cannot take is answered 503 "resubmit" with
/// nothing written; resubmitted once the database is back, it is appended.
/// A statement committed while its answer was lost (here: written straight
/// into the database) is answered, when resubmitted, with the entry that
/// holds it, which the client proves; nothing is written twice.
#[test]
fn a_cut_off_submission_is_answered_resubmit_and_resubmitting_it_is_idempotent() {
    use common::server::Served;
    use provledger::net::remote::{Client, RemoteError};
    use std::time::{Duration, Instant};

    let mut cluster = Cluster::start();
    let url = cluster.create_db("resubmit");
    let env = Env::new();
    env.init(&["--store", &url, "--log-key", &env.key("ledger")]);
    let log_key = provledger::core::note::NoteVerifier::parse(
        env.json(&["--store", &url, "verify"])["checkpoint"]["verifier_key"].as_str().unwrap(),
    )
    .unwrap();
    let served = Served::start(&env.ledger(), &["--store", &url, "--request-timeout", "20"]);
    let client = Client::new(&served.url, Duration::from_secs(30)).unwrap();
    let first = common::build_envelope(env.dir.path(), "resubmit-first", 1_900_000_000);
    assert_eq!(client.append(&first, &log_key).unwrap().entry.index, 1);

    // The database goes down under the server.
    cluster.kill();
    let cut_off = common::build_envelope(env.dir.path(), "resubmit-cut-off", 1_900_000_000);
    match client.submit(&cut_off) {
        Err(RemoteError::Refused { status: 503, refusal, .. }) => {
            assert_eq!(refusal.error, "resubmit", "{refusal:?}")
        }
        other => panic!("a submission with the database down: {other:?}"),
    }
    cluster.restart();
    assert_eq!(env.json(&["--store", &url, "verify"])["entries"], 2, "nothing was written while it was down");
    let deadline = Instant::now() + Duration::from_secs(30);
    let appended = loop {
        match client.append(&cut_off, &log_key) {
            Ok(a) => break a,
            Err(RemoteError::Refused { status: 503, .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("resubmitted once the database is back: {e}"),
        }
    };
    assert_eq!(appended.entry.index, 2);
    // Resubmitted again (its first answer lost): the same entry, proven.
    let again = client.append(&cut_off, &log_key).unwrap();
    assert_eq!((again.entry.index, again.entry.hash()), (2, appended.entry.hash()));

    // Committed, answer lost: the statement is in the database already.
    let lost = common::build_envelope(env.dir.path(), "resubmit-answer-lost", 1_900_000_000);
    let writer = provledger::ledger::dir::LedgerDir::new(env.ledger(), Duration::from_secs(5))
        .with_database(Some(url.clone()))
        .open_writer(false)
        .unwrap();
    let written = writer.append(lost.clone(), 1_900_000_100).unwrap();
    match client.submit(&lost) {
        Err(RemoteError::Refused { status: 409, refusal, .. }) => {
            assert_eq!((refusal.error.as_str(), refusal.index), ("duplicate", Some(3)), "{refusal:?}")
        }
        other => panic!("a statement already written, resubmitted: {other:?}"),
    }
    let proven = client.append(&lost, &log_key).unwrap();
    assert_eq!((proven.entry.index, proven.entry.hash()), (3, written.hash()));
    let log = env.json(&["--store", &url, "log"]);
    assert_eq!(log.as_array().unwrap().len(), 4, "each statement once: {log}");
    env.ok(&["--store", &url, "verify"]);
}

/// The role of the operations guide (`docs/postgres.md`) runs a ledger:
/// it reads, appends and moves the head, and can neither change nor
/// remove what is written, even with the triggers out of the way.
#[test]
fn the_servers_role_of_the_guide_appends_and_changes_nothing() {
    let cluster = Cluster::start();
    let owner = cluster.create_db("roles");
    let env = Env::new();
    env.init(&["--store", &owner, "--log-key", &env.key("ledger")]);
    let guide =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/postgres.md")).unwrap();
    let grants: String = guide
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the guide's role SQL")
        .replace("PASSWORD '...'", "")
        .replace("DATABASE ledger", "DATABASE roles");
    cluster.sql("roles", &grants);
    let server = cluster.url("roles").replace("postgres@", "provledger_server@");
    env.ok(&[
        "--store",
        &server,
        "record",
        "build",
        "--key",
        &env.key("ci"),
        "--image",
        &image("by-role"),
        "--offline",
    ]);
    assert_eq!(env.json(&["--store", &server, "verify"])["entries"], 2);
    for sql in [
        "UPDATE provledger_entries SET bytes = bytes WHERE idx = 0",
        "DELETE FROM provledger_nodes",
        "DELETE FROM provledger_rows",
        "ALTER TABLE provledger_entries DISABLE TRIGGER USER",
        "DROP TABLE provledger_entries",
        "UPDATE provledger_schema SET version = 9",
    ] {
        let (ok, out) = cluster.try_sql_as("provledger_server", "roles", sql);
        assert!(!ok && (out.contains("permission denied") || out.contains("must be owner")), "{sql}: {out}");
    }
    assert_eq!(env.json(&["--store", &owner, "verify"])["entries"], 2);
}
