"""Checkpoints: written atomically (a failed write leaves the previous file intact), checked on load.

A run directory holds ``last.pt`` (everything needed to resume: model, optimiser, scheduler, grad
scaler, sampler and RNG states, epoch, config, label map) and ``model.pt`` (the selected model:
weights, config, label map; what ``extract``/``test``/``tsne`` use when given a run directory).
Checkpoints are pickles: load only files you trust (your own runs).
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vireid.config import Config, config_diff
from vireid.errors import CheckpointError, ConfigError
from vireid.utils.io import atomic_path

CHECKPOINT_FORMAT = "vireid-checkpoint"
FORMAT_VERSION = 1
LAST = "last.pt"
MODEL = "model.pt"

# Keys that may change between an interrupted run and its resumption without changing the result
# (or that only extend it: more epochs).
RESUME_MUTABLE = (
    "train.epochs",
    "train.device",
    "train.progress",
    "train.log_every",
    "train.tensorboard",
    "train.eval_batch_size",
    "train.dist_timeout_s",
    "test.",
    "data.root",
    "data.num_workers",
    "data.cache",
    "data.cache_dir",
)


def rng_state() -> dict[str, Any]:
    """The state of every global RNG: python, numpy, torch CPU and (if present) all CUDA devices."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state` (CUDA only where saved and available)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically; any failure (e.g. a full disk) keeps the old file."""
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, **state}
    try:
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        kept = "the previous checkpoint is intact" if path.exists() else "no checkpoint was written"
        raise CheckpointError(f"could not write checkpoint {path}: {reason}; {kept}") from None
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; a missing or foreign file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a vireid checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    for key in ("model", "config", "num_classes"):
        if key not in state:
            raise CheckpointError(f"checkpoint {path} lacks '{key}'")
    return state


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory (-> its ``model.pt``, else ``last.pt``)."""
    path = Path(path)
    if path.is_dir():
        for name in (MODEL, LAST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"run directory {path} holds no {MODEL} or {LAST}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def checkpoint_config(state: dict[str, Any], source: str | os.PathLike) -> Config:
    """The Config a checkpoint was trained with."""
    try:
        return Config.from_dict(state["config"], source=f"config stored in {source}")
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {source} holds a config this version cannot read: {exc}") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_same_config(
    saved: dict[str, Any], current: dict[str, Any], source: str | os.PathLike, mutable: tuple[str, ...] = RESUME_MUTABLE
) -> None:
    """Raise a CheckpointError naming the keys (other than ``mutable`` ones) that differ."""
    keys = [k for k in config_diff(saved, current) if not any(k == m or (m.endswith(".") and k.startswith(m)) for m in mutable)]
    if not keys:
        return
    shown = []
    for key in keys[:6]:
        a, b = _lookup(saved, key), _lookup(current, key)
        shown.append(f"{key} (checkpoint {_short(a)}, now {_short(b)})")
    more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
    raise CheckpointError(
        f"checkpoint {source} belongs to another configuration: {', '.join(shown)}{more} differ"
    )


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "<missing>"
        node = node[part]
    return node


def load_model_state(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Load weights strictly; a mismatch names the parameters that are missing, extra or reshaped."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    extra = [k for k in state_dict if k not in own]
    reshaped = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("shape differs", reshaped)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            problems.append(f"{label}: {', '.join(keys[:3])}{more}")
    if problems:
        raise CheckpointError(f"checkpoint {source} does not fit this model ({'; '.join(problems)})")
    model.load_state_dict(state_dict)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)
