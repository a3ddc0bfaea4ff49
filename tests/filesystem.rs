//! The ledger directory on disk. A killed `init` leaves nothing or a
//! working ledger, and a store whose creation was cut short is empty, not
//! "not a ledger". A read-only ledger directory and a full disk, simulated
//! with a small tmpfs in a private mount namespace (`unshare -m`, which
//! needs root or CAP_SYS_ADMIN; where that is not allowed the test says so
//! and checks nothing else): each write must fail with exit 1 and a message
//! naming the cause, acknowledge nothing it did not write, and leave a
//! ledger that verifies, with the head of the last acknowledged entry.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, image};

const SCRIPT: &str = r#"
set -u
PL=$1; SRC=$2; K=$3; MINFREE=$5
M=$(mktemp -d)
mount -t tmpfs -o size=16m tmpfs "$M" || exit 97
cp -a "$SRC" "$M/ledger"
export PROVLEDGER_DIR="$M/ledger"
head_hash() { "$PL" --min-free-space "$MINFREE" verify --json | sed -n 's/.*"head":"\([0-9a-f]*\)".*/\1/p'; }
build() {
  img="registry.example.com/acme/full:1@sha256:$(printf "$1" | sha256sum | cut -c1-64)"
  "$PL" --json --min-free-space "$MINFREE" record build --key "$K/ci.key" --image "$img" --offline 2>&1
}
echo "HEAD0 $(head_hash)"
mount -o remount,ro "$M" || exit 97
out=$("$PL" --min-free-space "$MINFREE" record build --key "$K/ci.key" --image "$4" --offline 2>&1); echo "RO $? $out"
mount -o remount,rw "$M"
echo "HEAD1 $(head_hash)"
# A store in use has grown its files; then the disk fills up.
for i in 1 2 3; do
  out=$(build "grow-$i") || { echo "GROW failed: $out"; exit 1; }
  echo "ACK $(printf '%s' "$out" | sed -n 's/.*"hash":"\([0-9a-f]*\)".*/\1/p')"
done
dd if=/dev/zero of="$M/fill" bs=64k 2>/dev/null
for i in $(seq 1 400); do
  out=$(build "full-$i"); rc=$?
  if [ $rc != 0 ]; then echo "FULL $rc $out"; break; fi
  echo "ACK $(printf '%s' "$out" | sed -n 's/.*"hash":"\([0-9a-f]*\)".*/\1/p')"
done
rm -f "$M/fill"
echo "HEAD2 $(head_hash)"
"$PL" --min-free-space "$MINFREE" verify 2>&1 | head -1 | sed 's/^/VERIFY /'
umount "$M"
"#;

/// Runs the script with `min_free_mib`; `None` where mounting is not permitted.
fn simulate(min_free_mib: u32) -> Option<(String, String)> {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("before"));
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", SCRIPT, "fs"])
        .arg(assert_cmd::cargo::cargo_bin("provledger"))
        .arg(env.ledger())
        .arg(env.dir.path())
        .arg(image("read-only"))
        .arg(min_free_mib.to_string())
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

/// After the disk filled: the last acknowledged entry is the head of a
/// ledger that verifies.
fn assert_recovered(text: &str) {
    let acked: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("ACK ")).collect();
    assert!(tag(text, "VERIFY").starts_with("ok:"), "the ledger does not verify after the disk filled:\n{text}");
    assert_eq!(tag(text, "HEAD2"), *acked.last().expect("grown entries were acknowledged"), "{text}");
}

#[test]
fn a_read_only_directory_and_a_full_disk_fail_cleanly() {
    let Some((text, head0)) = simulate(2) else { return };
    assert_eq!(head0.len(), 64, "{text}");
    // Read-only: exit 1 naming the cause; nothing written.
    let ro = tag(&text, "RO");
    assert!(ro.starts_with("1 ") && ro.contains("Read-only file system"), "{ro}");
    assert_eq!(tag(&text, "HEAD1"), head0, "a refused write on a read-only directory moved the head");
    // Full: refused before sled opens (it writes when it opens), naming the
    // free space and the margin.
    let full = tag(&text, "FULL");
    assert!(full.starts_with("1 ") && full.contains("bytes free") && full.contains("min-free-space"), "{full}");
    assert_recovered(&text);
}

/// sled's own behaviour when a write is cut short by a full disk, with the
/// margin turned off: its log is left unreadable ("Read corrupted data"),
/// even after space is freed (spacejam/sled#1509). This is why appends keep
/// a margin free (`--min-free-space`); SECURITY.md describes the fix
/// proposed (another engine behind the `Store` trait).
#[test]
#[ignore = "fails: sled 0.34 corrupts its log when a write meets a full disk; see SECURITY.md"]
fn a_full_disk_without_the_margin_leaves_sled_readable() {
    let Some((text, _)) = simulate(0) else { return };
    assert!(tag(&text, "FULL").contains("No space left on device"), "{text}");
    assert_recovered(&text);
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
        left_behind += dir.join(provledger::store::DB_DIR).exists() as u32;
        assert_nothing_or_a_ledger(&env, &dir, &format!("kill {i} after {:?}", took * i / (KILLS - 4)));
    }
    assert!(left_behind > 0, "no kill landed after init had started writing");
}

#[test]
fn a_store_whose_creation_was_cut_short_is_empty_and_initialisable() {
    let env = Env::new();
    // sled's files made, no store version, and a log key and a temporary
    // file from the init that was killed.
    let bare = env.dir.path().join("bare");
    drop(sled::Config::new().path(bare.join(provledger::store::DB_DIR)).open().unwrap());
    std::fs::copy(env.key("qa"), bare.join("log.key")).unwrap();
    std::fs::write(bare.join(".log.key.0123456789abcdef.tmp"), "PROVLEDGER-SECRET-KEY-ED25519:").unwrap();
    // The store made and versioned, killed before the genesis entry.
    let versioned = env.dir.path().join("versioned");
    drop(provledger::store::SledStore::create(&versioned, Duration::from_secs(5)).unwrap());
    for dir in [&bare, &versioned] {
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
    drop(sled::Config::new().path(mirror.join(provledger::store::DB_DIR)).open().unwrap());
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
