"""SYSU-MM01 read in its original layout: ``camC/PPPP/NNNN.jpg`` and ``exp/{train,val,test}_id.{txt,mat}``.

Nothing here writes to the dataset folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io

from vireid.errors import DatasetError

from .records import IMAGE_EXTENSIONS, INFRARED, VISIBLE, ImageRecord

CAMERA_MODALITY = {1: VISIBLE, 2: VISIBLE, 3: INFRARED, 4: VISIBLE, 5: VISIBLE, 6: INFRARED}
VISIBLE_CAMERAS = (1, 2, 4, 5)
INFRARED_CAMERAS = (3, 6)
INDOOR_CAMERAS = (1, 2)
SPLITS = ("train", "val", "test")
_CAMERA_FOLDER = re.compile(r"^cam([1-6])$")


def check_sysu_root(root: str | os.PathLike) -> Path:
    """Return ``root`` as a Path if it looks like SYSU-MM01 (``cam1``..``cam6``, ``exp/``), else raise."""
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"SYSU-MM01 root {path} does not exist or is not a directory")
    cams = [c for c in range(1, 7) if (path / f"cam{c}").is_dir()]
    if not cams or not (path / "exp").is_dir():
        found = sorted(p.name + "/" for p in path.iterdir() if p.is_dir())[:6]
        hint = " (this looks like a RegDB tree)" if (path / "Visible").is_dir() or (path / "idx").is_dir() else ""
        raise DatasetError(
            f"{path} is not a SYSU-MM01 root: expected folders cam1..cam6 and exp/, "
            f"found {', '.join(found) or 'no folders'}{hint}"
        )
    return path


def identify_path(parts: Sequence[str]) -> tuple[int, int, int] | None:
    """(pid, camera, modality) of a path whose last three parts are ``camC/PPPP/<file>``, else None."""
    if len(parts) < 3 or not parts[-2].isdigit():
        return None
    m = _CAMERA_FOLDER.match(parts[-3])
    if m is None:
        return None
    cam = int(m.group(1))
    return int(parts[-2]), cam, CAMERA_MODALITY[cam]


def parse_id_list(text: str, source: str | os.PathLike) -> list[int]:
    """Parse a split file's text: integers separated by commas, spaces or newlines."""
    tokens = [t for t in text.replace(",", " ").split() if t]
    try:
        return [int(t) for t in tokens]
    except ValueError as exc:
        raise DatasetError(f"{source}: expected comma-separated person ids, got {exc.args[0]}") from None


def read_mat_ids(path: str | os.PathLike) -> list[int]:
    """Read the variable ``id`` of a SYSU-MM01 split ``.mat`` file."""
    try:
        ids = scipy.io.loadmat(str(path))["id"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not a SYSU-MM01 split .mat file with variable 'id' ({exc})") from None
    return [int(i) for i in np.asarray(ids).ravel()]


def read_split_ids(root: str | os.PathLike, split: str) -> list[int]:
    """Person ids of ``split`` (train, val or test) from ``exp/{split}_id.txt``, else ``exp/{split}_id.mat``."""
    if split not in SPLITS:
        raise DatasetError(f"unknown SYSU-MM01 split {split!r}: expected one of {', '.join(SPLITS)}")
    exp = Path(root) / "exp"
    txt, mat = exp / f"{split}_id.txt", exp / f"{split}_id.mat"
    if txt.is_file():
        ids = parse_id_list(txt.read_text(encoding="utf-8"), txt)
    elif mat.is_file():
        ids = read_mat_ids(mat)
    else:
        raise DatasetError(f"missing SYSU-MM01 split file: expected {txt} or {mat}")
    if not ids:
        raise DatasetError(f"SYSU-MM01 split file for {split!r} in {exp} lists no ids")
    return ids


def list_images(root: str | os.PathLike, camera: int, pid: int) -> list[str]:
    """Relative paths of the images of ``pid`` in ``camera``, in sorted file order ([] if none).

    The sorted order is the order the official ``rand_perm_cam.mat`` indices refer to.
    """
    folder = Path(root) / f"cam{camera}" / f"{pid:04d}"
    if not folder.is_dir():
        return []
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    return [f"cam{camera}/{pid:04d}/{n}" for n in names]


def index_images(
    root: str | os.PathLike, pids: list[int], cameras: tuple[int, ...]
) -> dict[tuple[int, int], list[str]]:
    """Map (camera, pid) to its sorted relative image paths, for the given ids and cameras.

    Pairs without images are left out, so empty or missing folders are fine.
    """
    index: dict[tuple[int, int], list[str]] = {}
    for cam in cameras:
        for pid in pids:
            paths = list_images(root, cam, pid)
            if paths:
                index[(cam, pid)] = paths
    return index


def scan_images(root: str | os.PathLike, pids: list[int], cameras: tuple[int, ...]) -> list[ImageRecord]:
    """Records of every image of ``pids`` in ``cameras``, ordered by camera, then pid, then file name."""
    return [
        ImageRecord(path=p, pid=pid, camera=cam, modality=CAMERA_MODALITY[cam])
        for (cam, pid), paths in index_images(root, pids, cameras).items()
        for p in paths
    ]


def test_records(root: str | os.PathLike, trial: int = 1) -> list[ImageRecord]:
    """Every image the SYSU-MM01 test protocol may need: the test ids' infrared images (cams 3, 6) and
    visible images (cams 1, 2, 4, 5), ordered by camera, then id, then file name. SYSU-MM01 has one test
    split: ``trial`` (the dataset table's calling convention) changes nothing."""
    root = check_sysu_root(root)
    return scan_images(root, sorted(set(read_split_ids(root, "test"))), tuple(range(1, 7)))
