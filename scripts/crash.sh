#!/usr/bin/env bash
# Crash safety: SIGKILLs an appending process at random moments and checks,
# after each kill, that the ledger verifies and lost no acknowledged entry.
# The test suite runs 200 kills; --long runs 1000 (or PROVLEDGER_CRASH_KILLS).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${PROVLEDGER_CRASH_KILLS:-200}
[ "${1:-}" = "--long" ] && kills=${PROVLEDGER_CRASH_KILLS:-1000}
PROVLEDGER_CRASH_KILLS=$kills cargo test --release --test crash
