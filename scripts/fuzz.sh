#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]
#
# Builds the libFuzzer binaries of Fuzz/ (Swift -sanitize=fuzzer,address), seeds each empty corpus
# from the project's own encoders and topology files, fuzzes the targets one after another
# (default: 600 s each; targets header, update, topology, checkpoint — the decoders — and peer,
# catchup — hostile messages to running peers on a simulated mesh, see
# Sources/FuzzHarness/PeerHandlerTarget.swift), then minimises every corpus (-merge=1 into a fresh
# folder, which replaces it) so the committed corpus stays small.
#
#   corpus   Fuzz/corpus/<target>/     (committed; replayed by Tests/FuzzReplayTests)
#   regressions Fuzz/regressions/<target>/ (committed; inputs of fixed bugs: fuzzed from, never merged away)
#   crashes  Fuzz/crashes/<target>/    (git-ignored: fix the bug, then move the input into regressions/)
#   logs     Fuzz/.build/logs/<target>.log (MURMUR_FUZZ_SCRATCH=DIR builds and logs in DIR instead)
#
# Exit status: 0 all clean, 1 a target crashed or found a violated invariant, 2 the toolchain
# cannot build libFuzzer binaries (or bad arguments).
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ALL_TARGETS=(header update topology checkpoint peer catchup)

SECS="${1:-600}"
[ $# -gt 0 ] && shift
case "$SECS" in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]  (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;; esac
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) echo "unknown target '$t' (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;; esac
done

command -v swift >/dev/null 2>&1 || export PATH="/opt/swift/usr/bin:$PATH"
if ! command -v swift >/dev/null 2>&1; then
  echo "error: no swift toolchain on PATH: cannot build the fuzzers" >&2; exit 2
fi

# Largest input per target: a few times the biggest valid seed.
max_len() {
  case "$1" in
    header) echo 1024 ;;      # 48-byte header + topic + body
    update) echo 1024 ;;      # the harness plan encodes to < 400 bytes; the dense body is 120
    topology) echo 4096 ;;    # topologies/*.yaml are 0.6–1.7 kB
    checkpoint) echo 8192 ;;  # the seed checkpoints are 0.4–5.1 kB
    peer|catchup) echo 2048 ;; # a script of at most 64 messages (FuzzHarness.handlerMaxMessages)
  esac
}
# Seconds one input may take before libFuzzer calls it a hang: a handler input runs a whole
# simulated cluster (well under a second alone, but a busy 2-core machine stretches it).
unit_timeout() { case "$1" in peer|catchup) echo 60 ;; *) echo 10 ;; esac; }
regressions() { [ -d "Fuzz/regressions/$1" ] && echo "Fuzz/regressions/$1"; }
dict_args() { [ -f "Fuzz/dicts/$1.dict" ] && echo "-dict=Fuzz/dicts/$1.dict"; }

# Corpus bound after minimisation (the brief: well under 2 MB per target).
MAX_CORPUS_BYTES=$((1536 * 1024))
MAX_CORPUS_FILES=600
# The handler targets' inputs each run a simulated cluster (~80 ms in a debug build): fewer files
# keep their replay in `swift test` short.
max_files() { case "$1" in peer|catchup) echo 250 ;; *) echo "$MAX_CORPUS_FILES" ;; esac; }

export SWIFT_DETERMINISTIC_HASHING=1   # the handler targets iterate dictionaries: same input, same run
export SWIFT_BACKTRACE=enable=no   # the Swift backtracer fights ASan's; let libFuzzer report
SCRATCH="${MURMUR_FUZZ_SCRATCH:-Fuzz/.build}"
# MURMUR_FUZZ_SANITIZE=fuzzer (with its own MURMUR_FUZZ_SCRATCH) drops ASan: Swift's own checks
# (overflow, bounds, unwrap) still trap, and the handler targets run several times faster.
SANITIZE="${MURMUR_FUZZ_SANITIZE:-fuzzer,address}"
BUILD_FLAGS=(-c release --package-path Fuzz --scratch-path "$SCRATCH"
             -Xswiftc -sanitize="$SANITIZE" -Xswiftc -parse-as-library -Xswiftc -use-ld=lld)
