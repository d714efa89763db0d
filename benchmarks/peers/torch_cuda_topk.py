#!/usr/bin/env python3
"""torch on the GPU: chunked cosine top-k, the peer of `npm run bench -- similarity --device cuda`.

Same work as genaug's device path: the float32 inputs start in host memory,
are copied to the GPU, L2-normalised, multiplied in query chunks of 4096 rows,
reduced with torch.topk, and the indices and scores copied back. Prints one
JSON line: {"variant", "median_s", "min_s", "reps", "torch"} or {"skipped"}.
"""
import argparse
import json
import statistics
import time

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(json.dumps({"skipped": f"torch is not installed ({e})"}))
    raise SystemExit(0)

ap = argparse.ArgumentParser()
ap.add_argument("--M", type=int, default=20000)
ap.add_argument("--N", type=int, default=50000)
ap.add_argument("--D", type=int, default=512)
ap.add_argument("--k", type=int, default=10)
ap.add_argument("--reps", type=int, default=1)
a = ap.parse_args()

if not torch.cuda.is_available():
    print(json.dumps({"skipped": f"torch {torch.__version__} sees no CUDA device"}))
    raise SystemExit(0)

gen = torch.Generator().manual_seed(1)
q = torch.randn(a.M, a.D, generator=gen)
d = torch.randn(a.N, a.D, generator=gen)


def run():
    qq = torch.nn.functional.normalize(q.cuda(), dim=1)
    dd = torch.nn.functional.normalize(d.cuda(), dim=1)
    outs = []
    for i in range(0, a.M, 4096):
        s = qq[i : i + 4096] @ dd.T
        v, ix = torch.topk(s, min(a.k, a.N), dim=1)
        outs.append((v.cpu(), ix.cpu()))
    torch.cuda.synchronize()
    return outs


run()
ts = []
for _ in range(a.reps):
    t0 = time.perf_counter()
    run()
    ts.append(time.perf_counter() - t0)
print(json.dumps({"variant": f"torch_cuda_chunked_topk{a.k}", "median_s": statistics.median(ts), "min_s": min(ts), "reps": a.reps, "torch": torch.__version__}))
