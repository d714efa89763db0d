#!/usr/bin/env bash
# The sanitizer run: the C++ unit tests and the .npy fuzzer built with
# AddressSanitizer + UndefinedBehaviorSanitizer, then the addon built the same
# way and the whole vitest suite run against it (node itself is not
# instrumented, so the ASan runtime is preloaded; leak checking is off because
# node keeps memory alive until exit by design).
set -euo pipefail
cd "$(dirname "$0")/../.."
export GENAUG_FUZZ_RUNS=${GENAUG_FUZZ_RUNS:-50000}
bash native/tests/run.sh build-asan-core -DGENAUG_SANITIZE=ON -DGENAUG_CUDA=OFF
npx cmake-js compile --out build-asan --CDCMAKE_BUILD_TYPE=RelWithDebInfo --CDGENAUG_SANITIZE=ON --CDGENAUG_CUDA=OFF > build-asan.log 2>&1 || { tail -50 build-asan.log; exit 1; }
addon=$(find build-asan -name genaug.node | head -n 1)
[ -n "$addon" ] || { echo "sanitizer addon not built"; exit 1; }
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
export GENAUG_ADDON="$PWD/$addon"
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
node -e "import('./dist/index.js').then(g => { const c = g.capabilities(); if (!c.sanitized) { console.error('not the sanitizer build: ' + c.addonPath); process.exit(1); } console.log('sanitizer addon:', c.addonPath); })"
npx vitest run
