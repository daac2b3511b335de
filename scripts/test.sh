#!/usr/bin/env bash
# Runs every check Wharf has, on a machine that has only Rust: installs the client tools the
# tests use (skopeo, podman, and the aws CLI + boto3 in a venv) and starts Postgres and Garage,
# then runs formatting, clippy, unit and integration tests on both backend pairs, OCI conformance
# (both official suites, then our own runner), the ECR API suite (tests/ecr/) against fresh
# registries (SQLite + filesystem, Postgres + S3, and with auth on), and the HTTP fuzzer and soak
# (scripts/stress.sh). Exits non-zero on the first failure, except that every conformance, ECR
# API and stress run happens before their summaries decide.
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

# The ECR API suite (tests/ecr/) drives Wharf with the real `aws` CLI and boto3, pinned, from a
# venv kept with the other tools; pip runs only when the venv is missing or holds other versions.
ecr_venv=${WHARF_ECR_VENV:-${WHARF_TOOLS:-$HOME/.cache/wharf-tools}/venv}
install_ecr_clients() {
  local want="awscli==1.46.3 boto3==1.44.8" have
  have=$("$ecr_venv/bin/python" -c 'from importlib.metadata import version as v
print("awscli==" + v("awscli"), "boto3==" + v("boto3"))' 2>/dev/null) || true
  [ "$have" = "$want" ] && return
  echo "== installing $want into $ecr_venv"
  if [ ! -x "$ecr_venv/bin/python" ]; then
    # Debian keeps ensurepip, which venv needs, in python3-venv.
    python3 -m venv "$ecr_venv" 2>/dev/null || {
      rm -rf "$ecr_venv"
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
      python3 -m venv "$ecr_venv"
    }
  fi
  # shellcheck disable=SC2086 # two pinned requirements
  "$ecr_venv/bin/pip" install --quiet --disable-pip-version-check $want
}
install_ecr_clients

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
WHARF_TEST_BACKEND=postgres-s3 cargo test --quiet --test it -- auth:: blobs:: uploads:: manifests:: listing:: clients:: ecr:: gc:: storage_check:: remote:: replication:: pull_through:: scanning:: audit:: observability:: webhooks:: \
  faults:: connections::

# Conformance: for each server configuration a fresh `wharf serve`, then both official OCI
# conformance builds (conformance/official.sh) and our own runner for what they do not check
# (conformance/run.py). Every run happens even after a failure; the summary comes last.
conformance_summary=$scratch/conformance-summary
conformance_failed=0
touch "$conformance_summary"

# run_conformance LABEL ARGS…: the official suites and run.py against a fresh `wharf serve ARGS…`.
run_conformance() {
  local label=$1 result
  shift
  echo "== conformance on $label: official suites, then conformance/run.py"
  start_wharf "$CARGO_TARGET_DIR/debug/wharf" "$scratch/wharf-$label.log" "$@"
  OCI_CONFORMANCE_LOGS=$scratch/conformance OCI_CONFORMANCE_SUMMARY=$conformance_summary \
    conformance/official.sh "$wharf_url" "$label" || conformance_failed=1
  OCI_ROOT_URL=$wharf_url OCI_NAMESPACE=conformance/wharf/main \
    OCI_CROSSMOUNT_NAMESPACE=conformance/wharf/cross python3 conformance/run.py |
    tee "$scratch/run-py-$label.log" || conformance_failed=1
  result=$(tail -n 1 "$scratch/run-py-$label.log")
  echo "[run.py | $label] $result" >>"$conformance_summary"
  kill "$wharf_pid"
}

run_conformance sqlite-fs --data-dir "$scratch/data"

psql -q "$WHARF_TEST_POSTGRES_URL" -c "CREATE DATABASE conformance"
run_conformance postgres-s3 --data-dir "$scratch/data-pg" \
  --database-url "${WHARF_TEST_POSTGRES_URL%/*}/conformance" --storage s3 \
  --s3-endpoint "$WHARF_TEST_S3_ENDPOINT" --s3-region "$AWS_REGION" \
  --s3-bucket "$WHARF_TEST_S3_BUCKET" --s3-prefix conformance/ --s3-path-style true

# With credentials, official.sh and run.py both check that the Docker token flow happened.
OCI_USERNAME=admin OCI_PASSWORD=conformance-secret run_conformance sqlite-fs+auth \
  --data-dir "$scratch/data-auth" --auth true --admin-password conformance-secret

# The ECR API (tests/ecr/: the aws CLI, boto3, skopeo, plain HTTP) against a fresh Wharf per
# configuration: SQLite + filesystem with a fixed --registry-id, Postgres + S3 (as above), and auth
# on with --create-on-push false, the only run of the auth tests and of pushes into repositories
# that were not created. Each run's summary line joins the conformance summary below.
# run_ecr LABEL [auth] ARGS…: tests/ecr/run.sh against a fresh `wharf serve ARGS…`.
run_ecr() {
  local label=$1 mode=() args admin_args=()
  shift
  if [ "$1" = auth ]; then mode=(auth); shift; fi
  args=("$@")
  # The server's database and storage, for the `wharf` commands the suite runs.
  while [ $# -gt 0 ]; do
    case $1 in
      --data-dir | --database-url | --storage | --s3-*) admin_args+=("$1" "$2"); shift 2 ;;
      *) shift ;;
    esac
  done
  echo "== ECR API suite on $label"
  start_wharf "$CARGO_TARGET_DIR/debug/wharf" "$scratch/wharf-ecr-$label.log" "${args[@]}"
  WHARF_ECR_VENV=$ecr_venv WHARF_BIN=$CARGO_TARGET_DIR/debug/wharf \
    WHARF_ADMIN_ARGS=$(printf '%q ' "${admin_args[@]}") \
    ECR_SUMMARY=$conformance_summary ECR_LOG=$scratch/ecr-$label.log \
    tests/ecr/run.sh "$wharf_url" "$label" "${mode[@]}" || conformance_failed=1
  kill "$wharf_pid"
}

