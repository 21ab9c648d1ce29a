#!/usr/bin/env bash
# A mixed cluster on one machine: 4 peers of `small` on loopback, one of them held to a share of a
# core with the cgroup cpu controller (cfs quota), against the same run with nobody held.
# Prints wall time, final digests, diverged events, snapshot catch-ups and the held peer's share of
# the rounds. Needs root (cgroup v1 cpu controller at /sys/fs/cgroup/cpu, or cgroup v2 cpu.max).
#
#   scripts/slowpeer.sh [PERCENT=10] [PEER=p3] [STEPS=120] [PRESET=small] [OVERLAP=0]
set -euo pipefail
cd "$(dirname "$0")/.."
pct=${1:-10}; held=${2:-p3}; steps=${3:-120}; preset=${4:-small}; overlap=${5:-0}
murmur="$(realpath -m "${MURMUR:-.build/release/murmur}")"
[ -x "$murmur" ] || swift build -c release --product murmur >/dev/null
"$murmur" data fetch >/dev/null
out=runs/slowpeer; mkdir -p "$out"

cg=""
if [ -d /sys/fs/cgroup/cpu ] && [ -w /sys/fs/cgroup/cpu ]; then
  cg=/sys/fs/cgroup/cpu/murmur-slowpeer; mkdir -p "$cg"
  echo 100000 > "$cg/cpu.cfs_period_us"; echo $((pct * 1000)) > "$cg/cpu.cfs_quota_us"
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cg=/sys/fs/cgroup/murmur-slowpeer; mkdir -p "$cg"; echo "$((pct * 1000)) 100000" > "$cg/cpu.max"
else
  echo "slowpeer: no writable cgroup cpu controller here (run as root)" >&2; exit 1
fi

topo() {  # $1 run name, $2 port base
  cat <<EOF
run: $1
seed: 1234
model: { preset: $preset }
data: { corpus: shakespeare, batch_size: 8 }
optimizer: { kind: demo, lr: 3.0e-3, topk: 32, chunk: 64, decay: 0.999, values: bf16, weight_decay: 0.0 }
steps: $steps
round: { deadline: adaptive, max_deadline: 10s, overlap: $overlap }
heartbeat: { interval: 250ms, suspect_after: 1s, dead_after: 3s }
checkpoint: { every: 1000, keep: 2, dir: $out/$1 }
security: { curve: false, keys: keys/ }
peers:
  - { id: p0, pub: "tcp://127.0.0.1:$2", sync: "tcp://127.0.0.1:$(($2 + 1))" }
  - { id: p1, pub: "tcp://127.0.0.1:$(($2 + 10))", sync: "tcp://127.0.0.1:$(($2 + 11))" }
  - { id: p2, pub: "tcp://127.0.0.1:$(($2 + 20))", sync: "tcp://127.0.0.1:$(($2 + 21))" }
  - { id: p3, pub: "tcp://127.0.0.1:$(($2 + 30))", sync: "tcp://127.0.0.1:$(($2 + 31))" }
EOF
}

run() {  # $1 name, $2 port base, $3 hold (yes/no)
  topo "$1" "$2" > "$out/$1.yaml"
  rm -rf "$out/$1"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$murmur" up "$out/$1.yaml" --fresh > "$out/$1.up.txt" 2>&1 &
  local up=$!
  if [ "$3" = yes ]; then
    for _ in $(seq 1 200); do [ -s "$out/$1/pids.json" ] && break; sleep 0.1; done
    pid=$(python3 -c "import json,sys; d=json.load(open('$out/$1/pids.json')); e=d['$held']; print(e['pid'] if isinstance(e, dict) else e)")
    echo "$pid" > "$cg/cgroup.procs"
  fi
  wait $up || rc=$?
  t1=$(date +%s.%N)
  python3 - "$out/$1" "$held" "$(echo "$t1 - $t0" | bc)" "$rc" <<'PY'
import json, os, sys, glob
d, held, wall, rc = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
digests, diverged, snaps, rounds, withheld, timed = {}, 0, 0, 0, 0, 0
spans = {}  # peer -> seconds from its first to its last applied round (training time, no start-up or evaluation)
for p in sorted(os.listdir(d)):
    pd = os.path.join(d, p)
    if not os.path.isdir(pd): continue
    s = os.path.join(pd, "summary.json")
    if os.path.exists(s): digests[p] = json.load(open(s)).get("digest")
    ts = [json.loads(l)["time_ms"] for l in open(os.path.join(pd, "rounds.jsonl"))]
    if ts: spans[p] = (ts[-1] - ts[0]) / 1000
    for l in open(os.path.join(pd, "heartbeats.jsonl")):
        e = json.loads(l)
        if e.get("event") == "diverged": diverged += 1
        if e.get("event") == "catchup" and e.get("result") == "done" and e.get("mode") == "snapshot": snaps += 1
    if p == "p0":
        for l in open(os.path.join(pd, "rounds.jsonl")):
            r = json.loads(l)
            if r.get("phase") == "replay": continue
            rounds += 1
            withheld += held in r.get("contributors", [])
            timed += bool(r.get("timed_out"))
print(f"{os.path.basename(d)}: wall {wall:.1f} s, exit {rc}, final digests {sorted(set(digests.values()))} on {len(digests)} peers, "
      f"{diverged} diverged, {snaps} snapshot catch-ups, {held} in {withheld}/{rounds} rounds ({100*withheld/max(1,rounds):.0f}%), {timed} rounds decided at the deadline")
others = [v for k, v in spans.items() if k != held]
print(f"  training time (first to last round): others {max(others):.1f} s, {held} {spans.get(held, 0):.1f} s")
PY
}

echo "4 peers of $preset, $steps steps, overlap $overlap; $held held to $pct% of a core in the second run"
run even 27100 no
run held 27200 yes
rmdir "$cg" 2>/dev/null || true
