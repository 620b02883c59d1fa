"""SYSU-MM01 protocol: gallery sampling (official, seeded), sizes, and the whole pipeline against a
per-query reference."""

from __future__ import annotations

import random
from importlib import resources

import numpy as np
import pytest
import scipy.io
from eval_reference import reference_metrics
from eval_trees import OFFICIAL_IDS, official_counts, one_hot_features, sysu_pid, write_sysu

from vireid.data.sysu import read_mat_ids
from vireid.errors import DatasetError, FeaturesError
from vireid.evaluation.metrics import compute_metrics
from vireid.evaluation.protocols import evaluate_sysu, sysu_test_records
from vireid.evaluation.protocols.sysu import (
    INFRARED_CAMERAS,
    MODES,
    evaluate_sysu_index,
    load_rand_perm_cam,
    official_galleries,
    seeded_galleries,
)
from vireid.evaluation.rerank import k_reciprocal_rerank
from vireid.features.store import FeatureSet

G_COUNTS = {(1, 1): 3, (2, 1): 2, (4, 1): 4, (4, 2): 5, (5, 2): 2, (3, 1): 2, (6, 2): 2}


@pytest.fixture(scope="module")
def perm():
    return load_rand_perm_cam()


@pytest.fixture(scope="module")
def official_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("sysu_official")
    # id 21 has no cam1/cam2 images: give it empty folders, which must be fine.
    return write_sysu(root, official_counts(), OFFICIAL_IDS, empty=[(1, 21), (2, 21)])


def _index(counts, cams):
    return {
        (c, p): [f"cam{c}/{p:04d}/{i:04d}.jpg" for i in range(1, n + 1)]
        for (c, p), n in sorted(counts.items())
        if c in cams
    }


def test_g_seeded_sampling_matches_agw():
    galleries = seeded_galleries([2, 1], MODES["all"], _index(G_COUNTS, MODES["all"]), 1)
    assert galleries[0] == [
        "cam1/0001/0002.jpg", "cam2/0001/0002.jpg", "cam4/0001/0001.jpg", "cam4/0002/0003.jpg", "cam5/0002/0002.jpg",
    ]
    assert [p[-8:-4] for p in galleries[1]] == ["0001", "0001", "0003", "0001", "0002"]
    indoor = seeded_galleries([1, 2], MODES["indoor"], _index(G_COUNTS, MODES["indoor"]), 1)
    assert indoor[0] == ["cam1/0001/0002.jpg", "cam2/0001/0002.jpg"]


def test_seeded_multi_shot_is_documented_sample():
    index = _index(G_COUNTS, MODES["all"])
    galleries = seeded_galleries([1, 2], MODES["all"], index, 10)
    rng = random.Random(3)
    expected = []
    for pid in (1, 2):
        for cam in MODES["all"]:
            if (cam, pid) in index:
                expected += rng.sample(index[(cam, pid)], len(index[(cam, pid)]))  # all of them, fewer than 10
    assert galleries[3] == expected and len(expected) == 16


def test_official_sampling_reads_rand_perm_cam(perm):
    ids = list(OFFICIAL_IDS)
    index = _index(official_counts(), MODES["all"])
    galleries = official_galleries("tree", ids, MODES["all"], index, 1)
    # protocols.md §1: test id 6, trial 1 starts 5 (cam1), 7 (cam2), 10 (cam4), 15 (cam5).
    for cam, first in ((1, 5), (2, 7), (4, 10), (5, 15)):
        assert f"cam{cam}/0006/{first:04d}.jpg" in galleries[0]
    multi = official_galleries("tree", ids, MODES["all"], index, 10)
    cam1 = [p for p in multi[2] if p.startswith("cam1/0006/")]
    assert cam1 == [f"cam1/0006/{i:04d}.jpg" for i in perm[0][5][2, :10]]


