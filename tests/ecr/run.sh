#!/usr/bin/env bash
# Runs the ECR API suite (tests/ecr/test_*.py: the `aws` CLI, boto3, skopeo) against a running
# Wharf.
#
#   tests/ecr/run.sh URL LABEL [auth] [-- NAME_PATTERN…]
#
# `auth`: the server runs with --auth true. Then the suite needs an access key of `admin`: set
# WHARF_ECR_KEY_ID/WHARF_ECR_SECRET, or WHARF_BIN and WHARF_ADMIN_ARGS (the wharf binary and
# `--data-dir D [--database-url U]` of the server, as shell words) and this script creates one. The auth tests
# (users, keys and policies of their own) also need WHARF_BIN/WHARF_ADMIN_ARGS.
# Other settings the suite reads: WHARF_ECR_REGISTRY_ID, WHARF_ECR_REGION,
# WHARF_ECR_CREATE_ON_PUSH (what the server was started with), see tests/ecr/ecr.py.
# The clients come from the venv at $WHARF_ECR_VENV (default ~/.cache/wharf-tools/venv, which
# scripts/test.sh installs: awscli 1.46.3, boto3 1.44.8).
# The last line of output is the summary: `[ecr | LABEL] PASSED: N tests, …`; it is also appended
# to $ECR_SUMMARY when set, and the whole output is kept in $ECR_LOG when set. Exit status 0 when nothing failed, 1 otherwise, 2 on bad usage.
set -euo pipefail

if [ $# -lt 2 ] || [[ $1 != http*://* ]]; then
  echo "usage: $0 URL LABEL [auth] [-- NAME_PATTERN…]   (e.g. $0 http://127.0.0.1:5000 sqlite-fs)" >&2
  exit 2
fi
url=${1%/}
label=$2
shift 2
auth=0
if [ "${1:-}" = auth ]; then auth=1; shift; fi
if [ "${1:-}" = -- ]; then shift; fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${WHARF_ECR_VENV:-$HOME/.cache/wharf-tools/venv}
python=$venv/bin/python
[ -x "$python" ] || { echo "no venv at $venv (scripts/test.sh installs it)" >&2; exit 2; }

if [ "$auth" = 1 ] && [ -z "${WHARF_ECR_KEY_ID:-}" ]; then
  [ -n "${WHARF_BIN:-}" ] && [ -n "${WHARF_ADMIN_ARGS:-}" ] ||
    { echo "with auth: set WHARF_ECR_KEY_ID/WHARF_ECR_SECRET or WHARF_BIN/WHARF_ADMIN_ARGS" >&2; exit 2; }
  eval "admin_args=($WHARF_ADMIN_ARGS)" # shell words, as `printf '%q '` writes them
  key=$("$WHARF_BIN" "${admin_args[@]}" key create --user admin)
  WHARF_ECR_KEY_ID=$(awk -F': *' '/access key id/ { print $2 }' <<<"$key")
  WHARF_ECR_SECRET=$(awk -F': *' '/secret access key/ { print $2 }' <<<"$key")
  [ -n "$WHARF_ECR_KEY_ID" ] && [ -n "$WHARF_ECR_SECRET" ] ||
    { echo "could not read the key from \`wharf key create\`:"; echo "$key"; exit 1; } >&2
  export WHARF_ECR_KEY_ID WHARF_ECR_SECRET
fi

export WHARF_URL=$url WHARF_ECR_AUTH=$auth
log=${ECR_LOG:-$(mktemp)}
status=0
"$python" "$here/main.py" "$label" "$@" 2>&1 | tee "$log" || status=1
summary=$(tail -n 1 "$log")
[[ $summary == "[ecr | "* ]] || { summary="[ecr | $label] FAILED: the suite did not finish"; echo "$summary"; status=1; }
if [ -n "${ECR_SUMMARY:-}" ]; then echo "$summary" >>"$ECR_SUMMARY"; fi
[ -n "${ECR_LOG:-}" ] || rm -f "$log"
exit "$status"
