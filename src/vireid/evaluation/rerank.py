"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), vectorised with torch.

It reproduces the widely copied reference implementation (``re_ranking`` in the authors' code,
torchreid and AGW): squared distances normalised per row, k-reciprocal sets expanded with the
half-size sets of their members when those overlap by more than 2/3, Gaussian-weighted encodings,
local query expansion over the ``k2`` nearest neighbours, Jaccard distance, and the blend
``(1 - lambda) * jaccard + lambda * original``. Sets are held as dense boolean masks and the Jaccard
term is accumulated through the inverted index (shared non-zero columns), in chunks, so there is no
Python loop over images.
"""

from __future__ import annotations

import numpy as np
import torch

# Pairs (query row, shared column, other row) accumulated at once in the Jaccard step.
_JACCARD_CHUNK = 1 << 23


def _as_tensor(x) -> torch.Tensor:
    return (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).detach().float().cpu()


def _reciprocal(initial_rank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward lists ``F`` (N x k) and a mask of which entries are reciprocal (i in the top-k of F[i, a])."""
    n = initial_rank.shape[0]
    forward = initial_rank[:, :k]
    member = torch.zeros(n, n, dtype=torch.bool)
    member.scatter_(1, forward, True)
    rows = torch.arange(n)[:, None].expand_as(forward)
    return forward, member[forward, rows]


def k_reciprocal_rerank(
    q_g_dist: np.ndarray | torch.Tensor,
    q_q_dist: np.ndarray | torch.Tensor,
    g_g_dist: np.ndarray | torch.Tensor,
    k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """Re-ranked query x gallery distances (float32 ndarray) from the three distance blocks.

    Inputs are plain (not squared) distances, e.g. Euclidean; like the reference code they are
    squared and divided by each row's maximum before use.
    """
    qg, qq, gg = _as_tensor(q_g_dist), _as_tensor(q_q_dist), _as_tensor(g_g_dist)
    nq, ng = qg.shape
    if qq.shape != (nq, nq) or gg.shape != (ng, ng):
        raise ValueError(f"distance blocks do not fit: q_g {tuple(qg.shape)}, q_q {tuple(qq.shape)}, g_g {tuple(gg.shape)}")
    n = nq + ng
    original = torch.cat([torch.cat([qq, qg], 1), torch.cat([qg.T, gg], 1)], 0).pow(2)
    original = original / original.amax(1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    initial_rank = torch.sort(original, dim=1, stable=True).indices
    kh = int(np.around(k1 / 2.0))
    fwd, rec = _reciprocal(initial_rank, min(k1 + 1, n))
    fwd_h, rec_h = _reciprocal(initial_rank, min(kh + 1, n))
    kr = torch.zeros(n, n, dtype=torch.bool)
    kr[torch.arange(n)[:, None].expand_as(fwd)[rec], fwd[rec]] = True
    # Candidate c = fwd[i, a] (reciprocal to i) adds its half-size set R(c) when |R(c) & R(i)| > 2/3 |R(c)|.
    cand_members = fwd_h[fwd]  # N x (k1+1) x (kh+1)
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
        # Local query expansion: each encoding becomes the mean of its k2 nearest neighbours' encodings.
        nb = initial_rank[:, : min(k2, n)]
        step = max(1, _JACCARD_CHUNK // (nb.shape[1] * n))
        v = torch.cat([v[nb[i : i + step]].mean(1) for i in range(0, n, step)])
    original_qg = original[:nq, nq:]
    jaccard = _jaccard(v, nq, nq)
    return ((1 - lambda_value) * jaccard + lambda_value * original_qg).numpy()


def _jaccard(v: torch.Tensor, nq: int, offset: int) -> torch.Tensor:
    """Jaccard distance 1 - m / (2 - m), m = sum_k min(v[i, k], v[j, k]), for rows i < nq and j >= offset."""
    n = v.shape[0]
    cols = v[offset:] if offset else v
    # Inverted index: for each column k, the rows j (of the gallery part) where cols[j, k] != 0.
    jk, jj = torch.nonzero(cols.T, as_tuple=True)  # sorted by column k
    jidx, jval = jj, cols[jj, jk]
    col_count = torch.bincount(jk, minlength=n)
    crow = torch.cumsum(col_count, 0) - col_count
    qi, qk = torch.nonzero(v[:nq], as_tuple=True)
    qv = v[qi, qk]
    pairs = col_count[qk]
    acc = torch.zeros(nq, n - offset, dtype=torch.float32)
    ends = torch.cumsum(pairs, 0)
    start = 0
    while start < len(qi):
        # Take query entries until about _JACCARD_CHUNK pairs are gathered.
        base = int(ends[start - 1]) if start else 0
        stop = int(torch.searchsorted(ends, base + _JACCARD_CHUNK, right=True))
        stop = max(stop, start + 1)
        sl = slice(start, stop)
        reps = pairs[sl]
        e_i = torch.repeat_interleave(qi[sl], reps)
        e_v = torch.repeat_interleave(qv[sl], reps)
        first = torch.repeat_interleave(crow[qk[sl]], reps)
        within = torch.arange(int(reps.sum())) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps, reps)
        src = first + within
        acc.index_put_((e_i, jidx[src]), torch.minimum(e_v, jval[src]), accumulate=True)
        start = stop
    return 1 - acc / (2 - acc)
