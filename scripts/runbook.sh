#!/usr/bin/env bash
# Runs the runbook's commands, as docs/operations.md gives them, so that
# the docs and the tool cannot drift. Offline: every fenced block opened
# with ```sh runbook is run with bash (-euo pipefail), with STORE set to the
# store given. Live (--live): every block opened with ```sh runbook-live,
# in order, against the running process that COURIER_NODE, COURIER_CERT,
# COURIER_KEY and COURIER_CA (from the environment) name. Either way the
# `courier` binary given comes first on the PATH, and a command that fails
# fails this script, naming the block and its line.
#
# usage: scripts/runbook.sh COURIER_BINARY STORE [DOC]
#        scripts/runbook.sh --live COURIER_BINARY [DOC]
set -euo pipefail
tag='sh runbook'
if [[ "${1:-}" == --live ]]; then
  shift
  tag='sh runbook-live'
  if [[ $# -lt 1 ]]; then
    echo "usage: $0 --live COURIER_BINARY [DOC]" >&2
    exit 2
  fi
  for var in COURIER_NODE COURIER_CERT COURIER_KEY COURIER_CA; do
    [[ -n "${!var:-}" ]] || { echo "--live needs $var set" >&2; exit 2; }
  done
  courier_bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  store=""
  doc="${2:-$(dirname "$0")/../docs/operations.md}"
else
  if [[ $# -lt 2 ]]; then
    echo "usage: $0 COURIER_BINARY STORE [DOC]" >&2
    exit 2
  fi
  courier_bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  store="$2"
  doc="${3:-$(dirname "$0")/../docs/operations.md}"
  [[ -d "$store" ]] || { echo "not a directory: $store" >&2; exit 2; }
  # Offline blocks must not reach a process by accident.
  unset COURIER_NODE COURIER_CERT COURIER_KEY COURIER_CA COURIER_IDENTITY
fi
[[ -x "$courier_bin" ]] || { echo "not an executable: $courier_bin" >&2; exit 2; }

bin_dir="$(mktemp -d)"
trap 'rm -rf "$bin_dir"' EXIT
ln -s "$courier_bin" "$bin_dir/courier"

blocks=0
commands=0
in_block=0
block=""
start=0
line_no=0
run_block() {
  echo "-- runbook block at $doc:$start"
  printf '%s' "$block" | sed 's/^/   $ /'
  if ! PATH="$bin_dir:$PATH" STORE="$store" bash -euo pipefail -c "$block" >/dev/null; then
    echo "runbook block at $doc:$start failed" >&2
    exit 1
  fi
}
while IFS= read -r line || [[ -n "$line" ]]; do
  line_no=$((line_no + 1))
  # Blocks may be indented (inside a list item).
  trimmed="${line#"${line%%[![:space:]]*}"}"
  if [[ $in_block -eq 0 ]]; then
    if [[ "$trimmed" == '```'"$tag" ]]; then
      in_block=1
      block=""
      start=$line_no
    fi
  elif [[ "$trimmed" == '```' ]]; then
    in_block=0
    blocks=$((blocks + 1))
    run_block
  else
    if [[ -n "$trimmed" ]]; then
      commands=$((commands + 1))
    fi
    block+="$trimmed"$'\n'
  fi
done <"$doc"
if [[ $in_block -eq 1 ]]; then
  echo "unterminated runbook block at $doc:$start" >&2
  exit 1
fi
if [[ $blocks -eq 0 ]]; then
  echo "no \`$tag\` blocks in $doc" >&2
  exit 1
fi
echo "runbook: $blocks blocks, $commands commands passed"
