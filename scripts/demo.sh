#!/usr/bin/env bash
# The main job: a build -> validate -> promote -> audit story on an embedded ledger with
# the example keys. Everything happens in a temp directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin provledger
PL="$PWD/target/debug/provledger"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# Git does not keep file modes: secret keys must be 0600 to be accepted.
cp keys-example/* "$WORK/"
chmod 600 "$WORK"/*.key
export PROVLEDGER_DIR="$WORK/ledger"
K="$WORK"

step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }
# Runs a command that must be refused with the given exit code.
refused() {
    local want=$1; shift
    printf '\n== refused (exit %s expected)\n$ %s\n' "$want" "$*"
    set +e; "$@" 2>&1; local got=$?; set -e
    [ "$got" = "$want" ] || { echo "expected exit $want, got $got" >&2; exit 1; }
    echo "-> exit $got, as the contract says"
}

DIGEST="sha256:$(printf 'acme backend 1.4.2' | sha256sum | cut -c1-64)"
IMAGE="registry.example.com/acme/backend:1.4.2@$DIGEST"
GIT_SHA=3f2c1e0d9b8a7f6e5d4c3b2a1908f7e6d5c4b3a2

echo "== init: the genesis entry is the policy, signed by the root key"
GENESIS=$("$PL" init --root-key "$K/root.key" --policy "$K/policy.toml" --log-key "$K/ledger.key")
echo "genesis hash: $GENESIS   (auditors need only this)"

step "CI records the build (offline: no registry lookup, and the record says so)" \
    "$PL" record build --key "$K/ci.key" --image "$IMAGE" --git-sha "$GIT_SHA" --artifact backend \
    --ci-run-url https://ci.example.com/acme/backend/runs/812 --ci-run-id 812 --ci-workflow release.yml \
    --ci-repository https://git.example.com/acme/backend --offline

refused 3 "$PL" record build --key "$K/ci.key" --image registry.example.com/acme/backend:1.4.2 --offline
refused 3 "$PL" record validation --key "$K/ci.key" --image "$IMAGE" --check unit=pass --offline

refused 3 "$PL" promote --key "$K/release.key" --image "$IMAGE" --to dev --offline

step "the validation lane records gate outcomes for the exact digest (integration fails)" \
    "$PL" record validation --key "$K/qa.key" --image "$IMAGE" --check unit=pass --check integration=fail --offline

step "promote to dev: unit passed" "$PL" promote --key "$K/release.key" --image "$IMAGE" --to dev --offline
refused 3 "$PL" promote --key "$K/release.key" --image "$IMAGE" --to staging --offline

step "a rerun of integration passes; the newer outcome supersedes the failure" \
    "$PL" record validation --key "$K/qa.key" --image "$IMAGE" --check integration=pass --offline
step "promote to staging" "$PL" promote --key "$K/release.key" --image "$IMAGE" --to staging --offline
refused 3 "$PL" promote --key "$K/release.key" --image "$IMAGE" --to prod --dry-run

step "end-to-end and vulnerability scan pass" \
    "$PL" record validation --key "$K/qa.key" --image "$IMAGE" --check e2e=pass --check vuln-scan=pass \
    --evidence vuln-scan=https://ci.example.com/acme/backend/runs/813/scan --offline
step "promote to prod" "$PL" promote --key "$K/release.key" --image "$IMAGE" --to prod --offline
step "an auditor keeps the signed checkpoint they saw today (C2SP tlog-checkpoint)" \
    "$PL" checkpoint --out "$WORK/seen.checkpoint"
cat "$WORK/seen.checkpoint"

REBUILT="registry.example.com/acme/backend:1.4.2@sha256:$(printf 'acme backend 1.4.2 rebuilt' | sha256sum | cut -c1-64)"
step "CI rebuilds the same revision: a new digest, recorded and flagged" \
    "$PL" record build --key "$K/ci.key" --image "$REBUILT" --git-sha "$GIT_SHA" --artifact backend --offline
refused 3 "$PL" promote --key "$K/release.key" --image "$REBUILT" --to prod --offline

step "the audit answer for the released digest" "$PL" show "$DIGEST"
step "what is in prod, and what to roll back to" "$PL" history --env prod
step "the log: every entry verified as it is read" "$PL" log
step "audit: verify the whole chain against the genesis hash (it replays every promotion's gate)" "$PL" verify --genesis "$GENESIS"
refused 4 "$PL" verify --genesis 0000000000000000000000000000000000000000000000000000000000000000

step "export the offline audit bundle" "$PL" export --out "$WORK/ledger.bundle"
step "an auditor verifies it with no store, from the genesis hash alone, and proves it extends the checkpoint seen earlier" \
    "$PL" verify --bundle "$WORK/ledger.bundle" --genesis "$GENESIS" --since "$WORK/seen.checkpoint"
step "a portable proof that the digest was legitimately promoted to prod" \
    "$PL" prove "$DIGEST" --env prod --out "$WORK/prod.proof.json"
step "the audit view: verified, then written as a static site (open target/audit-report/index.html)" \
    "$PL" report --out target/audit-report
step "an admission controller checks it offline" "$PL" verify --proof "$WORK/prod.proof.json" --genesis "$GENESIS"
refused 3 "$PL" prove "$REBUILT" --env prod --out "$WORK/never.proof.json"
echo
echo "done: built, validated, promoted dev -> staging -> prod; every refusal exited as the contract says;"
echo "the chain, the exported bundle and the promotion proof verify offline from the genesis hash."
