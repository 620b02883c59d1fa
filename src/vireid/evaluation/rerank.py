"""k-reciprocal re-ranking (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017), vectorised with torch, in bounded memory.

It reproduces the widely copied reference implementation (``re_ranking`` in the authors' code,
torchreid and AGW): squared distances normalised per row, k-reciprocal sets expanded with the
half-size sets of their members when those overlap by more than 2/3, Gaussian-weighted encodings,
local query expansion over the ``k2`` nearest neighbours, Jaccard distance, and the blend
``(1 - lambda) * jaccard + lambda * original``.

No N x N matrix (N = queries + gallery) is ever built: the distance rows are assembled from the three
blocks a chunk of rows at a time, only each row's nearest neighbours are kept (a stable sort, so ties
fall as in the reference), and the encodings are sparse rows (at most ``(k1 + 1) (k1/2 + 2)`` entries
each, ``k2`` times that after query expansion). The Jaccard term is accumulated through an inverted index
in chunks. Memory is the query x gallery output plus O(N k1^2) and a few chunk buffers
(``benchmarks/bench_rerank.py`` prints time and peak memory at SYSU-MM01's sizes).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

# Elements (rows x columns) of one chunk of distance rows; pairs accumulated at once in the Jaccard step.
_ROW_CHUNK = 1 << 22
_JACCARD_CHUNK = 1 << 20


def _as_tensor(x) -> torch.Tensor:
    return (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))).detach().float().cpu()


class _Rows:
    """Rows of the normalised squared distance matrix ``[[qq, qg], [qg^T, gg]]^2 / row max``, on demand."""

    def __init__(self, qg: torch.Tensor, qq: torch.Tensor, gg: torch.Tensor) -> None:
        self.qg, self.qq, self.gg = qg, qq, gg
        self.nq, self.n = qq.shape[0], qq.shape[0] + gg.shape[0]

    def get(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` (float32, ``[stop - start, N]``), each squared and divided by its maximum; and
        those maxima."""
        parts = []
        if start < self.nq:
            s = slice(start, min(stop, self.nq))
            parts.append(torch.cat([self.qq[s], self.qg[s]], 1))
        if stop > self.nq:
            s = slice(max(start, self.nq) - self.nq, stop - self.nq)
            parts.append(torch.cat([self.qg[:, s].T, self.gg[s]], 1))
        rows = (torch.cat(parts) if len(parts) > 1 else parts[0]).pow(2)
        row_max = rows.amax(1, keepdim=True).clamp_(min=torch.finfo(torch.float32).tiny)
        return rows.div_(row_max), row_max.squeeze(1)

    def chunks(self):
        step = max(1, _ROW_CHUNK // max(self.n, 1))
        for start in range(0, self.n, step):
            stop = min(start + step, self.n)
            yield start, stop, *self.get(start, stop)

    def entries(self, i: torch.Tensor, j: torch.Tensor, row_max: torch.Tensor) -> torch.Tensor:
        """Entries (i, j) of the normalised matrix, read from the blocks (``row_max``: each row's squared max)."""
        nq, out = self.nq, torch.empty(i.shape, dtype=torch.float32)
        iq, jq = i < nq, j < nq
        for mask, block, r, c in ((iq & jq, self.qq, i, j), (iq & ~jq, self.qg, i, j - nq),
                                  (~iq & jq, self.qg, j, i - nq), (~iq & ~jq, self.gg, i - nq, j - nq)):
            out[mask] = block[r[mask], c[mask]]
        return out.pow_(2).div_(row_max[i])


def _nearest(rows: torch.Tensor, keep: int) -> torch.Tensor:
    """The first ``keep`` columns of each row's stable ascending order (ties in index order), via top-k.

    Top-k with a margin, re-ordered stably; a row whose ties at its keep-th value might reach past the
    margin (the last candidate equals the keep-th value) falls back to a full stable sort.
    """
    n = rows.shape[1]
    k = min(n, keep + 8)
    vals, idx = torch.topk(rows, k, dim=1, largest=False, sorted=True)
    by_index = torch.argsort(idx, dim=1)
    idx, by_value = idx.gather(1, by_index), vals.gather(1, by_index)
    idx = idx.gather(1, torch.sort(by_value, dim=1, stable=True).indices)
    if k < n:
        unsure = vals[:, k - 1] <= vals[:, keep - 1]
        if bool(unsure.any()):
            idx[unsure] = torch.sort(rows[unsure], dim=1, stable=True).indices[:, :k]
    return idx[:, :keep]


def _reciprocal(neighbours: torch.Tensor, k: int) -> torch.Tensor:
    """Which of each row's first ``k`` neighbours ``j`` have the row among their own first ``k``."""
    fwd = neighbours[:, :k]
    rows = torch.arange(fwd.shape[0])[:, None, None]
    return (fwd[fwd] == rows).any(2)


def _member(values: torch.Tensor, sets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``values[i, ...]`` is in ``{sets[i, a] : valid[i, a]}`` (row by row)."""
    shape = values.shape
    flat = values.reshape(shape[0], -1, 1)
    hit = (flat == sets[:, None, :]) & valid[:, None, :]
    return hit.any(2).reshape(shape)


def _sparse_rows(cols: torch.Tensor, vals: torch.Tensor, valid: torch.Tensor) -> sparse.csr_matrix:
    """An N x N CSR matrix (float32) from padded rows: entry (i, cols[i, a]) = vals[i, a] where valid."""
    n = cols.shape[0]
    rows = torch.arange(n)[:, None].expand_as(cols)
    return sparse.csr_matrix((vals[valid].numpy(), (rows[valid].numpy(), cols[valid].numpy())), shape=(n, n))


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
    dist = _Rows(qg, qq, gg)
    n = dist.n
    kf, kh = min(k1 + 1, n), int(np.around(k1 / 2.0))
    khf, kq = min(kh + 1, n), min(k2, n)
    keep = max(kf, kq)
    # 1. Each row's nearest neighbours, ties in index order (the reference's stable argsort).
    neighbours = torch.empty(n, keep, dtype=torch.long)
    row_max = torch.empty(n)
    for start, stop, rows, rmax in dist.chunks():
        neighbours[start:stop] = _nearest(rows, keep)
        row_max[start:stop] = rmax
    # 2. k-reciprocal sets R(i) (size k1) and R_half(c) (size k1/2), as padded index lists with a mask.
    fwd, rec = neighbours[:, :kf], _reciprocal(neighbours, kf)
    fwd_h, rec_h = neighbours[:, :khf], _reciprocal(neighbours, khf)
    # 3. Candidate c = fwd[i, a] in R(i) adds R_half(c) when |R_half(c) & R(i)| > 2/3 |R_half(c)|.
    cols_parts, valid_parts = [fwd], [rec]
    step = max(1, _ROW_CHUNK // (kf * khf * kf))
    for start in range(0, n, step):
        s = slice(start, min(start + step, n))
        cand_members, cand_rec = fwd_h[fwd[s]], rec_h[fwd[s]]  # [rows, kf, khf]
        overlap = (_member(cand_members, fwd[s], rec[s]) & cand_rec).sum(2)
        expand = rec[s] & (overlap > 2.0 / 3.0 * cand_rec.sum(2))
        cols_parts.append(cand_members.reshape(cand_members.shape[0], -1))
        valid_parts.append((expand[:, :, None] & cand_rec).reshape(cand_members.shape[0], -1))
    cols = torch.cat([cols_parts[0], torch.cat(cols_parts[1:])], 1)
    valid = torch.cat([valid_parts[0], torch.cat(valid_parts[1:])], 1)
    # Each row's expanded set once: sort its column indices and drop repeats (and the masked-out ones).
    cols = torch.where(valid, cols, n)
    cols = torch.sort(cols, dim=1).values
    valid = cols < n
    valid[:, 1:] &= cols[:, 1:] != cols[:, :-1]
    cols = torch.where(valid, cols, 0)
    # 4. Gaussian weights exp(-d(i, j)) on the expanded set, normalised per row.
    rows_of = torch.arange(n)[:, None].expand_as(cols)
    weight = torch.exp(-dist.entries(rows_of[valid], cols[valid], row_max))
    weight = torch.zeros(cols.shape, dtype=torch.float32).masked_scatter_(valid, weight)
    v = _sparse_rows(cols, weight / weight.sum(1, keepdim=True), valid)
    if k2 != 1:
        # Local query expansion: each encoding becomes the mean of its k2 nearest neighbours' encodings.
        nb = neighbours[:, :kq].numpy()
        pick = sparse.csr_matrix((np.ones(nb.size, np.float32), (np.repeat(np.arange(n), kq), nb.reshape(-1))),
                                 shape=(n, n))
        v = pick @ v
        v.data /= np.float32(kq)
    original_qg = torch.empty(nq, ng, dtype=torch.float32)
    step = max(1, _ROW_CHUNK // n)
    for start in range(0, nq, step):
        stop = min(start + step, nq)
        original_qg[start:stop] = dist.get(start, stop)[0][:, nq:]
    jaccard = _jaccard(v, nq)
    return jaccard.mul_(1 - lambda_value).add_(original_qg.mul_(lambda_value)).numpy()


def _jaccard(v: sparse.csr_matrix, nq: int) -> torch.Tensor:
    """Jaccard distance 1 - m / (2 - m), m = sum_k min(v[i, k], v[j, k]), for query rows i < nq and gallery
    rows j >= nq of the sparse encodings ``v``."""
    n = v.shape[0]
    coo = v.tocoo()
    r, k, val = (torch.from_numpy(np.asarray(a)) for a in (coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data))
    is_q = r < nq
    qi, qk, qv = r[is_q], k[is_q], val[is_q]
    # Inverted index: for each column k, the gallery rows j where v[j, k] != 0 (sorted by column).
    gk, gj, gv = k[~is_q], r[~is_q] - nq, val[~is_q]
    order = torch.argsort(gk, stable=True)
    gk, gj, gv = gk[order], gj[order], gv[order]
    col_count = torch.bincount(gk, minlength=n)
    crow = torch.cumsum(col_count, 0) - col_count
    pairs = col_count[qk]
    acc = torch.zeros(nq, n - nq, dtype=torch.float32)
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
        acc.index_put_((e_i, gj[src]), torch.minimum(e_v, gv[src]), accumulate=True)
        start = stop
    return acc.div_(acc.neg().add_(2)).neg_().add_(1)
