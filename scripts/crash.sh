#!/usr/bin/env bash
# Crash safety: SIGKILLs an appending process at random moments and checks,
# after each kill, that the ledger verifies and lost no acknowledged entry;
# then kills conversions of a store version 2 ledger. The test suite runs
# 200 kills; --long runs 1000 (or PROVLEDGER_CRASH_KILLS). Bounded in time:
# PROVLEDGER_CRASH_SECONDS (default 3600), then it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${PROVLEDGER_CRASH_KILLS:-200}
[ "${1:-}" = "--long" ] && kills=${PROVLEDGER_CRASH_KILLS:-1000}
PROVLEDGER_CRASH_KILLS=$kills timeout --foreground "${PROVLEDGER_CRASH_SECONDS:-3600}" \
    cargo test --release --test crash
