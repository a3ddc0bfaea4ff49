//! The ledger server and its mirrors, over loopback with real processes:
//! many concurrent writers, a server killed mid-load, incremental mirrors,
//! forks refused with evidence kept, unauthorized submissions refused, and
//! a ledger published to and pulled from a real OCI registry.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use common::registry::TestRegistry;
use common::server::Served;
use common::{Env, build_envelope, build_envelope_by, copy_dir, image};
use provledger::core::note::NoteVerifier;
use provledger::remote::{Client, RemoteError};

const TIME: u64 = 1_800_000_000;

fn client(url: &str) -> Client {
    Client::new(url, Duration::from_secs(60)).unwrap()
}

/// The log key's verifier, from the ledger's policy.
fn log_verifier(env: &Env) -> NoteVerifier {
    let v = env.json(&["checkpoint"]);
    NoteVerifier::parse(v["verifier_key"].as_str().unwrap()).unwrap()
}

/// Every entry's hash by index, from the binary's `log --json`.
fn hashes(env: &Env) -> Vec<String> {
    let log = env.json(&["log"]);
    log.as_array().unwrap().iter().map(|e| e["hash"].as_str().unwrap().to_string()).collect()
}

/// `n` clients submitting `per` statements each, concurrently; the acknowledged
/// (index, hash) of every one, each acknowledgement verified by the client.
fn load(
    env: &Env,
    log: &NoteVerifier,
    url: &Arc<RwLock<String>>,
    clients: usize,
    per: usize,
    acked: &Arc<AtomicUsize>,
) -> Vec<(u64, String)> {
    let dir = env.dir.path().to_path_buf();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (url, log, dir, acked) = (url.clone(), log.clone(), dir.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut out = Vec::with_capacity(per);
                for i in 0..per {
                    let envelope = build_envelope(&dir, &format!("load-{c}-{i}"), TIME);
                    // Retried until acknowledged: across a killed server, the
                    // retry finds the statement already written (409) and the
                    // client proves its inclusion instead.
                    let mut attempts = 0;
                    let appended = loop {
                        let u = url.read().unwrap().clone();
                        match client(&u).append(&envelope, &log) {
                            Ok(a) => break a,
                            Err(RemoteError::Unreachable { .. } | RemoteError::Refused { status: 503, .. })
                                if attempts < 600 =>
                            {
                                attempts += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            Err(e) => panic!("client {c} statement {i}: {e}"),
                        }
                    };
                    out.push((appended.entry.index, appended.entry.hash().to_string()));
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                out
            })
        })
        .collect();
    threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
}

/// Every acknowledged entry is in the verified ledger, at its index, with
/// its hash, and no statement is there twice.
fn assert_all_present(env: &Env, acked: &[(u64, String)], expected_entries: usize) {
    env.ok(&["verify"]);
    let stored = hashes(env);
    assert_eq!(stored.len(), expected_entries, "genesis plus every statement, once");
    let mut seen = BTreeMap::new();
    for (index, hash) in acked {
        assert_eq!(&stored[*index as usize], hash, "acknowledged entry {index} is not in the ledger as acknowledged");
        assert!(seen.insert(*index, hash).is_none(), "two acknowledgements name entry {index}");
    }
}

#[test]
fn sixteen_concurrent_clients_2000_submissions_every_ack_present_once() {
    let (env, _) = Env::initialised_with_log_key();
    let log = log_verifier(&env);
    let served = Served::start(&env.ledger(), &[]);
    let url = Arc::new(RwLock::new(served.url.clone()));
    let acked = load(&env, &log, &url, 16, 125, &Arc::new(AtomicUsize::new(0)));
    served.stop();
    assert_eq!(acked.len(), 2000);
    assert_all_present(&env, &acked, 2001);
}

