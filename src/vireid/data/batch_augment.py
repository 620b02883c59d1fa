"""The training augmentation applied to a whole batch of uint8 images at once, pixel for pixel the same as the
per-sample reference (``transforms.build_train_transform`` under ``torch.manual_seed(seed)``).

Each image's random choices (flip, crop offset, greyscale, channel, erasing box) are drawn from its own
seed in the very order in which torchvision's transforms draw them from the global generator; then each
augmentation runs once on the images it applies to instead of once per image. The per-sample path stays the
reference (tests/data/test_batch_augment.py holds the two equal); this one is several times faster
(benchmarks/bench_input.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as nnf
from torch.utils.data import get_worker_info
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .config import DataConfig
from .records import VISIBLE
from .transforms import ScaleNormalize


class Params(NamedTuple):
    """One image's random choices: ``channel`` -1 (none), 0-2 (that channel) or 3 (greyscale); ``erase``
    (top, left, height, width) or None."""

    flip: bool
    top: int
    left: int
    grey: bool
    channel: int
    erase: tuple[int, int, int, int] | None


def _happens(p: float, g: torch.Generator, shape: tuple[int, ...] = (1,)) -> bool:
    """torchvision's ``_RandomApplyTransform`` test (``torch.rand(1) >= p`` skips) on ``g``."""
    return not bool(torch.rand(shape, generator=g) >= p)


class BatchTrainTransform:
    """``build_train_transform(cfg, modality)`` for a batch: uint8 [B, 3, H, W] -> normalised float32."""

    def __init__(self, cfg: DataConfig) -> None:
        self.cfg = cfg
        self.size = (cfg.height, cfg.width)
        self.normalise = ScaleNormalize(cfg.mean, cfg.std)
        eraser = v2.RandomErasing(p=max(cfg.augment.erasing, 1e-9), value=0)  # torchvision's own scale/ratio
        self.erase_scale = tuple(float(s) for s in eraser.scale)
        self.erase_log_ratio = tuple(float(r) for r in torch.log(torch.tensor(eraser.ratio)))

    def draw(self, seed: int, modality: int) -> Params:
        """The random choices of one image, drawn as the per-sample transform draws them after
        ``torch.manual_seed(seed)``."""
        a = self.cfg.augment
        g = torch.Generator().manual_seed(int(seed))
        flip = a.flip > 0 and _happens(a.flip, g)
        top = left = 0
        if a.pad > 0:  # v2.RandomCrop on the padded image: top, then left
            top = int(torch.randint(0, 2 * a.pad + 1, size=(), generator=g))
            left = int(torch.randint(0, 2 * a.pad + 1, size=(), generator=g))
        visible = modality == VISIBLE
        grey = a.grey > 0 and visible and _happens(a.grey, g)
        channel = -1
        if a.channel > 0 and visible and _happens(a.channel, g, ()):  # ChannelAugment
            channel = int(torch.randint(4, (), generator=g))
        erase = self._erase_box(g) if a.erasing > 0 and _happens(a.erasing, g) else None
        return Params(flip, top, left, grey, channel, erase)

    def _erase_box(self, g: torch.Generator) -> tuple[int, int, int, int] | None:
        """v2.RandomErasing's box: 10 tries at an area and aspect ratio that fit, else nothing erased."""
        img_h, img_w = self.size
        area = img_h * img_w
        for _ in range(10):
            erase_area = area * torch.empty(1).uniform_(*self.erase_scale, generator=g).item()
            aspect = torch.exp(torch.empty(1).uniform_(*self.erase_log_ratio, generator=g)).item()
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if not (h < img_h and w < img_w):
                continue
            i = int(torch.randint(0, img_h - h + 1, size=(1,), generator=g).item())
            j = int(torch.randint(0, img_w - w + 1, size=(1,), generator=g).item())
            return i, j, h, w
        return None

    def __call__(self, images: torch.Tensor, modality: Sequence[int], seeds: Sequence[int]) -> torch.Tensor:
        """Augment and normalise ``images`` (uint8 [B, 3, H, W], any strides, not modified) drawn with ``seeds``.

        One pass per image over data that stays in the CPU cache: the crop is a view of the padded batch
        (flip-then-crop at ``left`` is crop-then-flip at ``2 pad - left``), the colour choices act on that
        uint8 view, and the float conversion and normalisation write straight into the batch (in shared
        memory inside a loader worker, so the batch is not copied again on its way out).
        """
        params = [self.draw(s, int(m)) for s, m in zip(seeds, modality, strict=True)]
        pad = self.cfg.augment.pad
        padded = nnf.pad(images, (pad, pad, pad, pad)) if pad > 0 else images
        h, w = self.size
        out = _batch_buffer((len(params), 3, h, w))
        scale, shift = self.normalise.scale, self.normalise.shift
        for i, p in enumerate(params):
            left = 2 * pad - p.left if p.flip else p.left
            img = padded[i, :, p.top : p.top + h, left : left + w]
            if p.flip:
                img = img.flip(-1)
            if p.grey:
                img = F.rgb_to_grayscale(img, num_output_channels=3)
            if p.channel == 3:
                img = F.rgb_to_grayscale(img, num_output_channels=3)
            elif p.channel >= 0:
                img = img[p.channel : p.channel + 1].expand(3, -1, -1)
            o = out[i]
            o.copy_(img)
            o.mul_(scale).add_(shift)
            if p.erase is not None:
                top, left_, eh, ew = p.erase
                o[:, top : top + eh, left_ : left_ + ew] = 0
        return out


def _batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 tensor; in a DataLoader worker, in shared memory (as torch's default collate
    allocates its output), so that sending the batch to the main process does not copy it."""
    if get_worker_info() is None:
        return torch.empty(shape)
    try:
        storage = torch.empty(0)._typed_storage()._new_shared(math.prod(shape), device="cpu")
        return torch.empty(0).new(storage).view(shape)
    except (AttributeError, RuntimeError):  # private API moved: an ordinary tensor (one more copy)
        return torch.empty(shape)
