#!/usr/bin/env bash
# Runs the official OCI distribution-spec conformance suite, both prebuilt builds, against a
# registry, with all four workflows (pull, push, content discovery, content management).
#
#   conformance/official.sh REGISTRY_URL LABEL
#
# LABEL names the server configuration in the output (e.g. sqlite-fs). Each build tests in its
# own namespaces (conformance/<build>/main and conformance/<build>/cross), so both can run
# against one server. One summary line per build: `[official <build> | LABEL] SUCCESS! -- …`.
#
# With OCI_USERNAME/OCI_PASSWORD set, the run must also show the Docker token flow in the
# suite's own request log: a 401 carrying `WWW-Authenticate: Bearer realm=…`, GETs of that realm
# answered 200, and Bearer-authorized requests that succeed. Without that the run fails.
#
# Environment:
#   OCI_CONFORMANCE_DIR      where the builds are (default: ../shared/conformance next to the repo)
#   OCI_CONFORMANCE_LOGS     where each run's full output goes (default: a new temporary directory)
#   OCI_CONFORMANCE_SUMMARY  a file the summary lines are appended to as well (optional)
#   OCI_CONFORMANCE_TIMEOUT  time limit of one build's run (default 20m)
#   CI=true                  a missing build is a failure; otherwise it is skipped, loudly
# Exit status: 0 when every build that ran passed every spec, 1 otherwise, 2 on bad usage.
set -euo pipefail

if [ $# != 2 ] || [[ $1 != http*://* ]]; then
  echo "usage: $0 REGISTRY_URL LABEL   (e.g. $0 http://127.0.0.1:5000 sqlite-fs)" >&2
  exit 2
fi
url=${1%/}
label=$2
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${OCI_CONFORMANCE_DIR:-$(dirname "$repo_root")/shared/conformance}
logs=${OCI_CONFORMANCE_LOGS:-$(mktemp -d)}
builds=(v1.1.1 main-af32c8c)
in_ci=false
case "${CI:-}" in true | TRUE | True | 1) in_ci=true ;; esac
status=0

# say LINE: print a summary line, and append it to $OCI_CONFORMANCE_SUMMARY when set.
say() {
  echo "$1"
  if [ -n "${OCI_CONFORMANCE_SUMMARY:-}" ]; then echo "$1" >>"$OCI_CONFORMANCE_SUMMARY"; fi
}

banner() {
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  for line in "$@"; do echo "!! $line"; done
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
}

# failure_context OUTPUT: every failed spec's report, each after the last HTTP exchange the
# suite logged before it (the suite runs with OCI_DEBUG=true, which logs every exchange).
failure_context() {
  awk '
    /^~~~ REQUEST ~~~/ { n = 0; exchange = 1; next }
    /^======*$/ { exchange = 0 }
    /^(PROTO|RECEIVED AT|TIME DURATION) *:|^\t(Date|X-Request-Id):|^\*\*\* Error: Unable to format|^Log Body as-is:|^[ \t]*$/ { next }
    exchange && n < 40 { last[++n] = substr($0, 1, 300) }
    /^• \[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED)\]/ {
      if (n > 0) print "  the last request before this failure:"
      for (i = 1; i <= n; i++) print "    " last[i]
      n = 0
      printing = 1
    }
    printing && /^-----------------------------*$/ { printing = 0 }
    printing { print "  " $0 }
  ' "$1"
}

