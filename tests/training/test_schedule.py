"""Warm-up multi-step schedule, including the released step-before-epoch convention."""

from __future__ import annotations

import pytest
import torch

from vireid.config import ScheduleConfig
from vireid.training.schedule import build_scheduler, warmup_multistep_factor


def lrs(cfg: ScheduleConfig, epochs: int, base: float = 2.6e-4) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = build_scheduler(opt, cfg)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_decay():
    lr = lrs(ScheduleConfig(warmup_epochs=10, warmup_factor=0.01, milestones=(210,), gamma=0.1), 215)
    assert lr[0] == pytest.approx(2.6e-6)
    assert lr[5] == pytest.approx(2.6e-4 * (0.01 * 0.5 + 0.5))
    assert lr[10] == pytest.approx(2.6e-4) and lr[209] == pytest.approx(2.6e-4)
    assert lr[210] == pytest.approx(2.6e-5)


def test_released_offset_matches_the_released_effective_lr():
    # released_code.md §3: 2.83e-5 at epoch 0, 2.34e-4 at epoch 8, 2.6e-4 for 9-208, 2.6e-5 from 209.
    lr = lrs(ScheduleConfig(offset=1), 212)
    assert lr[0] == pytest.approx(2.834e-5, rel=1e-3)
    assert lr[8] == pytest.approx(2.3426e-4, rel=1e-3)
    assert lr[9] == pytest.approx(2.6e-4) and lr[208] == pytest.approx(2.6e-4)
    assert lr[209] == pytest.approx(2.6e-5)


def test_no_warmup_and_several_milestones():
    f = [warmup_multistep_factor(e, warmup_epochs=0, warmup_factor=0.1, milestones=(2, 4), gamma=0.5)
         for e in range(6)]
    assert f == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