#[test]
fn a_server_killed_mid_load_loses_no_acknowledged_entry() {
    let (env, _) = Env::initialised_with_log_key();
    let log = log_verifier(&env);
    let served = Arc::new(Mutex::new(Served::start(&env.ledger(), &[])));
    let url = Arc::new(RwLock::new(served.lock().unwrap().url.clone()));
    let count = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (served, url, count, ledger) = (served.clone(), url.clone(), count.clone(), env.ledger());
        std::thread::spawn(move || {
            let mut kills = 0;
            for threshold in [100, 300, 500] {
                while count.load(Ordering::SeqCst) < threshold {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let mut s = served.lock().unwrap();
                s.kill();
                kills += 1;
                *s = Served::start(&ledger, &[]);
                *url.write().unwrap() = s.url.clone();
            }
            kills
        })
    };
    let acked = load(&env, &log, &url, 16, 50, &count);
    assert_eq!(killer.join().unwrap(), 3, "the server was killed three times mid-load");
    served.lock().unwrap().kill();
    assert_eq!(acked.len(), 800);
    assert_all_present(&env, &acked, 801);
}

/// Appends `n` builds through the server with the CLI's --server mode.
fn remote_builds(env: &Env, url: &str, mirror: &Path, prefix: &str, n: usize) {
    for i in 0..n {
        let img = image(&format!("{prefix}-{i}"));
        let m = mirror.display().to_string();
        env.ok(&[
            "--server",
            url,
            "--mirror",
            &m,
            "record",
            "build",
            "--key",
            &env.key("ci"),
            "--image",
            &img,
            "--offline",
        ]);
    }
}

#[test]
fn the_cli_works_through_a_server_and_a_mirror_syncs_incrementally() {
    let (env, genesis) = Env::initialised_with_log_key();
    let served = Served::start(&env.ledger(), &[]);
    let url = served.url.clone();
    let client_mirror = env.dir.path().join("client-mirror");
    let cm = client_mirror.display().to_string();
    let remote = |args: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["--server", url.as_str(), "--mirror", cm.as_str(), "--server-genesis", genesis.as_str()]
                .iter()
                .map(|s| s.to_string())
                .collect();
        a.extend(args.iter().map(|s| s.to_string()));
        a
    };
    let run = |args: &[&str]| {
        let a = remote(args);
        env.ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Build, validate and promote through the server: signing stays here.
    let img = image("remote");
    run(&["record", "build", "--key", &env.key("ci"), "--image", &img, "--offline"]);
    run(&["record", "validation", "--key", &env.key("qa"), "--image", &img, "--check", "unit=pass", "--offline"]);
    let promoted =
        run(&["promote", "--key", &env.key("release"), "--image", &img, "--to", "dev", "--offline", "--json"]);
    let promoted: serde_json::Value = serde_json::from_str(&promoted).unwrap();
    assert_eq!(promoted["entry"]["index"], 3);
    // A promotion the gate denies is denied through the server too (exit 3).
    let a = remote(&["promote", "--key", &env.key("release"), "--image", &img, "--to", "staging", "--offline"]);
    let out = env.fails(3, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("integration"), "{out}");
    // Reads run on the verified mirror.
    let shown = run(&["show", &img, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["promotions"][0]["to"], "dev");
    let verified: serde_json::Value = serde_json::from_str(&run(&["verify", "--json"])).unwrap();
    assert_eq!(verified["entries"], 4);
    let proof = env.path("remote.proof");
    run(&["prove", &img, "--env", "dev", "--out", &proof]);
    env.ok(&["verify", "--proof", &proof, "--genesis", &genesis]);

    // A mirror elsewhere: first sync needs the genesis, then only new entries come.
    let mirror = Env::new();
    let out = mirror.fails(1, &["sync", "--from", &url]);
    assert!(out.contains("--genesis"), "{out}");
    let first = mirror.json(&["sync", "--from", &url, "--genesis", &genesis]);
    assert_eq!((first["from"].as_u64(), first["to"].as_u64()), (Some(0), Some(4)));
    remote_builds(&env, &url, &client_mirror, "more", 3);
    let second = mirror.json(&["sync", "--from", &url]);
    assert_eq!(
        (second["from"].as_u64(), second["to"].as_u64(), second["fetched"].as_u64()),
        (Some(4), Some(7), Some(3))
    );
    let again = mirror.json(&["sync", "--from", &url]);
    assert_eq!(again["fetched"], 0);
    served.stop();
    assert_eq!(mirror.head(), env.head(), "the mirror holds the served ledger, verified");
    assert!(!mirror.ledger().join("log.key").exists(), "a mirror holds no log key");
}

/// Two copies of one ledger that part ways after a common prefix: `a` gets
/// `a_more` builds, `b` gets `b_more` other ones, both signed by the same log key.
fn forked(a_more: usize, b_more: usize) -> (Env, Env, String) {
    let (a, genesis) = Env::initialised_with_log_key();
    a.build(&image("common"));
    let b = Env::new();
    copy_dir(&a.ledger(), &b.ledger());
    for i in 0..a_more {
        a.build(&image(&format!("a-{i}")));
    }
    for i in 0..b_more {
        b.build(&image(&format!("b-{i}")));
    }
    (a, b, genesis)
}

fn evidence(env: &Env) -> Vec<serde_json::Value> {
    let dir = env.ledger().join("evidence");
    let Ok(list) = std::fs::read_dir(&dir) else { return Vec::new() };
    list.map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap()).collect()
}

