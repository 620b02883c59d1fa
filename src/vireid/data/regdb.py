"""RegDB read in its original layout: ``Visible/<id>/``, ``Thermal/<id>/`` and
``idx/{train,test}_{visible,thermal}_{trial}.txt`` (lines ``<relative path> <label>``).

Nothing here writes to the dataset folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vireid.errors import DatasetError

from .records import INFRARED, VISIBLE, ImageRecord

MODALITY_FOLDERS = {"visible": ("Visible", VISIBLE, 1), "thermal": ("Thermal", INFRARED, 2)}
TRIALS = tuple(range(1, 11))
_FOLDERS = {folder: (camera, modality) for folder, modality, camera in MODALITY_FOLDERS.values()}


def check_regdb_root(root: str | os.PathLike) -> Path:
    """Return ``root`` as a Path if it looks like RegDB (``Visible/``, ``Thermal/``, ``idx/``), else raise."""
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"RegDB root {path} does not exist or is not a directory")
    missing = [n for n in ("Visible", "Thermal", "idx") if not (path / n).is_dir()]
    if missing:
        hint = " (this looks like a SYSU-MM01 tree)" if (path / "cam1").is_dir() or (path / "exp").is_dir() else ""
        raise DatasetError(f"{path} is not a RegDB root: missing folder(s) {', '.join(missing)}{hint}")
    return path


def training_trials(root: str | os.PathLike) -> list[int]:
    """The trials whose training idx files (visible and thermal) exist under a RegDB root (all 10 in the
    real dataset); DatasetError if none does."""
    root = check_regdb_root(root)
    found = [t for t in TRIALS if all(idx_path(root, "train", m, t).is_file() for m in MODALITY_FOLDERS)]
    if not found:
        raise DatasetError(f"data.trial=all: {root} holds no idx/train_visible_<t>.txt training files")
    return found


def identify_path(parts: Sequence[str]) -> tuple[int, int, int] | None:
    """(pid, camera, modality) of a path whose last three parts are ``Visible|Thermal/<id>/<file>``, else None."""
    if len(parts) < 3 or not parts[-2].isdigit() or parts[-3] not in _FOLDERS:
        return None
    camera, modality = _FOLDERS[parts[-3]]
    return int(parts[-2]), camera, modality


def idx_path(root: str | os.PathLike, split: str, modality: str, trial: int) -> Path:
    """Path of the idx file for ``split`` (train/test), ``modality`` (visible/thermal) and ``trial``."""
    if split not in ("train", "test"):
        raise DatasetError(f"unknown RegDB split {split!r}: expected train or test")
    if modality not in MODALITY_FOLDERS:
        raise DatasetError(f"unknown RegDB modality {modality!r}: expected visible or thermal")
    return Path(root) / "idx" / f"{split}_{modality}_{trial}.txt"


def read_idx(root: str | os.PathLike, split: str, modality: str, trial: int) -> list[ImageRecord]:
    """Records listed by one idx file, in file order; ``label`` is the file's label, ``pid`` the folder id.

    A malformed line raises a DatasetError naming ``file:line``.
    """
    path = idx_path(root, split, modality, trial)
    if not path.is_file():
        raise DatasetError(f"missing RegDB idx file {path}")
    folder, mod, camera = MODALITY_FOLDERS[modality]
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        rel = parts[0].replace("\\", "/") if parts else ""
        segs = rel.split("/")
        if len(parts) != 2 or len(segs) != 3 or segs[0] != folder or not segs[1].isdigit():
            raise DatasetError(
                f"{path}:{lineno}: expected '{folder}/<id>/<file> <label>', got {line.strip()[:80]!r}"
            )
        try:
            label = int(parts[1])
        except ValueError:
            raise DatasetError(f"{path}:{lineno}: label {parts[1]!r} is not an integer") from None
        records.append(ImageRecord(path=rel, pid=int(segs[1]), camera=camera, modality=mod, label=label))
    if not records:
        raise DatasetError(f"RegDB idx file {path} lists no images")
    return records


def test_records(root: str | os.PathLike, trial: int) -> list[ImageRecord]:
    """The test images of ``trial``: the visible list, then the thermal list, in idx-file order."""
    root = check_regdb_root(root)
    if isinstance(trial, bool) or not isinstance(trial, int) or trial not in TRIALS:
        raise DatasetError(f"RegDB trial must be an integer in 1..10, got {trial!r}")
    return read_idx(root, "test", "visible", trial) + read_idx(root, "test", "thermal", trial)
