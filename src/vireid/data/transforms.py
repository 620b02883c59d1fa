"""Image transforms on uint8 tensors [3, H, W] (torchvision.transforms.v2).

The resize is a separate, deterministic step (``resize_image``) so that decoding per sample and reading
from the decoded-image cache give the same pixels; the training transform takes a resized uint8 image
and applies flip, pad-and-crop, CAJ channel augmentation, scaling + normalisation and random erasing.
Randomness comes from torch's default generator, which the datasets seed per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .config import DataConfig
from .records import VISIBLE


def resize_image(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a uint8 image [3, h, w] to [3, height, width] (bilinear, antialiased); no-op if already that size."""
    if tuple(img.shape[-2:]) == (height, width):
        return img
    return F.resize(img, [height, width], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


class ChannelAugment(torch.nn.Module):
    """CAJ channel augmentation (Ye et al., ICCV 2021): with probability ``p`` replace a uint8 RGB image by
    one of its channels replicated three times (R, G or B) or by its greyscale, each with chance 1/4."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or torch.rand(()) >= self.p:
            return img
        choice = int(torch.randint(4, ()))
        if choice == 3:
            return F.rgb_to_grayscale(img, num_output_channels=3)
        return img[choice : choice + 1].expand(3, -1, -1).clone()

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ScaleNormalize(torch.nn.Module):
    """uint8 [3, H, W] -> float32 ``(img / 255 - mean) / std``.

    The same as ``v2.ToDtype(float32, scale=True)`` then ``v2.Normalize(mean, std)``, fused into two
    in-place operations: about 8x faster, and per-sample normalisation is a large share of the input cost.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        self.register_buffer("scale", (1.0 / (255.0 * s)).to(torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer("shift", (-m / s).to(torch.float32).view(3, 1, 1), persistent=False)
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img.to(torch.float32).mul_(self.scale).add_(self.shift)

    def extra_repr(self) -> str:
        return f"mean={self.mean}, std={self.std}"


def _normalise(cfg: DataConfig) -> list[torch.nn.Module]:
    return [ScaleNormalize(cfg.mean, cfg.std)]


def build_train_transform(cfg: DataConfig, modality: int = VISIBLE) -> v2.Compose:
    """Augmentation of a resized uint8 image of ``modality`` -> normalised float32 [3, H, W].

    Random greyscale and channel augmentation are applied to visible images only (infrared images are one
    channel already).
    """
    a = cfg.augment
    steps: list[torch.nn.Module] = []
    if a.flip > 0:
        steps.append(v2.RandomHorizontalFlip(p=a.flip))
    if a.pad > 0:
        steps += [v2.Pad(a.pad, fill=0), v2.RandomCrop((cfg.height, cfg.width))]
    if a.grey > 0 and modality == VISIBLE:
        steps.append(v2.RandomGrayscale(p=a.grey))
    if a.channel > 0 and modality == VISIBLE:
        steps.append(ChannelAugment(a.channel))
    steps += _normalise(cfg)
    if a.erasing > 0:
        steps.append(v2.RandomErasing(p=a.erasing, value=0))
    return v2.Compose(steps)


class PILTestTransform:
    """The released code's test transform (``data.resize: pil``): torchvision ``transforms.Resize`` on a
    PIL image (PIL's bilinear filter), ``ToTensor``, ``Normalize``. Takes a uint8 tensor [3, h, w]
    (converted to PIL losslessly) or a PIL image; returns float32 [3, H, W]."""

    def __init__(self, cfg: DataConfig) -> None:
        from torchvision import transforms

        self.steps = transforms.Compose([
            transforms.Resize((cfg.height, cfg.width), interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.ToTensor(),
            transforms.Normalize(cfg.mean, cfg.std),
        ])

    def __call__(self, img: Any) -> torch.Tensor:
        if isinstance(img, torch.Tensor):
            img = F.to_pil_image(img)
        return self.steps(img)

    def __repr__(self) -> str:
        return f"PILTestTransform({self.steps})"


def build_test_transform(cfg: DataConfig) -> Callable[[Any], torch.Tensor]:
    """Test-time transform: resize a uint8 image of any size to the input size and normalise it
    (``cfg.resize``: torchvision's antialiased tensor resize, or the release's PIL resize)."""
    if cfg.resize == "pil":
        return PILTestTransform(cfg)
    resize = v2.Resize([cfg.height, cfg.width], interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
    return v2.Compose([resize, *_normalise(cfg)])
