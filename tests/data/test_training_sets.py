"""Training sets on tiny SYSU-MM01 / RegDB trees: counts, labels, validation splits, bad input."""

from __future__ import annotations

import logging
import shutil

import pytest

from vireid.data.records import INFRARED, VISIBLE
from vireid.data.training_sets import (
    describe,
    load_training_set,
    regdb_training_set,
    split_holdout,
    sysu_training_set,
)
from vireid.errors import ConfigError, DatasetError


def _expected_sysu(trees, pids):
    return sum(trees.sysu_count(p, c) for p in pids for c in range(1, 7))


def test_sysu_trainval_counts_and_labels(sysu_root, trees):
    ts = sysu_training_set(sysu_root)
    ids = sorted(trees.SYSU_TRAIN + trees.SYSU_VAL)
    assert ts.num_classes == len(ids)
    assert ts.label_map == {pid: i for i, pid in enumerate(ids)}
    assert len(ts.records) == _expected_sysu(trees, ids)
    assert {r.pid for r in ts.records} == set(ids)  # the test ids are never read
    for r in ts.records:
        assert r.label == ts.label_map[r.pid]
        assert r.modality == (INFRARED if r.camera in (3, 6) else VISIBLE)
        assert r.path == f"cam{r.camera}/{r.pid:04d}/{r.path[-8:]}"
        assert (sysu_root / r.path).is_file()
    assert ts.val_query == [] and ts.val_gallery == []


def test_sysu_official_validation(sysu_root, trees):
    ts = sysu_training_set(sysu_root, "official")
    assert set(ts.label_map) == set(trees.SYSU_TRAIN)
    assert sorted(ts.label_map.values()) == list(range(len(trees.SYSU_TRAIN)))
    assert {r.pid for r in ts.val_query} == set(trees.SYSU_VAL) == {r.pid for r in ts.val_gallery}
    assert all(r.modality == INFRARED for r in ts.val_query)
    assert all(r.modality == VISIBLE for r in ts.val_gallery)
    assert len(ts.val_query) + len(ts.val_gallery) == _expected_sysu(trees, trees.SYSU_VAL)
    assert not {r.path for r in ts.records} & {r.path for r in ts.val_query + ts.val_gallery}
    assert f"sysu: {len(trees.SYSU_TRAIN)} training ids" in describe(ts) and "validation 3 ids" in describe(ts)


def test_sysu_holdout_n_is_seeded_and_disjoint(sysu_root, trees):
    a = sysu_training_set(sysu_root, 3, val_seed=5)
    b = sysu_training_set(sysu_root, 3, val_seed=5)
    held = {r.pid for r in a.val_query}
    assert len(held) == 3 and held == {r.pid for r in b.val_query}
    assert held.isdisjoint(a.label_map)
    assert held | set(a.label_map) == set(trees.SYSU_TRAIN + trees.SYSU_VAL)
    draws = {tuple(split_holdout(range(100), 5, s)[1]) for s in range(5)}
    assert len(draws) > 1  # the seed matters


def test_regdb_train_split(regdb_root, trees):
    ts = regdb_training_set(regdb_root, trial=1)
    ids = sorted(trees.REGDB_TRAIN[1])
    assert ts.label_map == {pid: i for i, pid in enumerate(ids)}
    assert len(ts.records) == 2 * trees.REGDB_PER_ID * len(ids)
    assert all(r.label == ts.label_map[r.pid] for r in ts.records)
    assert {r.camera for r in ts.records if r.modality == VISIBLE} == {1}
    assert {r.camera for r in ts.records if r.modality == INFRARED} == {2}


def test_regdb_holdout(regdb_root, trees):
    ts = load_training_set("regdb", regdb_root, trial=1, val_split=2, val_seed=0)
    held = {r.pid for r in ts.val_query}
    assert len(held) == 2 and held == {r.pid for r in ts.val_gallery}
    assert held.isdisjoint(ts.label_map) and held <= set(trees.REGDB_TRAIN[1])
    assert len(ts.val_query) == len(ts.val_gallery) == 2 * trees.REGDB_PER_ID
    assert sorted(ts.label_map.values()) == list(range(len(trees.REGDB_TRAIN[1]) - 2))


def test_identity_with_one_modality_is_left_out(tmp_path, trees, caplog):
    root = trees.make_sysu(tmp_path / "s", skip={(3, 2), (6, 2)})  # id 2 has no infrared image
    with caplog.at_level(logging.WARNING):
        ts = sysu_training_set(root)
    assert 2 not in ts.label_map and ts.dropped_ids == [2]
    assert "without both visible and infrared" in caplog.text


def test_missing_split_file(sysu_root):
    (sysu_root / "exp" / "val_id.txt").unlink()
    with pytest.raises(DatasetError, match="val_id"):
        sysu_training_set(sysu_root)


def test_empty_identity_folder(sysu_root):
    folder = sysu_root / "cam4" / "0005"
    shutil.rmtree(folder)
    folder.mkdir()
    with pytest.raises(DatasetError, match=r"empty identity folder .*cam4.0005"):
        sysu_training_set(sysu_root)


def test_malformed_idx_line(regdb_root):
    idx = regdb_root / "idx" / "train_thermal_1.txt"
    lines = idx.read_text().splitlines()
    lines[4] = "Thermal/1/broken_line_without_label"
    idx.write_text("\n".join(lines))
    with pytest.raises(DatasetError, match=r"train_thermal_1\.txt:5:"):
        regdb_training_set(regdb_root, 1)


def test_idx_lists_missing_image(regdb_root):
    idx = regdb_root / "idx" / "train_visible_1.txt"
    idx.write_text(idx.read_text() + "Visible/1/gone.bmp 0\n")
    with pytest.raises(DatasetError, match=r"gone\.bmp"):
        regdb_training_set(regdb_root, 1)


def test_missing_idx_file(regdb_root):
    with pytest.raises(DatasetError, match="train_visible_2"):
        regdb_training_set(regdb_root, 2)


@pytest.mark.parametrize("bad", [0, 99, "half"])
def test_bad_val_split(sysu_root, bad):
    with pytest.raises(ConfigError, match="val_split"):
        sysu_training_set(sysu_root, bad)


def test_official_val_split_is_sysu_only(regdb_root):
    with pytest.raises(ConfigError, match="official"):
        regdb_training_set(regdb_root, 1, "official")


def test_wrong_layout(regdb_root):
    with pytest.raises(DatasetError, match="RegDB"):
        sysu_training_set(regdb_root)


def test_listed_id_without_images_is_reported(tmp_path, trees, caplog):
    root = trees.make_sysu(tmp_path / "s", skip={(c, 5) for c in range(1, 7)})
    with caplog.at_level(logging.WARNING):
        ts = sysu_training_set(root)
    assert ts.dropped_ids == [5] and 5 not in ts.label_map
    assert sorted(ts.label_map.values()) == list(range(len(ts.label_map)))
