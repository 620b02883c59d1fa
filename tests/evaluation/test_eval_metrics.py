"""Ranking metrics: the hand-checked cases of protocols.md §5 and property tests against a reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_reference import reference_metrics
from hypothesis import given, settings
from hypothesis import strategies as st

from vireid.evaluation.metrics import compute_metrics
from vireid.evaluation.result import ProtocolResult

R1_D = np.array([[0.1, 0.4, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4]])
R1_Q, R1_G = [0, 1], [0, 0, 1, 1]


def check(m, cmc, mAP, mINP, num_valid=None):
    np.testing.assert_allclose(m.cmc[: len(cmc)], cmc, atol=1e-9)
    assert m.mAP == pytest.approx(mAP, abs=1e-6)
    assert m.mINP == pytest.approx(mINP, abs=1e-9)
    if num_valid is not None:
        assert m.num_valid == num_valid


def test_r1_regdb_plain_cmc():
    check(compute_metrics(R1_D, R1_Q, R1_G, max_rank=4), [0.5, 0.5, 1, 1], 0.583333, 0.5, 2)


def test_r2_t2v_style():
    m = compute_metrics(np.array([[0.3, 0.1, 0.2], [0.1, 0.3, 0.2]]), [0, 1], [0, 1, 1], max_rank=3)
    check(m, [0, 0.5, 1], 0.458333, 0.5)


def test_r3_perfect_ranking():
    m = compute_metrics(np.array([[0, 0.1, 0.9, 0.8], [0.9, 0.8, 0, 0.1]]), R1_Q, R1_G, max_rank=4)
    check(m, [1, 1, 1, 1], 1.0, 1.0)


def test_r4_query_without_match_is_skipped():
    d = np.vstack([R1_D, [0.5, 0.1, 0.2, 0.3]])
    m = compute_metrics(d, [0, 1, 7], R1_G, max_rank=4)
    check(m, [0.5, 0.5, 1, 1], 0.583333, 0.5, 2)
    assert m.num_query == 3


S1 = dict(
    dist=np.array([[0.1, 0.3, 0.2, 0.25], [0.1, 0.3, 0.2, 0.25], [0.1, 0.2, 0.3, 0.4]]),
    q_pids=[1, 1, 2],
    g_pids=[1, 1, 2, 2],
    q_cams=[3, 6, 3],
    g_cams=[2, 1, 2, 4],
)


def test_s1_cam3_probes_skip_cam2():
    m = compute_metrics(**S1, exclude_same_location=True, dedup_cmc=True, max_rank=2)
    check(m, [1 / 3, 1], 0.583333, 0.5, 3)
    # Without the exclusion q0 would be a rank-1 hit with AP .75: the rule must change the result.
    wrong = compute_metrics(**S1, exclude_same_location=False, dedup_cmc=True, max_rank=2)
    assert wrong.cmc[0] > m.cmc[0] and wrong.mAP > m.mAP


def test_s1_short_rows_default_max_rank():
    # AGW crashes here (ragged rows); short rows repeat their last value.
    m = compute_metrics(**S1, exclude_same_location=True, dedup_cmc=True)
    assert len(m.cmc) == 20
    np.testing.assert_allclose(m.cmc, [1 / 3] + [1.0] * 19)


def test_s2_cmc_deduplicated_by_identity():
    args = (np.array([[0.1, 0.2, 0.3, 0.4]]), [7], [5, 5, 7, 7], [6], [1, 4, 1, 4])
    check(compute_metrics(*args, exclude_same_location=True, dedup_cmc=True, max_rank=2), [0, 1], 0.416667, 0.5)
    check(compute_metrics(*args, max_rank=4), [0, 0, 1, 1], 0.416667, 0.5)


def test_s3_query_made_invalid_by_exclusion():
    d = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    m = compute_metrics(d, [1, 2], [1, 2, 2], [3, 3], [2, 1, 4], exclude_same_location=True, dedup_cmc=True, max_rank=2)
    check(m, [1, 1], 1.0, 1.0, 1)


def test_s4_cam6_probe_keeps_cam2_match():
    d = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    m = compute_metrics(d, [1, 2], [1, 2, 2], [6, 3], [2, 1, 4], exclude_same_location=True, dedup_cmc=True, max_rank=2)
    check(m, [1, 1], 1.0, 1.0, 2)


def test_s5_ties_broken_stably_by_gallery_index():
    m = compute_metrics(np.array([[0.5, 0.5]]), [1], [2, 1], [6], [1, 4], exclude_same_location=True, dedup_cmc=True)
    check(m, [0, 1], 0.5, 0.5)
    m = compute_metrics(np.array([[0.5, 0.5]]), [1], [1, 2])
    check(m, [1, 1], 1.0, 1.0)


def test_p_perfect_features_dot_product_distance():
    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 5, 30), np.repeat(np.arange(5), 4)
    fq, fg = np.eye(5)[q_pids], np.eye(5)[g_pids]
    m = compute_metrics(-(fq @ fg.T), q_pids, g_pids, rng.choice([3, 6], 30), rng.choice([1, 2, 4, 5], 20),
                        exclude_same_location=False, dedup_cmc=True)
    check(m, np.ones(20), 1.0, 1.0, 30)


def test_t_trial_average():
    trials = [
        {"trial": 1, "rank1": 50.0, "rank5": 60.0, "rank10": 70.0, "rank20": 80.0, "mAP": 60.0, "mINP": 40.0,
         "num_query": 4, "num_gallery": 3, "num_valid": 4},
        {"trial": 2, "rank1": 100.0, "rank5": 100.0, "rank10": 100.0, "rank20": 100.0, "mAP": 80.0, "mINP": 50.0,
         "num_query": 4, "num_gallery": 3, "num_valid": 4},
    ]
    d = ProtocolResult("X", trials, {"mode": "all"}).to_dict()
    assert d["rank1"] == pytest.approx(75.0) and d["mAP"] == pytest.approx(70.0)
    assert d["std"]["rank1"] == pytest.approx(25.0) and d["std"]["mAP"] == pytest.approx(10.0)
    assert d["num_query"] == 4 and len(d["per_trial"]) == 2 and d["settings"] == {"mode": "all"}
    assert set(d) >= {"rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "std", "per_trial", "num_query", "num_gallery"}


def test_no_valid_query_gives_nan():
    m = compute_metrics(np.array([[0.1, 0.2]]), [9], [1, 2])
    assert m.num_valid == 0 and np.isnan(m.mAP) and np.isnan(m.cmc).all()


def test_rejects_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        compute_metrics(np.array([[0.1, np.nan]]), [1], [1, 2])
    with pytest.raises(ValueError, match="g_pids"):
        compute_metrics(np.zeros((1, 2)), [1], [1, 2, 3])
    with pytest.raises(ValueError, match="q_cams"):
        compute_metrics(np.zeros((1, 2)), [1], [1, 2], exclude_same_location=True)


def test_negative_zero_ties_with_zero():
    for dtype in (np.float32, np.float64):
        m = compute_metrics(np.array([[0.0, -0.0]], dtype=dtype), [1], [2, 1])
        check(m, [0, 1], 0.5, 0.5)


def test_infinite_distances_rank_last_but_kept():
    d = np.array([[np.inf, 0.1, 0.2]])
    m = compute_metrics(d, [1], [1, 2, 3], [3], [4, 2, 1], exclude_same_location=True, dedup_cmc=True, max_rank=3)
    ref = reference_metrics(d, [1], [1, 2, 3], [3], [4, 2, 1], exclude=True, dedup=True, max_rank=3)
    np.testing.assert_allclose(m.cmc, ref[0])
    assert m.mAP == pytest.approx(ref[1])


@st.composite
def ranking_problems(draw):
    nq = draw(st.integers(1, 7))
    ng = draw(st.integers(1, 12))
    # Few distinct values so that ties are common.
    values = st.sampled_from([-2.0, -0.5, -0.0, 0.0, 0.5, 1.0, 3.0, np.inf, -np.inf])
    dtype = draw(st.sampled_from([np.float32, np.float64]))  # float32 takes the integer-key sort
    dist = np.array(draw(st.lists(values, min_size=nq * ng, max_size=nq * ng)), dtype=dtype).reshape(nq, ng)
    q_pids = draw(st.lists(st.integers(0, 4), min_size=nq, max_size=nq))
    g_pids = draw(st.lists(st.integers(0, 4), min_size=ng, max_size=ng))
    q_cams = draw(st.lists(st.integers(1, 6), min_size=nq, max_size=nq))
    g_cams = draw(st.lists(st.integers(1, 6), min_size=ng, max_size=ng))
    exclude = draw(st.booleans())
    dedup = draw(st.booleans())
    max_rank = draw(st.integers(1, 14))
    chunk = draw(st.sampled_from([1, 5, 1 << 17]))
    return dist, q_pids, g_pids, q_cams, g_cams, exclude, dedup, max_rank, chunk


@settings(max_examples=300, deadline=None)
@given(ranking_problems())
def test_matches_per_query_reference(problem):
    dist, q_pids, g_pids, q_cams, g_cams, exclude, dedup, max_rank, chunk = problem
    as_torch = len(q_pids) % 2 == 0  # both input types
    m = compute_metrics(
        torch.from_numpy(dist) if as_torch else dist, np.array(q_pids), np.array(g_pids), q_cams, g_cams,
        exclude_same_location=exclude, dedup_cmc=dedup, max_rank=max_rank, chunk_elements=chunk,
    )
    ref = reference_metrics(dist, np.array(q_pids), g_pids, q_cams, g_cams, exclude=exclude, dedup=dedup,
                            max_rank=max_rank)
    if ref is None:
        assert m.num_valid == 0
        return
    cmc, mAP, mINP, n = ref
    assert m.num_valid == n and len(m.cmc) == max_rank
    np.testing.assert_allclose(m.cmc, cmc, atol=1e-12)
    assert m.mAP == pytest.approx(mAP, abs=1e-12)
    assert m.mINP == pytest.approx(mINP, abs=1e-12)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(1)
    d = rng.random((57, 40)).astype(np.float32)
    args = (d, rng.integers(0, 6, 57), rng.integers(0, 6, 40), rng.integers(1, 7, 57), rng.integers(1, 7, 40))
    a = compute_metrics(*args, exclude_same_location=True, dedup_cmc=True, chunk_elements=1)
    b = compute_metrics(*args, exclude_same_location=True, dedup_cmc=True)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    assert a.mAP == b.mAP and a.mINP == b.mINP
