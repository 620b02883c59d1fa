"""RegDB evaluation protocol (Nguyen et al. 2017 / Ye et al.), read from the original layout.

Trial t (1..10): the images of ``idx/test_visible_t.txt`` and ``idx/test_thermal_t.txt``.
``v2t`` (the default): visible queries, thermal gallery; ``t2v``: the reverse. The whole gallery is
used, there is no camera filtering and the CMC is the plain (not de-duplicated) one. Identities are
the id folders of the listed paths.

Each trial is usually scored with its own model, so ``evaluate_regdb`` takes either one FeatureSet
(for the trials named by ``trial``) or one FeatureSet per trial (a mapping ``trial -> FeatureSet``
or a list of ``(trial, FeatureSet)``); one ProtocolResult holds every trial's values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from vireid.data.records import ImageRecord
from vireid.data.regdb import TRIALS, check_regdb_root, read_idx, test_records
from vireid.errors import DatasetError
from vireid.features.store import FeatureSet

from ..result import ProtocolResult
from .common import euclidean, labels, record_features, score_trial

DIRECTIONS = ("v2t", "t2v")

TrialFeatures = FeatureSet | Mapping[int, FeatureSet] | Iterable[tuple[int, FeatureSet]]


def regdb_test_records(root: str | os.PathLike, trial: int) -> list[ImageRecord]:
    """The test images of ``trial`` (``vireid.data.regdb.test_records``)."""
    return test_records(root, trial)


def check_regdb_protocol(root: str | os.PathLike, *, direction: str = "v2t") -> Path:
    """Raise ``DatasetError`` for a bad ``direction`` or a root that is not RegDB; return the root as a Path.
    Cheap: call it before extracting features."""
    if direction not in DIRECTIONS:
        raise DatasetError(f"unknown RegDB direction {direction!r}: expected v2t or t2v")
    return check_regdb_root(root)


def _check_trial(trial) -> int:
    if isinstance(trial, bool) or not isinstance(trial, int) or trial not in TRIALS:
        raise DatasetError(f"RegDB trial must be an integer in 1..10, got {trial!r}")
    return trial


def _trial_plan(features: TrialFeatures, trial) -> list[tuple[int, FeatureSet]]:
    """Pairs (trial, features) to score, from the two accepted forms of ``features``."""
    if isinstance(features, FeatureSet):
        if trial is None or trial == "all":
            trials = list(TRIALS)
        elif isinstance(trial, int):
            trials = [trial]
        else:
            trials = list(trial)
        return [(_check_trial(t), features) for t in trials]
    pairs = list(features.items()) if isinstance(features, Mapping) else list(features)
    if not pairs:
        raise DatasetError("no RegDB features given")
    plan = [(_check_trial(t), fs) for t, fs in pairs]
    if trial not in (None, "all"):
        wanted = {trial} if isinstance(trial, int) else set(trial)
        plan = [(t, fs) for t, fs in plan if t in wanted]
        if not plan:
            raise DatasetError(f"no features given for RegDB trial(s) {sorted(wanted)}")
    return sorted(plan, key=lambda p: p[0])


def evaluate_regdb(
    root: str | os.PathLike,
    features: TrialFeatures,
    *,
    trial: int | Iterable[int] | str | None = None,
    direction: str = "v2t",
    normalize: bool = True,
    rerank: bool = False,
    device: torch.device | str | None = None,
) -> ProtocolResult:
    """Score RegDB trials; ``trial`` None or ``"all"`` means trials 1..10 (or every trial given)."""
    root = check_regdb_protocol(root, direction=direction)
    device = torch.device(device) if device is not None else torch.device("cpu")
    per_trial = []
    for t, fs in _trial_plan(features, trial):
        visible = read_idx(root, "test", "visible", t)
        thermal = read_idx(root, "test", "thermal", t)
        queries, gallery = (visible, thermal) if direction == "v2t" else (thermal, visible)
        fs.indices([r.path for r in queries + gallery], f"trial-{t} test images")
        q = record_features(fs, queries, f"trial-{t} query images", normalize).to(device)
        g = record_features(fs, gallery, f"trial-{t} gallery images", normalize).to(device)
        blocks = (euclidean(q, q), euclidean(g, g)) if rerank else None
        per_trial.append(
            score_trial(t, euclidean(q, g), labels(queries), labels(gallery), sysu_rules=False, rerank_blocks=blocks)
        )
    settings = {"direction": direction, "normalize": normalize, "rerank": rerank, "distance": "euclidean"}
    return ProtocolResult("RegDB", per_trial, settings)
