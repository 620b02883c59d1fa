"""``ReIDModel``: a trained model put to work on any images.

``ReIDModel.load(checkpoint)`` reads a checkpoint file or run directory through
``vireid.models.loading.load_model`` (the one reader of checkpoint formats); ``embed(images)`` returns
float32 N x D L2-normalised features computed exactly as ``vireid extract`` computes them: the same
decoder (``vireid.data.cache.decode_image``), the same test transform
(``vireid.data.transforms.build_test_transform`` of the checkpoint's data config), the model's configured
test feature (``model.extract``), flip averaging when the checkpoint's ``test.flip`` is set, and autocast
on CUDA when its ``train.amp`` is.

What the modality changes, per test feature (``ModelConfig.test_feature``; see
``vireid.models.config``):

- ``vd``/``ib`` with paper routing: ``z_shared``/``v_shared`` nothing (every image goes through the
  shared encoder E_S); ``z_specific``/``v_specific``/``z_concat``/``v_concat`` the specific part (a
  visible image goes through E_V, an infrared one through E_I).
- ``vd``/``ib`` with released routing, and ``released_concat``: nothing (every image goes through every
  encoder, the infrared one on its greyscale).
- ``baseline``: every feature (its first stage, conv1..layer1, is modality-specific).

``modality=None`` decides per image: three equal channels = infrared (``vireid.inference.images``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vireid.config import Config
from vireid.data.records import MODALITY_NAMES
from vireid.data.transforms import build_test_transform
from vireid.inference.images import (
    ImageInputError,
    guess_modality,
    parse_modality,
    split_batch,
    to_uint8_image,
)
from vireid.models.build import get_model
from vireid.models.config import ModelConfig
from vireid.utils.device import autocast_settings, resolve_device


def is_modality_dependent(cfg: ModelConfig) -> bool:
    """Whether the test feature of a model with this config depends on the image's modality."""
    return get_model(cfg.name).modality_dependent(cfg)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ReIDModel:
    """A model in eval mode with the preprocessing and test feature of its checkpoint."""

    def __init__(self, network: nn.Module, config: Config, *, checkpoint: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.device = resolve_device(device)
        self.network = network.to(self.device).eval()
        self._config = config
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._sha256: str | None = None
        self.transform = build_test_transform(config.data)

    @classmethod
    def load(cls, checkpoint: str | os.PathLike, device: torch.device | str = "auto",
             format: str = "auto") -> ReIDModel:
        """The model a checkpoint file or run directory holds, on ``device`` (``auto``: CUDA if present).

        ``format``: ``auto`` (recognised from the contents), ``vireid`` or ``released`` (the authors'
        ``model_best.pth.tar``: its 8192-d feature with its PIL preprocessing), as ``load_model`` reads them.
        """
        from vireid.models.loading import load_model, resolve_checkpoint

        path = resolve_checkpoint(checkpoint)
        dev = resolve_device(device)
        network, config, _ = load_model(path, dev, format=format)
        return cls(network, config, checkpoint=path, device=dev)

    # ---- inspection ---------------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        """The checkpoint's full configuration."""
        return self._config

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) every image is resized to."""
        return int(self._config.data.height), int(self._config.data.width)

    @property
    def feature(self) -> str:
        """The test-time feature's name (``model.test_feature`` or the model's default)."""
        return self._config.model.feature

    @property
    def feature_dim(self) -> int:
        """D, the length of a feature."""
        return int(self.network.feature_dim)

    @property
    def modality_dependent(self) -> bool:
        """Whether ``modality`` changes the feature (see the module docstring)."""
        return is_modality_dependent(self._config.model)

    @property
    def flip(self) -> bool:
        """Whether features average the image's and its mirror's (the checkpoint's ``test.flip``)."""
        return bool(self._config.test.flip)

    @property
    def sha256(self) -> str:
        """SHA-256 of the checkpoint file (the model's identity in indexes and exports)."""
        if self._sha256 is None:
            if self.checkpoint is None:
                raise ImageInputError("this model was not loaded from a checkpoint file: it has no hash")
            self._sha256 = file_sha256(self.checkpoint)
        return self._sha256

    def identity(self) -> dict[str, Any]:
        """What identifies the model: checkpoint hash and path, model, feature, dimension, config."""
        return {
            "sha256": self.sha256,
            "path": str(self.checkpoint),
            "model": self._config.model.name,
            "feature": self.feature,
            "feature_dim": self.feature_dim,
            "modality_dependent": self.modality_dependent,
            "config": self._config.to_dict(),
        }

    def __repr__(self) -> str:
        h, w = self.input_size
        return (f"ReIDModel({self._config.model.name}, feature={self.feature}, dim={self.feature_dim}, "
                f"input={h}x{w}, device={self.device}, checkpoint={self.checkpoint})")

    # ---- embedding ----------------------------------------------------------------------------------
    def prepare(self, image: Any, what: str = "image") -> tuple[torch.Tensor, int]:
        """One image -> (normalised float32 [3, H, W] input, its modality guessed from its channels)."""
        img = to_uint8_image(image, what)
        return self.transform(img), guess_modality(img)

    @torch.no_grad()
    def embed_batch(self, batch: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """Features (float32 [N, D] on the CPU, not normalised) of a prepared batch, as ``extract`` does."""
        images = batch.to(self.device, non_blocking=True)
        mod = torch.as_tensor(modality, dtype=torch.long).to(self.device)
        use_amp, dtype = autocast_settings(self.device, bool(self._config.train.amp))
        with torch.autocast(device_type=self.device.type, dtype=dtype) if use_amp else nullcontext():
            feats = self.network.extract(images, mod).float()
            if self.flip:
                feats = (feats + self.network.extract(torch.flip(images, dims=[3]), mod).float()) / 2
        return feats.cpu()

    def embed(
        self,
        images: Any,
        modality: str | int | Sequence[str | int | None] | None = None,
        batch_size: int | None = None,
        *,
        normalize: bool = True,
        progress: bool = False,
    ) -> np.ndarray:
        """Features of ``images`` (paths, PIL images, uint8 arrays or tensors; one image or a sequence;
        a 4-D uint8 batch) as float32 N x D, L2-normalised unless ``normalize=False``.

        ``modality``: ``"visible"``, ``"infrared"``, ``None``/``"auto"`` (per image: three equal channels =
        infrared), or one such value per image. ``batch_size`` defaults to the checkpoint's
        ``test.batch_size``.
        """
        return self.embed_with_modality(images, modality, batch_size, normalize=normalize, progress=progress)[0]

    def embed_with_modality(
        self,
        images: Any,
        modality: str | int | Sequence[str | int | None] | None = None,
        batch_size: int | None = None,
        *,
        normalize: bool = True,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``embed``, plus the modality each image was embedded as (int8: 0 visible, 1 infrared)."""
        items = split_batch(images)
        mods = self._modalities(modality, len(items))
        bs = int(batch_size or self._config.test.batch_size)
        if bs < 1:
            raise ImageInputError(f"batch_size: expected a positive integer, got {batch_size!r}")
        chunks = [torch.zeros(0, self.feature_dim)]
        used: list[int] = []
        starts: Iterator[int] | Any = range(0, len(items), bs)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embed", unit="batch", leave=False)
        for start in starts:
            prepared = [self.prepare(x, f"image {start + i}") for i, x in enumerate(items[start:start + bs])]
            mod = [m if m is not None else g for m, (_, g) in zip(mods[start:start + bs], prepared, strict=True)]
            chunks.append(self.embed_batch(torch.stack([p[0] for p in prepared]), torch.tensor(mod)))
            used += mod
        feats = torch.cat(chunks)
        if normalize:
            feats = torch.nn.functional.normalize(feats, dim=1)
        return feats.numpy().astype(np.float32, copy=False), np.asarray(used, dtype=np.int8)

    @staticmethod
    def _modalities(modality: Any, n: int) -> list[int | None]:
        if isinstance(modality, np.ndarray | torch.Tensor):
            modality = modality.tolist()
        if isinstance(modality, Sequence) and not isinstance(modality, str):
            if len(modality) != n:
                raise ImageInputError(f"modality: {len(modality)} values for {n} images")
            return [parse_modality(m, f"modality[{i}]") for i, m in enumerate(modality)]
        return [parse_modality(modality)] * n


def modality_name(modality: int) -> str:
    """``visible`` or ``infrared``."""
    return MODALITY_NAMES[int(modality)]