#[test]
fn a_mirror_refuses_a_longer_fork_from_a_server_and_keeps_its_copy() {
    let (a, b, genesis) = forked(2, 4);
    let mirror = Env::new();
    let a_dir = a.ledger().display().to_string();
    mirror.json(&["sync", "--from", &a_dir, "--genesis", &genesis]);
    let before = mirror.head();
    // b is longer than the mirror: its consistency proof cannot hold.
    let theirs = b.json(&["checkpoint"]);
    let served = Served::start(&b.ledger(), &[]);
    let out = mirror.fails(4, &["sync", "--from", &served.url]);
    assert!(out.contains("fork") && out.contains("not consistent"), "{out}");
    assert_eq!(mirror.head(), before, "the mirror is untouched");
    let ev = evidence(&mirror);
    assert_eq!(ev.len(), 1, "the conflicting checkpoint is kept");
    assert_eq!(ev[0]["their_checkpoint"], theirs["note"], "the evidence is the fork's signed checkpoint");
    // The honest copy still syncs.
    a.build(&image("a-later"));
    let next = mirror.json(&["sync", "--from", &a_dir]);
    assert_eq!(next["fetched"], 1);
}

#[test]
fn a_mirror_refuses_shorter_and_equal_forks_from_a_directory() {
    let (a, b, genesis) = forked(3, 1);
    let mirror = Env::new();
    mirror.json(&["sync", "--from", &a.ledger().display().to_string(), "--genesis", &genesis]);
    let before = mirror.head();
    let b_dir = b.ledger().display().to_string();
    // b (size 3) is shorter than the mirror (size 5): its root at 3 is not ours.
    let out = mirror.fails(4, &["sync", "--from", &b_dir]);
    assert!(out.contains("fork"), "{out}");
    // Grown to the mirror's size, it is still another history.
    b.build(&image("b-1"));
    b.build(&image("b-2"));
    mirror.fails(4, &["sync", "--from", &b_dir]);
    assert_eq!(mirror.head(), before);
    assert_eq!(evidence(&mirror).len(), 2);
    // Another ledger (its own log key, so another genesis even when made in
    // the same second) is refused as such.
    let (other, _) = Env::initialised();
    let out = mirror.fails(4, &["sync", "--from", &other.ledger().display().to_string()]);
    assert!(out.contains("refused"), "{out}");
    assert_eq!(mirror.head(), before);
    // A wrong genesis for a new mirror writes nothing at all.
    let fresh = Env::new();
    let out = fresh.fails(4, &["sync", "--from", &a.ledger().display().to_string(), "--genesis", &"0".repeat(64)]);
    assert!(out.contains("genesis"), "{out}");
    assert!(!fresh.ledger().join(provledger::store::local::LOG_DIR).exists(), "nothing is left behind");
}

