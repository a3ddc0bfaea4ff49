//! The ledger directory on disk. A killed `init` leaves nothing or a
//! working ledger, and a store whose creation was cut short is empty, not
//! "not a ledger". A read-only ledger directory and a full disk, simulated
//! with a small tmpfs in a private mount namespace (`unshare -m`, which
//! needs root or CAP_SYS_ADMIN; where that is not allowed the test says so
//! and checks nothing else): each write must fail with exit 1 and a message
//! naming the cause, acknowledge nothing it did not write, and leave a
//! ledger that verifies, with the head of the last acknowledged entry, and
//! that takes appends again once space is freed. No free-space margin is
//! kept: the disk is filled to the last byte, and then to within a few
//! bytes of it, so that each write of an append (segment, tree nodes,
//! checkpoint, indexes) is the one that meets the full disk in some run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, image};
use provledger::store::local::{LOG_DIR, LocalStore};

const SCRIPT: &str = r#"
set -u
PL=$1; SRC=$2; K=$3; SLACK=$5; TRIES=$6
M=$(mktemp -d)
mount -t tmpfs -o size=16m tmpfs "$M" || exit 97
cp -a "$SRC" "$M/ledger"
export PROVLEDGER_DIR="$M/ledger"
head_hash() { "$PL" verify --json | sed -n 's/.*"head":"\([0-9a-f]*\)".*/\1/p'; }
build() {
  img="registry.example.com/acme/full:1@sha256:$(printf "$1" | sha256sum | cut -c1-64)"
  "$PL" --json record build --key "$K/ci.key" --image "$img" --offline 2>&1
}
ack() { echo "ACK $(printf '%s' "$1" | sed -n 's/.*"hash":"\([0-9a-f]*\)".*/\1/p')"; }
echo "HEAD0 $(head_hash)"
mount -o remount,ro "$M" || exit 97
out=$("$PL" record build --key "$K/ci.key" --image "$4" --offline 2>&1); echo "RO $? $out"
mount -o remount,rw "$M"
echo "HEAD1 $(head_hash)"
# A store in use has grown its files; then the disk fills up, to the last
# byte (the first run) or to within a few bytes of it (the others).
for i in 1 2 3; do
  out=$(build "grow-$i") || { echo "GROW failed: $out"; exit 1; }
  ack "$out"
done
for slack in $SLACK; do
  dd if=/dev/zero of="$M/fill" bs=4k 2>/dev/null
  if [ "$slack" != 0 ]; then
    size=$(stat -c %s "$M/fill"); rm "$M/fill"
    head -c $((size - slack)) /dev/zero >"$M/fill" 2>/dev/null
  fi
  full=
  for i in $(seq 1 "$TRIES"); do
    out=$(build "full-$slack-$i"); rc=$?
    if [ $rc != 0 ]; then echo "FULL $rc $out" | head -1; full=1; break; fi
    ack "$out"
  done
  [ -n "$full" ] || echo "FULL none"
  rm -f "$M/fill"
  echo "HEAD2 $(head_hash)"
  "$PL" verify 2>&1 | head -1 | sed 's/^/VERIFY /'
  out=$(build "freed-$slack") && ack "$out" || echo "FREED failed: $out"
done
umount "$M"
"#;

/// Runs the script with each of `slacks` (bytes left free); `None` where
/// mounting is not permitted.
fn simulate(slacks: &str, tries: u32) -> Option<(String, String)> {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("before"));
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", SCRIPT, "fs"])
        .arg(assert_cmd::cargo::cargo_bin("provledger"))
        .arg(env.ledger())
        .arg(env.dir.path())
        .arg(image("read-only"))
        .arg(slacks)
        .arg(tries.to_string())
        .env_remove("PROVLEDGER_SERVER")
        .output();
    match out {
        Err(e) => {
            println!("not simulated: unshare is not available ({e})");
            None
        }
        Ok(o) if o.status.code() == Some(97) || String::from_utf8_lossy(&o.stderr).contains("not permitted") => {
            println!("not simulated: mounting a tmpfs is not permitted here");
            None
        }
        Ok(o) => {
            assert!(o.status.success(), "the script failed: {}", String::from_utf8_lossy(&o.stderr));
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let head0 = tag(&text, "HEAD0");
            Some((text, head0))
        }
    }
}

fn tag(text: &str, tag: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no {tag} in:\n{text}"))
        .to_string()
}

