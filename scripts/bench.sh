#!/usr/bin/env bash
# Pushes and pulls one large blob through a release build of Wharf and reports throughput and
# the server's peak resident memory. A benchmark, not a test: it asserts only correctness.
#   scripts/bench.sh [size]        size as understood by `head -c` (default 1G)
# Extra `wharf serve` settings come from the environment (WHARF_DATABASE_URL, …).
set -euo pipefail

size=${1:-1G}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf-target}
cargo build --release --quiet --manifest-path "$root/Cargo.toml"

scratch=$(mktemp -d)
source "$root/scripts/services.sh"
trap 'stop_services; rm -rf "$scratch"' EXIT
start_wharf "$CARGO_TARGET_DIR/release/wharf" "$scratch/wharf.log" --data-dir "$scratch/data"
base=$wharf_url
server_pid=$wharf_pid

head -c "$size" /dev/urandom >"$scratch/blob"
bytes=$(stat -c %s "$scratch/blob")
digest="sha256:$(sha256sum "$scratch/blob" | cut -d' ' -f1)"
mb=$(awk "BEGIN { print $bytes / 1000000 }")

location=$(curl -sf -X POST -D - -o /dev/null "$base/v2/bench/blobs/uploads/" |
  tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
start=$(date +%s.%N)
curl -sf -X PATCH -T "$scratch/blob" -H 'Content-Type: application/octet-stream' \
  -o /dev/null "$base$location"
finish_start=$(date +%s.%N)
curl -sf -X PUT -o /dev/null "$base$location?digest=$digest"
finish_seconds=$(awk "BEGIN { print $(date +%s.%N) - $finish_start }")
push_seconds=$(awk "BEGIN { print $(date +%s.%N) - $start }")

start=$(date +%s.%N)
pulled=$(curl -sf "$base/v2/bench/blobs/$digest" | sha256sum | cut -d' ' -f1)
pull_seconds=$(awk "BEGIN { print $(date +%s.%N) - $start }")
[ "sha256:$pulled" = "$digest" ] || { echo "pulled bytes do not match"; exit 1; }

peak_kib=$(awk '/VmHWM/ { print $2 }' "/proc/$server_pid/status")
awk -v mb="$mb" -v push="$push_seconds" -v finish="$finish_seconds" -v pull="$pull_seconds" -v rss="$peak_kib" 'BEGIN {
  printf "blob: %.0f MB\npush: %.2f s, %.0f MB/s (of which the finishing PUT: %.2f s)\npull: %.2f s, %.0f MB/s (incl. sha256 of the pulled bytes)\nserver peak RSS: %.1f MiB\n",
    mb, push, mb / push, finish, pull, mb / pull, rss / 1024 }'
