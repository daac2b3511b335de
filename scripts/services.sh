# Starts the backing services the tests need, each on a free loopback port, and exports the
# variables the tests read. Sourced by scripts/test.sh and scripts/bench.sh; `stop_services`
# stops everything started here.
#   start_postgres DIR   PostgreSQL 15 (initdb into DIR)   → WHARF_TEST_POSTGRES_URL
#   start_garage DIR     Garage, one node, one bucket      → WHARF_TEST_S3_*, AWS_*
# Garage is built with `cargo install` the first time (minutes) and kept under
# ~/.cache/wharf-tools for later runs.

pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
tools_root=${WHARF_TOOLS:-$HOME/.cache/wharf-tools}
service_pids=()

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_wharf BINARY LOG ARGS…: serves Wharf on a free port; sets wharf_pid and wharf_url.
start_wharf() {
  local binary=$1 log=$2 address=
  shift 2
  "$binary" serve --listen 127.0.0.1:0 --log warn,wharf=info "$@" >"$log" 2>&1 &
  wharf_pid=$!
  service_pids+=("$wharf_pid")
  for _ in $(seq 100); do
    address=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -o 'address=[0-9.:]*' | head -1 | cut -d= -f2) || true
    [ -n "$address" ] && break
    sleep 0.1
  done
  [ -n "$address" ] || { cat "$log"; echo "wharf did not start"; return 1; }
  wharf_url="http://$address"
}

stop_services() {
  for pid in "${service_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${pg_data:-}" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
  fi
}

# initdb refuses to run as root: run the server as the postgres user when we are root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  pg_data=$1/postgres
  mkdir -p "$pg_data"
  if [ "$(id -u)" = 0 ]; then chown postgres "$pg_data"; fi
  local port
  port=$(free_port)
  as_postgres "$pg_bin/initdb" -D "$pg_data" -U wharf --auth=trust -E UTF8 >"$1/initdb.log" 2>&1 ||
    { cat "$1/initdb.log"; return 1; }
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w \
    -o "-p $port -k $pg_data -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
    start >/dev/null || { cat "$pg_data/server.log"; return 1; }
  export WHARF_TEST_POSTGRES_URL="postgres://wharf@127.0.0.1:$port/postgres"
  # For tests that run a Postgres of their own (to stop and start it).
  export WHARF_TEST_PG_BIN=$pg_bin
  echo "postgres on 127.0.0.1:$port"
}

garage_binary() {
  if command -v garage >/dev/null; then command -v garage; return; fi
  if [ ! -x "$tools_root/bin/garage" ]; then
    echo "== installing garage with cargo (first run only; takes a while)" >&2
    cargo install --locked --quiet garage --root "$tools_root" >&2
  fi
  echo "$tools_root/bin/garage"
}

start_garage() {
  local dir=$1/garage garage s3_port rpc_port admin_port
  garage=$(garage_binary)
  mkdir -p "$dir"
  s3_port=$(free_port); rpc_port=$(free_port); admin_port=$(free_port)
  cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
TOML
  local g=("$garage" -c "$dir/garage.toml")
  RUST_LOG=warn "${g[@]}" server >"$dir/server.log" 2>&1 &
  service_pids+=($!)
  local node=
  for _ in $(seq 100); do
    node=$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node" ] && break
    sleep 0.2
  done
  [ -n "$node" ] || { cat "$dir/server.log"; echo "garage did not start"; return 1; }
  # The node answers `node id` a moment before its RPC listener takes connections.
  local assigned=
  for _ in $(seq 50); do
    "${g[@]}" layout assign -z local -c 1G "$node" >/dev/null 2>&1 && assigned=1 && break
    sleep 0.2
  done
  [ -n "$assigned" ] || { "${g[@]}" layout assign -z local -c 1G "$node"; cat "$dir/server.log"; return 1; }
  "${g[@]}" layout apply --version 1 >/dev/null
  local key
  key=$("${g[@]}" key create wharf-test)
  "${g[@]}" bucket create wharf-test >/dev/null
  "${g[@]}" bucket allow --read --write --owner wharf-test --key wharf-test >/dev/null
  export AWS_ACCESS_KEY_ID=$(awk '/Key ID/ { print $NF }' <<<"$key")
  export AWS_SECRET_ACCESS_KEY=$(awk '/Secret key/ { print $NF }' <<<"$key")
  export AWS_REGION=garage
  export WHARF_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
  export WHARF_TEST_S3_BUCKET=wharf-test
  [ -n "$AWS_ACCESS_KEY_ID" ] && [ -n "$AWS_SECRET_ACCESS_KEY" ] ||
    { echo "could not read the garage key:"; echo "$key"; return 1; }
  echo "garage S3 on $WHARF_TEST_S3_ENDPOINT"
}
