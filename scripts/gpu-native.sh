#!/usr/bin/env bash
# The GPU check with no Node.js: for the GPU machines this project is lent
# (nvcc, CMake and g++ there, but no Node and no npm registry, so `npm run
# test:gpu` cannot run on them). Steps, all from this checkout:
#   1. nvidia-smi, for the record;
#   2. the core library and its C++ tests built with CUDA required
#      (GENAUG_CUDA=ON), for the GPU's own architecture when nvidia-smi names
#      it (else sm_80 and sm_90);
#   3. the C++ tests: every CUDA backend against the CPU emulation of its
#      kernels, which the same tests hold to the CPU path (similarity indices
#      exact and scores within 1e-5, BN statistics, compositing byte for byte,
#      CLIS-L scores);
#   4. native/tests/bench_device.cc on the issues' sizes: the CPU path (every
#      core) and the device path in the same run, their ratio and agreement,
#      one JSON line per hot path, `summary` last.
# Logs go to $OUT when it is set (the device tool's folder that comes back),
# else to build-gpu/out. Takes about 3-5 minutes on a 16-core H100 machine
# (most of it compiling). Exit status: the first step that failed.
# From a session lent a GPU, in one call of the device tool:
#   run(command: "bash scripts/gpu-native.sh", timeout_s: 540)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-gpu/out}
mkdir -p "$out"
export PATH="$PATH:/usr/local/cuda/bin"
{ nvidia-smi || echo "nvidia-smi failed"; } 2>&1 | tee "$out/nvidia-smi.txt"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .' || true)
[[ "$arch" =~ ^[0-9]+$ ]] || arch="80;90"
echo "== build (CUDA architectures $arch), $(nproc) cores" | tee "$out/build.log"
cmake -S . -B build-gpu -DGENAUG_TESTS=ON -DGENAUG_ADDON=OFF -DGENAUG_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_CUDA_ARCHITECTURES=$arch" >> "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target genaug_core_tests bench_device >> "$out/build.log" 2>&1 || { tail -60 "$out/build.log"; exit 1; }
echo "== C++ tests (CUDA backends against the CPU emulation and the CPU path)"
set -o pipefail
build-gpu/genaug_core_tests 2>&1 | tee "$out/core-tests.log" | tail -n 30
echo "== bench_device (CPU path and device path, same run)"
build-gpu/bench_device --reps "${GENAUG_GPU_BENCH_REPS:-3}" 2>&1 | tee "$out/bench-device.jsonl"