/// After each filling of the disk: the append that met it was refused with
/// exit 1 naming the full disk, the head is the last acknowledged entry,
/// the ledger verifies, and an append succeeds once space is freed.
/// Returns how many runs met the full disk (a run may not, within its
/// tries: sled, in the same file system, punches holes in its files as it
/// compacts them, freeing space).
fn assert_recovered(text: &str, runs: usize) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let fulls: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].starts_with("FULL ")).collect();
    assert_eq!(fulls.len(), runs, "a run did not finish:\n{text}");
    let mut met = 0;
    for (run, &at) in fulls.iter().enumerate() {
        let full = lines[at];
        if full != "FULL none" {
            assert!(full.starts_with("FULL 1 ") && full.to_lowercase().contains("no space left"), "run {run}: {full}");
            met += 1;
        }
        let acked = lines[..at].iter().rev().find_map(|l| l.strip_prefix("ACK ")).expect("entries were acknowledged");
        let after = |k: usize| lines.get(at + k).copied().unwrap_or_default();
        assert_eq!(
            after(1),
            format!("HEAD2 {acked}"),
            "run {run}: the head is not the last acknowledged entry\n{text}"
        );
        assert!(after(2).starts_with("VERIFY ok:"), "run {run}: the ledger does not verify:\n{text}");
        let freed = after(3);
        assert!(freed.starts_with("ACK ") && freed.len() == 4 + 64, "run {run}: no append once freed: {freed}\n{text}");
    }
    met
}

#[test]
fn a_read_only_directory_and_a_full_disk_fail_cleanly() {
    let Some((text, head0)) = simulate("0", 400) else { return };
    assert_eq!(head0.len(), 64, "{text}");
    // Read-only: exit 1 naming the cause; nothing written.
    let ro = tag(&text, "RO");
    assert!(ro.starts_with("1 ") && ro.contains("Read-only file system"), "{ro}");
    assert_eq!(tag(&text, "HEAD1"), head0, "a refused write on a read-only directory moved the head");
    assert_eq!(assert_recovered(&text, 1), 1, "the disk never filled:\n{text}");
}

/// The disk full to within 1 byte to 12 KiB: the write that meets it is,
/// from run to run, the segment's frames, a tree node file, the checkpoint
/// state or the index store's (the segment log's own tests meet a full
/// disk at each of its writes, many times over).
#[test]
fn a_full_disk_at_any_write_loses_nothing_and_needs_no_margin() {
    let slacks = [1, 700, 2049, 4095, 6000, 12000];
    let text = slacks.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" ");
    let Some((text, _)) = simulate(&text, 25) else { return };
    let met = assert_recovered(&text, slacks.len());
    assert!(met * 2 >= slacks.len(), "only {met} of {} runs met the full disk:\n{text}", slacks.len());
}

/// After an interrupted `init` of `dir`: either a ledger that verifies, or
/// a directory where `verify` says to run init and a rerun of init makes one.
fn assert_nothing_or_a_ledger(env: &Env, dir: &Path, what: &str) {
    let d = dir.display().to_string();
    let (root, policy) = (env.key("root"), env.path("policy.toml"));
    let (code, out, err) = env.run(&["--ledger", &d, "verify"]);
    assert!(!err.contains("panicked"), "{what}: {err}");
    if code != 0 {
        assert_eq!(code, 1, "{what}: verify: {out}{err}");
        assert!(err.contains("not a provledger ledger") || err.contains("no genesis entry"), "{what}: {err}");
        let (code, out, err) = env.run(&["--ledger", &d, "init", "--root-key", &root, "--policy", &policy]);
        assert_eq!(code, 0, "{what}: init after the interruption failed: {out}{err}");
    }
    let v = env.json(&["--ledger", &d, "verify"]);
    assert_eq!(v["entries"], 1, "{what}: {v}");
    // A working ledger: it takes an append (its log key is there) ...
    let ci = env.key("ci");
    env.ok(&["--ledger", &d, "record", "build", "--key", &ci, "--image", &image(&d), "--offline"]);
    // ... and a second init is refused.
    let out = env.fails(1, &["--ledger", &d, "init", "--root-key", &root, "--policy", &policy]);
    assert!(out.contains("already holds a ledger"), "{what}: {out}");
}

#[test]
fn a_killed_init_leaves_nothing_or_a_working_ledger() {
    let env = Env::new();
    let (root, policy) = (env.key("root"), env.path("policy.toml"));
    let init = |dir: &Path| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("provledger"));
        c.args(["--ledger", &dir.display().to_string(), "init", "--root-key", &root, "--policy", &policy]);
        c.env_remove("PROVLEDGER_SERVER").stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    // How long an init takes here; the kills land from its start to past its end.
    let started = Instant::now();
    assert!(init(&env.dir.path().join("timed")).status().unwrap().success());
    let took = started.elapsed();
    const KILLS: u32 = 30;
    let mut left_behind = 0;
    for i in 0..KILLS {
        let dir = env.dir.path().join(format!("killed-{i}"));
        let mut child = init(&dir).spawn().unwrap();
        std::thread::sleep(took * i / (KILLS - 4));
        let _ = child.kill(); // SIGKILL; the init may have finished already
        child.wait().unwrap();
        left_behind += dir.join(LOG_DIR).exists() as u32;
        assert_nothing_or_a_ledger(&env, &dir, &format!("kill {i} after {:?}", took * i / (KILLS - 4)));
    }
    assert!(left_behind > 0, "no kill landed after init had started writing");
}

