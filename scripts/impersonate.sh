#!/usr/bin/env bash
# scripts/impersonate.sh [curve|plain|both] [STEPS]   (issue 16, "must show": a key holder impersonating other peers)
#
# Starts a 4-peer `nano` cluster on loopback with `murmur up --fresh` where p3 runs with the hidden
# `--impersonate` (MURMUR_IMPERSONATE=p3; Sources/MurmurCLI/ImpersonatingTransport.swift): with every
# heartbeat it also publishes, marked relayed, a heartbeat with incarnation 2^32-1 and a BYE in the
# name of p0, p1 and p2, and with every UPDATE a copy under each of their origins. With CURVE it holds
# a valid key, so the frames pass CURVE, ZAP and the link check; the origins' signatures are missing.
# Checks: every peer finishes every step with success, one final digest, the honest peers logged the
# refusals, and nobody saw a peer leave. `plain` shows the same attack on a plaintext run, where
# nothing authenticates origins (for contrast: there it is expected to do damage).
#
#   MURMUR=path/to/murmur   use that binary (default: build .build-hostile/release/murmur)
# Exit status: 0 the curve case passed (the plain case is reported, not judged), 1 it failed, 2 setup failed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODES="${1:-both}"; STEPS="${2:-600}"
case "$MODES" in plain|curve) ;; both) MODES="curve plain" ;; *) echo "usage: scripts/impersonate.sh [curve|plain|both] [STEPS]" >&2; exit 2 ;; esac
command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
MURMUR="${MURMUR:-}"
if [ -z "$MURMUR" ]; then
  swift build -c release --scratch-path .build-hostile --product murmur > /tmp/impersonate-build.log 2>&1 \
    || { tail -20 /tmp/impersonate-build.log >&2; exit 2; }
  MURMUR="$ROOT/.build-hostile/release/murmur"
fi
[ -s data/shakespeare.txt ] || "$MURMUR" data fetch || exit 2
TOPO_DIR=runs/impersonate-topologies; mkdir -p "$TOPO_DIR"
STATUS=0
for mode in $MODES; do
  run="impersonate-$mode"; dir="runs/$run"; topo="$TOPO_DIR/$mode.yaml"
  base=$([ "$mode" = plain ] && echo 7600 || echo 7700)
  curve=$([ "$mode" = curve ] && echo true || echo false)
  {
    echo "run: $run"; echo "seed: 4321"; echo "model: { preset: nano }"
    echo "data: { corpus: shakespeare, batch_size: 4 }"
    echo "optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0 }"
    echo "steps: $STEPS"; echo "round: { deadline: adaptive, max_deadline: 10s }"
    echo "heartbeat: { interval: 250ms, suspect_after: 1s, dead_after: 3s }"
    echo "checkpoint: { every: 200, keep: 1, dir: $dir }"
    echo "security: { curve: $curve, keys: runs/impersonate-keys/ }"; echo "peers:"
    for i in 0 1 2 3; do echo "  - { id: p$i, pub: \"tcp://127.0.0.1:$((base + 10 * i))\", sync: \"tcp://127.0.0.1:$((base + 10 * i + 1))\" }"; done
  } > "$topo"
  rm -rf "$dir"
  echo "== $mode: MURMUR_IMPERSONATE=p3 murmur up --fresh $topo ($STEPS steps)"
  start=$(date +%s)
  MURMUR_IMPERSONATE=p3 timeout 600 "$MURMUR" up --fresh --plain "$topo" > "/tmp/impersonate-up-$mode.log" 2>&1; uprc=$?
  echo "   murmur up exit $uprc after $(( $(date +%s) - start )) s; its last lines:"
  grep -E "faults seen|digests agree|failed peers" "/tmp/impersonate-up-$mode.log" | sed 's/^/   | /'
  python3 - "$dir" "$STEPS" "$mode" <<'PY'
import json, os, sys
d, steps, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
digests, ok = set(), True
for p in ["p0", "p1", "p2", "p3"]:
    try: s = json.load(open(os.path.join(d, p, "summary.json")))
    except Exception as e: print(f"   {p}: no summary ({e})"); ok = False; continue
    refused, left, last = 0, 0, ""
    for line in open(os.path.join(d, p, "heartbeats.jsonl")):
        try: e = json.loads(line)
        except Exception: continue
        if e.get("event") == "forged-origin": refused = max(refused, e.get("count", 0)); last = e.get("detail", "")
        if e.get("event") == "status" and e.get("status") == "left" and e.get("from") != "p3": left += 1
    digests.add(s.get("digest"))
    print(f"   {p}: steps {s.get('steps')}, success {s.get('success')}, digest {s.get('digest')}, refused as forged {refused}, peers seen leaving {left} (the real BYEs at the end of the run included)")
    if p != "p3" and mode == "curve" and refused == 0: ok = False
    if s.get("steps") != steps or not s.get("success"): ok = False
print(f"   {mode}: final digests agree: {'yes' if len(digests) == 1 else 'NO: ' + ', '.join(sorted(map(str, digests)))}; verdict: {'unaffected' if ok and len(digests) == 1 else 'AFFECTED'}")
sys.exit(0 if ok and len(digests) == 1 else 1)
PY
  rc=$?
  [ "$mode" = curve ] && [ $rc -ne 0 -o $uprc -ne 0 ] && STATUS=1
done
exit $STATUS
