"""Reading a checkpoint into a ready model: the one place that knows the checkpoint formats.

Training (resume), feature extraction, evaluation and inference all load models through here, so that
loading a model never imports the trainer. A run directory holds ``last.pt`` (the resumable training
state) and ``model.pt`` (the selected model); both are ``torch.save`` dicts with a ``format`` header,
the ``model`` state dict, the ``config`` and ``num_classes``. ``load_model`` also reads the authors'
released checkpoint (``model_best.pth.tar``; ``vireid.models.released``), recognised from its contents.
Checkpoints are pickles: load only files you trust.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vireid.config import Config
from vireid.errors import CheckpointError, ConfigError

CHECKPOINT_FORMAT = "vireid-checkpoint"
FORMAT_VERSION = 1
FORMATS = ("auto", "vireid", "released")  # what ``load_model(format=...)`` accepts
LAST = "last.pt"
MODEL = "model.pt"


def read_checkpoint_file(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` of ``path``; a missing, truncated or non-torch file is a one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError,
            AttributeError, ImportError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file ({reason[:160]})") from None


def is_vireid_checkpoint(state: Any) -> bool:
    """Whether a loaded object carries vireid's checkpoint header."""
    return isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT


def check_vireid_checkpoint(state: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``state`` if it is a complete vireid checkpoint, else a CheckpointError naming what is wrong."""
    if not is_vireid_checkpoint(state):
        raise CheckpointError(f"{path} is not a vireid checkpoint (no '{CHECKPOINT_FORMAT}' header)")
    for key in ("model", "config", "num_classes"):
        if key not in state:
            raise CheckpointError(f"checkpoint {path} lacks '{key}'")
    return state


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a vireid checkpoint; a missing, corrupt or foreign file is a CheckpointError."""
    return check_vireid_checkpoint(read_checkpoint_file(path, map_location), path)


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
    """The Config a checkpoint was trained with (keys added since then take their defaults)."""
    try:
        return Config.from_dict(state["config"], source=f"config stored in {source}")
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {source} holds a config this version cannot read: {exc}") from None


def load_model_state(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | os.PathLike,
    *, key_name: Callable[[str], str] = str, what: str = "this model",
) -> None:
    """Load weights strictly; a mismatch is one line naming the first few parameters that are missing,
    extra or reshaped (each as ``key_name`` spells it: the released loader gives the release's names)."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"checkpoint {source}: 'model' is not a state dict")
    own = model.state_dict()
    missing = [key_name(k) for k in own if k not in state_dict]
    extra = [key_name(k) for k in state_dict if k not in own]
    reshaped = [
        f"{key_name(k)} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and tuple(getattr(state_dict[k], "shape", ())) != tuple(v.shape)
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("shape differs", reshaped)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            problems.append(f"{label}: {', '.join(keys[:3])}{more}")
    if problems:
        raise CheckpointError(f"checkpoint {source} does not fit {what} ({'; '.join(problems)})")
    model.load_state_dict(state_dict)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def model_from_state(state: dict[str, Any], source: str | os.PathLike) -> tuple[nn.Module, Config]:
    """Build the model a vireid checkpoint describes and load its weights (CPU, eval mode)."""
    from vireid.models.build import build_model

    config = checkpoint_config(state, source)
    # The weights come from the checkpoint: never look for pretrained ImageNet weights here.
    model = build_model(replace(config.model, pretrained="none"), int(state["num_classes"]))
    load_model_state(model, state["model"], source)
    return model.eval(), config


def detect_format(state: Any, source: str | os.PathLike) -> str:
    """``"vireid"`` or ``"released"`` from a loaded checkpoint's contents; CheckpointError if neither."""
    from vireid.models.released import is_released_checkpoint

    if is_vireid_checkpoint(state):
        return "vireid"
    if is_released_checkpoint(state):
        return "released"
    raise CheckpointError(
        f"{source} is neither a vireid checkpoint (no '{CHECKPOINT_FORMAT}' header) nor the released "
        "model's format ({'model': state dict of ft_net})"
    )


def load_model(
    checkpoint: str | os.PathLike, device: torch.device | str = "cpu", format: str = "auto"
) -> tuple[nn.Module, Config, dict[str, Any]]:
    """The model a checkpoint (file or run directory) holds, in eval mode on ``device``, with its Config
    and the checkpoint's contents.

    ``format``: ``auto`` (recognised from the contents), ``vireid`` or ``released`` (the authors'
    ``model_best.pth.tar``, keys with or without ``module.``; its Config is the ``sysu_vd_released``
    recipe, which makes extraction give the release's 8192-d feature with its PIL preprocessing).
    """
    from vireid.models.released import is_released_checkpoint, model_from_released
    from vireid.utils.device import resolve_device

    if format not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {format!r}")
    path = resolve_checkpoint(checkpoint)
    state = read_checkpoint_file(path, map_location="cpu")
    kind = detect_format(state, path) if format == "auto" else format
    if kind == "released":
        if not is_released_checkpoint(state):
            raise CheckpointError(f"checkpoint {path} is not in the released model's format (--format released)")
        model, config = model_from_released(state, path)
    else:
        model, config = model_from_state(check_vireid_checkpoint(state, path), path)
    model.to(resolve_device(device)).eval()
    return model, config, state
