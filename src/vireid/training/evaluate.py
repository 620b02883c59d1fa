"""Test a trained model: extract the protocol's features from a checkpoint, then score them.

``evaluate_checkpoint(ckpt, "sysu", root, mode="all")`` -> ``ProtocolResult``. For RegDB with
``trial="all"``, ``checkpoint`` is either a run directory made by ``vireid train --trial all`` (one
``trial_<t>/`` per trial) or a pattern containing ``{trial}`` (``runs/x/trial_{trial}/model.pt``); each
trial's model is scored on its own trial's test split and the result averages the trials found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vireid.data.regdb import TRIALS
from vireid.errors import CheckpointError, ConfigError
from vireid.evaluation.result import ProtocolResult
from vireid.features.extract import extract_protocol
from vireid.features.store import FeatureSet
from vireid.training.run_dir import trial_dir


def regdb_trial_checkpoints(spec: str | os.PathLike) -> dict[int, Path]:
    """Checkpoints per RegDB trial from a ``--trial all`` run directory or a ``{trial}`` pattern."""
    text = str(spec)
    if "{trial}" in text:
        candidates = {t: Path(text.format(trial=t)) for t in TRIALS}
    else:
        root = Path(spec)
        if not root.is_dir():
            raise CheckpointError(
                f"--checkpoint {root}: with --trial all expected a run directory holding trial_<t>/ "
                "folders (vireid train --trial all) or a pattern containing {trial}"
            )
        candidates = {t: trial_dir(root, t) for t in TRIALS}
    found = {t: p for t, p in candidates.items() if p.exists()}
    if not found:
        raise CheckpointError(f"--checkpoint {spec}: no per-trial checkpoints found (expected trial_1 .. trial_10)")
    return found


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    dataset: str,
    root: str | os.PathLike,
    *,
    trial: int | str = 1,
    mode: str = "all",
    shots: int = 1,
    sampling: str = "official",
    direction: str = "v2t",
    normalize: bool = True,
    rerank: bool = False,
    flip: bool | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    save_features_to: str | os.PathLike | None = None,
    progress: bool = False,
    format: str = "auto",
) -> ProtocolResult:
    """Extract and score; ``save_features_to`` keeps the features (RegDB all: one file per trial,
    ``{trial}`` in the name or ``_trial<t>`` added before the suffix); ``format``: the checkpoint's
    format (``auto``, ``vireid`` or ``released``, see ``vireid.models.loading.load_model``)."""
    from vireid.evaluation.protocols import (
        check_regdb_protocol,
        check_sysu_protocol,
        evaluate_regdb,
        evaluate_sysu,
    )

    kw: dict[str, Any] = {"flip": flip, "device": device, "batch_size": batch_size, "progress": progress,
                          "format": format}
    # Refuse bad options and trees (e.g. official sampling on a tree rand_perm_cam.mat does not fit)
    # before the minutes of feature extraction, not after.
    if dataset == "sysu":
        check_sysu_protocol(root, mode=mode, shots=shots, sampling=sampling)
        fs = extract_protocol(checkpoint, "sysu", root, out=save_features_to, **kw)
        return evaluate_sysu(root, fs, mode=mode, shots=shots, sampling=sampling, normalize=normalize,
                             rerank=rerank)
    if dataset != "regdb":
        raise ConfigError(f"--dataset: expected sysu or regdb, got {dataset!r}")
    check_regdb_protocol(root, direction=direction)
    if trial == "all":
        features: dict[int, FeatureSet] = {}
        for t, ckpt_path in regdb_trial_checkpoints(checkpoint).items():
            out = None if save_features_to is None else _per_trial(save_features_to, t)
            features[t] = extract_protocol(ckpt_path, "regdb", root, trial=t, out=out, **kw)
        return evaluate_regdb(root, features, trial="all", direction=direction, normalize=normalize, rerank=rerank)
    if not isinstance(trial, int) or trial not in TRIALS:
        raise ConfigError(f"--trial: expected 1..10 or all, got {trial!r}")
    fs = extract_protocol(checkpoint, "regdb", root, trial=trial, out=save_features_to, **kw)
    return evaluate_regdb(root, {trial: fs}, trial=trial, direction=direction, normalize=normalize, rerank=rerank)


def _per_trial(path: str | os.PathLike, trial: int) -> Path:
    text = str(path)
    if "{trial}" in text:
        return Path(text.format(trial=trial))
    p = Path(text)
    return p.with_name(f"{p.stem}_trial{trial}{p.suffix}")
