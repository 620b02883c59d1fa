"""Test a trained model: extract the protocol's features from a checkpoint, then score them.

``evaluate_checkpoint(ckpt, "sysu", root, mode="all")`` -> ``ProtocolResult``. For RegDB with
``trial="all"``, ``checkpoint`` is either a run directory made by ``vireid train --trial all`` (one
``trial_<t>/`` per trial) or a pattern containing ``{trial}`` (``runs/x/trial_{trial}/model.pt``); each
trial's model is scored on its own trial's test split and the result averages the trials found.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vireid.data.regdb import TRIALS
from vireid.datasets import check_options, get_dataset
from vireid.errors import CheckpointError, ConfigError
from vireid.evaluation.result import ProtocolResult
from vireid.features.extract import extract_protocol
from vireid.features.store import FeatureSet
from vireid.training.run_dir import trial_dir


def trial_checkpoints(spec: str | os.PathLike, trials: Sequence[int]) -> dict[int, Path]:
    """Checkpoints per trial (of ``trials``) from a ``--trial all`` run directory or a ``{trial}`` pattern."""
    text = str(spec)
    if "{trial}" in text:
        candidates = {t: Path(text.format(trial=t)) for t in trials}
    else:
        root = Path(spec)
        if not root.is_dir():
            raise CheckpointError(
                f"--checkpoint {root}: with --trial all expected a run directory holding trial_<t>/ "
                "folders (vireid train --trial all) or a pattern containing {trial}"
            )
        candidates = {t: trial_dir(root, t) for t in trials}
    found = {t: p for t, p in candidates.items() if p.exists()}
    if not found:
        raise CheckpointError(
            f"--checkpoint {spec}: no per-trial checkpoints found (expected trial_{trials[0]} .. trial_{trials[-1]})"
        )
    return found


def regdb_trial_checkpoints(spec: str | os.PathLike) -> dict[int, Path]:
    """Checkpoints per RegDB trial (``trial_checkpoints`` over trials 1..10)."""
    return trial_checkpoints(spec, TRIALS)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    dataset: str,
    root: str | os.PathLike,
    *,
    trial: int | str = 1,
    normalize: bool = True,
    rerank: bool = False,
    flip: bool | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    save_features_to: str | os.PathLike | None = None,
    progress: bool = False,
    format: str = "auto",
    **options: Any,
) -> ProtocolResult:
    """Extract and score. ``options``: the protocol's options, each defaulting to the protocol's own
    (SYSU-MM01: ``mode``, ``shots``, ``sampling``; RegDB: ``direction``; see ``vireid.datasets``);
    options of other datasets' protocols are ignored, so that one set of CLI values serves every dataset.
    ``trial`` (datasets with numbered splits): one trial, or ``"all"`` with one model per trial.
    ``save_features_to`` keeps the features (trial ``all``: one file per trial, ``{trial}`` in the name or
    ``_trial<t>`` added before the suffix); ``format``: the checkpoint's format (``auto``, ``vireid`` or
    ``released``, see ``vireid.models.loading.load_model``)."""
    spec = get_dataset(dataset, "--dataset")
    check_options(options)
    opts = spec.protocol.select(options)
    kw: dict[str, Any] = {"flip": flip, "device": device, "batch_size": batch_size, "progress": progress,
                          "format": format}
    # Refuse bad options and trees (e.g. official sampling on a tree rand_perm_cam.mat does not fit)
    # before the minutes of feature extraction, not after.
    spec.protocol.check(root, **opts)
    if not spec.trials:
        fs = extract_protocol(checkpoint, dataset, root, out=save_features_to, **kw)
        return spec.protocol.evaluate(root, fs, normalize=normalize, rerank=rerank, **opts)
    if trial == "all":
        features: dict[int, FeatureSet] = {}
        for t, ckpt_path in trial_checkpoints(checkpoint, spec.trials).items():
            out = None if save_features_to is None else _per_trial(save_features_to, t)
            features[t] = extract_protocol(ckpt_path, dataset, root, trial=t, out=out, **kw)
    else:
        if isinstance(trial, bool) or not isinstance(trial, int) or trial not in spec.trials:
            raise ConfigError(f"--trial: expected {spec.trials_text()} or all, got {trial!r}")
        features = {trial: extract_protocol(checkpoint, dataset, root, trial=trial, out=save_features_to, **kw)}
    return spec.protocol.evaluate(root, features, trial=trial, normalize=normalize, rerank=rerank, **opts)


def _per_trial(path: str | os.PathLike, trial: int) -> Path:
    text = str(path)
    if "{trial}" in text:
        return Path(text.format(trial=trial))
    p = Path(text)
    return p.with_name(f"{p.stem}_trial{trial}{p.suffix}")
