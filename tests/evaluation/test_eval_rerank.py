"""k-reciprocal re-ranking against the widely copied loop implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_reference import reference_rerank

from vireid.evaluation.rerank import k_reciprocal_rerank


def _blocks(nq, ng, dim, seed):
    x = np.random.default_rng(seed).standard_normal((nq + ng, dim)).astype(np.float32)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    return d[:nq, nq:], d[:nq, :nq], d[nq:, nq:]


@pytest.mark.parametrize("nq, ng, k1, k2, lam", [(30, 50, 20, 6, 0.3), (12, 20, 5, 3, 0.5), (25, 40, 7, 1, 0.1), (4, 6, 20, 6, 0.3)])
def test_matches_reference(nq, ng, k1, k2, lam):
    qg, qq, gg = _blocks(nq, ng, 8, nq)
    expected = reference_rerank(qg, qq, gg, k1, k2, lam)
    got = k_reciprocal_rerank(qg, qq, gg, k1, k2, lam)
    assert got.shape == (nq, ng)
    np.testing.assert_allclose(got, expected, atol=2e-6)
    # It really re-ranks: the order differs from the original distances for some query.
    assert (np.argsort(got, 1) != np.argsort(qg, 1)).any()


def test_accepts_tensors_and_checks_shapes():
    qg, qq, gg = _blocks(5, 7, 4, 0)
    a = k_reciprocal_rerank(torch.from_numpy(qg), torch.from_numpy(qq), torch.from_numpy(gg))
    np.testing.assert_allclose(a, k_reciprocal_rerank(qg, qq, gg))
    with pytest.raises(ValueError, match="do not fit"):
        k_reciprocal_rerank(qg, qq, gg[:3, :3])


def test_ties_fall_as_in_the_reference():
    # duplicated features give equal distances: the neighbour lists must break ties by index (stable sort)
    x = np.random.default_rng(3).standard_normal((12, 4)).astype(np.float32)
    x = np.concatenate([x, x[:6], x[3:9]])
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    nq = 10
    qg, qq, gg = d[:nq, nq:], d[:nq, :nq], d[nq:, nq:]
    for k1, k2 in ((5, 3), (20, 6)):
        np.testing.assert_allclose(k_reciprocal_rerank(qg, qq, gg, k1, k2), reference_rerank(qg, qq, gg, k1, k2),
                                   atol=2e-6)


def test_chunking_does_not_change_the_result(monkeypatch):
    import vireid.evaluation.rerank as rr

    qg, qq, gg = _blocks(40, 70, 8, 5)
    whole = k_reciprocal_rerank(qg, qq, gg)
    monkeypatch.setattr(rr, "_ROW_CHUNK", 500)  # a few rows at a time
    monkeypatch.setattr(rr, "_JACCARD_CHUNK", 64)
    # float32 sums accumulated in another grouping differ in the last bits (1.8e-7 seen), nothing more
    np.testing.assert_allclose(k_reciprocal_rerank(qg, qq, gg), whole, atol=1e-6)


def test_nearest_columns_equal_a_stable_sort_even_with_many_ties():
    from vireid.evaluation.rerank import _nearest

    g = torch.Generator().manual_seed(0)
    rows = torch.randint(0, 4, (50, 300), generator=g).float()  # long runs of equal values
    rows[:25] = torch.rand(25, 300, generator=g)  # and rows without ties
    for keep in (1, 7, 21, 300):
        assert torch.equal(_nearest(rows, keep), torch.sort(rows, dim=1, stable=True).indices[:, :keep])
