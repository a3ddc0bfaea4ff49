#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine,
# then runs the whole suite, clippy and rustfmt. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=
apt_install() {
    [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# Python venv with securesystemslib, the independent DSSE verifier.
VENV=target/pyvenv
if ! "$VENV/bin/python" -c 'import securesystemslib, cryptography' 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        apt_install python3-venv
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check 'securesystemslib[crypto]==1.6.*'
fi
export PROVLEDGER_PYTHON="$PWD/$VENV/bin/python"

# A real OCI registry and the tools that make and push images, for the
# registry tests. The tests start their own registry on 127.0.0.1; the
# package's own service (all interfaces) is not wanted.
missing=()
for tool in docker-registry skopeo umoci; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
    # Stop the package's service if installing it started one.
    if command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then
        as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/docker-registry ]; then
        as_root /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
fi

# PostgreSQL, for the tests of the ledger on PostgreSQL: they make their own
# clusters (initdb and pg_ctl, as the unprivileged `postgres` user when run
# as root) in temp directories, on free loopback ports. The package's own
# cluster is not wanted.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
    if command -v systemctl >/dev/null && systemctl is-active -q postgresql 2>/dev/null; then
        as_root systemctl disable --now postgresql >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/postgresql ]; then
        as_root /etc/init.d/postgresql stop >/dev/null 2>&1 || true
    fi
fi

# Chromium, the real browser the audit view's tests open the pages in
# (headless, a profile of their own per run).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    apt_install chromium
fi

rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt 2>/dev/null || true

cargo test --locked
cargo clippy --locked --all-targets -- -D warnings
cargo fmt --check
