#!/usr/bin/env bash
# Coverage-guided fuzzing of the .npy header parser and the COCO RLE string decoder with clang's libFuzzer
# (ASan + UBSan), for FUZZ_SECONDS (default 60). Needs clang; says so and
# exits 0 when it is missing (the replay/mutation driver in run.sh still runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang++ >/dev/null 2>&1; then
  echo "libfuzzer: clang++ not found; skipping coverage-guided fuzzing (apt-get install clang)"
  exit 0
fi
dir=build-libfuzzer
CC=clang CXX=clang++ cmake -S . -B "$dir" -DGENAUG_TESTS=ON -DGENAUG_ADDON=OFF -DGENAUG_CUDA=OFF -DGENAUG_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j 2 --target fuzz_npy fuzz_rle > "$dir.build.log" 2>&1 || { tail -40 "$dir.build.log"; exit 1; }
mkdir -p "$dir/corpus"
"$dir/fuzz_npy" -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 "$dir/corpus" 2>&1 | tail -n 12
mkdir -p "$dir/corpus-rle"
"$dir/fuzz_rle" -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 "$dir/corpus-rle" 2>&1 | tail -n 12