def test_official_sizes_of_the_real_protocol(perm):
    """protocols.md §5 real-data counts: 3,803 queries; galleries 301 / 112 / 3,010 / 1,120."""
    ref = resources.files("vireid") / "resources" / "sysu-mm01" / "test_id.mat"
    with resources.as_file(ref) as path:  # the package's own copy, whatever the working directory
        ids = read_mat_ids(path)
    counts = {(c, p): perm[c - 1][p - 1].shape[1] for c in range(1, 7) for p in ids if perm[c - 1][p - 1].shape[1]}
    assert sum(n for (c, _), n in counts.items() if c in INFRARED_CAMERAS) == 3803
    for mode, shots, size in (("all", 1, 301), ("all", 10, 3010), ("indoor", 1, 112), ("indoor", 10, 1120)):
        galleries = official_galleries("real", ids, MODES[mode], _index(counts, MODES[mode]), shots)
        assert {len(g) for g in galleries} == {size}
    # Indoor: all 3,803 queries are kept but only 2,208 have a valid match.
    ir = _index(counts, INFRARED_CAMERAS)
    vis = _index(counts, MODES["indoor"])
    paths = [p for idx in (ir, vis) for v in idx.values() for p in v]
    fs = FeatureSet(paths, np.random.default_rng(0).standard_normal((len(paths), 4)))
    result = evaluate_sysu_index(ids, ir, vis, fs, mode="indoor", shots=1)
    assert result.num_query == 3803 and result.num_gallery == 112 and result.num_valid == 2208


def test_official_refuses_a_tree_it_does_not_fit(tmp_path):
    counts = official_counts()
    counts[(4, 6)] += 1
    root = write_sysu(tmp_path, counts, OFFICIAL_IDS)
    fs = FeatureSet([r.path for r in sysu_test_records(root)], np.ones((sum(counts.values()), 2)))
    with pytest.raises(DatasetError, match=r"cam4/0006 has 21 images, rand_perm_cam.mat 20 images.*--sampling seeded"):
        evaluate_sysu(root, fs)
    bigger = write_sysu(tmp_path / "b", {(1, 400): 2, (3, 400): 2}, [400])
    with pytest.raises(DatasetError, match="--sampling seeded"):
        evaluate_sysu(bigger, FeatureSet([r.path for r in sysu_test_records(bigger)], np.ones((4, 2))))


def test_p_perfect_features_on_the_official_tree(official_tree):
    records = sysu_test_records(official_tree)
    paths = [r.path for r in records]
    fs = FeatureSet(paths, one_hot_features(paths, sysu_pid))
    for mode, shots in (("all", 1), ("all", 10), ("indoor", 1)):
        d = evaluate_sysu(official_tree, fs, mode=mode, shots=shots).to_dict()
        assert d["rank1"] == d["mAP"] == d["mINP"] == 100.0 and d["std"]["rank1"] == 0.0
        assert len(d["per_trial"]) == 10 and d["settings"]["sampling"] == "official"
    assert d["num_gallery"] == 2  # indoor single-shot: only id 6 has cam1/cam2 images
    # Queries: every IR image of the 3 ids; id 6's cam3 probes cannot see cam2, so only cam1 counts.
    n_ir = sum(n for (c, _), n in official_counts().items() if c in INFRARED_CAMERAS)
    assert d["num_query"] == n_ir and d["num_valid"] == official_counts()[(3, 6)] + official_counts()[(6, 6)]


