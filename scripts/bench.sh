#!/usr/bin/env bash
# Benchmarks Wharf against CNCF Distribution 2.8 (Debian's docker-registry), and Trow when given,
# in one interleaved run, on two backend pairs: SQLite + filesystem, and Postgres + S3 (Garage;
# Distribution uses the same Garage). Prints per-path medians and the ratios Wharf/other.
# A benchmark, not a test: the test command does not run it. See "Benchmarks" in README.md.
#
#   scripts/bench.sh [--wharf BIN] [--trow BIN] [--pairs fs,s3] [--rounds N]
#                    [--size-large 1G] [--duration 5s] [--json FILE]
#
#   --wharf BIN       release binary to measure (default: cargo build --release)
#   --trow BIN        also measure Trow (filesystem only, so on the fs pair only)
#   --pairs LIST      backend pairs, comma-separated: fs, s3 (default: fs,s3)
#   --rounds N        rounds; each runs every path on every registry (default: 3)
#   --size-large SIZE blob of the monolithic push and the pull (default: 1G; K/M/G are binary)
#   --duration D      length of each wrk run (default: 5s)
#   --json FILE       also write the raw samples as JSON
#
# Each round runs the paths in order, and each path on every registry in turn, the order
# reversed every other round, so that other load on the machine, page cache and thermal drift
# fall on all registries alike. Repository names are fresh per round.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/scripts/bench
wharf_bin='' trow_bin='' pairs=fs,s3 rounds=3 size_large=1G duration=5s json_out=''
while [ $# -gt 0 ]; do
  case $1 in
    --wharf) wharf_bin=$2; shift 2 ;;
    --trow) trow_bin=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --size-large) size_large=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --json) json_out=$(realpath -m "$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The other sizes of the paths (see README.md, "Benchmarks"); the environment may shrink them
# for a quick check of the script itself.
size_chunked=${BENCH_SIZE_CHUNKED:-256M} chunk=8M tag_count=${BENCH_TAGS:-10000} images=8

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for tool_package in wrk:wrk docker-registry:docker-registry python3:python3 curl:curl; do
  command -v "${tool_package%%:*}" >/dev/null || missing+=("${tool_package#*:}")
done
if [ ${#missing[@]} != 0 ]; then
  echo "== installing ${missing[*]} from Debian"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -z "$wharf_bin" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/wharf-target}
  echo "== cargo build --release"
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  wharf_bin=$CARGO_TARGET_DIR/release/wharf
fi
wharf_bin=$(realpath "$wharf_bin")
[ -z "$trow_bin" ] || trow_bin=$(realpath "$trow_bin")

source "$root/scripts/services.sh"
scratch=$(mktemp -d)
chmod 755 "$scratch" # Postgres runs as the postgres user when we are root
trap 'stop_services; rm -rf "$scratch"' EXIT
samples=$scratch/samples.jsonl
: >"$samples"

# Every registry of a pair, by name: its base URL and its PID (for VmHWM).
declare -A url pid

# wait_http URL LOG: until the server answers at all (Trow may answer /v2/ with 401).
wait_http() {
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1/v2/" && return
    sleep 0.1
  done
  cat "$2"
  echo "no answer from $1"
  return 1
}

# start_distribution DIR STORAGE_YAML: Distribution 2.8 with the stock config's in-memory blob
# descriptor cache, no access log, and redirects off so that pulls stream through it.
start_distribution() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
$2
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$port
YAML
  # Go's AWS SDK refuses to start when AWS_CA_BUNDLE is set and its HTTP transport is Distribution's
  # own; Garage is plain HTTP anyway.
  env -u AWS_CA_BUNDLE docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  pid[distribution]=$!
  service_pids+=("$!")
  url[distribution]=http://127.0.0.1:$port
  wait_http "${url[distribution]}" "$dir/log"
}

# start_trow DIR: the flags differ between Trow versions; read them from its --help.
start_trow() {
  local dir=$1 port help args
  port=$(free_port)
  mkdir -p "$dir/data"
  help=$("$trow_bin" --help 2>&1 || true)
  # 0.10 takes --bind ADDRESS:PORT; older releases --port and --host.
  if grep -q -- '--bind' <<<"$help"; then
    args=(--bind "127.0.0.1:$port")
  else
    args=(--port "$port")
    grep -q -- '--host' <<<"$help" && args+=(--host 127.0.0.1)
  fi
  grep -q -- '--data-dir' <<<"$help" && args+=(--data-dir "$dir/data")
  grep -q -- '--no-tls' <<<"$help" && args+=(--no-tls)
  "$trow_bin" "${args[@]}" >"$dir/log" 2>&1 &
  pid[trow]=$!
  service_pids+=("$!")
  url[trow]=http://127.0.0.1:$port
  wait_http "${url[trow]}" "$dir/log"
}

# start_pair PAIR DIR: starts the backing services and every registry of the pair.
start_pair() {
  local pair=$1 dir=$2
  url=() pid=()
  case $pair in
    fs)
      start_wharf "$wharf_bin" "$dir/wharf.log" --data-dir "$dir/wharf" \
        --gc-interval 0 --lifecycle-interval 0
      start_distribution "$dir/distribution" "  filesystem:
    rootdirectory: $dir/distribution/data"
      [ -z "$trow_bin" ] || start_trow "$dir/trow"
      ;;
    s3)
      start_postgres "$dir"
      start_garage "$dir"
      # A bucket of Distribution's own on the same Garage, with the same key.
      local garage=("$(garage_binary)" -c "$dir/garage/garage.toml")
      "${garage[@]}" bucket create distribution >/dev/null
      "${garage[@]}" bucket allow --read --write --owner distribution --key wharf-test >/dev/null
      start_wharf "$wharf_bin" "$dir/wharf.log" --data-dir "$dir/wharf" \
        --database-url "$WHARF_TEST_POSTGRES_URL" --storage s3 \
        --s3-endpoint "$WHARF_TEST_S3_ENDPOINT" --s3-bucket "$WHARF_TEST_S3_BUCKET" \
        --s3-region garage --s3-path-style true --gc-interval 0 --lifecycle-interval 0
      # Distribution 2.8 has no forcepathstyle setting: a regionendpoint implies path style.
      start_distribution "$dir/distribution" "  s3:
    region: garage
    regionendpoint: $WHARF_TEST_S3_ENDPOINT
    bucket: distribution
    accesskey: $AWS_ACCESS_KEY_ID
    secretkey: $AWS_SECRET_ACCESS_KEY
    secure: false
    v4auth: true"
      ;;
    *) echo "unknown pair: $pair (fs or s3)" >&2; exit 2 ;;
  esac
  url[wharf]=$wharf_url
  pid[wharf]=$wharf_pid
}