#[test]
fn unauthorized_malformed_and_replayed_submissions_are_refused_with_4xx_and_nothing_appended() {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("first"));
    let log = log_verifier(&env);
    let served = Served::start(&env.ledger(), &["--max-body", "65536"]);
    let c = client(&served.url);
    let size = |c: &Client| {
        let note = c.checkpoint().unwrap();
        provledger::ledger::SignedCheckpoint::open(&note, &log).unwrap().checkpoint.size
    };
    let before = size(&c);
    let status = |e: RemoteError| match e {
        RemoteError::Refused { status, refusal, .. } => (status, refusal.error),
        other => panic!("expected a refusal, got {other}"),
    };
    // A key the policy does not know: refused before it reaches the queue.
    let stranger = provledger::core::keys::SecretKey::generate();
    provledger::keyfile::write_new_key(&env.dir.path().join("stranger.key"), &stranger).unwrap();
    let e = c.append(&build_envelope_by(env.dir.path(), "stranger", "s", TIME), &log).unwrap_err();
    assert_eq!(status(e), (403, "unauthorized".to_string()));
    // A key of the policy without the build role: refused by the chain rules.
    let e = c.append(&build_envelope_by(env.dir.path(), "qa", "q", TIME), &log).unwrap_err();
    assert_eq!(status(e), (403, "unauthorized".to_string()));
    // A signature that does not verify.
    let mut forged = build_envelope(env.dir.path(), "forged", TIME);
    forged.payload[10] ^= 1;
    assert_eq!(status(c.submit(&forged).unwrap_err()).0, 422);
    // A replayed statement names the entry that holds it.
    let once = build_envelope(env.dir.path(), "once", TIME);
    let first = c.append(&once, &log).unwrap();
    match c.submit(&once).unwrap_err() {
        RemoteError::Refused { status: 409, refusal, .. } => assert_eq!(refusal.index, Some(first.entry.index)),
        other => panic!("expected 409, got {other}"),
    }
    let after_valid = size(&c);
    assert_eq!(after_valid, before + 1);
    // Not JSON, not an envelope, too large.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
    let post = |body: Vec<u8>| -> (u16, String) {
        let mut r = agent.post(&format!("{}/v1/entries", served.url)).send(&body[..]).unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
    };
    let (code, body) = post(b"not json".to_vec());
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("malformed"), "{body}");
    assert_eq!(post(br#"{"payloadType":"x"}"#.to_vec()).0, 400);
    assert_eq!(post(vec![b' '; 100_000]).0, 413);
    // Through the CLI: a denial is exit 3, naming the server's reason.
    let url = served.url.clone();
    let m = env.dir.path().join("mirror").display().to_string();
    let out = env.fails(
        3,
        &[
            "--server",
            &url,
            "--mirror",
            &m,
            "record",
            "build",
            "--key",
            &env.key("qa"),
            "--image",
            &image("x"),
            "--offline",
        ],
    );
    assert!(out.contains("build role"), "{out}");
    assert_eq!(size(&c), after_valid, "nothing was appended by any refused submission");
    // The query endpoints answer from the same ledger.
    let subjects = c.subjects(&common::digest("first")).unwrap();
    assert_eq!(subjects.entries.len(), 1);
    assert_eq!(subjects.entries[0].kind, "build");
    let decision = c
        .decide(&provledger::api::DecisionRequest {
            digest: common::digest("first"),
            to: "dev".into(),
            promoter: provledger::keyfile::read_public(Path::new(&format!("{}.pub", env.key("release"))))
                .unwrap()
                .id()
                .to_string(),
        })
        .unwrap();
    assert!(!decision.allowed);
    assert!(decision.reasons.iter().any(|r| r.contains("unit")), "{:?}", decision.reasons);
}

#[test]
fn a_release_promoted_through_the_server_is_appended_all_or_none() {
    let (env, _) = Env::initialised_with_log_key();
    for artifact in ["api", "web"] {
        let img = image(artifact);
        env.build_with(&img, &["--git-sha", common::GIT_SHA, "--artifact", artifact, "--release", "r1"]);
    }
    env.validate(&image("api"), &["unit=pass"]);
    let served = Served::start(&env.ledger(), &[]);
    let m = env.dir.path().join("mirror").display().to_string();
    let promote = [
        "--server",
        &served.url,
        "--mirror",
        &m,
        "promote",
        "--key",
        &env.key("release"),
        "--release",
        "r1",
        "--to",
        "dev",
        "--offline",
    ];
    // web has no validation: nothing is promoted.
    let out = env.fails(3, &promote);
    assert!(out.contains("web"), "{out}");
    env.ok(&[
        "--server",
        &served.url,
        "--mirror",
        &m,
        "record",
        "validation",
        "--key",
        &env.key("qa"),
        "--image",
        &image("web"),
        "--check",
        "unit=pass",
        "--offline",
    ]);
    let mut args = promote.to_vec();
    args.push("--json");
    let done: serde_json::Value = serde_json::from_str(&env.ok(&args)).unwrap();
    let indexes: Vec<u64> = done["entries"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [5, 6], "both promotions, consecutive, in one write");
    served.stop();
    env.ok(&["verify"]);
}

#[test]
fn a_ledger_round_trips_through_a_real_oci_registry() {
    let registry = TestRegistry::start();
    let (env, genesis) = Env::initialised_with_log_key();
    env.release_to_prod(&image("oci"));
    let host = registry.host();
    let repo = format!("oci://{host}/ledgers/acme:main");
    let insecure = ["--insecure-registry", host.as_str()];
    let with = |args: &[&str]| -> Vec<String> { insecure.iter().chain(args).map(|s| s.to_string()).collect() };
    let run_json = |env: &Env, args: &[&str]| -> serde_json::Value {
        let mut a = with(args);
        a.push("--json".into());
        serde_json::from_str(&env.ok(&a.iter().map(String::as_str).collect::<Vec<_>>())).unwrap()
    };
    let published = run_json(&env, &["sync", "--to", &repo]);
    assert_eq!(published["pushed"], 1);
    let auditor = Env::new();
    let pulled = run_json(&auditor, &["sync", "--from", &repo, "--genesis", &genesis]);
    assert_eq!(pulled["to"], 7);
    assert_eq!(auditor.head(), env.head());
    // Grown past a blob boundary: full blobs stay, only what changed is pushed.
    let writer = env.writer();
    let envelopes: Vec<_> = (0..1030).map(|i| build_envelope(env.dir.path(), &format!("bulk-{i}"), TIME)).collect();
    writer.append_batch(envelopes, TIME).unwrap();
    drop(writer);
    let second = run_json(&env, &["sync", "--to", &repo]);
    assert_eq!((second["blobs"].as_u64(), second["pushed"].as_u64()), (Some(2), Some(2)));
    env.build(&image("one-more"));
    let third = run_json(&env, &["sync", "--to", &repo]);
    assert_eq!(
        (third["blobs"].as_u64(), third["pushed"].as_u64()),
        (Some(2), Some(1)),
        "the full first blob is reused"
    );
    let pulled = run_json(&auditor, &["sync", "--from", &repo]);
    assert_eq!((pulled["from"].as_u64(), pulled["to"].as_u64()), (Some(7), Some(1038)));
    assert_eq!(auditor.head(), env.head());
    // A fork may not replace the published ledger.
    let fork = Env::new();
    copy_dir(&auditor.ledger(), &fork.ledger());
    std::fs::copy(env.ledger().join("log.key"), fork.ledger().join("log.key")).unwrap();
    fork.build(&image("fork-a"));
    env.build(&image("honest"));
    run_json(&env, &["sync", "--to", &repo]);
    let a = with(&["sync", "--to", &repo]);
    let out = fork.fails(4, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("fork"), "{out}");
    // And an auditor holding the fork's history refuses the registry's.
    let a = with(&["sync", "--from", &repo]);
    let before = fork.head();
    fork.fails(4, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(fork.head(), before);
}

/// Peers other than the well-behaved client's 127.0.0.1: 127.0.0.2 and up.
fn peer(n: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, 0, 2 + n as u8)
}

#[test]
fn half_open_connections_are_closed_and_a_well_behaved_client_is_answered_meanwhile() {
    use std::io::Write as _;
    let (env, _) = Env::initialised_with_log_key();
    let served = Served::start(&env.ledger(), &["--header-timeout", "2"]);
    // 320 connections from eight addresses (40 each, under the per-peer
    // default): half stop in the middle of their headers, half send nothing.
    let mut held: Vec<_> = (0..320)
        .map(|i| {
            let mut s = common::server::connect_from(&served.url, peer(i % 8));
            if i % 2 == 0 {
                s.write_all(b"GET /v1/info HTTP/1.1\r\nhost: provledger\r\nx-slow: ").unwrap();
            }
            s
        })
        .collect();
    // Meanwhile, a client that sends whole requests is answered.
    let c = client(&served.url);
    assert_eq!(c.info().unwrap().size, 1);
    assert!(c.checkpoint().unwrap().contains("\n\n"));
    // The server closes every one of them, without an answer to a request
    // it never received whole.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for (i, s) in held.iter_mut().enumerate() {
        let got = common::server::read_until_closed(s, deadline);
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "connection {i} was answered: {got:?}");
    }
    // And the server still serves.
    assert_eq!(client(&served.url).info().unwrap().size, 1);
}

