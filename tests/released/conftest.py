"""Released-model tests: one thread (a shared CPU makes extra threads slow), the oracle folder, and the
oracle's deterministic release-format state dict (88 M values: filled once per session)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

ORACLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "released-vd"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def oracle_fill(index: int, key: str, shape: list[int] | tuple[int, ...], dtype: str = "float32") -> torch.Tensor:
    """The oracle README's deterministic value of manifest entry ``index``: a CPU generator seeded
    with 1000 + index draws r ~ N(0, 1) in float64, then by the key's last component: int64 zeros,
    running_var 1 + 0.25 |r|, running_mean / bias 0.05 r, gamma 0.1 r, other 1-d 1 + 0.05 r,
    n-d r sqrt(1 / fan_in); cast to float32."""
    if dtype == "int64":
        return torch.zeros(shape, dtype=torch.int64)
    r = torch.randn(shape, generator=torch.Generator().manual_seed(1000 + index), dtype=torch.float64)
    last = key.rsplit(".", 1)[1]
    if last == "running_var":
        value = 1 + 0.25 * r.abs()
    elif last in ("running_mean", "bias"):
        value = 0.05 * r
    elif last == "gamma":
        value = 0.1 * r
    elif len(shape) <= 1:
        value = 1 + 0.05 * r
    else:
        value = r * math.sqrt(1 / math.prod(shape[1:]))
    return value.float()


@pytest.fixture(scope="session")
def oracle_dir() -> Path:
    if not ORACLE.is_dir():
        pytest.skip(f"the oracle folder {ORACLE} is not here")
    return ORACLE


@pytest.fixture(scope="session")
def released_state_dict(oracle_dir) -> dict[str, torch.Tensor]:
    """The release's state dict (its key names, in order) with the oracle's deterministic values."""
    manifest = json.loads((oracle_dir / "state_dict_manifest.json").read_text())
    return {key: oracle_fill(i, key, shape, dtype) for i, (key, shape, dtype) in enumerate(manifest)}
