//! Several processes writing one local ledger: each waits its turn for the
//! store's lock (bounded by --lock-timeout) or fails clearly with exit 1;
//! the chain never forks and no acknowledged entry is lost.

mod common;

use std::process::{Command, Stdio};

use common::{Env, image};

#[test]
fn concurrent_writer_processes_serialise_and_lose_nothing() {
    let (env, _) = Env::initialised_with_log_key();
    let mut acked = Vec::new();
    let mut refused = 0;
    for round in 0..3 {
        let children: Vec<_> = (0..6)
            .map(|i| {
                Command::new(assert_cmd::cargo::cargo_bin("provledger"))
                    .env("PROVLEDGER_DIR", env.ledger())
                    .env_remove("PROVLEDGER_SERVER")
                    .args(["--json", "record", "build", "--key", &env.key("ci"), "--offline"])
                    .args(["--image", &image(&format!("w-{round}-{i}"))])
                    .args(["--lock-timeout", "30"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => {
                    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
                    acked.push((v["index"].as_u64().unwrap(), v["hash"].as_str().unwrap().to_string()));
                }
                // Only a clear "in use" failure is allowed, never anything else.
                Some(1) => {
                    assert!(stdout.contains("in use by another process"), "{stdout}{stderr}");
                    refused += 1;
                }
                other => panic!("a concurrent writer exited {other:?}: {stdout}{stderr}"),
            }
        }
    }
    let log = env.json(&["log"]);
    let stored: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["hash"].as_str().unwrap()).collect();
    assert_eq!(stored.len(), 1 + acked.len(), "one entry per acknowledged writer ({refused} refused)");
    for (index, hash) in &acked {
        assert_eq!(stored[*index as usize], hash, "acknowledged entry {index}");
    }
    env.ok(&["verify"]);
}

#[test]
fn a_writer_facing_a_held_lock_waits_its_bound_then_fails_clearly() {
    let (env, _) = Env::initialised_with_log_key();
    let head = env.head();
    let holder = env.store();
    let out = env.fails(
        1,
        &["record", "build", "--key", &env.key("ci"), "--image", &image("late"), "--offline", "--lock-timeout", "1"],
    );
    assert!(out.contains("in use by another process (waited 1s"), "{out}");
    assert!(out.contains("--lock-timeout"), "the hint says how to wait longer: {out}");
    drop(holder);
    assert_eq!(env.head(), head, "nothing was written");
    // Once the lock is free, the same command goes through.
    env.build(&image("late"));
}
