"""Training sets read in place from the original layouts, with contiguous labels and a validation split.

SYSU-MM01: the identities of ``exp/train_id`` (+ ``exp/val_id``), visible cameras 1, 2, 4, 5 and infrared
cameras 3, 6. RegDB: the train split of one trial (``idx/train_{visible,thermal}_{t}.txt``). A validation
split holds some TRAINING identities out (query = their infrared images, gallery = their visible images),
so that checkpoints are chosen without touching the test split, which is never read here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vireid.datasets import get_dataset
from vireid.errors import ConfigError, DatasetError

from . import regdb, sysu
from .records import IMAGE_EXTENSIONS, INFRARED, MODALITY_NAMES, VISIBLE, ImageRecord

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """A training set: labelled records, the pid -> label map, and the validation query/gallery records."""

    dataset: str
    root: Path
    records: list[ImageRecord]
    label_map: dict[int, int]
    val_query: list[ImageRecord] = field(default_factory=list)
    val_gallery: list[ImageRecord] = field(default_factory=list)
    dropped_ids: list[int] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.label_map)


def split_holdout(pids: Sequence[int], val_split: str | int, seed: int) -> tuple[list[int], list[int]]:
    """Split training ids into (train, held-out) for ``val_split`` ``"none"`` or an integer N (seeded draw)."""
    pids = sorted(set(pids))
    if val_split == "none":
        return pids, []
    if isinstance(val_split, bool) or not isinstance(val_split, int):
        raise ConfigError(f"data.val_split: expected 'none', 'official' or a positive integer, got {val_split!r}")
    if not 1 <= val_split < len(pids):
        raise ConfigError(
            f"data.val_split: cannot hold out {val_split} of {len(pids)} training identities "
            f"(expected 1..{len(pids) - 1})"
        )
    rng = np.random.default_rng(seed)
    held = sorted(int(p) for p in rng.choice(np.asarray(pids), size=val_split, replace=False))
    held_set = set(held)
    return [p for p in pids if p not in held_set], held


def assign_labels(records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], dict[int, int]]:
    """Give records contiguous labels 0..C-1 in sorted pid order; return them and the pid -> label map."""
    label_map = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [replace(r, label=label_map[r.pid]) for r in records], label_map


def keep_cross_modal(
    records: Sequence[ImageRecord], source: str, listed: Sequence[int] = ()
) -> tuple[list[ImageRecord], list[int]]:
    """Drop identities without both a visible and an infrared image (they cannot be sampled in pairs).

    ``listed`` ids (from a split file) without any image are reported as dropped too.
    """
    modalities: dict[int, set[int]] = {pid: set() for pid in listed}
    for r in records:
        modalities.setdefault(r.pid, set()).add(r.modality)
    dropped = sorted(pid for pid, mods in modalities.items() if mods != {VISIBLE, INFRARED})
    if dropped:
        log.warning(
            "%s: %d training identit%s without both visible and infrared images left out: %s",
            source, len(dropped), "y" if len(dropped) == 1 else "ies", ", ".join(map(str, dropped[:20])),
        )
        bad = set(dropped)
        records = [r for r in records if r.pid not in bad]
    return list(records), dropped


def _check_no_empty_folders(root: Path, pids: Sequence[int], cameras: Sequence[int]) -> None:
    for cam in cameras:
        for pid in pids:
            folder = root / f"cam{cam}" / f"{pid:04d}"
            if folder.is_dir() and not any(n.lower().endswith(IMAGE_EXTENSIONS) for n in os.listdir(folder)):
                raise DatasetError(f"empty identity folder {folder}: expected images ({', '.join(IMAGE_EXTENSIONS)})")


def _validation(records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], list[ImageRecord]]:
    query = [r for r in records if r.modality == INFRARED]
    gallery = [r for r in records if r.modality == VISIBLE]
    return query, gallery


def _sysu_records(root: Path, pids: Sequence[int]) -> list[ImageRecord]:
    cameras = sysu.VISIBLE_CAMERAS + sysu.INFRARED_CAMERAS
    _check_no_empty_folders(root, pids, cameras)
    return sysu.scan_images(root, list(pids), cameras)


def sysu_training_set(
    root: str | os.PathLike, val_split: str | int = "none", val_seed: int = 0, *, trial: int = 1
) -> TrainingSet:
    """SYSU-MM01 training set: train (+ val) ids, visible cams 1, 2, 4, 5 and infrared cams 3, 6, in place.
    SYSU-MM01 has one training split: ``trial`` (the dataset table's calling convention) changes nothing."""
    path = sysu.check_sysu_root(root)
    train_ids = sysu.read_split_ids(path, "train")
    val_ids = sysu.read_split_ids(path, "val")
    overlap = sorted(set(train_ids) & set(val_ids))
    if overlap:
        raise DatasetError(f"{path / 'exp'}: train and val id lists overlap (e.g. {overlap[0]})")
    if val_split == "official":
        fit_ids, held_ids = sorted(set(train_ids)), sorted(set(val_ids))
    else:
        fit_ids, held_ids = split_holdout(train_ids + val_ids, val_split, val_seed)
    records, dropped = keep_cross_modal(_sysu_records(path, fit_ids), f"SYSU-MM01 {path}", fit_ids)
    if not records:
        raise DatasetError(f"SYSU-MM01 {path}: no training identity has both visible and infrared images")
    records, label_map = assign_labels(records)
    held_records, _ = keep_cross_modal(_sysu_records(path, held_ids), f"SYSU-MM01 {path} (validation)", held_ids)
    query, gallery = _validation(held_records)
    return TrainingSet("sysu", path, records, label_map, query, gallery, dropped)


def _check_files(root: Path, records: Sequence[ImageRecord], source: Path) -> None:
    for r in records:
        if not (root / r.path).is_file():
            raise DatasetError(f"{source}: lists {r.path}, which does not exist under {root}")


def regdb_training_set(
    root: str | os.PathLike, trial: int = 1, val_split: str | int = "none", val_seed: int = 0
) -> TrainingSet:
    """RegDB training set of ``trial``: the images listed by ``idx/train_{visible,thermal}_{trial}.txt``.

    Labels are re-derived from the folder ids (contiguous, sorted by id), not copied from the idx files.
    """
    path = regdb.check_regdb_root(root)
    if val_split == "official":
        raise ConfigError("data.val_split: 'official' exists only for SYSU-MM01; use 'none' or a number of ids")
    records: list[ImageRecord] = []
    for modality in ("visible", "thermal"):
        listed = regdb.read_idx(path, "train", modality, trial)
        _check_files(path, listed, regdb.idx_path(path, "train", modality, trial))
        records += listed
    fit_ids, held_ids = split_holdout([r.pid for r in records], val_split, val_seed)
    held = set(held_ids)
    fit, dropped = keep_cross_modal([r for r in records if r.pid not in held], f"RegDB {path} trial {trial}")
    if not fit:
        raise DatasetError(f"RegDB {path} trial {trial}: no training identity has both visible and thermal images")
    fit, label_map = assign_labels(fit)
    held_records = [replace(r, label=-1) for r in records if r.pid in held]
    query, gallery = _validation(held_records)
    return TrainingSet("regdb", path, fit, label_map, query, gallery, dropped)


def load_training_set(
    dataset: str, root: str | os.PathLike, *, trial: int = 1, val_split: str | int = "none", val_seed: int = 0
) -> TrainingSet:
    """The training set of ``dataset`` (a name in ``vireid.datasets``) read in place from ``root``."""
    return get_dataset(dataset).training_set(root, trial=trial, val_split=val_split, val_seed=val_seed)


def describe(ts: TrainingSet) -> str:
    """One line: identities and images per modality of the training and validation sets."""
    def count(recs: Sequence[ImageRecord], mod: int) -> int:
        return sum(r.modality == mod for r in recs)

    parts = [
        f"{ts.dataset}: {ts.num_classes} training ids",
        ", ".join(f"{count(ts.records, m)} {MODALITY_NAMES[m]}" for m in (VISIBLE, INFRARED)),
    ]
    if ts.val_query or ts.val_gallery:
        n_val = len({r.pid for r in ts.val_query + ts.val_gallery})
        parts.append(f"validation {n_val} ids ({len(ts.val_query)} query, {len(ts.val_gallery)} gallery)")
    return "; ".join(parts)
