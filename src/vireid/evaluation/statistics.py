"""Statistics over repeated runs (training seeds): mean and spread, and paired differences with intervals.

A protocol's 10 trials re-sample the gallery of one trained model; they say nothing about how much a
result moves when the model is trained again. Comparisons between methods are made over training seeds:
each seed gives one value (its 10-trial mean), and two methods trained with the same seeds are compared by
the per-seed differences (a paired comparison, which removes what the seeds share: dataset draw, order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value) of per-seed values."""

    mean: float
    std: float
    n: int

    def format(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``a_i - b_i`` over paired values with a Student-t confidence interval.

    ``low``/``high`` are NaN with fewer than two pairs (no spread to estimate). The interval is
    ``mean ± t_{(1 + c) / 2, n - 1} · sd / sqrt(n)``, sd the sample standard deviation of the differences.
    """

    mean: float
    low: float
    high: float
    std: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0 (a difference beyond seed noise)."""
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 2) -> str:
        if self.n < 2:
            return f"{self.mean:+.{digits}f} (n={self.n})"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def spread(values: Sequence[float]) -> Spread:
    """Mean ± sample standard deviation of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("spread: no values")
    return Spread(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size))


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """The mean paired difference ``a - b`` and its ``confidence`` interval (Student t, n - 1 dof)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired_difference: expected two equal-length non-empty sequences, got {x.shape} and {y.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"paired_difference: confidence must be in (0, 1), got {confidence}")
    d = x - y
    n = int(d.size)
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(mean, math.nan, math.nan, 0.0, n, confidence)
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return PairedDifference(mean, mean - half, mean + half, sd, n, confidence)