# token_flow OUTPUT: checks the suite followed the Docker token flow; prints what it saw.
token_flow() {
  awk '
    function reset() { method = path = auth = status = challenge = "" }
    /^~~~ REQUEST ~~~/ { reset(); state = "request-line"; next }
    state == "request-line" { method = $1; path = $2; state = "request"; next }
    state == "request" && tolower($0) ~ /^\tauthorization: / { auth = $2 }
    state == "request" && /^BODY/ { state = "" }
    /^~~~ RESPONSE ~~~/ && method != "" { state = "response"; next }
    state == "response" && /^STATUS *:/ { status = $3 }
    state == "response" && tolower($0) ~ /^\twww-authenticate: *bearer / {
      challenge = $0
      sub(/^[^:]*: */, "", challenge)
    }
    state == "response" && /^BODY/ {
      state = ""
      requests++
      resource = path
      sub(/\?.*/, "", resource)
      registry = resource ~ /^\/v2\//
      if (registry && status == 401 && match(challenge, /realm="[^"]*"/)) {
        realm = substr(challenge, RSTART + 7, RLENGTH - 8)
        sub(/^[a-zA-Z]+:\/\/[^\/]*/, "", realm)
        realms[realm] = 1
        challenges++
        if (example == "") example = method " " path " -> 401, WWW-Authenticate: " challenge
      }
      if (method == "GET" && (resource in realms) && status == 200) tokens++
      if (registry && auth == "Bearer" && status ~ /^2/) bearer++
      if (registry && auth == "Basic") basic++
    }
    END {
      printf "%d requests; %d answered 401 with a Bearer challenge; %d token GETs from its realm answered 200; %d Bearer-authorized requests succeeded; %d requests sent Basic credentials to /v2/\n", requests, challenges, tokens, bearer, basic
      if (example != "") print "e.g. " example
      exit !(challenges > 0 && tokens > 0 && bearer > 0)
    }
  ' "$1"
}

for build in "${builds[@]}"; do
  binary=$dir/oci-conformance-$build
  prefix="[official $build | $label]"
  if [ ! -x "$binary" ]; then
    if $in_ci; then
      banner "FAILED: $prefix not run: $binary is missing or not executable" \
        "CI=true requires both official builds; see conformance/README.md for how to get them."
      say "$prefix FAILED: build missing ($binary)"
      status=1
    else
      banner "SKIPPED: $prefix not run: $binary is missing or not executable" \
        "Set OCI_CONFORMANCE_DIR to the directory holding oci-conformance-$build;" \
        "conformance/README.md says how to build it. (Under CI=true this is a failure.)"
      say "$prefix SKIPPED: build missing ($binary)"
    fi
    continue
  fi

  work=$logs/$build-$label
  mkdir -p "$work"
  output=$work/output.log
  echo "-- $prefix running $binary against $url (full output: $output)"
  code=0
  (
    cd "$work"
    OCI_ROOT_URL=$url \
      OCI_NAMESPACE=conformance/$build/main OCI_CROSSMOUNT_NAMESPACE=conformance/$build/cross \
      OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1 \
      OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_REPORT_DIR=none OCI_DEBUG=true \
      timeout --kill-after=30s "${OCI_CONFORMANCE_TIMEOUT:-20m}" \
      "$binary" --ginkgo.no-color >"$output" 2>&1
  ) || code=$?

  summary=$(grep -a -E '^(SUCCESS|FAIL)! -- ' "$output" | tail -1 || true)
  passed=$(sed -n 's/.* \([0-9][0-9]*\) Passed .*/\1/p' <<<"$summary")
  failed=$(sed -n 's/.* \([0-9][0-9]*\) Failed .*/\1/p' <<<"$summary")
  result="${summary:-no summary line}"
  if [ "$code" != 0 ]; then result="$result (exit status $code)"; fi

  verdict=ok
  if [ "$code" != 0 ] || [[ $summary != SUCCESS!* ]] || [ "${failed:-1}" != 0 ] || [ "${passed:-0}" = 0 ]; then
    verdict=failed
  fi
  if [ -n "${OCI_USERNAME:-}${OCI_PASSWORD:-}" ]; then
    if flow=$(token_flow "$output"); then
      result="$result; token flow seen"
    else
      result="$result; TOKEN FLOW NOT SEEN"
      verdict=failed
    fi
    while IFS= read -r line; do echo "$prefix token flow: $line"; done <<<"$flow"
  fi

  if [ "$verdict" = failed ]; then
    status=1
    if [ -z "$summary" ]; then
      echo "$prefix the suite ended without a summary; its last lines:"
      tail -n 40 "$output" | cut -c1-300
    else
      failure_context "$output"
    fi
  fi
  say "$prefix $result"
done
exit "$status"
