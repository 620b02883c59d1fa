"""k-reciprocal re-ranking at SYSU-MM01's sizes: time and peak memory, bounded (today's) vs dense (before).

Run by hand:  python benchmarks/bench_rerank.py [--queries 3803] [--single 301] [--multi 3010] [--dim 2048]

One single-shot and one multi-shot all-search trial of SYSU-MM01 (3,803 infrared queries; a gallery of one
or ten visible images per identity and camera: 301 and 3,010 images in the official protocol), with random
L2-normalised features of the real dimension (the cost depends on the sizes, not on the values). Each
implementation runs in a fresh process; a thread samples its resident memory every few milliseconds and
the peak above the resident memory before the call is printed (the inputs are built before). ``dense`` is
the previous implementation (N x N masks and matrices, N = queries + gallery), kept here as the baseline;
the largest difference between the two results is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

_DENSE_JACCARD_CHUNK = 1 << 23


def dense_rerank(q_g_dist, q_q_dist, g_g_dist, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """The implementation before bounded memory (vireid 0.1), verbatim apart from names."""
    qg, qq, gg = (torch.as_tensor(np.asarray(x)).float() for x in (q_g_dist, q_q_dist, g_g_dist))
    nq, ng = qg.shape
    n = nq + ng
    original = torch.cat([torch.cat([qq, qg], 1), torch.cat([qg.T, gg], 1)], 0).pow(2)
    original = original / original.amax(1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    initial_rank = torch.sort(original, dim=1, stable=True).indices
    kh = int(np.around(k1 / 2.0))

    def reciprocal(k):
        forward = initial_rank[:, :k]
        member = torch.zeros(n, n, dtype=torch.bool)
        member.scatter_(1, forward, True)
        rows = torch.arange(n)[:, None].expand_as(forward)
        return forward, member[forward, rows]

    fwd, rec = reciprocal(min(k1 + 1, n))
    fwd_h, rec_h = reciprocal(min(kh + 1, n))
    kr = torch.zeros(n, n, dtype=torch.bool)
    kr[torch.arange(n)[:, None].expand_as(fwd)[rec], fwd[rec]] = True
    cand_members = fwd_h[fwd]
    cand_rec = rec_h[fwd]
    rows = torch.arange(n)[:, None, None].expand_as(cand_members)
    overlap = (kr[rows, cand_members] & cand_rec).sum(2)
    size = cand_rec.sum(2)
    expand = rec & (overlap > 2.0 / 3.0 * size)
    add = expand[:, :, None] & cand_rec
    expanded = kr.clone()
    expanded[rows[add], cand_members[add]] = True
    weight = torch.where(expanded, torch.exp(-original), 0.0)
    v = weight / weight.sum(1, keepdim=True)
    if k2 != 1:
        nb = initial_rank[:, : min(k2, n)]
        step = max(1, _DENSE_JACCARD_CHUNK // (nb.shape[1] * n))
        v = torch.cat([v[nb[i : i + step]].mean(1) for i in range(0, n, step)])
    original_qg = original[:nq, nq:]
    cols = v[nq:]
    jk, jj = torch.nonzero(cols.T, as_tuple=True)
    jval = cols[jj, jk]
    col_count = torch.bincount(jk, minlength=n)
    crow = torch.cumsum(col_count, 0) - col_count
    qi, qk = torch.nonzero(v[:nq], as_tuple=True)
    qv = v[qi, qk]
    pairs = col_count[qk]
    acc = torch.zeros(nq, ng, dtype=torch.float32)
    ends = torch.cumsum(pairs, 0)
    start = 0
    while start < len(qi):
        base = int(ends[start - 1]) if start else 0
        stop = max(int(torch.searchsorted(ends, base + _DENSE_JACCARD_CHUNK, right=True)), start + 1)
        sl = slice(start, stop)
        reps = pairs[sl]
        e_i = torch.repeat_interleave(qi[sl], reps)
        e_v = torch.repeat_interleave(qv[sl], reps)
        first = torch.repeat_interleave(crow[qk[sl]], reps)
        within = torch.arange(int(reps.sum())) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps)
        src = first + within
        acc.index_put_((e_i, jj[src]), torch.minimum(e_v, jval[src]), accumulate=True)
        start = stop
    jaccard = 1 - acc / (2 - acc)
    return ((1 - lambda_value) * jaccard + lambda_value * original_qg).numpy()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_during(fn):
    """(result, seconds, process CPU seconds, peak resident bytes above the level before the call)."""
    before, peak, done = rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    done.set()
    t.join()
    return result, seconds, cpu, max(peak[0], rss_bytes()) - before


def blocks(nq: int, ng: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Euclidean distances of random L2-normalised features: (query x gallery, query x query, gallery x gallery)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(nq, dim, generator=g), dim=1)
    x = torch.nn.functional.normalize(torch.randn(ng, dim, generator=g), dim=1)
    return torch.cdist(q, x), torch.cdist(q, q), torch.cdist(x, x)


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    qg, qq, gg = blocks(args.queries, args.gallery, args.dim, 0)
    if args.impl == "bounded":
        from vireid.evaluation.rerank import k_reciprocal_rerank as fn
    else:
        fn = dense_rerank
    out, seconds, cpu, peak = peak_during(lambda: fn(qg, qq, gg))
    np.save(args.out, out)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak": peak}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=3803)
    p.add_argument("--single", type=int, default=301, help="single-shot gallery size")
    p.add_argument("--multi", type=int, default=3010, help="multi-shot gallery size")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--impl", choices=("bounded", "dense"), help=argparse.SUPPRESS)
    p.add_argument("--gallery", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.impl:
        child(args)
        return
    print(f"k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3), {args.queries} queries, D = {args.dim}, "
          f"{args.threads} torch threads; each run in a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        for setting, gallery in (("single-shot", args.single), ("multi-shot", args.multi)):
            res = {}
            for impl in ("dense", "bounded"):
                out = Path(tmp) / f"{impl}.npy"
                cmd = [sys.executable, __file__, "--impl", impl, "--gallery", str(gallery), "--out", str(out),
                       "--queries", str(args.queries), "--dim", str(args.dim), "--threads", str(args.threads)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                res[impl] = json.loads(done.stdout.strip().splitlines()[-1])
                res[impl]["result"] = np.load(out)
            n = args.queries + gallery
            diff = float(np.abs(res["dense"]["result"] - res["bounded"]["result"]).max())
            for impl in ("dense", "bounded"):
                r = res[impl]
                print(f"{setting:<11} N = {n:5d} ({args.queries} x {gallery:4d})  {impl:<7}  {r['seconds']:6.2f} s "
                      f"({r['cpu']:6.2f} CPU s)   peak +{r['peak'] / 2**20:7.0f} MiB")
            print(f"{setting:<11} largest |bounded - dense| = {diff:.2e}")


if __name__ == "__main__":
    main()
