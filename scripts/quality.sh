#!/usr/bin/env bash
# Quality against bytes (issue 7 item 1): 4 local peers, `small`, the same steps and batches per peer;
# AdamW data-parallel vs DeMo (topk 32 / chunk 64 with f32, bf16 and sign values; topk 8 with bf16).
#   scripts/quality.sh [STEPS] [DEMO_LR]       default: 2000 steps, lr 3e-3 for DeMo (AdamW 1e-3)
#   ONLY="adamw-lr3e-3 demo-bf16" …             only those runs; PORT_BASE=9600 … beside another series
#   OVERLAP=1 …                                 round.overlap of every run; run names get -overlap1
#   AGGREGATE=mean …                            optimizer.aggregate of every run (default: the topology default,
#                                               clipped); run names get -mean / -clipped
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-2000}"; demo_lr="${2:-3.0e-3}"
murmur="${MURMUR:-.build/release/murmur}"   # MURMUR=path: a copy, so a rebuild cannot swap it mid-series
[ -x "$murmur" ] || swift build -c release --product murmur >/dev/null
"$murmur" data fetch >/dev/null
out=runs/quality; mkdir -p "$out"
base="${PORT_BASE:-9500}"
run() {  # name kind lr topk values
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $1 "* ]]; then return; fi
  local name=$1${OVERLAP:+-overlap$OVERLAP}${AGGREGATE:+-$AGGREGATE}
  local topo="$out/$name.yaml"
  {
    echo "run: quality-$name"; echo "seed: 2026"; echo "model: { preset: small }"
    echo "data: { corpus: shakespeare, batch_size: 12 }"
    echo "optimizer: { kind: $2, lr: $3, topk: $4, chunk: 64, decay: 0.999, values: $5, weight_decay: 0.0${AGGREGATE:+, aggregate: $AGGREGATE} }"
    echo "steps: $steps"; echo "round: { deadline: adaptive, max_deadline: 30s, overlap: ${OVERLAP:-0} }"
    echo "heartbeat: { interval: 250ms, suspect_after: 3s, dead_after: 9s }"
    echo "checkpoint: { every: 500, keep: 1, dir: $out/$name }"
    echo "security: { curve: false, keys: keys/ }"; echo "peers:"
    for i in 0 1 2 3; do echo "  - { id: p$i, pub: \"tcp://127.0.0.1:$((base + 10 * i))\", sync: \"tcp://127.0.0.1:$((base + 1 + 10 * i))\" }"; done
  } > "$topo"
  "$murmur" up "$topo" --fresh --plain > "$out/$name.log" 2>&1 || true
  python3 - "$out/$name" "$name" <<'PY'
import json, sys
d, name = sys.argv[1], sys.argv[2]
s = [json.load(open(f"{d}/p{i}/summary.json")) for i in range(4)]
r = [json.loads(l) for l in open(f"{d}/p0/rounds.jsonl") if l.strip()]
real = sum(x["bytes_out"] for x in r) / len(r)
print("%-14s val %.4f  bytes/step/peer real %9.0f  reference %9.0f  dense %9.0f  dense/real %6.1fx" % (
    name, s[0]["val_loss"], real, r[-1]["bytes_reference"], r[-1]["bytes_dense"], r[-1]["bytes_dense"] / real))
PY
}
run adamw adamw 1.0e-3 32 f32
run demo-f32 demo "$demo_lr" 32 f32
run demo-bf16 demo "$demo_lr" 32 bf16
run demo-sign demo "$demo_lr" 32 sign
run demo-topk8 demo "$demo_lr" 8 bf16
# AdamW at DeMo's learning rate: is the baseline held back by its lr?
run adamw-lr3e-3 adamw 3.0e-3 32 f32