#[test]
fn connections_over_the_caps_get_503_and_are_closed_unread_while_others_are_served() {
    let (env, _) = Env::initialised_with_log_key();
    // Headers may take two minutes: whatever closes a connection sooner is a cap.
    let served = Served::start(
        &env.ledger(),
        &["--header-timeout", "120", "--max-connections", "12", "--max-connections-per-peer", "4"],
    );
    let connect = |n| common::server::connect_from(&served.url, peer(n));
    let refused = |mut s: std::net::TcpStream| {
        let got = common::server::read_until_closed(&mut s, std::time::Instant::now() + Duration::from_secs(30));
        let got = String::from_utf8_lossy(&got).into_owned();
        assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
        assert!(got.contains("too many connections"), "{got:?}");
    };
    // Four from one address are held; its fifth is refused at once.
    let mut held: Vec<_> = (0..4).map(|_| connect(0)).collect();
    refused(connect(0));
    assert!(held.iter().all(common::server::still_open), "the four within the cap stay open");
    // Another address is served meanwhile.
    let c = client(&served.url);
    assert_eq!(c.info().unwrap().size, 1);
    // Filled to the total cap from two more addresses: a connection from any
    // address is refused, the well-behaved client's too.
    held.extend((0..4).map(|_| connect(1)));
    held.extend((0..4).map(|_| connect(2)));
    refused(connect(3));
    match client(&served.url).info() {
        Err(RemoteError::Refused { status: 503, .. } | RemoteError::Unreachable { .. }) => {}
        other => panic!("expected a refusal at the total cap, got {other:?}"),
    }
    // Once the held connections go, their places are given back.
    drop(held);
    let mut attempts = 0;
    while client(&served.url).info().is_err() {
        attempts += 1;
        assert!(attempts < 200, "the server never gave the closed connections' places back");
        std::thread::sleep(Duration::from_millis(50));
    }
    served.stop();
}