# stop_pair DIR: stops everything of the pair and frees its disk before the next pair, first
# showing what the registries logged as warnings or errors (their logs go with the directory).
stop_pair() {
  local log
  for log in "$1/wharf.log" "$1/distribution/log" "$1/trow/log"; do
    [ -f "$log" ] || continue
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -iE 'warn|error|panic' | tail -n 5 |
      sed "s|^|   ${log#"$1"/}: |" || true
  done
  stop_services
  for p in "${service_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  service_pids=()
  pg_data=
  rm -rf "$1"
}

# record PAIR REGISTRY ROUND PATH RESULT_JSON: one sample.
record() {
  local result=${5:-'{"error": "no output"}'}
  printf '{"pair":"%s","registry":"%s","round":%d,"path":"%s","result":%s}\n' \
    "$1" "$2" "$3" "$4" "$result" >>"$samples"
  printf '   %-12s %-13s %s\n' "$4" "$2" "$result"
}

bench_py() { python3 "$here/bench.py" "$@"; }

# wrk_json ARGS…: runs wrk and prints the JSON line report.lua writes.
wrk_json() {
  local out
  out=$(wrk "$@" 2>&1) || true
  grep '^{' <<<"$out" | tail -n 1 | grep . || printf '{"error": "wrk: %s"}' "$(tail -n 1 <<<"$out" | tr -cd '[:alnum:] .:,_/()-')"
}

accept='application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json'

