"""Benchmark: gallery search, exact (chunked matrix product) vs faiss, on random vectors (run by hand).

1,000 queries against 10^6 random 256-d L2-normalised gallery vectors (the issue's size), top-10. Each
back end runs in its own process, which first builds the same gallery (seeded), then searches; it prints
the search's wall time and its peak resident memory above the gallery itself (Linux: VmHWM after
resetting it through /proc/self/clear_refs), and whether both back ends returned the same top-k.

    python benchmarks/bench_search.py [--gallery 1000000] [--queries 1000] [--dim 256] [--k 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def make_data(n: int, nq: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random unit vectors (float32), built in chunks so that no float64 copy of the gallery exists."""
    rng = np.random.default_rng(seed)
    g = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - s), dim), dtype=np.float32)
        g[s:s + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    q = rng.standard_normal((nq, dim), dtype=np.float32)
    return g, q / np.linalg.norm(q, axis=1, keepdims=True)


def _child(backend: str, args: argparse.Namespace, out: mp.Queue) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if backend == "faiss":
        import faiss

        faiss.omp_set_num_threads(args.threads)
    from vireid.inference.search import topk

    g, q = make_data(args.gallery, args.queries, args.dim)
    base = _vm_kib("VmRSS")
    exact_peak = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    dist, idx = topk(q, g, args.k, backend)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _vm_kib("VmHWM")
    out.put((backend, seconds, cpu, (peak - base) / 1024 if exact_peak else float("nan"), base / 1024, idx, dist))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gallery", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    backends = ["exact"]
    try:
        import faiss  # noqa: F401

        backends.append("faiss")
    except ImportError:
        print("faiss-cpu is not installed: exact only (pip install 'vireid[faiss]')")
    print(f"{args.queries} queries x {args.gallery} gallery vectors, dim {args.dim}, top-{args.k}, "
          f"{args.threads} threads; gallery {args.gallery * args.dim * 4 / 2**20:.0f} MiB")
    ctx = mp.get_context("fork")
    results = {}
    for b in backends:
        q: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(b, args, q))
        proc.start()
        results[b] = q.get()
        proc.join()
    print(f"{'backend':<8} {'wall s':>8} {'CPU s':>8} {'queries/s':>10} {'peak MiB above gallery':>23} "
          f"{'process RSS with gallery MiB':>29}")
    for b, (_, sec, cpu, extra, base, _, _) in results.items():
        print(f"{b:<8} {sec:8.2f} {cpu:8.2f} {args.queries / sec:10.0f} {extra:23.0f} {base:29.0f}")
    if len(results) == 2:
        (i1, d1), (i2, d2) = results["exact"][5:], results["faiss"][5:]
        same_order = (i1 == i2).all(axis=1)
        same_set = np.array([set(a) == set(b) for a, b in zip(i1.tolist(), i2.tolist(), strict=True)])
        print(f"queries with the same top-{args.k}: {100 * same_set.mean():.1f} % as sets, "
              f"{100 * same_order.mean():.1f} % in the same order; largest distance difference "
              f"{float(np.abs(d1 - d2).max()):.2g}")
        for qi in np.flatnonzero(~same_order)[:5]:
            print(f"  query {qi}: exact {i1[qi].tolist()} {np.round(d1[qi], 7).tolist()}")
            print(f"  {'':>{len(str(qi)) + 6}} faiss {i2[qi].tolist()} {np.round(d2[qi], 7).tolist()}")


if __name__ == "__main__":
    main()