#[test]
fn the_same_statement_submitted_at_once_is_written_once_and_every_other_copy_gets_409_naming_it() {
    let (env, _) = Env::initialised_with_log_key();
    let served = Served::start(&env.ledger(), &[]);
    // Copies sent together pass the handler's replay check together and
    // reach one group commit (or the next): each must still learn which
    // entry holds its statement.
    for round in 0..12 {
        let envelope = build_envelope(env.dir.path(), &format!("twice-{round}"), TIME);
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let answers: Vec<_> = (0..4)
            .map(|_| {
                let (url, envelope, barrier) = (served.url.clone(), envelope.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let c = client(&url);
                    barrier.wait();
                    c.submit(&envelope)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let written: Vec<u64> = answers.iter().filter_map(|a| a.as_ref().ok().map(|ack| ack.index)).collect();
        assert_eq!(written.len(), 1, "round {round}: one copy is written: {answers:?}");
        for a in &answers {
            match a {
                Ok(_) => {}
                Err(RemoteError::Refused { status: 409, refusal, .. }) => {
                    assert_eq!(refusal.error, "duplicate");
                    assert_eq!(refusal.index, Some(written[0]), "round {round}: {}", refusal.reason);
                }
                Err(e) => panic!("round {round}: a copy was refused otherwise: {e}"),
            }
        }
    }
    served.stop();
    assert_eq!(hashes(&env).len(), 13, "genesis and each statement once");
}

/// The evidence files kept in `dir`, parsed.
fn evidence_in(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(list) = std::fs::read_dir(dir) else { return Vec::new() };
    list.map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap()).collect()
}

#[test]
fn a_server_rolled_back_below_what_a_mirror_holds_is_refused_as_a_rollback_with_evidence() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.build(&image("kept-0"));
    env.build(&image("kept-1"));
    // A copy of the ledger at size 3, as a backup restored later would be.
    let old = Env::new();
    copy_dir(&env.ledger(), &old.ledger());
    env.build(&image("lost-0"));
    env.build(&image("lost-1"));
    let served = Served::start(&env.ledger(), &[]);
    let mirror = Env::new();
    mirror.json(&["sync", "--from", &served.url, "--genesis", &genesis]);
    served.stop();
    let before = mirror.head();
    // The server comes back with the old copy: the log lost two entries.
    let theirs = old.json(&["checkpoint"]);
    let served = Served::start(&old.ledger(), &[]);
    let out = mirror.fails(4, &["sync", "--from", &served.url]);
    assert!(out.contains("rolled back from size 5 to 3"), "{out}");
    assert!(!out.contains("corrupt"), "{out}");
    assert_eq!(mirror.head(), before, "the mirror keeps what it verified");
    let ev = evidence(&mirror);
    assert_eq!(ev.len(), 1, "the rollback is kept as evidence");
    assert_eq!(ev[0]["their_checkpoint"], theirs["note"]);
    // Through --server too, before anything is submitted.
    let m = mirror.ledger().display().to_string();
    let out = env.fails(4, &["--server", &served.url, "--mirror", &m, "show", &image("kept-0")]);
    assert!(out.contains("rolled back from size 5 to 3"), "{out}");
    // A directory copy that lags is no rollback: it is a copy, not the log.
    served.stop();
    let behind = mirror.json(&["sync", "--from", &old.ledger().display().to_string()]);
    assert_eq!(behind["source_behind"], true);
}

/// `record build` through `url` with a fresh mirror, expected to fail with
/// exit 4; returns the mirror's directory and what the command printed.
fn build_through(env: &Env, url: &str, genesis: &str) -> (std::path::PathBuf, String) {
    let mirror = env.dir.path().join("split-mirror");
    let (m, key, img) = (mirror.display().to_string(), env.key("ci"), image("acked"));
    let args = ["--server", url, "--mirror", &m, "--server-genesis", genesis, "record", "build", "--key", &key];
    let out = env.fails(4, &[&args[..], &["--image", &img, "--offline"]].concat());
    (mirror, out)
}

#[test]
fn an_acknowledged_entry_the_server_then_does_not_serve_is_reported_as_a_rollback_with_evidence() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.build(&image("kept"));
    let old = Env::new();
    copy_dir(&env.ledger(), &old.ledger());
    let (writes, reads) = (Served::start(&env.ledger(), &[]), Served::start(&old.ledger(), &[]));
    // Submissions are acknowledged from one copy, reads served from the
    // other, which lacks the entry just acknowledged.
    let split = common::server::Split::start(&reads.url, &writes.url);
    let (mirror, out) = build_through(&env, &split.url, &genesis);
    assert!(out.contains("rolled back from size 3 to 2"), "{out}");
    assert!(!out.contains("corrupt"), "{out}");
    let ev = evidence_in(&mirror.join("evidence"));
    assert_eq!(ev.len(), 1, "the acknowledged checkpoint is kept");
    writes.stop();
    let acked = env.json(&["checkpoint"]);
    assert_eq!(ev[0]["their_checkpoint"], acked["note"], "the evidence is the checkpoint the ack carried");
}

