#!/usr/bin/env bash
# The main job of README.md: install what is missing, build, fetch the corpus, check the maths against
# the reference tensors, start a local cluster from a topology, train, summarise and write the report.
#   scripts/main.sh [TOPOLOGY]        (default topologies/local4.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
topology="${1:-topologies/local4.yaml}"
scripts/install-deps.sh
echo "== building (release)"
swift build -c release --product murmur 2>&1 | grep -E "error|warning: unre|Compiling murmur|Build complete" || true
murmur=.build/release/murmur
[ -x "$murmur" ] || { echo "error: the build failed; run 'swift build -c release' to see why" >&2; exit 1; }
echo "== corpus"
"$murmur" data fetch
if [ -d ../shared/golden/demo ]; then
  echo "== reference tensors"
  "$murmur" verify-golden ../shared/golden/demo ../shared/golden/gpt | tail -1
else
  echo "== reference tensors: ../shared/golden not found, check skipped"
fi
echo "== cluster: $topology"
"$murmur" up "$topology" --fresh
