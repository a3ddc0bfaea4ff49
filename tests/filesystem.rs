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
PL=$1; SRC=$2; K=$3
M=$(mktemp -d)
mount -t tmpfs -o size=16m tmpfs "$M" || exit 97
cp -a "$SRC" "$M/ledger"
export PROVLEDGER_DIR="$M/ledger"
head() { "$PL" verify --json | sed -n 's/.*"head":"\([0-9a-f]*\)".*/\1/p'; }
echo "HEAD0 $(head)"
mount -o remount,ro "$M" || exit 97
out=$("$PL" record build --key "$K/ci.key" --image "$4" --offline 2>&1); echo "RO $? $out"
mount -o remount,rw "$M"
echo "HEAD1 $(head)"
dd if=/dev/zero of="$M/fill" bs=64k 2>/dev/null
for i in $(seq 1 400); do
  img="registry.example.com/acme/full:1@sha256:$(printf "full-$i" | sha256sum | cut -c1-64)"
  out=$("$PL" --json record build --key "$K/ci.key" --image "$img" --offline 2>&1); rc=$?
  if [ $rc != 0 ]; then echo "FULL $rc $out"; break; fi
  echo "ACK $(printf '%s' "$out" | sed -n 's/.*"hash":"\([0-9a-f]*\)".*/\1/p')"
done
rm -f "$M/fill"
echo "HEAD2 $(head)"
umount "$M"
"#;

#[test]
fn a_read_only_directory_and_a_full_disk_fail_cleanly() {
    let (env, _) = Env::initialised_with_log_key();
    env.build(&image("before"));
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", SCRIPT, "fs"])
        .arg(assert_cmd::cargo::cargo_bin("provledger"))
        .arg(env.ledger())
        .arg(env.dir.path())
        .arg(image("read-only"))
        .env_remove("PROVLEDGER_SERVER")
        .output();
    let out = match out {
        Ok(o) if o.status.code() != Some(97) && o.status.success() => o,
        Ok(o) if o.status.code() == Some(97) || !o.status.success() => {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("Operation not permitted") || o.status.code() == Some(97) {
                println!("not simulated: mounting a tmpfs is not permitted here ({})", err.trim());
                return;
            }
            panic!("the script failed: {err}");
        }
        Ok(_) => unreachable!(),
        Err(e) => {
            println!("not simulated: unshare is not available ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = |tag: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{tag} ")))
            .unwrap_or_else(|| panic!("no {tag} in:\n{text}"))
            .to_string()
    };
    let head0 = line("HEAD0");
    assert_eq!(head0.len(), 64, "{text}");
    // Read-only: exit 1 naming the cause; nothing written.
    let ro = line("RO");
    assert!(ro.starts_with("1 ") && ro.contains("Read-only file system"), "{ro}");
    assert_eq!(line("HEAD1"), head0, "a refused write on a read-only directory moved the head");
    // Full: writes go through while sled's preallocated space lasts, then
    // exit 1 naming the cause; the ledger verifies, and its head is the
    // last acknowledged entry.
    let full = line("FULL");
    assert!(full.starts_with("1 ") && full.contains("No space left on device"), "{full}");
    let acked: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("ACK ")).collect();
    let head2 = line("HEAD2");
    assert_eq!(head2, acked.last().map_or(head0.as_str(), |h| *h), "after a full disk:\n{text}");
    println!("full disk: {} entries acknowledged before the first refused write", acked.len());
}
