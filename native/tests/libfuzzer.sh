#!/usr/bin/env bash
# Coverage-guided fuzzing of every native fuzz target (npy, rle, polygon,
# layout, composite) with clang's libFuzzer (ASan + UBSan, leak detection on),
# FUZZ_SECONDS (default 15) each, from the corpora in native/tests/corpus/.
# Needs clang; says so and exits 0 when it is missing (the replay/mutation
# driver in run.sh still runs). `npm run fuzz` is the long run (1 M each).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang++ >/dev/null 2>&1; then
  echo "libfuzzer: clang++ not found; skipping coverage-guided fuzzing (apt-get install clang)"
  exit 0
fi
exec bash native/tests/fuzz.sh --engine libfuzzer --seconds "${FUZZ_SECONDS:-15}"