#[test]
fn an_acknowledgement_that_proves_a_fork_is_kept_as_evidence() {
    // `a` has two builds past the common prefix, `b` (same log key) none.
    let (a, b, genesis) = forked(2, 0);
    let (reads, writes) = (Served::start(&a.ledger(), &[]), Served::start(&b.ledger(), &[]));
    let split = common::server::Split::start(&reads.url, &writes.url);
    let (mirror, out) = build_through(&a, &split.url, &genesis);
    assert!(out.contains("fork"), "{out}");
    let ev = evidence_in(&mirror.join("evidence"));
    assert_eq!(ev.len(), 1, "the acknowledgement's checkpoint is kept as fork evidence");
    writes.stop();
    let theirs = b.json(&["checkpoint"]);
    assert_eq!(ev[0]["their_checkpoint"], theirs["note"], "the evidence is the checkpoint the ack carried");
}

#[test]
fn a_server_claiming_a_huge_unsigned_tree_is_refused_at_its_first_bad_page() {
    let (env, genesis) = Env::initialised_with_log_key();
    env.build(&image("real-0"));
    env.build(&image("real-1"));
    let real = Served::start(&env.ledger(), &[]);
    let c = client(&real.url);
    let entries = c.entries(0, 3).unwrap();
    // A checkpoint claiming 2^40 entries, signed by a stranger under the log's name.
    let text = c.checkpoint().unwrap();
    let text = text.split_once("\n\n").unwrap().0;
    let mut checkpoint = provledger::core::note::Checkpoint::parse(text).unwrap();
    checkpoint.size = 1 << 40;
    let stranger = provledger::core::keys::SecretKey::generate();
    let forged = provledger::core::note::sign_note(&checkpoint.to_text(), &checkpoint.origin, &stranger).unwrap();
    // Past the real entries it serves full pages of copies of entry 1,
    // for as long as it is asked (up to a bound, then 500).
    let pages = Arc::new(AtomicUsize::new(0));
    let counted = pages.clone();
    let filler = provledger::bundle::encode_frames(std::iter::repeat_n(entries[1].as_slice(), 1024));
    let liar = common::server::Split::answering(
        &real.url,
        &real.url,
        Box::new(move |_, path| {
            if path == "/v1/checkpoint" {
                return Some((200, "text/plain".into(), forged.clone().into_bytes()));
            }
            let start = path.strip_prefix("/v1/entries?start=")?.split('&').next()?.parse::<u64>().ok()?;
            if counted.fetch_add(1, Ordering::SeqCst) >= 8 {
                return Some((500, "text/plain".into(), b"enough".to_vec()));
            }
            (start >= 3).then(|| (200, provledger::api::ENTRIES_MEDIA_TYPE.into(), filler.clone()))
        }),
    );
    let mirror = Env::new();
    let out = mirror.fails(4, &["sync", "--from", &liar.url, "--genesis", &genesis]);
    assert!(out.contains("entry 3"), "the first entry past the real ones is named: {out}");
    let asked = pages.load(Ordering::SeqCst);
    assert!(asked <= 3, "entry 0, the real page and one bad page at most; asked for {asked} pages");
    assert!(!mirror.ledger().join(provledger::store::local::LOG_DIR).exists(), "nothing is written");
}
