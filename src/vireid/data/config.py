"""The data section of the configuration: which dataset, the input size, sampling, caching and augmentation.

Plain dataclasses with defaults, so that the top-level ``Config`` can compose them and YAML can fill them.
The defaults follow the paper's recipe (256x128 input, flip only; 4 visible + 4 infrared images per
identity); the other augmentations (pad-and-crop, random erasing, CAJ channel augmentation) are switches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vireid.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_cache_dir() -> str:
    """The decoded-image cache folder: ``$VIREID_CACHE_DIR``, else ``$XDG_CACHE_HOME/vireid/images``,
    else ``~/.cache/vireid/images``. Never inside a dataset folder."""
    env = os.environ.get("VIREID_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "vireid" / "images")


@dataclass
class AugmentConfig:
    """Training augmentation, applied on uint8 tensors after the resize (torchvision.transforms.v2).

    ``flip``: probability of a horizontal flip. ``pad``: pixels of zero padding before a random crop back
    to the input size (0 disables pad-and-crop). ``erasing``: probability of random erasing (applied to
    the normalised tensor, filled with 0 = the mean colour). ``channel``: probability of CAJ channel
    augmentation of a visible image (replace it by one random RGB channel replicated, or by greyscale);
    infrared images are one channel already and are left alone. ``grey``: probability of turning a visible
    image into its greyscale (three equal channels, the look of an infrared image; the field's standard
    cross-modal augmentation, e.g. AGW's random greyscale); infrared images are left alone.
    """

    flip: float = 0.5
    pad: int = 0
    erasing: float = 0.0
    channel: float = 0.0
    grey: float = 0.0


@dataclass
class DataConfig:
    """Everything the input pipeline needs.

    ``instances`` is K, the number of images per modality per identity in a batch (a batch holds
    ``ids_per_batch`` x 2K images). ``val_split``: ``"none"`` trains on every training identity (SYSU-MM01:
    train + val = the paper's 395); ``"official"`` holds SYSU-MM01's ``exp/val_id`` identities out for
    validation; an integer N holds N training identities out, drawn with ``val_seed``.
    ``resize`` (test images only): ``"tensor"`` resizes decoded uint8 tensors with torchvision's
    antialiased bilinear filter (as the training cache does); ``"pil"`` is the released code's test
    transform, torchvision ``transforms.Resize`` on the PIL image (PIL's bilinear filter), ``ToTensor``,
    ``Normalize``: needed to reproduce the release's features exactly.
    ``epoch_length``: ``"ids"`` = an epoch is one pass over the training identities (the released code:
    ``num_ids // ids_per_batch`` steps); ``"images"`` = an epoch shows about as many images as the training
    set holds (torchreid / AGW convention), each batch still P identities x (K visible + K infrared).
    """

    dataset: str = "sysu"  # a name in the dataset table, vireid.datasets
    root: str | None = None
    trial: int = 1
    height: int = 256
    width: int = 128
    resize: Literal["tensor", "pil"] = "tensor"
    ids_per_batch: int = 16
    instances: int = 4
    epoch_length: Literal["ids", "images"] = "ids"
    num_workers: int = 2
    cache: bool = True
    cache_dir: str | None = None
    val_split: str | int = "none"
    val_seed: int = 0
    skip_corrupt: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        """Raise a ConfigError naming the first invalid option."""
        from vireid.datasets import all_datasets, get_dataset

        spec = get_dataset(self.dataset, "data.dataset")
        if spec.trials and self.trial not in spec.trials:
            raise ConfigError(f"data.trial: expected a {spec.title} trial {spec.trials_text()}, got {self.trial!r}")
        for name in ("height", "width", "ids_per_batch", "instances"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"data.{name}: expected a positive integer, got {value!r}")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ConfigError(f"data.num_workers: expected an integer >= 0, got {self.num_workers!r}")
        vs = self.val_split
        if isinstance(vs, bool) or not (vs in spec.val_splits or (isinstance(vs, int) and vs >= 1)):
            named = " or ".join(map(repr, spec.val_splits))
            owners = [s.title for s in all_datasets() if isinstance(vs, str) and vs in s.val_splits]
            if owners:
                raise ConfigError(f"data.val_split: {vs!r} exists only for {', '.join(owners)}; "
                                  f"use {named} or a number of ids")
            raise ConfigError(f"data.val_split: expected {', '.join(map(repr, spec.val_splits))} or a positive "
                              f"integer, got {vs!r}")
        for name in ("mean", "std"):
            value = tuple(getattr(self, name))
            if len(value) != 3:
                raise ConfigError(f"data.{name}: expected 3 numbers (R, G, B), got {value!r}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"data.std: expected positive numbers, got {tuple(self.std)!r}")
        a = self.augment
        if self.resize not in ("tensor", "pil"):
            raise ConfigError(f"data.resize: expected 'tensor' or 'pil', got {self.resize!r}")
        if self.epoch_length not in ("ids", "images"):
            raise ConfigError(f"data.epoch_length: expected 'ids' or 'images', got {self.epoch_length!r}")
        for name in ("flip", "erasing", "channel", "grey"):
            p = getattr(a, name)
            if not 0.0 <= float(p) <= 1.0:
                raise ConfigError(f"data.augment.{name}: expected a probability in [0, 1], got {p!r}")
        if isinstance(a.pad, bool) or not isinstance(a.pad, int) or a.pad < 0:
            raise ConfigError(f"data.augment.pad: expected an integer >= 0, got {a.pad!r}")

    def resolved_cache_dir(self) -> Path:
        """The cache folder to use (``cache_dir`` or the user's cache folder)."""
        return Path(self.cache_dir) if self.cache_dir else Path(default_cache_dir())