mkdir -p "$SCRATCH/logs"
echo "building: swift build ${BUILD_FLAGS[*]}"
if ! swift build "${BUILD_FLAGS[@]}" > "$SCRATCH/logs/build.log" 2>&1; then
  grep -E "error|warning: unknown" "$SCRATCH/logs/build.log" | grep -v "ld.gold: warning" | head -20 >&2
  echo "error: this toolchain cannot build libFuzzer binaries (swift build with -sanitize=$SANITIZE failed;" >&2
  echo "       full log in $SCRATCH/logs/build.log). Nothing was fuzzed." >&2
  exit 2
fi
BIN="$(swift build "${BUILD_FLAGS[@]}" --show-bin-path 2>/dev/null)"
for t in "${TARGETS[@]}"; do
  usage="$("$BIN/fuzz-$t" -help=1 2>&1)"
  if ! grep -q "^Usage:" <<< "$usage"; then
    echo "error: $BIN/fuzz-$t is not a libFuzzer binary (no -help=1 usage text): cannot fuzz" >&2; exit 2
  fi
done

file_count() { find "$1" -type f 2>/dev/null | wc -l | tr -d ' '; }
dir_bytes() { find "$1" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

SUMMARY=()
STATUS=0
for t in "${TARGETS[@]}"; do
  corpus="Fuzz/corpus/$t"; crashes="Fuzz/crashes/$t"; log="$SCRATCH/logs/$t.log"
  mkdir -p "$corpus" "$crashes"
  if [ "$(file_count "$corpus")" -eq 0 ]; then
    MURMUR_FUZZ_SEEDS="$corpus" MURMUR_FUZZ_ROOT="$ROOT" "$BIN/fuzz-$t" > "$log.seeds" 2>&1 \
      || { echo "error: writing the seeds of $t failed (see $log.seeds)" >&2; exit 2; }
    echo "$(cat "$log.seeds")"
  fi
  crashes_before="$(file_count "$crashes")"
  echo "fuzzing $t for ${SECS}s (corpus $(file_count "$corpus") files; log $log)"
  start=$(date +%s)
  # shellcheck disable=SC2046
  "$BIN/fuzz-$t" -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout="$(unit_timeout "$t")" -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" $(dict_args "$t") "$corpus" $(regressions "$t") > "$log" 2>&1
  rc=$?
  ran=$(( $(date +%s) - start ))
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")"
  found=$(( $(file_count "$crashes") - crashes_before ))
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    STATUS=1
    echo "!! $t: libFuzzer exited $rc with $found new artifact(s) in $crashes:" >&2
    grep -E "Fatal error|ERROR: |SUMMARY" "$log" | head -5 >&2
  fi
  # Minimise: keep only inputs that add coverage, into a fresh folder that replaces the corpus.
  fresh="$SCRATCH/merge-$t"
  rm -rf "$fresh"; mkdir -p "$fresh"
  if "$BIN/fuzz-$t" -merge=1 -max_len="$(max_len "$t")" -timeout="$(unit_timeout "$t")" -rss_limit_mb=2048 \
       "$fresh" "$corpus" > "$log.merge" 2>&1 && [ "$(file_count "$fresh")" -gt 0 ]; then
    rm -rf "$corpus"; mv "$fresh" "$corpus"
  else
    echo "warning: minimising the $t corpus failed (see $log.merge); kept it as it was" >&2
  fi
  # Cap the committed corpus: drop the largest inputs first (handler targets: see below).
  while [ "$(dir_bytes "$corpus")" -gt "$MAX_CORPUS_BYTES" ] || [ "$(file_count "$corpus")" -gt "$(max_files "$t")" ]; do
    case "$t" in
      # Long handler inputs are the rich scripts: drop by name instead (SHA-1 names: at random).
      peer|catchup) victim="$(find "$corpus" -type f | sort | tail -1)" ;;
      *) victim="$(find "$corpus" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)" ;;
    esac
    rm -f "$victim"
  done
  line="$(printf '%-10s %5ss  %10s execs  cov %5s  ft %6s  corpus %4s files %8s B  crashes %s' \
          "$t" "$ran" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$(file_count "$corpus")" "$(dir_bytes "$corpus")" "$found")"
  echo "$line"
  echo "   libFuzzer: $(grep -E '^#[0-9]+.*DONE|^Done [0-9]+ runs' "$log" | tail -2 | tr '\n' ' ')"
  SUMMARY+=("$line")
done

echo
echo "fuzz summary (${SECS}s per target):"
printf '  %s\n' "${SUMMARY[@]}"
[ "$STATUS" -ne 0 ] && echo "crashes or findings were saved under Fuzz/crashes/: fix the decoder, then move each input into Fuzz/regressions/<target>/" >&2
exit "$STATUS"
