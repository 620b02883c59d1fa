"""Images as the inference layer takes them: any input turned into an RGB uint8 tensor, the modality rule,
folder listing, and the identity a SYSU-MM01 or RegDB path carries.

Decoding goes through ``vireid.data.cache.decode_image`` (the decoder of ``vireid extract``), so a file
gives the same pixels here as in evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vireid.data.cache import decode_image
from vireid.data.records import IMAGE_EXTENSIONS, INFRARED, VISIBLE
from vireid.datasets import all_datasets
from vireid.errors import VireidError

MODALITIES = {"visible": VISIBLE, "infrared": INFRARED}
# Mean absolute difference between colour channels (grey levels) below which an image counts as infrared:
# infrared cameras store one intensity in three equal channels; JPEG keeps grey pixels grey.
GREY_TOLERANCE = 1.0


class ImageInputError(VireidError):
    """An image given to the inference API is of an unsupported type, shape or dtype."""


def to_uint8_image(image: Any, what: str = "image") -> torch.Tensor:
    """An RGB uint8 tensor [3, H, W] from a path, a PIL image, a uint8 array (H x W, H x W x 1/3/4) or a
    uint8 tensor ([3, H, W], [1, H, W], [H, W]). One-channel inputs are copied to three channels; a
    fourth (alpha) channel is dropped, as PIL's ``convert("RGB")`` does."""
    if isinstance(image, str | os.PathLike):
        return decode_image(image)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageInputError(f"{what}: expected a uint8 array (0..255), got dtype {image.dtype}")
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
            raise ImageInputError(f"{what}: expected an H x W or H x W x 3 uint8 array, got shape {image.shape}")
        t = torch.from_numpy(np.ascontiguousarray(image[:, :, :3])).permute(2, 0, 1)
        return (t.expand(3, -1, -1) if t.shape[0] == 1 else t).contiguous()
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise ImageInputError(
                f"{what}: expected a uint8 tensor (0..255; embed resizes and normalises), got {image.dtype}"
            )
        t = image.detach().cpu()
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ImageInputError(f"{what}: expected a [3, H, W] or [H, W] uint8 tensor, got shape {tuple(t.shape)}")
        return (t.expand(3, -1, -1) if t.shape[0] == 1 else t).contiguous()
    raise ImageInputError(
        f"{what}: expected a path, a PIL image, a uint8 array or a uint8 tensor, got {type(image).__name__}"
    )


def split_batch(images: Any) -> list[Any]:
    """A list of single images from one image, a sequence of images, or a 4-D uint8 batch
    (array N x H x W x 3, tensor N x 3 x H x W)."""
    if isinstance(images, np.ndarray | torch.Tensor) and images.ndim == 4:
        return list(images)
    if isinstance(images, str | os.PathLike | np.ndarray | torch.Tensor) or not isinstance(images, Sequence):
        return [images]
    return list(images)


def guess_modality(image: torch.Tensor) -> int:
    """``INFRARED`` if the three channels of a uint8 [3, H, W] image are equal (mean absolute difference
    below ``GREY_TOLERANCE`` grey levels), else ``VISIBLE``."""
    x = image.to(torch.int16)
    diff = max(float((x[0] - x[1]).abs().float().mean()), float((x[1] - x[2]).abs().float().mean()))
    return INFRARED if diff < GREY_TOLERANCE else VISIBLE


def parse_modality(value: Any, what: str = "modality") -> int | None:
    """``None``/``"auto"`` -> None (decided per image); ``"visible"``/``"infrared"`` or 0/1 -> that value."""
    if value is None or value == "auto":
        return None
    if isinstance(value, str) and value in MODALITIES:
        return MODALITIES[value]
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and int(value) in (VISIBLE, INFRARED):
        return int(value)
    raise ImageInputError(f"{what}: expected visible, infrared or auto (None), got {value!r}")


@dataclass(frozen=True)
class PathIdentity:
    """What a path in a known dataset layout says about its image (``pid``/``camera`` -1 if unknown)."""

    pid: int = -1
    camera: int = -1
    modality: int | None = None
    layout: str | None = None


def path_identity(path: str | os.PathLike) -> PathIdentity:
    """Person id, camera and modality of a path whose last three parts follow a registered dataset's layout
    (SYSU-MM01 ``camC/PPPP/file``, RegDB ``Visible|Thermal/<id>/file``); an empty identity otherwise."""
    parts = Path(path).parts
    for spec in all_datasets():
        found = spec.identify(parts) if spec.identify is not None else None
        if found is not None:
            pid, camera, modality = found
            return PathIdentity(pid, camera, modality, spec.name)
    return PathIdentity()


@dataclass
class FolderListing:
    """Image files under a folder (POSIX paths relative to it, sorted) and how many other files were seen."""

    root: Path
    paths: list[str]
    other_files: int


def list_image_files(root: str | os.PathLike) -> FolderListing:
    """Every ``.jpg/.jpeg/.png/.bmp`` file under ``root`` (recursive, any layout; hidden folders and files
    skipped), sorted by relative path. A missing root is an ImageInputError."""
    root = Path(root)
    if not root.is_dir():
        raise ImageInputError(f"--images {root} does not exist or is not a directory")
    paths: list[str] = []
    other = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if name.startswith("."):
                continue
            if name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append((rel_dir / name).as_posix())
            else:
                other += 1
    return FolderListing(root, sorted(paths), other)
