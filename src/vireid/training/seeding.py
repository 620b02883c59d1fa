"""Seeds: one call seeds every global generator; per-process seeds for multi-process runs."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def process_seed(seed: int, epoch: int, rank: int, step: int = 0) -> int:
    """The seed of process ``rank`` for ``epoch`` (resumed at ``step``) of a multi-process run (63 bits).

    Every process starts from ``train.seed`` (same model, DDP broadcasts it anyway); at each epoch of a
    torchrun job each process is reseeded with its own value so the ranks draw different dropout masks and
    bottleneck noise. One process is never reseeded: its random stream is the plain ``train.seed`` one.
    """
    entropy = [int(seed) & 0xFFFFFFFF, int(epoch), int(rank)] + ([int(step)] if step else [])
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)
