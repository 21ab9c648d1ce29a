#!/usr/bin/env bash
# Weak links, several hosts (issue 7 item 2): 4 peers, each in its own network namespace with its
# own address, every link limited to RATE with DELAY_MS each way (scripts/netlab.sh). Runs AdamW
# data-parallel and DeMo over the same links, reports the wall-clock time each needs to reach
# AdamW's final validation loss, then cuts one DeMo peer's link for 30 s (`ip link set … down`)
# and reports the recovery. Needs root and iproute2; says so and exits 1 when it cannot run.
#   scripts/weaklinks.sh [STEPS] [RATE] [DELAY_MS]       default: 300 10mbit 50
#   ONLY="partition adamw-lr3e-3" scripts/weaklinks.sh … only those runs (adamw, adamw-lr3e-3, demo, demo-long, partition)
#   NETLAB=name …                                        namespaces name-p0…, beside another lab
#   OVERLAP=N …                                          round.overlap of every run (default 0)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-300}"; rate="${2:-10mbit}"; delay="${3:-50}"
source scripts/lab-prelude.sh
lab_prelude weaklinks
scripts/netlab.sh up 4 "$rate" "$delay"

topology() {  # name kind lr steps [validation every]
  cat <<YAML
run: weak-$1
seed: 2027
model: { preset: tiny }
data: { corpus: shakespeare, batch_size: 8 }
optimizer: { kind: $2, lr: $3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0 }
steps: $4
round: { deadline: adaptive, max_deadline: 30s, overlap: ${OVERLAP:-0} }
# Heartbeats share the PUB socket with UPDATEs: behind a 1.4 MB AdamW burst on a 10 Mbit/s link
# they arrive > 1 s late, so the failure detector gets room (the same for both optimizers).
heartbeat: { interval: 250ms, suspect_after: 4s, dead_after: 12s }
checkpoint: { every: 50, keep: 2, dir: $out/$1 }
validation: { every: ${5:-25}, batches: 20 }
security: { curve: false, keys: keys/ }
YAML
  scripts/netlab.sh peers 4
}

run() {  # name kind lr steps
  topology "$1" "$2" "$3" "$4" > "$out/$1.yaml"
  local t0=$SECONDS
  "$murmur" up "$out/$1.yaml" --fresh --plain > "$out/$1.log" 2>&1 || echo "weaklinks: $1 ended with an error (see $out/$1.log)"
  echo "== $1: $((SECONDS - t0)) s wall; $(scripts/runstats.py summary "$out/$1")"
}

want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }   # ONLY="partition" / "adamw-lr3e-3" …
want adamw && run adamw adamw 1.0e-3 "$steps"
want adamw-lr3e-3 && run adamw-lr3e-3 adamw 3.0e-3 "$steps"
want demo && run demo demo 3.0e-3 "$steps"
want demo-long && run demo-long demo 3.0e-3 $((2 * steps))
for base in adamw adamw-lr3e-3; do
  [ -f "$out/$base/p0/summary.json" ] && [ -d "$out/demo-long" ] || continue
  target=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['val_loss'])" "$(scripts/runstats.py summary "$out/$base")")
  echo "== target: $base's final validation loss $target"
  for name in "$base" demo demo-long; do
    echo "   $name reaches it: $(scripts/runstats.py reach "$out/$name" "$target")"
  done
done
if [ -d "$out/adamw" ] && [ -d "$out/demo" ] && [ -d "$out/demo-long" ]; then
  scripts/runstats.py svg --time "$out/weaklinks-time.svg" "4 peers, tiny, links $rate + ${delay} ms: loss against wall-clock time" \
    "AdamW (dense fp32)=$out/adamw" "DeMo bf16=$out/demo" "DeMo bf16, $((2 * steps)) steps=$out/demo-long"
fi
want partition || exit 0
echo "== partition: DeMo, one peer's link down for 30 s"
topology partition demo 3.0e-3 $((3 * steps)) 100 > "$out/partition.yaml"
"$murmur" chaos "$out/partition.yaml" --kinds partition --faults 1 --kill-every 20s --down-for 30s --seed 3 \
  --steps $((3 * steps)) | tee "$out/partition.chaos.txt"
echo "   $(scripts/runstats.py summary "$out/partition")"
