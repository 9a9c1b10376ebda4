#!/usr/bin/env bash
# The live runbook against a running service (docs/operations.md, "A live
# service"): starts the ops_demo example, waits until billing is up and its
# 20 invoices and the poison order are parked, checks that a read-only
# certificate may read but not repair, runs the `sh runbook-live` blocks
# against the process (scripts/runbook.sh --live), then checks that the
# repairs took: nothing pending or parked, every invoice billed exactly once
# (the demo's last line, after SIGTERM).
#
# usage: scripts/live_ops.sh COURIER_BINARY OPS_DEMO_BINARY
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 COURIER_BINARY OPS_DEMO_BINARY" >&2
  exit 2
fi
courier="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
demo="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$demo" --certs "$work/certs" >"$work/out" 2>"$work/err" &
pid=$!

# Polls `$@` every 200 ms for up to 60 s.
wait_for() {
  local what="$1"
  shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ops_demo exited while waiting for $what" >&2
      cat "$work/out" "$work/err" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "timed out waiting for $what" >&2
  cat "$work/out" >&2
  exit 1
}
count() { python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'; }
parked_is() { test "$("$courier" --json parked list --sender "$1" | count)" -eq "$2"; }
settled() {
  "$courier" --json inspect | python3 -c '
import json, sys
senders = json.load(sys.stdin)["senders"]
names = sorted(s["name"] for s in senders)
assert names == ["invoices", "orders"], names
assert all(s["pending"] == 0 and s["parked"] == 0 for s in senders), senders'
}

wait_for "the admin endpoint" test -f "$work/certs/env"
set -a
# shellcheck disable=SC1091
. "$work/certs/env"
set +a
wait_for "billing to be up" grep -q '^billing is up$' "$work/out"
wait_for "20 parked invoices" parked_is invoices 20
wait_for "the parked poison order" parked_is orders 1

# A certificate of the CA that [admin] repair does not name reads, but
# its repair is refused and changes nothing.
reader=(--cert "$work/certs/reader.crt" --key "$work/certs/reader.key" --identity reader)
"$courier" "${reader[@]}" parked list --sender orders >/dev/null
set +e
refused="$("$courier" "${reader[@]}" parked purge --sender orders --all 2>&1)"
status=$?
set -e
if [[ $status -ne 2 ]] || ! grep -q 'not allowed' <<<"$refused"; then
  echo "a read-only certificate was not refused a repair (exit $status): $refused" >&2
  exit 1
fi
parked_is orders 1

"$here/runbook.sh" --live "$courier"
wait_for "nothing pending or parked" settled

kill -TERM "$pid"
wait "$pid"
pid=""
cat "$work/out"
tail -n 1 "$work/out" | grep -Eq '^orders=20 applied=19 invoices=20 billed=20 billed_twice=0 pending=0 parked=0$'
echo "live runbook: the stuck deliveries found and repaired through the running process"