#[test]
fn a_store_whose_creation_was_cut_short_is_empty_and_initialisable() {
    let env = Env::new();
    // The log's format file written, nothing else, and a log key and a
    // temporary file from the init that was killed.
    let bare = env.dir.path().join("bare");
    std::fs::create_dir_all(bare.join(LOG_DIR)).unwrap();
    std::fs::write(bare.join(LOG_DIR).join("format"), "provledger segment log, version 1\n").unwrap();
    std::fs::copy(env.key("qa"), bare.join("log.key")).unwrap();
    std::fs::write(bare.join(".log.key.0123456789abcdef.tmp"), "PROVLEDGER-SECRET-KEY-ED25519:").unwrap();
    // The store made (log and indexes), killed before the genesis entry.
    let made = env.dir.path().join("made");
    drop(LocalStore::create(&made, Duration::from_secs(5)).unwrap());
    // A store version 2 ledger whose creation was cut short (sled's files,
    // no version record): converted, empty.
    let old = env.dir.path().join("old");
    drop(sled::Config::new().path(old.join("store")).open().unwrap());
    for dir in [&bare, &made, &old] {
        let d = dir.display().to_string();
        let ci = env.key("ci");
        let out = env.fails(1, &["--ledger", &d, "record", "build", "--key", &ci, "--image", &image("x"), "--offline"]);
        assert!(out.contains("no genesis entry") && out.contains("provledger init"), "{out}");
        assert_nothing_or_a_ledger(&env, dir, &d);
    }
    assert!(!bare.join(".log.key.0123456789abcdef.tmp").exists(), "the stale temporary file is gone");
    // The log key is the one this init wrote, not the leftover.
    let qa = std::fs::read_to_string(env.key("qa")).unwrap();
    assert_ne!(std::fs::read_to_string(bare.join("log.key")).unwrap(), qa);
    // A mirror whose first sync was cut short: the empty store takes the sync.
    let (source, genesis) = Env::initialised_with_log_key();
    source.build(&image("mirrored"));
    let mirror = env.dir.path().join("mirror");
    drop(LocalStore::create(&mirror, Duration::from_secs(5)).unwrap());
    let m = mirror.display().to_string();
    let from = source.ledger().display().to_string();
    env.ok(&["--ledger", &m, "sync", "--from", &from, "--genesis", &genesis]);
    assert_eq!(env.json(&["--ledger", &m, "verify"])["entries"], 2);
}

#[test]
fn outputs_are_never_written_through_planted_links() {
    use std::os::unix::fs::symlink;
    let (env, _) = Env::initialised_with_log_key();
    env.release_to_prod(&image("linked"));
    let victim = env.dir.path().join("victim");
    let d = common::digest("linked");
    let writes: [(&str, Vec<&str>); 4] = [
        ("export.bundle", vec!["export", "--out"]),
        ("cp.note", vec!["checkpoint", "--out"]),
        ("p.proof", vec!["prove", &d, "--env", "prod", "--out"]),
        ("rm.json", vec!["release-metadata", &d, "--out"]),
    ];
    for (name, args) in &writes {
        for planted in ["partial", "target"] {
            std::fs::write(&victim, "precious").unwrap();
            let out = env.dir.path().join(format!("{planted}-{name}"));
            let link = match planted {
                "partial" => env.dir.path().join(format!("{planted}-{name}.partial")),
                _ => out.clone(),
            };
            symlink(&victim, &link).unwrap();
            let o = out.display().to_string();
            let mut a = args.clone();
            a.push(&o);
            env.ok(&a);
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious", "{a:?} wrote through the {planted} link");
            let meta = std::fs::symlink_metadata(&out).unwrap();
            assert!(meta.file_type().is_file() && meta.len() > 0, "{a:?}: {out:?} is not the file written");
        }
    }
    // A new key is never written through a link either, not even a dangling one.
    for target in [victim.clone(), env.dir.path().join("nowhere")] {
        std::fs::write(&victim, "precious").unwrap();
        let key = env.dir.path().join("linked.key");
        let _ = std::fs::remove_file(&key);
        symlink(&target, &key).unwrap();
        let out = env.fails(1, &["key", "generate", "--out", &key.display().to_string()]);
        assert!(out.contains("already exists"), "{out}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!env.dir.path().join("nowhere").exists(), "the dangling link was followed");
    }
}
