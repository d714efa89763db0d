#!/usr/bin/env bash
# Runs every native fuzz target (fuzz_npy, fuzz_rle, fuzz_polygon, fuzz_layout,
# fuzz_composite) from its corpus in native/tests/corpus/<target>/ and prints
# one summary line per target: "fuzz <target>: <execs> execs, <crashes>
# crashes (<engine>, <seconds> s)". Exits 1 when any target crashed.
#
#   bash native/tests/fuzz.sh [--runs N | --seconds S] [--engine auto|libfuzzer|driver] [target...]
#
# --runs N     (default 1000000) executions per target; --seconds S instead
#              runs each target for S seconds (CI).
# --engine     libfuzzer: clang's coverage-guided libFuzzer with ASan + UBSan
#              and libstdc++ assertions (build-libfuzzer/); driver: the gcc
#              replay/mutation driver (fuzz_driver*.cc) built with ASan +
#              UBSan (build-fuzz-gcc/); auto (default): libfuzzer when clang++
#              is installed, else driver.
# New inputs libFuzzer finds go to build-libfuzzer/corpus-<target>/, never
# into the repository; a crash is saved as <build>/crash-<target>-*.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=1000000
seconds=""
engine=auto
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(npy rle polygon layout composite)
if [ "$engine" = auto ]; then
  if command -v clang++ >/dev/null 2>&1; then engine=libfuzzer; else engine=driver; fi
fi
case "$engine" in
  libfuzzer)
    command -v clang++ >/dev/null 2>&1 || { echo "fuzz.sh: clang++ not found (apt-get install clang), use --engine driver" >&2; exit 2; }
    dir=build-libfuzzer
    export CC=clang CXX=clang++ ;;
  driver) dir=build-fuzz-gcc ;;
  *) echo "fuzz.sh: --engine must be auto, libfuzzer or driver" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -DGENAUG_TESTS=ON -DGENAUG_ADDON=OFF -DGENAUG_CUDA=OFF -DGENAUG_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j 2 --target $(printf 'fuzz_%s ' "${targets[@]}") > "$dir.build.log" 2>&1 || { tail -40 "$dir.build.log"; exit 1; }
# Leak detection on: a target that leaks on some input fails like a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for t in "${targets[@]}"; do
  corpus=native/tests/corpus/$t
  [ -d "$corpus" ] || { echo "fuzz.sh: no corpus $corpus" >&2; exit 2; }
  log="$dir/fuzz-$t.log"
  start=$(date +%s%N)
  set +e
  if [ "$engine" = libfuzzer ]; then
    mkdir -p "$dir/corpus-$t"
    limit=$([ -n "$seconds" ] && echo "-max_total_time=$seconds" || echo "-runs=$runs")
    # -timeout: an input that takes over 10 s is a hang, reported as a crash.
    "$dir/fuzz_$t" "$limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/crash-$t-" \
      "$dir/corpus-$t" "$corpus" > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    crashes=$([ $rc -eq 0 ] && echo 0 || echo 1)  # libFuzzer stops at the first crash
  else
    n=$runs
    if [ -n "$seconds" ]; then n=$((seconds * 20000)); fi  # the driver counts runs, not time: about 20 k/s under ASan
    "$dir/fuzz_$t" -runs="$n" -artifact_prefix="$dir/crash-$t-" "$corpus" > "$log" 2>&1
    rc=$?
    line=$(grep -E "^fuzz_$t: [0-9]+ runs, [0-9]+ crashes" "$log" | tail -n 1)
    execs=$(echo "$line" | sed -E 's/.*: ([0-9]+) runs.*/\1/')
    crashes=$(echo "$line" | sed -E 's/.* ([0-9]+) crashes.*/\1/')
    [ -n "$crashes" ] || crashes=1  # killed by a signal before its summary
    [ $rc -eq 0 ] || [ "$crashes" != 0 ] || crashes=1
  fi
  set -e
  secs=$(( ($(date +%s%N) - start) / 1000000000 ))
  printf 'fuzz %s: %s execs, %s crashes (%s, %s s)\n' "$t" "${execs:-?}" "$crashes" "$engine" "$secs"
  if [ "$crashes" != 0 ]; then
    failed=1
    tail -n 40 "$log"
  fi
done
exit $failed
