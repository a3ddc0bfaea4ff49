#!/usr/bin/env bash
# Side by side: N signed DSSE envelopes verified by Python securesystemslib
# (one by one, as a hand-written audit script would) and by provledger
# (batches on all cores), in the same run, on the same file.
#
#   benches/compare.sh [N]      (default 20000)
#
# Needs the Python venv the test command creates (target/pyvenv with
# securesystemslib); creates it if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
VENV=target/pyvenv
if ! "$VENV/bin/python" -c 'import securesystemslib, cryptography' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'securesystemslib[crypto]'
fi
cargo build --release --quiet --example envelopes
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
./target/release/examples/envelopes export --count "$N" --out "$DIR"
# Several runs of each; the fastest of each is compared. The machines are
# shared and a run of a fraction of a second on all cores is easily
# disturbed, so provledger (0.2 s a run) gets more runs than Python (2.5 s).
RUNS=()
for _ in 1 2 3; do
    RUNS+=("$("$VENV/bin/python" benches/compare_securesystemslib.py "$DIR")")
done
for _ in 1 2 3 4 5 6; do
    RUNS+=("$(./target/release/examples/envelopes verify "$DIR")")
done
"$VENV/bin/python" - "$(nproc)" "${RUNS[@]}" <<'PYEOF'
import json, sys
cores, runs = sys.argv[1], [json.loads(r) for r in sys.argv[2:]]
best = lambda name: min((r for r in runs if r["verifier"] == name), key=lambda r: r["seconds"])
py, rs = best("securesystemslib"), best("provledger")
n = py["count"]
print(f"{n} envelopes, {cores} cores, fastest run of each")
for r in (py, rs):
    print(f"  {r['verifier']:<17} {r['seconds']:8.3f} s  {r['seconds'] / n * 1e6:8.1f} us/envelope  {n / r['seconds']:10.0f} envelopes/s")
print(f"  ratio             {py['seconds'] / rs['seconds']:.1f}x")
PYEOF
