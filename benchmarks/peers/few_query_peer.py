"""Peer for the few-query similarity reductions of benchmarks/similarity.bench.js:
M (few) L2-normalised float32 queries against N database rows, numpy/OpenBLAS
with `threads` BLAS threads: per-class max (A @ B.T, the columns put in label
order, np.maximum.reduceat) and thresholded pairs (A @ B.T, np.nonzero).
Prints one JSON line: {"results": [...], "versions": {...}}.
"""
import argparse, json, time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--M", type=int, default=64)
    ap.add_argument("--N", type=int, default=50000)
    ap.add_argument("--D", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=0.15)
    ap.add_argument("--only", default="np_classmax_few,np_pairs_few")
    a = ap.parse_args()
    import numpy as np
    import threadpoolctl
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    A = rng.standard_normal((a.M, a.D), dtype=np.float32)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    B = rng.standard_normal((a.N, a.D), dtype=np.float32)
    B /= np.linalg.norm(B, axis=1, keepdims=True)
    labels = (np.arange(a.N) * 7919) % a.classes

    def classmax():
        # What a numpy user writes: the product, then the columns grouped by
        # label (a stable sort of the labels) and a max per group.
        C = A @ B.T
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=a.classes)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        return np.maximum.reduceat(C[:, order], starts, axis=1)

    def pairs():
        C = A @ B.T
        i, j = np.nonzero(C >= a.threshold)
        return i, j, C[i, j]

    results = []
    with threadpool_limits(limits=a.threads):
        for name, f in (("np_classmax_few", classmax), ("np_pairs_few", pairs)):
            if name not in a.only.split(","):
                continue
            f()
            ts = []
            for _ in range(a.reps):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            ts.sort()
            results.append({"variant": name, "median_s": ts[len(ts) // 2], "min_s": ts[0], "M": a.M, "N": a.N, "D": a.D})
        pools = threadpoolctl.threadpool_info()
    print(json.dumps({"results": results, "versions": {"numpy": np.__version__, "threadpools": pools}}))


if __name__ == "__main__":
    main()
