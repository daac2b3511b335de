#!/usr/bin/env bash
# Runs every check Wharf has, on a machine that has only Rust: installs the client tools the
# tests use, then formatting, clippy, unit and integration tests, and the OCI conformance
# runner against a freshly started registry. Exits non-zero on the first failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# A target directory outside the clone keeps repeated runs on one machine incremental.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf-target}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_debian_packages() {
  local missing=()
  for tool_package in "$@"; do
    command -v "${tool_package%%:*}" >/dev/null || missing+=("${tool_package#*:}")
  done
  [ ${#missing[@]} = 0 ] && return
  echo "== installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_debian_packages skopeo:skopeo python3:python3

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --quiet

scratch=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

echo "== cargo test"
cargo test --quiet

echo "== conformance runner against a fresh Wharf (SQLite + filesystem)"
"$CARGO_TARGET_DIR/debug/wharf" serve --listen 127.0.0.1:0 --data-dir "$scratch/data" \
  --log warn,wharf=info >"$scratch/wharf.log" 2>&1 &
server_pid=$!
address=
for _ in $(seq 100); do
  address=$(sed 's/\x1b\[[0-9;]*m//g' "$scratch/wharf.log" | grep -o 'address=[0-9.:]*' | head -1 | cut -d= -f2) || true
  [ -n "$address" ] && break
  sleep 0.1
done
[ -n "$address" ] || { cat "$scratch/wharf.log"; echo "wharf did not start"; exit 1; }
OCI_ROOT_URL="http://$address" OCI_NAMESPACE=conformance/main \
  OCI_CROSSMOUNT_NAMESPACE=conformance/cross python3 conformance/run.py
