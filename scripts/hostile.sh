#!/usr/bin/env bash
# scripts/hostile.sh [plain|curve|both] [SECONDS]   (issue 16, "must show": hostile frames at a running cluster)
#
# Starts a 4-peer `nano` cluster on loopback with `murmur up --fresh` in the background, waits until
# every peer trains, then runs `murmur hostile` (Sources/MurmurCLI/HostileCommand.swift) for SECONDS
# (default 30): well-formed frames with extreme values (steps >= 2^63, UInt32.max incarnations,
# origins forged as every peer, credits of 2^32-1, snapshot chunks with counts of 2^32-1, replay
# requests for step 0 over and over, broadcast kinds at the ROUTERs, forged presence subscriptions)
# at every peer's ROUTER (`sync`) and XPUB (`pub`), the run id read off an XPUB. Then checks: every
# peer still alive when the attack ends, training went on during it, the run ended with every
# peer's summary.json successful and every final digest equal. `curve` does the same with
# security.curve true, sending as the key holder p3 (p3's own keys).
#
#   MURMUR=path/to/murmur   use that binary (default: build .build-hostile/release/murmur)
#   STEPS=N                 steps of the run (default 3000: nano trains ~50 steps/s here, so the run outlasts the attack)
#
# Exit status: 0 every case passed, 1 a check failed, 2 setup failed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODES="${1:-both}"; SECS="${2:-30}"; STEPS="${STEPS:-3000}"
case "$MODES" in plain|curve) ;; both) MODES="plain curve" ;; *) echo "usage: scripts/hostile.sh [plain|curve|both] [SECONDS]" >&2; exit 2 ;; esac
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
MURMUR="${MURMUR:-}"
if [ -z "$MURMUR" ]; then
  echo "building murmur (release, .build-hostile)…"
  swift build -c release --scratch-path .build-hostile --product murmur > /tmp/hostile-build.log 2>&1 \
    || { tail -20 /tmp/hostile-build.log >&2; exit 2; }
  MURMUR="$ROOT/.build-hostile/release/murmur"
fi
[ -s data/shakespeare.txt ] || "$MURMUR" data fetch || { echo "error: no corpus (murmur data fetch failed)" >&2; exit 2; }

TOPO_DIR=runs/hostile-topologies; mkdir -p "$TOPO_DIR"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get(sys.argv[2], ''))" "$@" 2>/dev/null; }
rounds() { [ -f "$1/$2/rounds.jsonl" ] && wc -l < "$1/$2/rounds.jsonl" | tr -d ' ' || echo 0; }
alive() { python3 - "$1" "$2" <<'EOF'
import json, os, sys
try:
    pids = json.load(open(os.path.join(sys.argv[1], "pids.json")))
except Exception:
    print("?"); sys.exit()
entry = pids.get(sys.argv[2]) if isinstance(pids, dict) else None
pid = entry.get("pid") if isinstance(entry, dict) else entry
try:
    os.kill(int(pid), 0); print("alive")
except Exception:
    print("gone")
EOF
}

