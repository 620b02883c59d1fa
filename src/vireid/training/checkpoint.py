"""Writing training checkpoints: atomically (a failed write leaves the previous file intact), with the
RNG states and the config checks that resuming needs.

A run directory holds ``last.pt`` (everything needed to resume: model, optimiser, scheduler, grad
scaler, sampler and RNG states, epoch, config, label map) and ``model.pt`` (the selected model:
weights, config, label map; what ``extract``/``test``/``tsne`` use when given a run directory).
Reading a checkpoint into a model is ``vireid.models.loading`` (below training and inference).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from vireid.config import config_diff
from vireid.errors import CheckpointError, OutputError
from vireid.models.loading import (  # noqa: F401 - the format lives below training; re-exported here
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    LAST,
    MODEL,
    checkpoint_config,
    load_checkpoint,
    load_model_state,
    resolve_checkpoint,
    unwrap,
)
from vireid.utils.io import atomic_path

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


class _Sink:
    """The file ``torch.save`` writes to, remembering the OSError of a failed write: torch's zip writer
    turns it into ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``, which says
    nothing of the cause (a full disk)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        try:
            self.fh.flush()
        except OSError as exc:
            self.error = exc
            raise


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically; any failure (e.g. a full disk) keeps the old file and is a
    one-line CheckpointError saying why and what was kept."""
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, **state}
    existed = path.exists()
    kept = "the previous checkpoint is intact" if existed else "no checkpoint was written"
    try:
        with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as fh:
            sink = _Sink(fh)
            try:
                torch.save(payload, sink)
            except RuntimeError as exc:
                if sink.error is not None:
                    raise sink.error from None
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CheckpointError(f"could not write checkpoint {path}: {reason[:200]}; {kept}") from None
    except OutputError as exc:
        raise CheckpointError(f"could not write checkpoint {path}: {exc.reason}; {kept}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CheckpointError(f"could not write checkpoint {path}: {reason}; {kept}") from None
    return path


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