# run_path PATH REGISTRY ROUND: one measurement of one path on one registry.
run_path() {
  local path=$1 registry=$2 round=$3 base=${url[$2]} work=$pair_dir/client-$2
  local repo=bench/r$round
  local result
  case $path in
    push_mono) result=$(bench_py push-mono "$base" "$repo/large" "$size_large" --state "$work/large.json") ;;
    push_chunked) result=$(bench_py push-chunked "$base" "$repo/chunked" "$size_chunked" "$chunk") ;;
    pull)
      # The digest is checked once per registry and pair, by a second GET outside the timing.
      local verify=()
      [ "$round" != 1 ] || verify=(--verify)
      result=$(bench_py pull "$base" "$repo/large" --state "$work/large.json" "${verify[@]}")
      ;;
    get_c64) result=$(wrk_json -c64 -t2 -d"$duration" -H "Accept: $accept" -s "$here/report.lua" "$base/v2/$repo/small/manifests/latest") ;;
    get_c1) result=$(wrk_json -c1 -t1 -d"$duration" -H "Accept: $accept" -s "$here/report.lua" "$base/v2/$repo/small/manifests/latest") ;;
    put_c8) result=$(wrk_json -c8 -t2 -d"$duration" -s "$here/manifest_put.lua" "$base/v2/$repo/small/manifests/" -- "$work/manifest-r$round.json") ;;
    make_tags) result=$(bench_py make-tags "$base" bench/tags "$tag_count") ;;
    walk_tags) result=$(bench_py walk-tags "$base" bench/tags --n 100) ;;
    push_images) result=$(bench_py push-images "$base" "$repo/image" "$images") ;;
    rss_early | rss_end)
      result=$(awk '/^VmHWM:/ { printf "{\"mib\": %.1f}", $2 / 1024 }' "/proc/${pid[$registry]}/status" 2>/dev/null) ||
        result='{"error": "the server is gone"}'
      ;;
  esac
  record "$pair" "$registry" "$round" "$path" "$result"
}

started=$(date +%s)
IFS=, read -ra pair_list <<<"$pairs"
for pair in "${pair_list[@]}"; do
  pair_dir=$scratch/$pair
  mkdir -p "$pair_dir"
  chmod 755 "$pair_dir"
  echo "== $pair: starting the registries"
  start_pair "$pair" "$pair_dir"
  registries=(distribution)
  [ -z "${url[trow]:-}" ] || registries+=(trow)
  registries+=(wharf)
  for registry in "${registries[@]}"; do
    mkdir -p "$pair_dir/client-$registry"
    echo "   $registry: ${url[$registry]}"
  done

  for round in $(seq "$rounds"); do
    echo "== $pair: round $round of $rounds"
    order=("${registries[@]}")
    if [ $((round % 2)) = 0 ]; then
      order=()
      for ((i = ${#registries[@]} - 1; i >= 0; i--)); do order+=("${registries[i]}"); done
    fi
    # Untimed: the small manifest the manifest GET and PUT paths use, its blobs, tag `latest`.
    for registry in "${order[@]}"; do
      out=$(bench_py seed "${url[$registry]}" "bench/r$round/small" \
        --manifest "$pair_dir/client-$registry/manifest-r$round.json")
      grep -q '"error"' <<<"$out" && echo "   seed on $registry failed: $out"
    done
    paths=(push_mono push_chunked pull)
    [ "$round" != 1 ] || paths+=(rss_early)
    paths+=(get_c64 get_c1 put_c8)
    # The 10,000 tags are created once per pair; every round walks them.
    [ "$round" != 1 ] || paths+=(make_tags)
    paths+=(walk_tags push_images)
    for path in "${paths[@]}"; do
      for registry in "${order[@]}"; do
        # Registries that do not fsync leave gigabytes of dirty pages behind; written back
        # during the next registry's run, they would be billed to it. Each starts on a clean disk.
        sync
        run_path "$path" "$registry" "$round"
      done
    done
  done
  for registry in "${registries[@]}"; do run_path rss_end "$registry" "$rounds"; done
  stop_pair "$pair_dir"
done

meta=$(printf '{"rounds":%d,"pairs":"%s","size_large":"%s","duration":"%s","wharf":"%s","trow":"%s","seconds":%d}' \
  "$rounds" "$pairs" "$size_large" "$duration" "$wharf_bin" "$trow_bin" $(($(date +%s) - started)))
report_args=()
[ -z "$json_out" ] || report_args=(--json "$json_out" --meta "$meta")
bench_py report "$samples" "${report_args[@]}"
echo "(${rounds} round(s), $(($(date +%s) - started)) s; the machine's other load counts too)"
