"""Metric losses on feature batches: batch-hard triplet and the released modality-aware ranking loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def euclidean_distances(feats: Tensor) -> Tensor:
    """Pairwise Euclidean distances ``[N, N]`` (clamped before the square root: finite gradients at 0)."""
    feats = feats.float()  # distances in float32, also under autocast
    sq = feats.pow(2).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * feats @ feats.t()
    return d2.clamp_min(1e-12).sqrt()


def batch_hard_triplet(feats: Tensor, labels: Tensor, margin: float = 0.3) -> Tensor:
    """Batch-hard triplet loss (Hermans et al. 2017), mean over anchors that have a positive and a negative:
    ``L = mean_a max(0, max_{p: y_p = y_a, p != a} d(a, p) - min_{n: y_n != y_a} d(a, n) + margin)``."""
    dist = euclidean_distances(feats)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=feats.device)
    pos, neg = same & ~eye, ~same
    valid = pos.any(dim=1) & neg.any(dim=1)
    if not bool(valid.any()):
        return feats.sum() * 0.0
    hardest_pos = dist.masked_fill(~pos, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).amin(dim=1)
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def _ranked_list_terms(dist: Tensor, pos: Tensor, neg: Tensor, margin: float, alpha: float, t: float) -> Tensor:
    """Per-anchor ranked-list loss over the masked positives and negatives (see ``modality_ranking_loss``)."""
    pos_loss = F.relu(dist + margin - alpha) * pos
    pos_term = pos_loss.sum(dim=1) / (pos.sum(dim=1) + 1e-5)  # all positives of the group, as released
    active = neg & (dist < alpha)
    weight = torch.exp(t * (alpha - dist)) * active
    neg_term = (weight * (alpha - dist)).sum(dim=1) / (weight.sum(dim=1) + 1e-5)
    return pos_term + neg_term


def modality_ranking_loss(
    feats: Tensor,
    labels: Tensor,
    modality: Tensor,
    intra: tuple[float, float] = (0.9, 2.2),
    cross: tuple[float, float] = (1.0, 2.0),
    t: float = 1.0,
) -> Tensor:
    """The released code's modality-aware ranked-list loss (``Rank_loss``), vectorised.

    Features are L2-normalised, d = Euclidean distance. For each anchor a and each group G of the other
    images (same modality: (m, alpha) = ``intra``; other modality: ``cross``):
    ``pos_G = sum_{p in G, y_p = y_a, p != a} relu(d_ap + m - alpha) / (#{positives of a in G} + 1e-5)``
    (positives are pulled below alpha - m; the mean over *all* of the group's positives, satisfied ones
    included, as the release computes it), and
    ``neg_G = sum_{n in G, y_n != y_a, d_an < alpha} w_an (alpha - d_an) / (sum w_an + 1e-5)`` with
    ``w_an = exp(t (alpha - d_an))`` (soft hardest-negative weighting, negatives pushed beyond alpha).
    ``L = mean_a sum_G (pos_G + neg_G)``.
    """
    dist = euclidean_distances(F.normalize(feats, dim=1))
    same_label = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=feats.device)
    same_mod = modality[:, None] == modality[None, :]
    total = 0.0
    for group, (margin, alpha) in ((same_mod, intra), (~same_mod, cross)):
        total = total + _ranked_list_terms(dist, same_label & group & ~eye, ~same_label & group, margin, alpha, t)
    return total.mean()
