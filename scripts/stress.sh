#!/usr/bin/env bash
# Stress runs against real `wharf serve` processes on fresh SQLite + filesystem data: the seeded
# HTTP fuzzer and the soak (tests/it/stress/), each for WHARF_STRESS_SECONDS (45 by default).
# First with auth off (fuzz, then soak), then with auth on (fuzz, then the soak with Basic on
# every request, then the soak with tokens), then `wharf storage check` on each server's data.
# Every run happens; a summary table comes last, and the script exits non-zero if any run
# failed (it found something, or could not run), a server panicked, logged an internal error or
# answered a 5xx, or its storage check found a blob without its bytes or staging without an
# upload. WHARF_STRESS_SEED, if set, is used by every run; otherwise each run picks and prints
# its own.
# Usage: scripts/stress.sh BINARY SCRATCH_DIR
set -euo pipefail

[ $# = 2 ] || { echo "usage: $0 BINARY SCRATCH_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
binary=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
scratch=$(cd "$2" && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf-target}
export WHARF_STRESS_SECONDS=${WHARF_STRESS_SECONDS:-45}
source scripts/services.sh
trap stop_services EXIT

summary=$scratch/stress-summary
: >"$summary"
failed=0
admin_password=stress-$RANDOM-secret

echo "== building the stress tests"
cargo test --quiet --test it --no-run

server_label= server_args=()
# serve LABEL ARGS…: a fresh `wharf serve ARGS…` for the runs that follow.
serve() {
  server_label=$1
  shift
  server_args=("$@")
  start_wharf "$binary" "$scratch/wharf-$server_label.log" "${server_args[@]}"
  echo "== $server_label: wharf pid $wharf_pid at $wharf_url"
}

# figure LOG PATTERN: the first match of a sed -E capture in a run's log, or "-".
figure() {
  local found
  found=$(sed -nE "s/$2/\\1/p" "$1" | head -n 1)
  echo "${found:--}"
}

# run_stress LABEL TEST [VAR=VALUE…]: one run of stress::TEST against the current server.
run_stress() {
  local label=$1 test=$2 log result
  shift 2
  log=$scratch/stress-$label.log
  if ! kill -0 "$wharf_pid" 2>/dev/null; then
    echo "!! the $server_label server is gone; starting another for $label"
    serve "$server_label-restarted" "${server_args[@]}"
  fi
  echo "== stress $label ($WHARF_STRESS_SECONDS s)"
  if env WHARF_STRESS_URL="$wharf_url" WHARF_STRESS_PID="$wharf_pid" "$@" \
    cargo test --quiet --test it -- --ignored --nocapture --test-threads 1 "stress::$test::$test" \
    2>&1 | tee "$log"; then
    result=ok
  else
    result=FAILED
    failed=1
  fi
  printf '%-26s %-7s %-20s %9s %8s %9s %9s %9s\n' "$label" "$result" \
    "$(figure "$log" '.*stress [a-z]+: seed (0x[0-9a-f]+).*')" \
    "$(figure "$log" '^requests ([0-9]+) in.*')" \
    "$(figure "$log" '^requests .*\(([0-9.]+)\/s\).*')" \
    "$(figure "$log" '^latency .* p99 ([0-9.]+) ms.*')" \
    "$(figure "$log" '^server: .* peak ([0-9.]+) MiB.*')" \
    "$(figure "$log" '^findings: ([0-9]+) in.*')" >>"$summary"
}

# server_health LABEL: a server's panics, internal errors (its 500s) and 5xx answers, from
# its log, for the summary.
server_health() {
  local log=$scratch/wharf-$1.log plain panics internal fivexx
  [ -f "$log" ] || return 0
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
  panics=$(grep -c 'panicked' <<<"$plain" || true)
  internal=$(grep -c 'internal error' <<<"$plain" || true)
  fivexx=$(grep -c 'response failed classification=Status code: 5' <<<"$plain" || true)
  echo "server $1: $panics panics, $internal internal errors, $fivexx 5xx answers ($log)" \
    >>"$summary.servers"
  [ "$panics" = 0 ] && [ "$internal" = 0 ] && [ "$fivexx" = 0 ] || failed=1
}

# storage_health LABEL DATA_DIR: after a server stopped, `wharf storage check` on its data, for
# the summary: every recorded blob must have its bytes at the recorded size, and nothing may
# stay staged without an upload. Orphans (bytes no row records, such as an upload whose client
# vanished between storing and recording) are counted, not failed: reconciliation reclaims them.
storage_health() {
  local report=$scratch/storage-$1.json verdict
  "$binary" storage check --data-dir "$2" --json >"$report" || true
  verdict=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
bad = len(r["missing"]) + len(r["size_mismatches"]) + len(r["stale_staging"])
print("ok" if bad == 0 else "FAILED", "storage %s: %d blobs, %d missing, %d size mismatches, %d staged without an upload, %d orphans" % (
    sys.argv[2], r["recorded_blobs"], len(r["missing"]), len(r["size_mismatches"]),
    len(r["stale_staging"]), len(r["orphans"])))' "$report" "$1") || verdict="FAILED storage $1: no report"
  echo "${verdict#* }" >>"$summary.storage"
  [ "${verdict%% *}" = ok ] || failed=1
}

: >"$summary.storage"
serve auth-off --data-dir "$scratch/data-auth-off"
run_stress auth-off-fuzz fuzz
run_stress auth-off-soak soak
kill "$wharf_pid" 2>/dev/null || true
wait "$wharf_pid" 2>/dev/null || true
storage_health auth-off "$scratch/data-auth-off"

serve auth-on --data-dir "$scratch/data-auth-on" --auth true --admin-password "$admin_password"
credentials=(WHARF_STRESS_USER=admin WHARF_STRESS_PASSWORD="$admin_password")
run_stress auth-on-fuzz fuzz "${credentials[@]}"
run_stress auth-on-soak-basic soak "${credentials[@]}" WHARF_STRESS_BASIC_EVERY_REQUEST=1
run_stress auth-on-soak-tokens soak "${credentials[@]}"
kill "$wharf_pid" 2>/dev/null || true
wait "$wharf_pid" 2>/dev/null || true
storage_health auth-on "$scratch/data-auth-on"

: >"$summary.servers"
for log in "$scratch"/wharf-*.log; do
  label=${log##*/wharf-}
  server_health "${label%.log}"
done

echo "== stress summary ($WHARF_STRESS_SECONDS s per run; logs in $scratch)"
printf '%-26s %-7s %-20s %9s %8s %9s %9s %9s\n' run result seed requests req/s "p99 ms" \
  "RSS MiB" findings
cat "$summary"
cat "$summary.servers"
cat "$summary.storage"
[ "$failed" = 0 ] || { echo "stress runs FAILED (findings are listed in each run's report above)"; exit 1; }
