#!/usr/bin/env bash
# Builds and runs the C++ unit tests of the core (and a short fuzz run of the
# .npy parser and the COCO RLE string decoder). Usage: bash native/tests/run.sh [build-dir] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-build-tests}
shift || true
cmake -S . -B "$dir" -DGENAUG_TESTS=ON -DGENAUG_ADDON=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j 2 --target genaug_core_tests fuzz_npy fuzz_rle
"$dir/genaug_core_tests"
"$dir/fuzz_npy" -runs=${GENAUG_FUZZ_RUNS:-200000}
"$dir/fuzz_rle" -runs=${GENAUG_FUZZ_RUNS:-200000}
