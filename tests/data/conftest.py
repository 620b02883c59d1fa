"""Tiny SYSU-MM01 and RegDB trees written with PIL, and a snapshot of a folder to prove nothing was written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from vireid.data.config import DataConfig

SYSU_TRAIN = (1, 2, 4, 5, 7, 8)
SYSU_VAL = (11, 12, 13)
SYSU_TEST = (20, 21)
IMG_H, IMG_W = 16, 8


def colour(pid: int, cam: int, n: int) -> tuple[int, int, int]:
    """A distinct solid colour per image, so tests can tell images apart after decoding."""
    return ((pid * 37) % 256, (cam * 41 + n * 13) % 256, (pid * 11 + n * 29) % 256)


def write_image(path: Path, rgb: tuple[int, int, int], grey: bool = False, size=(IMG_W, IMG_H)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if grey:
        Image.new("L", size, rgb[0]).save(path)
    else:
        Image.new("RGB", size, rgb).save(path)


def sysu_count(pid: int, cam: int) -> int:
    """Images of (pid, cam) in the fixture tree: 1..4, varying."""
    return 1 + (pid + cam) % 4


def make_sysu(root: Path, train=SYSU_TRAIN, val=SYSU_VAL, test=SYSU_TEST, skip=()) -> Path:
    """A SYSU-MM01 tree: every id in every camera (except (cam, pid) pairs in ``skip``); cam3 IR images
    are 1-channel JPEGs, cam6 IR images 3-channel (both occur in the wild)."""
    for pid in (*train, *val, *test):
        for cam in range(1, 7):
            if (cam, pid) in skip:
                continue
            for n in range(1, sysu_count(pid, cam) + 1):
                write_image(root / f"cam{cam}" / f"{pid:04d}" / f"{n:04d}.jpg", colour(pid, cam, n), grey=cam == 3)
    exp = root / "exp"
    exp.mkdir(parents=True, exist_ok=True)
    for name, ids in (("train", train), ("val", val), ("test", test)):
        (exp / f"{name}_id.txt").write_text(",".join(map(str, ids)))
    return root


REGDB_IDS = tuple(range(1, 11))
REGDB_TRAIN = {1: (1, 3, 4, 6, 9, 10)}  # trial -> train ids; the rest are test ids
REGDB_PER_ID = 3


def make_regdb(root: Path, trials=(1,)) -> Path:
    """A RegDB tree with 10 ids x (3 visible + 3 thermal) BMPs and idx files for ``trials``."""
    names = {}
    for pid in REGDB_IDS:
        for n in range(REGDB_PER_ID):
            frame = 100 * pid + n
            v = f"Visible/{pid}/male_front_v_{frame:05d}_{pid}.bmp"
            t = f"Thermal/{pid}/male_front_t_{frame:05d}_{pid}.bmp"
            write_image(root / v, colour(pid, 1, n))
            write_image(root / t, colour(pid, 2, n), grey=True)
            names.setdefault(pid, []).append((v, t))
    (root / "idx").mkdir(parents=True, exist_ok=True)
    for trial in trials:
        train = REGDB_TRAIN.get(trial, REGDB_TRAIN[1])
        test = [p for p in REGDB_IDS if p not in train]
        for split, ids in (("train", train), ("test", test)):
            for m, col in (("visible", 0), ("thermal", 1)):
                # idx labels are re-numbered within the split and not in id order (as in the real files)
                lines = [f"{names[p][n][col]} {len(ids) - 1 - k}" for k, p in enumerate(ids) for n in range(REGDB_PER_ID)]
                (root / "idx" / f"{split}_{m}_{trial}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def sysu_root(tmp_path: Path) -> Path:
    return make_sysu(tmp_path / "SYSU-MM01")


@pytest.fixture
def regdb_root(tmp_path: Path) -> Path:
    return make_regdb(tmp_path / "RegDB")


@pytest.fixture
def data_cfg(tmp_path: Path) -> DataConfig:
    """A small config: 8x4 input, 2 ids x (2 + 2) per batch, no workers, cache in tmp (not the dataset)."""
    return DataConfig(dataset="sysu", height=8, width=4, ids_per_batch=2, instances=2, num_workers=0,
                      cache=True, cache_dir=str(tmp_path / "cache"))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    st = root.stat()
    out["."] = (0, st.st_mtime_ns)
    return out


class Trees:
    """The helpers above, handed to tests as a fixture (test modules cannot import conftest)."""

    SYSU_TRAIN, SYSU_VAL, SYSU_TEST = SYSU_TRAIN, SYSU_VAL, SYSU_TEST
    REGDB_IDS, REGDB_TRAIN, REGDB_PER_ID = REGDB_IDS, REGDB_TRAIN, REGDB_PER_ID
    colour = staticmethod(colour)
    write_image = staticmethod(write_image)
    sysu_count = staticmethod(sysu_count)
    make_sysu = staticmethod(make_sysu)
    make_regdb = staticmethod(make_regdb)
    snapshot = staticmethod(snapshot)


@pytest.fixture
def trees() -> type[Trees]:
    return Trees
