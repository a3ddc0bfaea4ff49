//! A read-only ledger directory and a full disk, simulated with a small
//! tmpfs in a private mount namespace (`unshare -m`, which needs root or
//! CAP_SYS_ADMIN; where that is not allowed the test says so and checks
//! nothing else). Each write must fail with exit 1 and a message naming the
//! cause, acknowledge nothing it did not write, and leave a ledger that
//! verifies, with the head of the last acknowledged entry.

mod common;

use std::process::Command;

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
