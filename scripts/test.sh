#!/usr/bin/env bash
# Runs every check Wharf has, on a machine that has only Rust: installs the client tools the
# tests use (skopeo, podman) and starts Postgres and Garage, then runs formatting, clippy, unit
# and integration tests on both backend pairs, and the OCI conformance runner against fresh
# registries (SQLite + filesystem, Postgres + S3, and with auth on). Exits non-zero on the
# first failure.
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

install_debian_packages skopeo:skopeo podman:podman python3:python3

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --quiet

scratch=$(mktemp -d)
chmod 755 "$scratch"
source scripts/services.sh
trap 'stop_services; rm -rf "$scratch"' EXIT

echo "== starting Postgres and Garage (S3)"
start_postgres "$scratch"
start_garage "$scratch"

echo "== cargo test (unit, integration on SQLite + filesystem, backend suites, multi-node)"
cargo test --quiet

echo "== integration tests on Postgres + S3"
WHARF_TEST_BACKEND=postgres-s3 cargo test --quiet --test it -- auth:: blobs:: uploads:: manifests:: listing:: clients::

# run_conformance LABEL ARGS…: the conformance runner against a fresh `wharf serve ARGS…`.
run_conformance() {
  start_wharf "$CARGO_TARGET_DIR/debug/wharf" "$scratch/wharf-$1.log" "${@:2}"
  OCI_ROOT_URL=$wharf_url OCI_NAMESPACE=conformance/main \
    OCI_CROSSMOUNT_NAMESPACE=conformance/cross python3 conformance/run.py
  kill "$wharf_pid"
}

echo "== conformance runner on Postgres + S3"
psql -q "$WHARF_TEST_POSTGRES_URL" -c "CREATE DATABASE conformance"
run_conformance postgres-s3 --data-dir "$scratch/data-pg" \
  --database-url "${WHARF_TEST_POSTGRES_URL%/*}/conformance" --storage s3 \
  --s3-endpoint "$WHARF_TEST_S3_ENDPOINT" --s3-region "$AWS_REGION" \
  --s3-bucket "$WHARF_TEST_S3_BUCKET" --s3-prefix conformance/ --s3-path-style true

echo "== conformance runner on SQLite + filesystem"
run_conformance sqlite-fs --data-dir "$scratch/data"

echo "== conformance runner with auth on (Bearer token flow)"
OCI_USERNAME=admin OCI_PASSWORD=conformance-secret run_conformance auth \
  --data-dir "$scratch/data-auth" --auth true --admin-password conformance-secret
