#!/usr/bin/env bash
# npm run test:gpu — the CUDA path on a machine with a GPU (CI has none; there
# the same tests run their no-device branch). Fails unless a CUDA device is
# usable. Steps:
#   1. the addon built with GENAUG_CUDA=ON (build/, as npm run build:native);
#   2. the C++ tests with CUDA (native/tests: the CUDA backend gives the CPU
#      emulation's bytes; the emulation matches the CPU engine on odd shapes;
#      precision 'bf16': the tensor cores' screen scores within the bound pair
#      by pair, the bf16 top-k the exact path's bytes, a tenth of the bound
#      wrong on adversarial rows); then native/tests/bench_device.cc on the
#      issues' sizes (the CPU path and the device path in one run, no Node:
#      scripts/gpu-native.sh runs the same two steps on machines without Node);
#   3. test/device.test.ts: the library and the CLI with --device cuda against
#      the CPU path (indices exact, scores within 1e-5, rowDot the same bytes);
#   4. npm run bench -- similarity --device cuda (ratio to the CPU path, the
#      agreement of both, and to torch on the GPU where installed; bf16top1 and
#      bf16top10 are the tensor-core screen, checked against the CPU's exact top-k). Pass
#      GENAUG_GPU_BENCH_ARGS to change its sizes (default: the reference
#      20000 x 50000 x 512, one round);
#   5. npm run bench -- paste-device --device cuda (compositing 1024² scenes on
#      the GPU and on the CPU path in the same run, each blend: images/s, the
#      ratio, and whether every output byte is the CPU path's).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc > /dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "test:gpu: no nvcc on PATH (install the CUDA toolkit, or add /usr/local/cuda/bin to PATH)" >&2
  exit 1
fi
export PATH="$PATH:/usr/local/cuda/bin"
npx cmake-js compile --out build --CDCMAKE_BUILD_TYPE=Release --CDGENAUG_CUDA=ON
npx tsc -p tsconfig.json
node --input-type=module -e '
const { capabilities } = await import("./dist/index.js");
const c = capabilities().cuda;
console.error(JSON.stringify(c));
if (!c.built || !c.usable) { console.error("test:gpu: no usable CUDA device: " + (c.reason ?? "unknown")); process.exit(1); }
'
GENAUG_FUZZ_RUNS=${GENAUG_FUZZ_RUNS:-20000} bash native/tests/run.sh build-tests-gpu -DGENAUG_CUDA=ON
build-tests-gpu/bench_device --reps 3
npx vitest run test/device.test.ts
# shellcheck disable=SC2086
node benchmarks/run.js similarity --device cuda --rounds 1 ${GENAUG_GPU_BENCH_ARGS:-}
node benchmarks/run.js paste-device --device cuda
