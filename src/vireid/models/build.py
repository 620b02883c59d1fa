"""``build_model``: the registry of models."""

from __future__ import annotations

from torch import nn

from vireid.errors import ConfigError
from vireid.models.baseline import TwoStreamBaseline
from vireid.models.config import ModelConfig
from vireid.models.ib import VariationalIBNet
from vireid.models.vd import VariationalDistillationNet

MODELS: dict[str, type[nn.Module]] = {
    "vd": VariationalDistillationNet,
    "ib": VariationalIBNet,
    "baseline": TwoStreamBaseline,
}


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """The model ``cfg.name`` for ``num_classes`` training identities (ConfigError on a bad config)."""
    cfg.validate()
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"number of training identities: expected an integer >= 2, got {num_classes!r}")
    return MODELS[cfg.name](cfg, num_classes)
