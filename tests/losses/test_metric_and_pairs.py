"""Metric losses against loop references, and the batch-pair contract."""

import pytest
import torch
import torch.nn.functional as F

from vireid.losses.metric import batch_hard_triplet, modality_ranking_loss
from vireid.losses.pairs import modality_pairs


def _batch(p=3, k=2):
    """Sampler order: P blocks of K visible then K infrared images."""
    labels = torch.arange(p).repeat_interleave(2 * k)
    modality = torch.tensor(([0] * k + [1] * k) * p)
    return labels, modality


def test_batch_hard_triplet_matches_loop():
    labels, _ = _batch()
    feats = torch.randn(len(labels), 5)
    d = torch.cdist(feats, feats)
    losses = []
    for a in range(len(labels)):
        pos = [d[a, p] for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [d[a, n] for n in range(len(labels)) if labels[n] != labels[a]]
        losses.append(max(0.0, max(pos).item() - min(neg).item() + 0.3))
    assert batch_hard_triplet(feats, labels, 0.3).item() == pytest.approx(sum(losses) / len(losses), rel=1e-4)


def test_batch_hard_triplet_zero_for_separated_identities_and_finite_gradient():
    labels, _ = _batch()
    feats = (labels[:, None].float() * 10.0).repeat(1, 3).requires_grad_(True)
    loss = batch_hard_triplet(feats, labels, 0.3)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(feats.grad).all()


def _ranking_reference(feats, labels, modality, intra, cross, t):
    f = F.normalize(feats, dim=1)
    d = torch.cdist(f, f)
    total = 0.0
    n = len(labels)
    for a in range(n):
        for same_group, (m, alpha) in ((True, intra), (False, cross)):
            group = [j for j in range(n) if (modality[j] == modality[a]) == same_group]
            pos = [max(0.0, d[a, j].item() + m - alpha) for j in group if labels[j] == labels[a] and j != a]
            total += sum(pos) / (len(pos) + 1e-5)  # released Rank_loss: divided by every positive of the group
            negs = [d[a, j].item() for j in group if labels[j] != labels[a] and d[a, j].item() < alpha]
            w = [torch.exp(torch.tensor(t * (alpha - x))).item() for x in negs]
            total += sum(wi * (alpha - x) for wi, x in zip(w, negs, strict=True)) / (sum(w) + 1e-5)
    return total / n


def test_modality_ranking_loss_matches_loop_reference():
    labels, modality = _batch()
    feats = torch.randn(len(labels), 6)
    got = modality_ranking_loss(feats, labels, modality, (0.9, 2.2), (1.0, 2.0), 1.0)
    expected = _ranking_reference(feats, labels, modality, (0.9, 2.2), (1.0, 2.0), 1.0)
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_ranking_loss_positive_term_is_the_mean_over_all_positives_by_hand():
    """Four unit vectors, one modality (the cross-modality group is empty and adds 0), intra (m, alpha) =
    (0.9, 2.2), so positives are pulled below 1.3:
    x0 = x3 = (1, 0) and x1 = (-1, 0) have label 0, x2 = (0, 1) has label 1.
    d(0,1) = d(3,1) = 2, d(0,3) = 0, every distance to x2 is sqrt(2).
    Positive terms: anchor 0: [relu(2 - 1.3) + relu(0 - 1.3)] / 2 = 0.35 (divided by the number of
    *violated* positives it would be 0.7); anchor 3: 0.35; anchor 1: (0.7 + 0.7) / 2 = 0.7; anchor 2: no
    positive, 0. Negative terms: every anchor's negatives all lie at sqrt(2), so the exp-weighted mean of
    (alpha - d) is 2.2 - sqrt(2). L = (0.35 + 0.35 + 0.7 + 0) / 4 + 2.2 - sqrt(2) = 1.13578644."""
    feats = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 0])
    modality = torch.zeros(4, dtype=torch.long)
    got = modality_ranking_loss(feats, labels, modality, (0.9, 2.2), (1.0, 2.0), 1.0).item()
    assert got == pytest.approx(0.35 + 2.2 - 2**0.5, abs=1e-4)
    assert got != pytest.approx(0.525 + 2.2 - 2**0.5, abs=1e-2)  # the "violated positives" denominator


def test_modality_pairs_follow_the_sampler_order():
    labels, modality = _batch(p=2, k=2)
    vis, ir = modality_pairs(labels, modality)
    assert vis.tolist() == [0, 1, 4, 5]
    assert ir.tolist() == [2, 3, 6, 7]


def test_modality_pairs_reject_bad_batches():
    labels, modality = _batch(p=2, k=2)
    bad = labels.clone()
    bad[2], bad[6] = bad[6].item(), bad[2].item()
    with pytest.raises(ValueError, match="differ"):
        modality_pairs(bad, modality)
    with pytest.raises(ValueError, match="visible"):
        modality_pairs(labels[:-1], modality[:-1])
