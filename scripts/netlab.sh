#!/usr/bin/env bash
# A lab of hosts on this machine: one network namespace per peer, joined by a bridge in a switch
# namespace, each link optionally limited in rate (tc tbf, both directions) and delayed (a TCP
# delay line in the switch, scripts/delayline.py, because this kernel has no sch_netem).
#
#   scripts/netlab.sh up N [RATE] [DELAY_MS]   e.g. up 4 10mbit 50   (RATE "none": no limit)
#   scripts/netlab.sh peers N [PORT_BASE]      the topology's `peers:` block for these hosts
#   scripts/netlab.sh down                     removes every namespace and the delay line
#   scripts/netlab.sh check                    can this machine make the lab? (exit 0 / 1 with why)
#
# Addresses: peer i lives at 10.77.0.(10+i) in namespace murmur-p<i> (its link is eth0). With a
# delay, every other peer reaches it at 10.77.1.(10+i), an address of the switch, where the delay
# line forwards to the real one: so each message crosses the sender's link (RATE up), the delay
# line (DELAY_MS) and the receiver's link (RATE down). Nothing leaves these namespaces: the switch
# has no route to the machine's own network. Needs root and iproute2. NETLAB=name (default murmur)
# prefixes the namespaces, so two labs can exist side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
lab="${NETLAB:-murmur}"
state=runs/netlab-$lab
sw=$lab-sw

check() {
  [ "$(id -u)" = 0 ] || { echo "netlab: needs root (network namespaces and tc)" >&2; return 1; }
  command -v ip >/dev/null && command -v tc >/dev/null || { echo "netlab: needs iproute2 (ip, tc): apt-get install -y iproute2" >&2; return 1; }
  ip netns add murmur-probe 2>/dev/null || { echo "netlab: 'ip netns add' is not permitted here" >&2; return 1; }
  local ok=0
  ip -n murmur-probe link add probe0 type veth peer name probe1 2>/dev/null && tc -n murmur-probe qdisc add dev probe0 root tbf rate 10mbit burst 32kb latency 200ms 2>/dev/null || ok=1
  ip netns del murmur-probe
  [ $ok = 0 ] || { echo "netlab: tc tbf is not available in this kernel" >&2; return 1; }
}

shape() {  # namespace device rate
  [ "$3" = none ] || tc -n "$1" qdisc replace dev "$2" root tbf rate "$3" burst 32kb latency 200ms
}

up() {
  local n=$1 rate=${2:-none} delay=${3:-0}
  down 2>/dev/null || true
  mkdir -p "$state"
  ip netns add $sw
  ip -n $sw link set lo up
  ip -n $sw link add mbr0 type bridge
  ip -n $sw addr add 10.77.0.1/16 dev mbr0
  ip -n $sw link set mbr0 up
  local routes=()
  for ((i = 0; i < n; i++)); do
    local ns=$lab-p$i
    ip netns add $ns
    ip -n $ns link set lo up
    ip link add mv-p$i netns $sw type veth peer name eth0 netns $ns
    ip -n $sw link set mv-p$i master mbr0 up
    ip -n $ns addr add 10.77.0.$((10 + i))/16 dev eth0
    ip -n $ns link set eth0 up
    shape $ns eth0 "$rate"          # what peer i sends
    shape $sw mv-p$i "$rate"        # what peer i receives
    if [ "$delay" != 0 ]; then
      ip -n $sw addr add 10.77.1.$((10 + i))/16 dev mbr0
      for port in $((7100 + 10 * i)) $((7101 + 10 * i)); do
        routes+=("10.77.1.$((10 + i)):$port=10.77.0.$((10 + i)):$port")
      done
    fi
  done
  if [ "$delay" != 0 ]; then
    ip netns exec $sw python3 scripts/delayline.py --delay-ms "$delay" "${routes[@]}" > "$state/delayline.log" 2>&1 &
    echo $! > "$state/delayline.pid"
    for _ in $(seq 50); do grep -q routes "$state/delayline.log" 2>/dev/null && break; sleep 0.1; done
  fi
  echo "n=$n rate=$rate delay=$delay" > "$state/lab"
  echo "netlab $lab: $n hosts (10.77.0.10–$((9 + n))), links $rate, delay ${delay} ms each way"
}

peers() {
  local n=$1 delay
  delay=$(sed -n 's/.*delay=\([0-9]*\).*/\1/p' "$state/lab" 2>/dev/null || echo 0)
  echo "peers:"
  for ((i = 0; i < n; i++)); do
    local real=10.77.0.$((10 + i)) seen=10.77.0.$((10 + i)) listen=""
    if [ "${delay:-0}" != 0 ]; then seen=10.77.1.$((10 + i)); listen=", listen: \"$real\""; fi
    echo "  - { id: p$i, netns: $lab-p$i, pub: \"tcp://$seen:$((7100 + 10 * i))\", sync: \"tcp://$seen:$((7101 + 10 * i))\"$listen }"
  done
}

down() {
  if [ -f "$state/delayline.pid" ]; then kill "$(cat "$state/delayline.pid")" 2>/dev/null || true; rm -f "$state/delayline.pid"; fi
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$lab-(p[0-9]+|sw)\$" || true); do ip netns del "$ns"; done
  rm -f "$state/lab"
}

case "${1:-}" in
  up) shift; check; up "$@" ;;
  peers) shift; peers "$@" ;;
  down) down ;;
  check) check && echo "netlab: ok (root, ip netns, tc tbf)" ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
