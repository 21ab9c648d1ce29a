#!/usr/bin/env bash
# Scale measurement (issue 7 item 5): N peers of the `nano` preset on this machine, full mesh and ring,
# for STEPS steps each; prints step time, bytes per step per peer (UPDATE payload and everything the
# transport sent, heartbeats included) and whether the digests agree.
#   scripts/scale.sh [STEPS] [N ...]        default: 100 steps, N = 2 4 8 16
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-100}"; shift || true
sizes=("${@:-2 4 8 16}"); sizes=(${sizes[@]})
murmur=.build/release/murmur
[ -x "$murmur" ] || swift build -c release --product murmur >/dev/null
"$murmur" data fetch >/dev/null
out=runs/scale; mkdir -p "$out"
printf "%-6s %4s %12s %14s %16s %14s %8s\n" shape N "step ms" "update B/step" "sent B/step" "recv B/step" agree
for shape in mesh ring; do
  for n in "${sizes[@]}"; do
    topo="$out/$shape$n.yaml"
    {
      echo "run: scale-$shape$n"; echo "seed: 1"; echo "model: { preset: nano }"
      echo "data: { corpus: shakespeare, batch_size: 4 }"
      echo "optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0 }"
      echo "steps: $steps"; echo "round: { deadline: adaptive, max_deadline: 10s }"
      echo "heartbeat: { interval: 250ms, suspect_after: 2s, dead_after: 6s }"
      echo "checkpoint: { every: 1000, keep: 1, dir: $out/$shape$n }"
      echo "security: { curve: false, keys: keys/ }"; echo "peers:"
      for i in $(seq 0 $((n - 1))); do
        nb=""
        if [ "$shape" = ring ] && [ "$n" -gt 2 ]; then nb=", neighbors: [p$(( (i + n - 1) % n )), p$(( (i + 1) % n ))]"; fi
        echo "  - { id: p$i, pub: \"tcp://127.0.0.1:$((9000 + 10 * i))\", sync: \"tcp://127.0.0.1:$((9001 + 10 * i))\"$nb }"
      done
    } > "$topo"
    "$murmur" up "$topo" --fresh --plain > "$out/$shape$n.log" 2>&1 || true
    python3 - "$out/$shape$n" "$n" "$steps" "$shape" <<'PY'
import json, sys, glob, os
d, n, steps, shape = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
times, upd, sent, recv, finals = [], [], [], [], set()
for p in range(n):
    rounds = [json.loads(l) for l in open(f"{d}/p{p}/rounds.jsonl") if l.strip()]
    if len(rounds) > 1:
        times.append((rounds[-1]["time_ms"] - rounds[0]["time_ms"]) / (len(rounds) - 1))
    upd += [r["bytes_out"] for r in rounds]
    finals.add((rounds[-1]["step"], rounds[-1]["digest"]))
    s = json.load(open(f"{d}/p{p}/summary.json"))
    sent.append(s["transport_bytes_out"] / steps); recv.append(s["transport_bytes_in"] / steps)
print("%-6s %4d %12.1f %14.0f %16.0f %14.0f %8s" % (shape, n, sum(times) / len(times), sum(upd) / len(upd),
      sum(sent) / n, sum(recv) / n, "yes" if len(finals) == 1 else "NO"))
PY
  done
done
