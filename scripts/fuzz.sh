#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 30 s each; give
# the seconds as $1), seeded from a real ledger made with the example keys.
# A crash is copied into fuzz/regressions/<target>/, which the test suite
# replays (tests/fuzz_regressions.rs); the script then fails.
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain, or
# RUSTC_BOOTSTRAP=1 on stable, which this script sets when no nightly is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then toolchain=(+nightly); else export RUSTC_BOOTSTRAP=1; fi

# Seeds: the entries, envelopes, statements, bundle, proof, checkpoint and
# policy of a small real ledger.
cargo build --quiet --bin provledger
PL="$PWD/target/debug/provledger"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp keys-example/* "$work/"; chmod 600 "$work"/*.key
export PROVLEDGER_DIR="$work/ledger"
IMG="registry.example.com/acme/app:1@sha256:$(printf seed | sha256sum | cut -c1-64)"
"$PL" init --root-key "$work/root.key" --policy "$work/policy.toml" --log-key "$work/ledger.key" >/dev/null
"$PL" record build --key "$work/ci.key" --image "$IMG" --offline >/dev/null
"$PL" record validation --key "$work/qa.key" --image "$IMG" --check unit=pass --offline >/dev/null
"$PL" promote --key "$work/release.key" --image "$IMG" --to dev --offline >/dev/null
"$PL" export --out "$work/seed.bundle" >/dev/null
"$PL" prove "${IMG#*@}" --env dev --out "$work/seed.proof" >/dev/null
"$PL" checkpoint --out "$work/seed.note" >/dev/null
"$PL" log --json > "$work/log.json"
python3 - "$work" <<'PY'
import base64, json, os, struct, sys
w = sys.argv[1]
def put(target, name, data):
    d = os.path.join("fuzz", "corpus", target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)
b = open(os.path.join(w, "seed.bundle"), "rb").read()
put("bundle", "seed", b)
off = 20; n = struct.unpack(">I", b[off:off+4])[0]; off += 4 + n + 8
i = 0
while off < len(b):
    n = struct.unpack(">I", b[off:off+4])[0]; put("entry", f"seed{i}", b[off+4:off+4+n]); off += 4 + n; i += 1
put("proof", "seed", open(os.path.join(w, "seed.proof"), "rb").read())
put("checkpoint_note", "seed", open(os.path.join(w, "seed.note"), "rb").read())
put("policy", "seed", open(os.path.join(w, "policy.toml"), "rb").read())
for i, e in enumerate(json.load(open(os.path.join(w, "log.json")))):
    put("dsse_envelope", f"seed{i}", json.dumps(e["envelope"]).encode())
    put("statement", f"seed{i}", base64.b64decode(e["envelope"]["payload"]))
put("digest", "seed", b"sha256:" + b"ab" * 32)
for i, r in enumerate([b"registry.example.com/acme/app:1.0@sha256:" + b"cd" * 32, b"ubuntu", b"localhost:5000/a/b:c"]):
    put("image_ref", f"seed{i}", r)
PY

failed=()
for t in $(cargo "${toolchain[@]}" fuzz list); do
    echo "== $t: ${secs}s"
    if ! cargo "${toolchain[@]}" fuzz run -s none "$t" -- -max_total_time="$secs" -rss_limit_mb=4096 2>&1 | tail -4; then
        failed+=("$t")
    fi
    for a in fuzz/artifacts/"$t"/*; do
        [ -e "$a" ] || continue
        mkdir -p fuzz/regressions/"$t"; cp "$a" fuzz/regressions/"$t"/; failed+=("$t")
    done
done
if [ ${#failed[@]} -gt 0 ]; then echo "crashes in: ${failed[*]} (inputs in fuzz/regressions/)"; exit 1; fi
echo "no crashes"
