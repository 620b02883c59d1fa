"""The loss section of the configuration.

Each default is marked with its source: **paper**, **released** (the released code, where the paper is
silent) or **ours**. Every term is logged unweighted; ``loss`` is the weighted total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vireid.errors import ConfigError


@dataclass
class LossConfig:
    """Weights and settings of every term.

    ``branch_weights``: weight of each branch's identity and metric losses (each the mean over the
    branch's rows). With released routing the shared branch holds the raw and the greyscale rows, so
    0.5 on S equals the released 0.25 + 0.25. ``temperature`` T softens the distributions of VSD, VCD
    and VML; with ``kl_numerics: correct`` each is multiplied by T^2 (Hinton et al.) so that gradients
    keep their scale when T changes (no effect at the default T = 1). ``kl_numerics: released``
    reproduces the released ``F.kl_div(softmax(teacher), softmax(student))`` call (no T^2, and T on VSD
    only: the release's VCD call has no temperature).
    ``beta`` weighs KL(q(z|v) || N(0, I)) in the ``ib`` model only; VSD / VCD / VML apply to ``vd`` only;
    ``prior_weight`` adds the same KL term to ``vd`` (a switch: the paper's objective has none).
    ``metric_feature``: the feature the metric loss sees, ``neck`` (post-BN; released) or ``pooled``
    (pre-BN, the BNNeck convention); None = ``neck`` for vd/ib, ``pooled`` for the baseline (ours, as
    AGW's triplet; a recorded choice, see docs/released.md).
    """

    ce_weight: float = 1.0  # released
    label_smoothing: float = 0.1  # released
    metric: Literal["triplet", "ranking"] = "triplet"  # paper ("usual re-id losses"); released: "ranking"
    metric_weight: float = 1.0  # released
    metric_feature: Literal["neck", "pooled"] | None = None
    margin: float = 0.3  # ours: the usual batch-hard triplet margin
    # released Rank_loss: (margin, alpha) for same-modality and cross-modality pairs, negative weighting T
    ranking_intra: tuple[float, float] = (0.9, 2.2)  # released
    ranking_cross: tuple[float, float] = (1.0, 2.0)  # released
    ranking_t: float = 1.0  # released
    branch_weights: dict[str, float] = field(default_factory=lambda: {"V": 0.5, "I": 0.5, "S": 0.5})  # released
    vsd_weight: float = 2.0  # released
    vcd_weight: float = 2.0  # released
    vml_weight: float = 2.0  # ours (released: VML folded into VCD's weight, not implemented)
    cml_weight: float = 0.0  # paper (no such term); released: 8.0 (Sinkhorn OT between p(y|v_V) and p(y|v_I))
    cml_eps: float = 0.01  # released
    temperature: float = 1.0  # released
    kl_numerics: Literal["correct", "released"] = "correct"  # paper
    beta: float = 1e-3  # ours, within Alemi et al.'s range (ib only)
    # vd only: weight of the conventional IB's prior term KL(q(z|v) || N(0, I)) added to VD. The paper's
    # objective has none (its bottleneck is Gaussian, but no term acts on the std): 0 = the paper.
    prior_weight: float = 0.0

    def validate(self) -> None:
        """Raise a ConfigError naming the first invalid option."""
        if self.metric not in ("triplet", "ranking"):
            raise ConfigError(f"loss.metric: expected 'triplet' or 'ranking', got {self.metric!r}")
        if self.metric_feature not in (None, "neck", "pooled"):
            raise ConfigError(f"loss.metric_feature: expected 'neck' or 'pooled', got {self.metric_feature!r}")
        if self.kl_numerics not in ("correct", "released"):
            raise ConfigError(f"loss.kl_numerics: expected 'correct' or 'released', got {self.kl_numerics!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"loss.label_smoothing: expected a value in [0, 1), got {self.label_smoothing!r}")
        if self.cml_eps <= 0:
            raise ConfigError(f"loss.cml_eps: expected a positive number, got {self.cml_eps!r}")
        if self.temperature <= 0:
            raise ConfigError(f"loss.temperature: expected a positive number, got {self.temperature!r}")
        for name in ("ce_weight", "metric_weight", "vsd_weight", "vcd_weight", "vml_weight", "cml_weight", "beta",
                     "prior_weight", "margin"):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name}: expected a non-negative number, got {getattr(self, name)!r}")
        unknown = set(self.branch_weights) - {"V", "I", "S"}
        if unknown:
            raise ConfigError(f"loss.branch_weights: expected keys V, I, S, got {sorted(unknown)}")
        for pair_name in ("ranking_intra", "ranking_cross"):
            if len(getattr(self, pair_name)) != 2:
                raise ConfigError(f"loss.{pair_name}: expected [margin, alpha], got {getattr(self, pair_name)!r}")