STATUS=0
REPORT=()
for mode in $MODES; do
  run="hostile-$mode"; dir="runs/$run"; topo="$TOPO_DIR/$mode.yaml"
  base=$([ "$mode" = plain ] && echo 7400 || echo 7500)
  curve=$([ "$mode" = curve ] && echo true || echo false)
  {
    echo "# scripts/hostile.sh ($mode): 4 peers on loopback, nano"
    echo "run: $run"
    echo "seed: 1234"
    echo "model: { preset: nano }"
    echo "data: { corpus: shakespeare, batch_size: 4 }"
    echo "optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0 }"
    echo "steps: $STEPS"
    echo "round: { deadline: adaptive, max_deadline: 10s }"
    echo "heartbeat: { interval: 250ms, suspect_after: 1s, dead_after: 3s }"
    echo "checkpoint: { every: 100, keep: 2, dir: $dir }"
    echo "security: { curve: $curve, keys: runs/hostile-keys/ }"
    echo "peers:"
    for i in 0 1 2 3; do
      echo "  - { id: p$i, pub: \"tcp://127.0.0.1:$((base + 10 * i))\", sync: \"tcp://127.0.0.1:$((base + 10 * i + 1))\" }"
    done
  } > "$topo"
  if [ "$curve" = true ]; then "$MURMUR" keys --topology "$topo" > /dev/null || { echo "error: murmur keys failed" >&2; exit 2; }; fi
  rm -rf "$dir"   # this script's own run folder: the wait below must not read an old run's logs
  echo "== $mode: murmur up --fresh $topo ($STEPS steps)"
  "$MURMUR" up --fresh --plain "$topo" > "/tmp/hostile-up-$mode.log" 2>&1 &
  up=$!
  # Wait until every peer has applied a few steps.
  for _ in $(seq 1 240); do
    ready=1
    for p in p0 p1 p2 p3; do [ "$(rounds "$dir" $p)" -ge 5 ] || ready=0; done
    [ $ready -eq 1 ] && break
    kill -0 $up 2>/dev/null || break
    sleep 0.5
  done
  before=(); for p in p0 p1 p2 p3; do before+=("$(rounds "$dir" $p)"); done
  echo "   training: rounds logged per peer before the attack: ${before[*]}"
  "$MURMUR" hostile "$topo" --seconds "$SECS" --as p3 2>&1 | sed 's/^/   /'
  after=(); states=(); for p in p0 p1 p2 p3; do after+=("$(rounds "$dir" $p)"); states+=("$p:$(alive "$dir" $p)"); done
  echo "   after the attack: peers ${states[*]}; rounds logged per peer ${after[*]}"
  "$MURMUR" status --topology "$topo" 2>&1 | sed 's/^/   status| /' | head -12
  # Let the run finish (the `up` process ends when every peer has).
  for _ in $(seq 1 600); do kill -0 $up 2>/dev/null || break; sleep 1; done
  if kill -0 $up 2>/dev/null; then echo "   !! murmur up still running after 10 min: stopping it"; kill -INT $up; sleep 5; fi
  wait $up; uprc=$?
  digests=(); ok=1; alive_all=1; progressed=1
  for i in 0 1 2 3; do
    p=p$i; s="$dir/$p/summary.json"
    d="$(json "$s" digest)"; st="$(json "$s" steps)"; su="$(json "$s" success)"
    digests+=("$d")
    echo "   $p: steps $st, digest $d, success $su, during the attack +$(( after[i] - before[i] )) rounds"
    [ "$su" = True ] && [ "$st" = "$STEPS" ] || ok=0
    [ "${states[i]}" = "$p:alive" ] || alive_all=0
    [ $(( after[i] - before[i] )) -gt 0 ] || progressed=0
  done
  agree=$([ "$(printf '%s\n' "${digests[@]}" | sort -u | wc -l)" -eq 1 ] && [ -n "${digests[0]}" ] && echo yes || echo no)
  crashes=$(grep -l -E "Fatal error|SIGILL|signal 4|Illegal instruction|trap" "$dir"/p*/peer.log 2>/dev/null | wc -l)
  line="$mode: murmur up exit $uprc; peers alive after the attack: $([ $alive_all = 1 ] && echo all 4 || echo NO); trained during it: $([ $progressed = 1 ] && echo yes || echo NO); all finished $STEPS steps with success: $([ $ok = 1 ] && echo yes || echo NO); final digests agree: $agree (${digests[0]}); crash lines in peer logs: $crashes"
  echo "   $line"
  REPORT+=("$line")
  if [ $uprc -ne 0 ] || [ $alive_all != 1 ] || [ $progressed != 1 ] || [ $ok != 1 ] || [ $agree != yes ] || [ "$crashes" -ne 0 ]; then STATUS=1; fi
done
echo
echo "hostile summary (${SECS}s of hostile frames per case):"
printf '  %s\n' "${REPORT[@]}"
exit $STATUS
