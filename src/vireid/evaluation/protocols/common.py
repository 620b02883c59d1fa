"""Shared steps of the protocols: feature look-up, distances, optional re-ranking, scoring a trial."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vireid.data.records import ImageRecord
from vireid.errors import DatasetError
from vireid.features.store import FeatureSet

from ..metrics import RankingMetrics, compute_metrics
from ..rerank import k_reciprocal_rerank
from ..result import trial_values


def record_features(features: FeatureSet, records: Sequence[ImageRecord], what: str, normalize: bool) -> torch.Tensor:
    """Feature rows of ``records`` as a float32 tensor, L2-normalised when ``normalize``."""
    x = torch.from_numpy(features.lookup([r.path for r in records], what))
    return torch.nn.functional.normalize(x, dim=1) if normalize else x


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the rows of ``a`` and ``b`` (one matrix product)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return d2.clamp_(min=0).sqrt_()


def labels(records: Sequence[ImageRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Person ids and cameras of ``records`` as arrays."""
    return np.array([r.pid for r in records], dtype=np.int64), np.array([r.camera for r in records], dtype=np.int64)


def score_trial(
    trial: int,
    dist: torch.Tensor,
    queries: tuple[np.ndarray, np.ndarray],
    gallery: tuple[np.ndarray, np.ndarray],
    *,
    sysu_rules: bool,
    rerank_blocks: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict:
    """Score one trial's distance matrix; return the per-trial dict (percent values, sizes, the CMC curve).

    ``queries``/``gallery`` are (pids, cameras) arrays; ``rerank_blocks`` = (query x query,
    gallery x gallery) distances turns on k-reciprocal re-ranking.
    """
    if rerank_blocks is not None:
        dist = torch.from_numpy(k_reciprocal_rerank(dist, *rerank_blocks))
    (q_pids, q_cams), (g_pids, g_cams) = queries, gallery
    metrics: RankingMetrics = compute_metrics(
        dist, q_pids, g_pids, q_cams, g_cams, exclude_same_location=sysu_rules, dedup_cmc=sysu_rules, max_rank=20
    )
    if metrics.num_valid == 0:
        raise DatasetError(f"trial {trial}: no query has a matching identity in the gallery")
    return {
        "trial": trial,
        **trial_values(metrics),
        "num_query": len(q_pids),
        "num_gallery": len(g_pids),
        "num_valid": metrics.num_valid,
        "cmc": [100.0 * float(c) for c in metrics.cmc],  # percent at ranks 1..20 (CMC curves, reports)
    }
