"""SynthVI writes exactly the SYSU-MM01 and RegDB layouts, readable by vireid.data.sysu / regdb."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from vireid.data import regdb, sysu
from vireid.data.synthvi import MARKER, SynthConfig, generate, plan_sysu

SYSU_IDS = 12


@pytest.fixture(scope="module")
def sysu_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "sysu", num_ids=SYSU_IDS, seed=3, min_images=2,
                    max_images=4, height=64, width=32)


@pytest.fixture(scope="module")
def regdb_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "regdb", layout="regdb", num_ids=8, seed=5,
                    regdb_images=3, height=64, width=32)


def test_sysu_paths_follow_the_grammar(sysu_root):
    assert sysu.check_sysu_root(sysu_root) == sysu_root
    files = sorted(p.relative_to(sysu_root).as_posix() for p in sysu_root.glob("cam*/**/*") if p.is_file())
    assert files
    for rel in files:
        assert re.fullmatch(r"cam[1-6]/\d{4}/\d{4}\.jpg", rel), rel
        # AGW reads the camera with path[-15] and the pid with path[-13:-9].
        full = str(sysu_root / rel)
        assert int(full[-15]) == int(rel[3]) and int(full[-13:-9]) == int(rel[5:9])
    for folder in sysu_root.glob("cam*/*"):
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{k:04d}.jpg" for k in range(1, len(names) + 1)], folder  # 0001.. contiguous
    assert sorted(p.name for p in sysu_root.iterdir()) == [f"cam{c}" for c in range(1, 7)] + ["exp", MARKER]
    meta = json.loads((sysu_root / MARKER).read_text())
    assert meta["images"] == len(files) and meta["config"]["num_ids"] == SYSU_IDS


def test_sysu_splits_are_disjoint_and_cover_the_ids(sysu_root):
    splits = {s: sysu.read_split_ids(sysu_root, s) for s in sysu.SPLITS}
    sets = {s: set(v) for s, v in splits.items()}
    assert all(len(v) == len(sets[s]) and v == sorted(v) for s, v in splits.items())
    assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
    assert sets["train"] | sets["val"] | sets["test"] == set(range(1, SYSU_IDS + 1))
    assert len(sets["train"]) > len(sets["val"]) >= 1 and len(sets["test"]) >= 1
    for name in ("train", "val", "test", "available"):
        text = (sysu_root / "exp" / f"{name}_id.txt").read_text()
        assert re.fullmatch(r"\d+(,\d+)*\n", text), text  # one line, comma-separated, no padding
        ids = sysu.parse_id_list(text, name)
        assert sysu.read_mat_ids(sysu_root / "exp" / f"{name}_id.mat") == ids
    available = sysu.parse_id_list((sysu_root / "exp" / "available_id.txt").read_text(), "available")
    assert available == list(range(1, SYSU_IDS + 1))


def test_sysu_every_id_has_both_modalities(sysu_root):
    ids = list(range(1, SYSU_IDS + 1))
    index = sysu.index_images(sysu_root, ids, (1, 2, 3, 4, 5, 6))
    for pid in ids:
        assert any((c, pid) in index for c in sysu.VISIBLE_CAMERAS), pid
        assert any((c, pid) in index for c in sysu.INFRARED_CAMERAS), pid
    records = sysu.scan_images(sysu_root, ids, (3, 6))
    assert records and all(r.modality == sysu.INFRARED for r in records)
    assert not [f for f in sysu_root.glob("cam*/*") if not any(f.iterdir())]  # no empty id folders


def test_sysu_plan_varies_counts_and_drops_cameras():
    cfg = SynthConfig(num_ids=200, seed=1)
    plan = plan_sysu(cfg)
    counts = [n for cams in plan.values() for n in cams.values()]
    assert min(counts) == cfg.min_images and max(counts) == cfg.max_images
    assert any(len(cams) < 6 for cams in plan.values())
    for cam in range(1, 7):  # every camera is used by most ids, missed by some
        present = sum(cam in cams for cams in plan.values())
        assert 100 < present < 200, (cam, present)
    for cams in plan.values():
        assert set(cams) & {1, 2, 4, 5} and set(cams) & {3, 6}


def test_sysu_images_are_rgb_jpegs_and_infrared_is_grey(sysu_root):
    for cam in range(1, 7):
        for path in sorted((sysu_root / f"cam{cam}").glob("*/*.jpg"))[:3]:
            img = Image.open(path)
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (32, 64)
            a = np.asarray(img).astype(int)
            grey = np.abs(a[..., 0] - a[..., 1]).max() + np.abs(a[..., 0] - a[..., 2]).max()
            if cam in (3, 6):
                assert grey == 0, path
            else:
                assert grey > 20, path


def test_regdb_layout_and_names(regdb_root):
    assert regdb.check_regdb_root(regdb_root) == regdb_root
    for pid in range(1, 9):
        vis = sorted(p.name for p in (regdb_root / "Visible" / str(pid)).iterdir())
        thr = sorted(p.name for p in (regdb_root / "Thermal" / str(pid)).iterdir())
        assert len(vis) == len(thr) == 3
        for name in vis:
            assert re.fullmatch(rf"(male|female)_(front|back)_v_\d{{5}}_{pid}\.bmp", name), name
        assert [n.replace("_v_", "_t_") for n in vis] == thr  # co-registered frames share the frame number
    img = Image.open(next((regdb_root / "Thermal" / "1").iterdir()))
    a = np.asarray(img)
    assert img.format == "BMP" and a.shape == (64, 32, 3) and (a[..., 0] == a[..., 1]).all()
    assert (a[..., 0] == a[..., 2]).all()


def test_regdb_idx_files_for_all_trials(regdb_root):
    splits = []
    for trial in regdb.TRIALS:
        by_split = {}
        for split in ("train", "test"):
            recs = {m: regdb.read_idx(regdb_root, split, m, trial) for m in ("visible", "thermal")}
            label_of = {}
            for m, records in recs.items():
                assert len(records) == 4 * 3
                for r in records:
                    assert (regdb_root / r.path).is_file()
                    assert r.path.startswith("Visible/" if m == "visible" else "Thermal/")
                    assert r.path.endswith(f"_{r.pid}.bmp")
                    assert label_of.setdefault(r.pid, r.label) == r.label  # one label per id, both modalities
            assert sorted(label_of.values()) == list(range(4))  # renumbered 0..n-1 within the split
            by_split[split] = set(label_of)
        assert not by_split["train"] & by_split["test"]
        assert by_split["train"] | by_split["test"] == set(range(1, 9))
        splits.append(frozenset(by_split["train"]))
    assert len(set(splits)) > 1  # trials draw different halves
