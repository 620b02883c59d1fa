"""The conventional variational information bottleneck (Alemi et al., ICLR 2017) on the VD architecture.

Same encoders, Gaussian bottlenecks and classifiers as ``vd``; only the objective differs (see
``vireid.losses.criteria``): cross-entropy (and the metric loss) plus beta * KL(q(z|v) || N(0, I)),
without VSD / VCD / VML. This is the paper's point of comparison.
"""

from __future__ import annotations

from vireid.errors import ConfigError
from vireid.models.config import ModelConfig
from vireid.models.vd import VariationalDistillationNet


def check_ib_config(cfg: ModelConfig) -> None:
    """The ib objective's KL term needs the Gaussian bottleneck."""
    if cfg.bottleneck != "gaussian":
        raise ConfigError("model.bottleneck: the ib model needs the 'gaussian' bottleneck (its KL term)")


class VariationalIBNet(VariationalDistillationNet):
    """The ``ib`` model: the vd network with a Gaussian bottleneck (required for the KL term)."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__(cfg, num_classes)
