"""Learning-rate schedule: linear warm-up then multi-step decay, stepped once per epoch."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vireid.config import ScheduleConfig


def warmup_multistep_factor(
    epoch: int,
    *,
    warmup_epochs: int,
    warmup_factor: float,
    milestones: Sequence[int],
    gamma: float,
    offset: int = 0,
) -> float:
    """The lr multiplier of (0-based) ``epoch``.

    With ``e = epoch + offset``: ``f = warmup_factor + (1 - warmup_factor) * e / warmup_epochs`` while
    ``e < warmup_epochs`` (else 1), times ``gamma ** (number of milestones <= e)``. This is the
    released ``WarmupMultiStepLR``; the release's step-before-epoch convention is ``offset=1``.
    """
    e = epoch + offset
    warm = 1.0
    if warmup_epochs > 0 and e < warmup_epochs:
        alpha = e / warmup_epochs
        warm = warmup_factor * (1.0 - alpha) + alpha
    return warm * gamma ** bisect_right(sorted(milestones), e)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over epochs from a ``ScheduleConfig``; call ``.step()`` after each epoch."""

    def factor(epoch: int) -> float:
        return warmup_multistep_factor(
            epoch,
            warmup_epochs=cfg.warmup_epochs,
            warmup_factor=cfg.warmup_factor,
            milestones=cfg.milestones,
            gamma=cfg.gamma,
            offset=cfg.offset,
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
