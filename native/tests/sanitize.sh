#!/usr/bin/env bash
# The sanitizer run: the C++ unit tests and every fuzz target built with
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer on), then the
# addon built the same way: the leak harness under LeakSanitizer, and the vitest
# suite (less the orchestration-only files listed at the end) run against it (node itself is not instrumented, so the ASan
# runtime is preloaded; see below why leak checking is off for the suite).
set -euo pipefail
cd "$(dirname "$0")/../.."
export GENAUG_FUZZ_RUNS=${GENAUG_FUZZ_RUNS:-50000}
# The C++ unit tests and the fuzz drivers with LeakSanitizer on: plain
# processes that free what they allocate, so any leak report fails the run.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  bash native/tests/run.sh build-asan-core -DGENAUG_SANITIZE=ON -DGENAUG_CUDA=OFF
npx cmake-js compile --out build-asan --CDCMAKE_BUILD_TYPE=RelWithDebInfo --CDGENAUG_SANITIZE=ON --CDGENAUG_CUDA=OFF > build-asan.log 2>&1 || { tail -50 build-asan.log; exit 1; }
addon=$(find build-asan -name genaug.node | head -n 1)
[ -n "$addon" ] || { echo "sanitizer addon not built"; exit 1; }
asan=$(g++ -print-file-name=libasan.so)
ubsan=$(g++ -print-file-name=libubsan.so)
export GENAUG_ADDON="$PWD/$addon"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
node_asan() { LD_PRELOAD="$asan $ubsan" "$@"; }
node_asan node -e "import('./dist/index.js').then(g => { const c = g.capabilities(); if (!c.sanitized) { console.error('not the sanitizer build: ' + c.addonPath); process.exit(1); } console.log('sanitizer addon:', c.addonPath); })"

# Node with LeakSanitizer on: every native entry point (good and refused
# calls) and worker threads that load the addon (the leak harness in short),
# with native/tests/lsan-node.supp suppressing V8's own heap bookkeeping only.
# First the proof that the suppressions hide no addon leak: a probe module
# that leaks 1000 x 4 KiB must be reported in full.
supp="suppressions=$PWD/native/tests/lsan-node.supp"
gcc -shared -fPIC -g -O1 -fsanitize=address -fno-omit-frame-pointer -I"$(node -p "require('node-api-headers').include_dir")" \
  native/tests/lsan_probe.c -o build-asan/lsan_probe.node
probe=$(ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 LSAN_OPTIONS=$supp node_asan node -e \
  "const m = require('./build-asan/lsan_probe.node'); for (let i = 0; i < 1000; i++) m.leak(); process.exit(0)" 2>&1 || true)
echo "$probe" | grep -q "SUMMARY: AddressSanitizer: 4096000 byte(s) leaked in 1000 allocation(s)" \
  || { echo "LeakSanitizer did not report the probe's leak in full (suppressions too broad?):"; echo "$probe" | tail -20; exit 1; }
echo "LeakSanitizer: the probe's 1000 leaks reported, node's own suppressed"
ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0:abort_on_error=1:symbolize=1 LSAN_OPTIONS=$supp:print_suppressions=0 \
  node_asan node --expose-gc scripts/leaks.mjs --calls 1000 --workers 10 --max 1000 | tail -n 2

# The whole suite, leak detection off: the tests start other programs
# (python3 for the numpy interop, tar, chromium for the report) that inherit
# LD_PRELOAD and ASAN_OPTIONS, and LeakSanitizer fails them on their own leaks
# (python3 and tar did, measured), which only suppressions naming those
# programs would hide.
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:abort_on_error=1:symbolize=1
# Left out here (they all run in npm test), to keep CI under its time budget: tests whose time goes to orchestration
# (child processes, servers, kills, Redis, Chromium, whole demos) and whose native calls are the same entry points
# the kept files drive directly (kernel, codec, composite, paste, embed, annotate, similarity, corpus and fuzz tests,
# and pipeline-run's whole run with workers):
# - packaging and types: prebuild (npm pack + an offline install of the release build), api (a TypeScript compile),
#   package, layers (import rules);
# - processes and services: chaos (kill -9 loops), disk-full, load, one-writer, secrets, queue (redis-server),
#   generate, generate-cli, generate-load, pipeline-server, pipeline-protocols (HTTP stand-ins), chat, plan-llm, plan-clip,
#   cli (help text);
# - whole demos and command chains: e2e-demo (Chromium), acp-run, acp-paste, methods-classify, demo-xpaste, command-chain,
#   pipeline-chain,
#   export-stream, report-charts;
# - pure TypeScript: wordnet, tokenizer, plan, plan-priors, pipeline-config.
# A new test file runs here unless it is added to this list.
skip=(prebuild api package layers chaos disk-full load one-writer secrets queue generate generate-cli generate-load
  pipeline-server pipeline-protocols chat plan-llm plan-clip cli e2e-demo acp-run acp-paste methods-classify demo-xpaste command-chain pipeline-chain
  export-stream report-charts wordnet tokenizer plan plan-priors pipeline-config)
args=()
for t in "${skip[@]}"; do
  [ -f "test/$t.test.ts" ] || { echo "sanitize.sh: test/$t.test.ts is listed to leave out but does not exist"; exit 1; }
  args+=(--exclude "test/$t.test.ts")
done
npx vitest run "${args[@]}"