@pytest.mark.parametrize("sampling, shots, mode", [("official", 1, "all"), ("official", 10, "all"), ("seeded", 10, "indoor")])
def test_pipeline_matches_per_query_reference(official_tree, perm, sampling, shots, mode):
    records = sysu_test_records(official_tree)
    paths = [r.path for r in records]
    rng = np.random.default_rng(shots)
    fs = FeatureSet(paths, rng.standard_normal((len(paths), 6)))
    result = evaluate_sysu(official_tree, fs, mode=mode, shots=shots, sampling=sampling, normalize=False)
    queries = [r for r in records if r.camera in INFRARED_CAMERAS]
    by_path = {r.path: r for r in records}
    for t in (0, 6):
        if sampling == "official":  # written out independently: camera, id, permutation order
            gallery = [
                f"cam{c}/{p:04d}/{i:04d}.jpg" for c in MODES[mode] for p in OFFICIAL_IDS for i in perm[c - 1][p - 1][t, :shots]
            ]
        else:
            gallery = seeded_galleries(list(OFFICIAL_IDS), MODES[mode], _index(official_counts(), MODES[mode]), shots)[t]
        q = fs.lookup([r.path for r in queries]).astype(np.float64)
        g = fs.lookup(gallery).astype(np.float64)
        dist = np.sqrt(((q[:, None] - g[None]) ** 2).sum(-1))
        cmc, mAP, mINP, n = reference_metrics(
            dist, [r.pid for r in queries], [by_path[p].pid for p in gallery], [r.camera for r in queries],
            [by_path[p].camera for p in gallery], exclude=True, dedup=True, max_rank=20,
        )
        got = result.per_trial[t]
        assert got["num_gallery"] == len(gallery) and got["num_valid"] == n
        assert got["rank1"] == pytest.approx(100 * cmc[0]) and got["rank10"] == pytest.approx(100 * cmc[9])
        assert got["mAP"] == pytest.approx(100 * mAP, abs=1e-4) and got["mINP"] == pytest.approx(100 * mINP, abs=1e-4)


def test_rerank_scores_the_reranked_distances(official_tree):
    records = sysu_test_records(official_tree)
    paths = [r.path for r in records]
    rng = np.random.default_rng(0)
    feats = one_hot_features(paths, sysu_pid) + 0.8 * rng.standard_normal((len(paths), 3)).astype(np.float32)
    fs = FeatureSet(paths, feats)
    plain = evaluate_sysu(official_tree, fs, mode="all", shots=10, normalize=False)
    rr = evaluate_sysu(official_tree, fs, mode="all", shots=10, normalize=False, rerank=True)
    assert rr.settings["rerank"] is True and rr.num_gallery == plain.num_gallery
    # Trial 1 by hand: re-rank the three distance blocks, then score with the SYSU rules.
    by_path = {r.path: r for r in records}
    queries = [r for r in records if r.camera in INFRARED_CAMERAS]
    gallery = [by_path[p] for p in official_galleries("t", list(OFFICIAL_IDS), MODES["all"],
                                                      _index(official_counts(), MODES["all"]), 10)[0]]
    q, g = fs.lookup([r.path for r in queries]), fs.lookup([r.path for r in gallery])
    dist = lambda a, b: np.sqrt(((a[:, None].astype(np.float64) - b[None]) ** 2).sum(-1))  # noqa: E731
    d = k_reciprocal_rerank(dist(q, g), dist(q, q), dist(g, g))
    m = compute_metrics(d, [r.pid for r in queries], [r.pid for r in gallery], [r.camera for r in queries],
                        [r.camera for r in gallery], exclude_same_location=True, dedup_cmc=True)
    assert rr.per_trial[0]["mAP"] == pytest.approx(100 * m.mAP, abs=1e-3)
    assert rr.per_trial[0]["rank1"] == pytest.approx(100 * m.cmc[0])
    assert rr.per_trial[0]["mAP"] != pytest.approx(plain.per_trial[0]["mAP"], abs=1e-3)


def test_missing_features_are_counted(official_tree):
    records = sysu_test_records(official_tree)
    keep = [r.path for r in records if not r.path.startswith("cam6/0021/")]
    with pytest.raises(FeaturesError, match=r"lacks 20 of the \d+ test images the protocol needs \(first: cam6/0021/0001.jpg"):
        evaluate_sysu(official_tree, FeatureSet(keep, np.ones((len(keep), 2))))


def test_split_file_may_be_mat(tmp_path):
    root = write_sysu(tmp_path, G_COUNTS, [1, 2])
    (root / "exp" / "test_id.txt").unlink()
    scipy.io.savemat(root / "exp" / "test_id.mat", {"id": np.array([[1, 2]], dtype=np.uint16)})
    records = sysu_test_records(root)
    assert len(records) == sum(G_COUNTS.values())
    fs = FeatureSet([r.path for r in records], one_hot_features([r.path for r in records], sysu_pid))
    result = evaluate_sysu(root, fs, sampling="seeded")
    assert result.num_gallery == 5 and result.num_query == 4 and result.mean["rank1"] == 100.0
