# Sourced by the lab experiments (weaklinks.sh, soak.sh): `lab_prelude NAME` checks that the lab can
# be built (root, ip netns, tc tbf), builds murmur when missing, fetches the corpus, sets $murmur
# (absolute: peers start inside namespaces) and $out (runs/NAME), and removes the lab on exit.
lab_prelude() {
  murmur="$(realpath -m "${MURMUR:-.build/release/murmur}")"
  scripts/netlab.sh check || { echo "$1: cannot build the lab on this machine (see above); nothing was run" >&2; exit 1; }
  [ -x "$murmur" ] || swift build -c release --product murmur >/dev/null
  "$murmur" data fetch >/dev/null
  out=runs/$1
  mkdir -p "$out"
  trap 'scripts/netlab.sh down' EXIT
}
