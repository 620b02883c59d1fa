"""Small SYSU-MM01 and RegDB trees in their original layouts, written with PIL into a tmp dir."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from vireid.evaluation.protocols.sysu import load_rand_perm_cam

# Real test ids: 6 has images in every camera, 21 none in cam1/2/3, 31 none in cam1/2/5.
OFFICIAL_IDS = (6, 21, 31)


def _image_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 8), (120, 80, 40)).save(buf, format=fmt)
    return buf.getvalue()


def write_sysu(root: Path, counts: dict[tuple[int, int], int], test_ids, *, empty=()) -> Path:
    """``counts[(cam, pid)]`` images named 0001.jpg..; ``empty`` lists (cam, pid) folders left empty."""
    data = _image_bytes("JPEG")
    for c in range(1, 7):
        (root / f"cam{c}").mkdir(parents=True, exist_ok=True)
    for (cam, pid), n in counts.items():
        folder = root / f"cam{cam}" / f"{pid:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, n + 1):
            (folder / f"{i:04d}.jpg").write_bytes(data)
    for cam, pid in empty:
        (root / f"cam{cam}" / f"{pid:04d}").mkdir(parents=True, exist_ok=True)
    (root / "exp").mkdir(exist_ok=True)
    (root / "exp" / "test_id.txt").write_text(",".join(str(i) for i in test_ids) + "\n")
    return root


def official_counts(ids=OFFICIAL_IDS) -> dict[tuple[int, int], int]:
    """The real image count of every (camera, id) of ``ids``, from rand_perm_cam.mat."""
    perm = load_rand_perm_cam()
    counts = {}
    for cam in range(1, 7):
        for pid in ids:
            n = perm[cam - 1][pid - 1].shape[1]
            if n:
                counts[(cam, pid)] = n
    return counts


def write_regdb(root: Path, ids, *, n_visible: int = 3, n_thermal: int = 2, trials=(1,)) -> Path:
    """RegDB tree with ``ids``; every trial's test idx lists all of them (labels 0..)."""
    data = _image_bytes("BMP")
    lines: dict[str, list[str]] = {"visible": [], "thermal": []}
    for label, pid in enumerate(ids):
        for folder, letter, n, key in (("Visible", "v", n_visible, "visible"), ("Thermal", "t", n_thermal, "thermal")):
            d = root / folder / str(pid)
            d.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                name = f"male_front_{letter}_{100 * pid + k:05d}_{pid}.bmp"
                (d / name).write_bytes(data)
                lines[key].append(f"{folder}/{pid}/{name} {label}")
    (root / "idx").mkdir(exist_ok=True)
    for t in trials:
        for key, rows in lines.items():
            (root / "idx" / f"test_{key}_{t}.txt").write_text("\n".join(rows) + "\n")
    return root


def one_hot_features(paths: list[str], pid_of) -> np.ndarray:
    """One-hot features per identity: a perfect embedding."""
    pids = sorted({pid_of(p) for p in paths})
    col = {p: i for i, p in enumerate(pids)}
    feats = np.zeros((len(paths), len(pids)), dtype=np.float32)
    for i, p in enumerate(paths):
        feats[i, col[pid_of(p)]] = 1.0
    return feats


def sysu_pid(path: str) -> int:
    return int(path.split("/")[1])


def regdb_pid(path: str) -> int:
    return int(path.split("/")[1])
