"""The result of a protocol: per-trial metrics, their mean and standard deviation, sizes, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import RankingMetrics

RANKS = (1, 5, 10, 20)
METRIC_KEYS = tuple(f"rank{k}" for k in RANKS) + ("mAP", "mINP")
_LABELS = {"rank1": "Rank-1", "rank5": "Rank-5", "rank10": "Rank-10", "rank20": "Rank-20"}


def trial_values(metrics: RankingMetrics) -> dict[str, float]:
    """Rank-1/5/10/20, mAP and mINP of one trial, in percent."""
    values = {f"rank{k}": 100.0 * metrics.rank(k) for k in RANKS if k <= len(metrics.cmc)}
    values["mAP"] = 100.0 * metrics.mAP
    values["mINP"] = 100.0 * metrics.mINP
    return values


@dataclass
class ProtocolResult:
    """Metrics of a protocol over its trials.

    ``per_trial`` holds one dict per trial: ``trial`` and the metric keys (percent), plus
    ``num_query``, ``num_gallery`` and ``num_valid``. ``mean``/``std`` are taken over the trials
    (``std`` is the population standard deviation, ``ddof=0``; 0 for a single trial).
    """

    dataset: str
    per_trial: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)

    def _column(self, key: str) -> np.ndarray:
        return np.array([t[key] for t in self.per_trial], dtype=np.float64)

    @property
    def mean(self) -> dict[str, float]:
        return {k: float(self._column(k).mean()) for k in METRIC_KEYS}

    @property
    def std(self) -> dict[str, float]:
        return {k: float(self._column(k).std()) for k in METRIC_KEYS}

    def _size(self, key: str) -> int | list[int]:
        sizes = [int(t[key]) for t in self.per_trial]
        return sizes[0] if len(set(sizes)) == 1 else sizes

    @property
    def num_query(self) -> int | list[int]:
        return self._size("num_query")

    @property
    def num_gallery(self) -> int | list[int]:
        return self._size("num_gallery")

    @property
    def num_valid(self) -> int | list[int]:
        return self._size("num_valid")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: metric means (percent), ``std``, ``per_trial``, sizes and ``settings``."""
        out: dict[str, Any] = {"dataset": self.dataset}
        out.update(self.mean)
        out["std"] = self.std
        out["per_trial"] = [dict(t) for t in self.per_trial]
        out["num_query"] = self.num_query
        out["num_gallery"] = self.num_gallery
        out["num_valid"] = self.num_valid
        out["num_trials"] = len(self.per_trial)
        out["settings"] = dict(self.settings)
        return out

    def format_table(self) -> str:
        """A readable table: settings, sizes, then mean ± std of every metric."""
        settings = "  ".join(f"{k}={_fmt(v)}" for k, v in self.settings.items())
        mean, std = self.mean, self.std
        lines = [
            f"{self.dataset}  {settings}",
            f"trials {len(self.per_trial)}  queries {_fmt(self.num_query)} (with a match: "
            f"{_fmt(self.num_valid)})  gallery {_fmt(self.num_gallery)}",
            f"{'metric':<8} {'mean':>7}   {'std':>5}",
        ]
        lines += [f"{_LABELS.get(k, k):<8} {mean[k]:7.2f} ± {std[k]:5.2f}" for k in METRIC_KEYS]
        return "\n".join(lines)

    __str__ = format_table


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v) if len(set(v)) > 1 else str(v[0])
    return str(v)
