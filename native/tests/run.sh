#!/usr/bin/env bash
# Builds and runs the C++ unit tests of the core, then a short replay/mutation
# run of every fuzz target (the .npy parser, the COCO RLE string decoder,
# polygons, CLIS-L layouts, compositor scenes) from its corpus in
# native/tests/corpus/<target>/. Usage: bash native/tests/run.sh [build-dir] [extra cmake args...]
# GENAUG_FUZZ_RUNS sets the runs per target (default 200000; `npm run fuzz`
# runs 1 M each, coverage-guided when clang is installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build-tests}
shift || true
targets="npy rle polygon layout composite"
cmake -S . -B "$dir" -DGENAUG_TESTS=ON -DGENAUG_ADDON=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j 2 --target genaug_core_tests bench_device $(printf 'fuzz_%s ' $targets)
"$dir/genaug_core_tests"
# The GPU machines' benchmark (scripts/gpu-native.sh) on the CPU emulation, tiny
# sizes: it runs, and every device path it times agrees with the CPU path.
"$dir/bench_device" --emulate --quick | tail -n 1
for t in $targets; do
  "$dir/fuzz_$t" -runs=${GENAUG_FUZZ_RUNS:-200000} -artifact_prefix="$dir/crash-$t-" "native/tests/corpus/$t" | tail -n 1
done