WHARF_ECR_REGISTRY_ID=123456789012 run_ecr sqlite-fs --data-dir "$scratch/data-ecr" \
  --registry-id 123456789012

psql -q "$WHARF_TEST_POSTGRES_URL" -c "CREATE DATABASE ecr"
run_ecr postgres-s3 --data-dir "$scratch/data-ecr-pg" \
  --database-url "${WHARF_TEST_POSTGRES_URL%/*}/ecr" --storage s3 \
  --s3-endpoint "$WHARF_TEST_S3_ENDPOINT" --s3-region "$AWS_REGION" \
  --s3-bucket "$WHARF_TEST_S3_BUCKET" --s3-prefix ecr/ --s3-path-style true

WHARF_ECR_CREATE_ON_PUSH=false run_ecr sqlite-fs+auth auth --data-dir "$scratch/data-ecr-auth" \
  --auth true --admin-password ecr-secret --create-on-push false

# Hostile input and load against fresh servers, auth off and on: the seeded HTTP fuzzer and the
# soak (tests/it/stress/), 45 s each by default (WHARF_STRESS_SECONDS). One fixed seed, so that a
# red run is the change's doing and replays; run scripts/stress.sh without WHARF_STRESS_SEED to
# explore new cases.
stress_failed=0
WHARF_STRESS_SEED=${WHARF_STRESS_SEED:-0x5eed12a11ce5eed1} \
  scripts/stress.sh "$CARGO_TARGET_DIR/debug/wharf" "$scratch/stress" || stress_failed=1

echo "== conformance and ECR API suite summary"
cat "$conformance_summary"
if grep -q ' SKIPPED: ' "$conformance_summary"; then
  echo "!! some official conformance runs were SKIPPED (see above): they did not test anything"
fi
[ "$conformance_failed" = 0 ] || { echo "conformance or the ECR API suite FAILED"; exit 1; }
[ "$stress_failed" = 0 ] || { echo "the fuzzer or the soak FAILED (see the stress summary above)"; exit 1; }
