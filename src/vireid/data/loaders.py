"""DataLoaders: the training loader (cross-modal sampler, cache or per-sample decoding, augmentation) and
the evaluation loader (test transform) for feature extraction and validation.

Training batches are dicts: ``images`` float32 [B, 3, H, W], ``labels``, ``modality``, ``pids``,
``cameras``, ``index`` (position in ``train_records``), all int64 [B]. Augmentation of each image is seeded
by the sampler's draw, so a run is reproducible for a seed whatever ``num_workers`` is.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from vireid.errors import ConfigError

from .batch_augment import BatchTrainTransform
from .cache import build_cache, check_images, decode_image, load_resized
from .config import DataConfig
from .records import INFRARED, VISIBLE, ImageRecord
from .sampler import CrossModalIdentitySampler, Draw
from .training_sets import keep_cross_modal, load_training_set
from .transforms import build_test_transform, build_train_transform

log = logging.getLogger(__name__)


class _CacheRows(Dataset):
    """Reads rows of a decoded-image cache array, memory-mapped lazily in each worker process."""

    cache_path: Path | None
    _array: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_array"] = None  # never pickle the memory map (it would copy the array); reopen per process
        return state

    def _cache_array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.cache_path, mmap_mode="r")
        return self._array

    def cached_image(self, row: int) -> torch.Tensor:
        """Row ``row`` of the cache array as a uint8 tensor [3, H, W]."""
        return torch.from_numpy(np.array(self._cache_array()[row])).permute(2, 0, 1)

    def cached_images(self, rows: list[int]) -> torch.Tensor:
        """Rows ``rows`` of the cache array as one uint8 tensor [B, 3, H, W] (one read; channels-last strides)."""
        return torch.from_numpy(self._cache_array()[rows]).permute(0, 3, 1, 2)


class TrainingDataset(_CacheRows):
    """Training images by index (or by ``Draw``), read from the cache array or decoded per sample.

    ``dataset[draw]`` is one augmented image (the per-sample reference path); the training loader asks for
    whole batches (``__getitems__``): one cache read, augmentation batched (``BatchTrainTransform``), the
    same pixels as the per-sample path.
    """

    def __init__(
        self, records: list[ImageRecord], root: str | os.PathLike, cfg: DataConfig,
        cache_path: str | os.PathLike | None = None, rows: list[int] | None = None,
    ) -> None:
        self.records, self.root = records, Path(root)
        self.height, self.width = cfg.height, cfg.width
        self.transforms = {m: build_train_transform(cfg, m) for m in (VISIBLE, INFRARED)}
        self.batch_transform = BatchTrainTransform(cfg)
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.rows = rows if rows is not None else list(range(len(records)))

    def __len__(self) -> int:
        return len(self.records)

    def image(self, i: int) -> torch.Tensor:
        """The resized uint8 image [3, H, W] of record ``i`` (before augmentation)."""
        if self.cache_path is None:
            return load_resized(self.root / self.records[i].path, self.height, self.width)
        return self.cached_image(self.rows[i])

    def __getitem__(self, item: Draw | int) -> dict[str, Any]:
        i, seed = (item.index, item.seed) if isinstance(item, tuple) else (int(item), None)
        r = self.records[i]
        img = self.image(i)
        if seed is None:
            img = self.transforms[r.modality](img)
        else:
            # Seed the CPU generator the transforms draw from, and restore it after (torch.random.fork_rng
            # does the same but costs ~0.5 ms per call, as much as the augmentation itself).
            gen = torch.default_generator
            state = gen.get_state()
            gen.manual_seed(seed)
            try:
                img = self.transforms[r.modality](img)
            finally:
                gen.set_state(state)
        return {"images": img, "labels": r.label, "modality": r.modality, "pids": r.pid, "cameras": r.camera,
                "index": i}

    def __getitems__(self, items: list[Draw | int]) -> dict[str, Any]:
        """A whole training batch (what the DataLoader's batch sampler asks for), as a dict of tensors."""
        if not all(isinstance(item, tuple) for item in items):  # no seeds: the per-sample path
            return default_collate([self[item] for item in items])
        index = [item.index for item in items]
        if self.cache_path is None:
            images = torch.stack([self.image(i) for i in index])
        else:
            images = self.cached_images([self.rows[i] for i in index])
        recs = [self.records[i] for i in index]
        modality = [r.modality for r in recs]
        return {
            "images": self.batch_transform(images, modality, [item.seed for item in items]),
            "labels": torch.tensor([r.label for r in recs]), "modality": torch.tensor(modality),
            "pids": torch.tensor([r.pid for r in recs]), "cameras": torch.tensor([r.camera for r in recs]),
            "index": torch.tensor(index),
        }


def _as_is(batch: dict[str, Any]) -> dict[str, Any]:
    """The training loader's collate function: ``TrainingDataset.__getitems__`` builds whole batches."""
    return batch


class EvalDataset(_CacheRows):
    """Images with the test transform (resize + normalise), decoded per sample or read from a cache array."""

    def __init__(
        self, records: list[ImageRecord], root: str | os.PathLike, cfg: DataConfig,
        cache_path: str | os.PathLike | None = None,
    ) -> None:
        self.records, self.root = records, Path(root)
        self.transform = build_test_transform(cfg)
        self.cache_path = Path(cache_path) if cache_path is not None else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.records[i]
        img = decode_image(self.root / r.path) if self.cache_path is None else self.cached_image(i)
        return {"images": self.transform(img), "modality": r.modality, "index": i}


@dataclass
class TrainingData:
    """What training needs from the input pipeline."""

    loader: DataLoader
    sampler: CrossModalIdentitySampler
    num_classes: int
    label_map: dict[int, int]
    train_records: list[ImageRecord]
    val_query: list[ImageRecord]
    val_gallery: list[ImageRecord]
    skipped: list[str]  # one message per unreadable image left out (skip_corrupt)


def _root(cfg: DataConfig, root: str | os.PathLike | None) -> Path:
    if root is None and cfg.root is None:
        raise ConfigError("data.root: no dataset root given (set data.root or pass --root)")
    return Path(root if root is not None else cfg.root)


def build_training_data(
    cfg: DataConfig, root: str | os.PathLike | None, *, seed: int, rank: int = 0, world_size: int = 1,
    pin_memory: bool = False, progress: bool = True,
) -> TrainingData:
    """Read the training set in place, build (or reuse) the decoded-image cache and the training loader.

    With ``cfg.skip_corrupt`` unreadable images are left out (counted in ``skipped``); without it the
    first one raises an error naming it.
    """
    cfg.validate()
    path = _root(cfg, root)
    ts = load_training_set(cfg.dataset, path, trial=cfg.trial, val_split=cfg.val_split, val_seed=cfg.val_seed)
    records = ts.records
    skipped: list[str] = []
    cache_path, rows = None, None
    if cfg.cache:
        cache = build_cache(records, path, cfg.height, cfg.width, cfg.resolved_cache_dir(),
                            skip_corrupt=cfg.skip_corrupt, num_workers=cfg.num_workers, progress=progress)
        cache_path, rows, skipped = cache.array_path, cache.rows, cache.skipped
        records = [records[i] for i in rows]
    elif cfg.skip_corrupt:
        good, skipped = check_images(records, path, skip_corrupt=True, num_workers=cfg.num_workers,
                                     progress=progress)
        records = [records[i] for i in good]
    if skipped:
        kept, dropped = keep_cross_modal(records, f"{cfg.dataset} {path} after skipping unreadable images")
        if dropped:
            gone = set(dropped)
            keep_pos = [i for i, r in enumerate(records) if r.pid not in gone]
            records = kept
            rows = [rows[i] for i in keep_pos] if rows is not None else None
    dataset = TrainingDataset(records, path, cfg, cache_path, rows)
    sampler = CrossModalIdentitySampler(records, cfg.ids_per_batch, cfg.instances, seed=seed, rank=rank,
                                        world_size=world_size, epoch_length=cfg.epoch_length)
    loader = DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.num_workers, collate_fn=_as_is,
        persistent_workers=cfg.num_workers > 0, pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(int(seed)),
    )
    return TrainingData(loader, sampler, ts.num_classes, ts.label_map, records, ts.val_query, ts.val_gallery, skipped)


def build_eval_loader(
    records: list[ImageRecord], root: str | os.PathLike | None, cfg: DataConfig, batch_size: int, *,
    cache: bool = False, pin_memory: bool = False, progress: bool = False,
) -> DataLoader:
    """A loader over ``records`` in order, yielding ``images`` (test transform), ``modality`` and ``index``.

    ``cache=True`` (for images read again and again, such as a validation split) reads them from the
    decoded-image cache (built on first use in ``cfg``'s cache folder); the pixels are the same.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size: expected a positive integer, got {batch_size!r}")
    path = _root(cfg, root)
    records = list(records)
    cache_path = None
    if cache and records and cfg.resize == "tensor":  # the cache holds tensor-resized pixels
        cache_path = build_cache(records, path, cfg.height, cfg.width, cfg.resolved_cache_dir(),
                                 num_workers=cfg.num_workers, progress=progress).array_path
    return DataLoader(EvalDataset(records, path, cfg, cache_path), batch_size=batch_size, shuffle=False,
                      num_workers=cfg.num_workers, pin_memory=pin_memory)
