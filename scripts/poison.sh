#!/usr/bin/env bash
# Poisoned updates (issue 12): 4 local peers of `tiny`, one of them (p3) hostile but authorised:
# its gradients are multiplied by a factor before DeMo (every frame it sends is valid). Runs every
# factor with `aggregate: mean` (the reference) and `clipped` (the default), and prints the honest
# peers' (p0–p2) final validation loss.
#   scripts/poison.sh [STEPS]                default 300 steps
#   FACTORS="1 -100" AGGS="clipped" …        only those; PORT_BASE=9700 … beside another series
#   MURMUR=/tmp/murmur-copy …                a copy of the binary, so a rebuild cannot swap it mid-series
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-300}"
murmur="${MURMUR:-.build/release/murmur}"
[ -x "$murmur" ] || swift build -c release --product murmur >/dev/null
"$murmur" data fetch >/dev/null
out=runs/poison; mkdir -p "$out"
base="${PORT_BASE:-9700}"
run() {  # aggregate factor
  local name="$1_x$2"
  local topo="$out/$name.yaml"
  {
    echo "run: poison-$name"; echo "seed: 1234"; echo "model: { preset: tiny }"
    echo "data: { corpus: shakespeare, batch_size: 8 }"
    echo "optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0, aggregate: $1 }"
    echo "steps: $steps"; echo "round: { deadline: adaptive, max_deadline: 10s }"
    echo "heartbeat: { interval: 250ms, suspect_after: 3s, dead_after: 9s }"
    echo "checkpoint: { every: 1000, keep: 1, dir: $out/$name }"
    echo "security: { curve: false, keys: keys/ }"; echo "peers:"
    for i in 0 1 2 3; do echo "  - { id: p$i, pub: \"tcp://127.0.0.1:$((base + 10 * i))\", sync: \"tcp://127.0.0.1:$((base + 1 + 10 * i))\" }"; done
  } > "$topo"
  local poison=""; [ "$2" != "1" ] && poison="p3:$2"
  MURMUR_POISON="$poison" "$murmur" up "$topo" --fresh --plain > "$out/$name.log" 2>&1 || true
  python3 - "$out/$name" "$1" "$2" <<'PY'
import json, sys
d, agg, factor = sys.argv[1], sys.argv[2], sys.argv[3]
def summary(i):
    try: return json.load(open(f"{d}/p{i}/summary.json"))
    except Exception: return {}
s = [summary(i) for i in range(4)]
vals = [x.get("val_loss") for x in s[:3]]
digests = {x.get("digest") for x in s[:3]}
r = [json.loads(l) for l in open(f"{d}/p0/rounds.jsonl") if l.strip()]
# Mean agreement / norm ratio of the poisoned peer (p3) and of the honest ones, over all steps.
def mean(xs): return sum(xs) / len(xs) if xs else float("nan")
a3 = mean([x["agreement"]["p3"] for x in r if "p3" in x.get("agreement", {})])
ah = mean([v for x in r for k, v in x.get("agreement", {}).items() if k != "p3"])
n3 = mean([x["norm_ratio"]["p3"] for x in r if "p3" in x.get("norm_ratio", {})])
# Who the honest peers named suspect-content (and at which step), from their heartbeat logs.
named = {}
for i in range(3):
    try: lines = [json.loads(l) for l in open(f"{d}/p{i}/heartbeats.jsonl") if l.strip()]
    except Exception: lines = []
    for e in lines:
        if e.get("event") == "suspect-content":
            named.setdefault(e.get("from"), set()).add((f"p{i}", e.get("step")))
named_text = ", ".join("%s@%s by %d" % (k, min(s for _, s in v), len({o for o, _ in v})) for k, v in sorted(named.items())) or "nobody"
fmt = lambda v: "%.4f" % v if isinstance(v, (int, float)) else "-"
print("%-8s x%-5s honest val %s  (p0 %s p1 %s p2 %s)  digests agree: %s  agreement p3 %.3f honest %.3f  norm ratio p3 %.2f  suspect-content: %s  steps %d" % (
    agg, factor, fmt(mean([v for v in vals if v is not None])), *map(fmt, vals), len(digests) == 1, a3, ah, n3, named_text, len(r)))
PY
}
for agg in ${AGGS:-mean clipped}; do
  for f in ${FACTORS:-1 -1 -5 -100 100}; do run "$agg" "$f"; done
done
