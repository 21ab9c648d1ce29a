#!/usr/bin/env bash
# Chaos soak (issue 7 item 3): 4 peers, each in its own network namespace (no rate limit), STEPS
# steps; every ~30 s a fault: mostly kill -9 and restart, plus SIGSTOP/SIGCONT and one partition
# (the victim's link down). Then the same run undisturbed, with the same seed, for the loss
# curves. Reports detection and recovery times, steps lost, digest agreement, final losses.
# Needs root and iproute2 (for the partition); says so and exits 1 when it cannot run.
#   scripts/soak.sh [STEPS] [EVERY] [FAULTS]        default: 4000 30s 12
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-4000}"; every="${2:-30s}"; faults="${3:-12}"
source scripts/lab-prelude.sh
lab_prelude soak
scripts/netlab.sh up 4 none 0

topology() {  # dir
  cat <<YAML
run: soak
seed: 4242
model: { preset: tiny }
data: { corpus: shakespeare, batch_size: 8 }
optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0 }
steps: $steps
round: { deadline: adaptive, max_deadline: 10s }
heartbeat: { interval: 250ms, suspect_after: 1s, dead_after: 3s }
checkpoint: { every: 50, keep: 3, dir: $out/$1 }
validation: { every: 250, batches: 20 }
security: { curve: false, keys: keys/ }
YAML
  scripts/netlab.sh peers 4
}

topology chaos > "$out/chaos.yaml"
topology calm > "$out/calm.yaml"
# Kinds in turn: kills, with a hang (stop) and one partition in the middle.
kinds=kill,kill,stop,kill,kill,partition,kill,kill,stop,kill,kill,kill
t0=$SECONDS
"$murmur" chaos "$out/chaos.yaml" --kinds "$kinds" --faults "$faults" --kill-every "$every" --down-for 6s --seed 11 \
  --steps "$steps" | tee "$out/chaos.txt"
echo "== chaos run: $((SECONDS - t0)) s; $(scripts/runstats.py summary "$out/chaos")"
t0=$SECONDS
"$murmur" up "$out/calm.yaml" --fresh --plain > "$out/calm.log" 2>&1
echo "== undisturbed run: $((SECONDS - t0)) s; $(scripts/runstats.py summary "$out/calm")"
scripts/runstats.py svg "$out/soak.svg" "Chaos soak: $faults faults vs undisturbed, same seed (4 peers, tiny, DeMo bf16)" \
  "undisturbed=$out/calm" "chaos=$out/chaos"
echo "== validation, undisturbed"; scripts/runstats.py curve "$out/calm"
echo "== validation, chaos"; scripts/runstats.py curve "$out/chaos"
