"""RegDB protocol: plain CMC, both directions, per-trial features, idx files."""

from __future__ import annotations

import numpy as np
import pytest
from eval_reference import reference_metrics
from eval_trees import one_hot_features, regdb_pid, write_regdb

from vireid.errors import DatasetError
from vireid.evaluation.protocols import evaluate_regdb, regdb_test_records
from vireid.features.store import FeatureSet

IDS = (1, 2, 20, 73)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_regdb(tmp_path_factory.mktemp("regdb"), IDS, trials=(1, 2))


def _features(tree, trial, noise=0.0, seed=0):
    paths = [r.path for r in regdb_test_records(tree, trial)]
    feats = one_hot_features(paths, regdb_pid)
    feats += noise * np.random.default_rng(seed).standard_normal(feats.shape).astype(np.float32)
    return FeatureSet(paths, feats)


def test_records_and_sizes_by_direction(tree):
    records = regdb_test_records(tree, 1)
    assert len(records) == 4 * (3 + 2) and {r.camera for r in records} == {1, 2}
    fs = _features(tree, 1)
    v2t = evaluate_regdb(tree, fs, trial=1, direction="v2t")
    t2v = evaluate_regdb(tree, fs, trial=1, direction="t2v")
    assert (v2t.num_query, v2t.num_gallery) == (12, 8) and (t2v.num_query, t2v.num_gallery) == (8, 12)
    assert v2t.mean["rank1"] == v2t.mean["mAP"] == v2t.mean["mINP"] == 100.0  # case P


def test_matches_plain_reference(tree):
    fs = _features(tree, 1, noise=0.9, seed=3)
    records = regdb_test_records(tree, 1)
    vis = [r for r in records if r.camera == 1]
    the = [r for r in records if r.camera == 2]
    for direction, (qs, gs) in (("v2t", (vis, the)), ("t2v", (the, vis))):
        got = evaluate_regdb(tree, fs, trial=1, direction=direction, normalize=False).per_trial[0]
        q, g = fs.lookup([r.path for r in qs]), fs.lookup([r.path for r in gs])
        d = np.sqrt(((q[:, None].astype(np.float64) - g[None]) ** 2).sum(-1))
        cmc, mAP, mINP, n = reference_metrics(d, [r.pid for r in qs], [r.pid for r in gs], max_rank=20)
        assert got["num_valid"] == n
        assert got["rank1"] == pytest.approx(100 * cmc[0]) and got["rank5"] == pytest.approx(100 * cmc[4])
        assert got["mAP"] == pytest.approx(100 * mAP, abs=1e-4) and got["mINP"] == pytest.approx(100 * mINP, abs=1e-4)


def test_one_result_holds_per_trial_features(tree):
    f1, f2 = _features(tree, 1), _features(tree, 2, noise=2.0, seed=1)
    both = evaluate_regdb(tree, {2: f2, 1: f1})
    pairs = evaluate_regdb(tree, [(1, f1), (2, f2)])
    assert [t["trial"] for t in both.per_trial] == [1, 2]
    one = evaluate_regdb(tree, f2, trial=2).per_trial[0]
    assert both.per_trial[1]["mAP"] == pytest.approx(one["mAP"])
    assert both.mean["mAP"] == pytest.approx((100.0 + one["mAP"]) / 2)  # case T through the protocol
    assert pairs.to_dict() == both.to_dict()
    only2 = evaluate_regdb(tree, {1: f1, 2: f2}, trial=2)
    assert [t["trial"] for t in only2.per_trial] == [2]


def test_bad_trials_and_missing_idx(tree):
    fs = _features(tree, 1)
    with pytest.raises(DatasetError, match="trial must be an integer in 1..10"):
        evaluate_regdb(tree, fs, trial=11)
    with pytest.raises(DatasetError, match="missing RegDB idx file .*test_visible_3.txt"):
        evaluate_regdb(tree, fs, trial=3)
    with pytest.raises(DatasetError, match="direction"):
        evaluate_regdb(tree, fs, trial=1, direction="x")
