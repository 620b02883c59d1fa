"""Vectorised ranking metrics: CMC, mAP and mINP from a query x gallery distance matrix.

Semantics follow the official SYSU-MM01 MATLAB code and the AGW ``eval_sysu``/``eval_regdb``
(see ``docs/protocols.md`` of the shared notes, sections 2 and 4):

- each row is sorted by a *stable* ascending sort, so ties go to the lower gallery index;
- with ``exclude_same_location`` a query never sees gallery items at its own location
  (SYSU-MM01 camera -> location map ``[1, 2, 2, 4, 5, 6]``: cam3 probes skip cam2);
- with ``dedup_cmc`` the CMC is computed over the identity ranking with repeats removed (first
  occurrence kept); AP and INP always use the full filtered ranking;
- queries with no match left after filtering count in no metric;
- the CMC has ``max_rank`` entries; a ranking shorter than that repeats its last value.

There is no Python loop over queries or gallery items: queries are processed in chunks of whole
rows with numpy array operations (single-threaded, so they stay fast on a busy machine), and
memory stays bounded for large galleries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

# Per-image ids or cameras: a numpy array, a tensor or a plain sequence.
ArrayLike = np.ndarray | torch.Tensor | Sequence[int]
# The official SYSU-MM01 camera -> location map: cameras 2 and 3 are in the same room.
_SYSU_LOCATION = {3: 2}
# Elements of a (query chunk x gallery) block processed at once: small blocks stay in cache.
DEFAULT_CHUNK_ELEMENTS = 1 << 17


@dataclass
class RankingMetrics:
    """Metrics of one ranking: ``cmc`` (``max_rank`` fractions), ``mAP`` and ``mINP`` (fractions 0..1),
    ``num_valid`` (queries with at least one match after filtering) and ``num_query``."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_query: int = 0

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based) as a fraction."""
        return float(self.cmc[k - 1])


def camera_locations(cams: ArrayLike) -> np.ndarray:
    """Map camera numbers to SYSU-MM01 locations (cam3 -> 2, every other camera to itself)."""
    loc = np.array(_to_numpy(cams), dtype=np.int64).reshape(-1)
    for cam, where in _SYSU_LOCATION.items():
        loc[loc == cam] = where
    return loc


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_long(x, name: str, n: int) -> np.ndarray:
    a = np.asarray(_to_numpy(x)).reshape(-1).astype(np.int64)
    if a.size != n:
        raise ValueError(f"{name} has {a.size} entries, expected {n}")
    return a


def compute_metrics(
    dist: np.ndarray | torch.Tensor,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_cams: ArrayLike | None = None,
    g_cams: ArrayLike | None = None,
    *,
    exclude_same_location: bool = False,
    dedup_cmc: bool = False,
    max_rank: int = 20,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> RankingMetrics:
    """Rank every query's gallery by ``dist`` (nq x ng, smaller = closer) and score the rankings.

    ``dist`` may be a numpy array or a torch tensor on any device (it is moved to the CPU).
    ``q_cams``/``g_cams`` are needed only with ``exclude_same_location``. With no valid query the
    metrics are NaN and ``num_valid`` is 0 (the caller decides whether that is an error).
    """
    d = _to_numpy(dist)
    if d.dtype not in (np.float32, np.float64):
        d = d.astype(np.float64)
    if d.ndim != 2:
        raise ValueError(f"dist must be a 2-D matrix, got shape {d.shape}")
    nq, ng = d.shape
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    with np.errstate(invalid="ignore"):  # inf - inf in the sum is fine: it only triggers the exact check
        if np.isnan(d.sum()) and np.isnan(d).any():
            raise ValueError("dist contains NaN")
    q_pid = _as_long(q_pids, "q_pids", nq)
    g_pid = _as_long(g_pids, "g_pids", ng)
    # Contiguous identity index of each gallery item; queries whose id is absent get -1.
    uniq, g_uid = np.unique(g_pid, return_inverse=True)
    at = np.searchsorted(uniq, q_pid).clip(max=max(len(uniq) - 1, 0))
    q_uid = np.where((uniq[at] == q_pid) if len(uniq) else np.zeros(nq, bool), at, -1)
    if exclude_same_location:
        if q_cams is None or g_cams is None:
            raise ValueError("exclude_same_location needs q_cams and g_cams")
        q_loc = camera_locations(_as_long(q_cams, "q_cams", nq))
        g_loc = camera_locations(_as_long(g_cams, "g_cams", ng))
    else:
        q_loc = g_loc = None

    ranks = np.zeros(nq, dtype=np.int64)
    aps = np.zeros(nq)
    inps = np.zeros(nq)
    valid = np.zeros(nq, dtype=bool)
    if ng:
        step = max(1, chunk_elements // ng)
        for start in range(0, nq, step):
            sl = slice(start, min(start + step, nq))
            ranks[sl], aps[sl], inps[sl], valid[sl] = _score_rows(
                d[sl], q_uid[sl], g_uid, None if q_loc is None else q_loc[sl], g_loc, len(uniq), dedup_cmc
            )
    num_valid = int(valid.sum())
    if num_valid == 0:
        return RankingMetrics(np.full(max_rank, np.nan), float("nan"), float("nan"), 0, nq)
    hist = np.bincount(np.minimum(ranks[valid], max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    cmc = np.cumsum(hist) / num_valid
    return RankingMetrics(cmc, float(aps[valid].mean()), float(inps[valid].mean()), num_valid, nq)


def _score_rows(
    dist: np.ndarray,
    q_uid: np.ndarray,
    g_uid: np.ndarray,
    q_loc: np.ndarray | None,
    g_loc: np.ndarray | None,
    num_ids: int,
    dedup: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank (plain or identity), AP, INP and validity of each row of a chunk.

    Excluded items are sorted after every kept one (see ``_stable_order``), so each row's filtered
    ranking is the first ``n_kept`` entries of its order and positions need no cumulative count.
    """
    c, ng = dist.shape
    excluded = None if q_loc is None else g_loc[None, :] == q_loc[:, None]
    order = _stable_order(dist, excluded)
    uid = g_uid[order]
    hits = uid == q_uid[:, None]
    if excluded is not None:
        hits &= np.arange(ng) < (ng - excluded.sum(1))[:, None]
    # Hits as (row, column) pairs in row-major order: each row's hits in ranking order.
    row, col = np.nonzero(hits)
    num_hits = np.bincount(row, minlength=c)
    valid = num_hits > 0
    row_start = np.cumsum(num_hits) - num_hits
    pos = col + 1.0  # 1-based position in the filtered ranking
    k = np.arange(1, len(row) + 1) - row_start[row]  # 1-based index of the hit within its row
    ap = np.bincount(row, weights=k / pos, minlength=c) / np.maximum(num_hits, 1)
    if len(row):
        first_pos = np.where(valid, pos[row_start.clip(max=len(row) - 1)], 0.0)
        last_pos = np.where(valid, pos[(row_start + num_hits - 1).clip(min=0)], 1.0)
    else:
        first_pos, last_pos = np.zeros(c), np.ones(c)
    inp = num_hits / last_pos
    if dedup:
        # Identity rank = 1 + number of distinct ids seen before the true id's first (kept) hit.
        # Every item before that hit is kept: excluded items sit after all kept ones.
        before = np.arange(ng) < (first_pos - 1)[:, None]
        seen = np.zeros((c, num_ids + 1), dtype=bool)
        seen[np.arange(c)[:, None], np.where(before, uid, num_ids)] = True  # duplicates all write True
        rank = seen[:, :num_ids].sum(1) + 1
    else:
        rank = first_pos.astype(np.int64)
    return rank, ap, inp, valid


def _stable_order(dist: np.ndarray, excluded: np.ndarray | None) -> np.ndarray:
    """Per row, gallery indices by ascending distance, ties by index; ``excluded`` items go last.

    For float32 it sorts unique int64 keys ``(order-preserving bits of the distance) << 32 | index``
    with numpy's vectorised sort: several times faster than a stable float sort, same result.
    Otherwise a stable argsort with excluded items set to NaN (sorted after every number; the
    inputs hold no NaN).
    """
    c, ng = dist.shape
    if dist.dtype != np.float32 or ng >= 2**31:
        if excluded is not None:
            dist = np.where(excluded, np.nan, dist)
        return np.argsort(dist, axis=1, kind="stable")
    bits = (dist + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into +0.0
    key32 = np.where(bits < 0, bits ^ np.int32(0x7FFFFFFF), bits)  # monotone in the float value
    if excluded is not None:
        key32[excluded] = np.iinfo(np.int32).max  # above +inf (no NaN in the input)
    key = (key32.astype(np.int64) << 32) | np.arange(ng, dtype=np.int64)
    key.sort(axis=1)
    return key & np.int64(0xFFFFFFFF)
