"""Training curves from a run's ``metrics.jsonl``: loss terms and learning rate per epoch, validation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vireid.errors import VireidError
from vireid.visualization.figure import png_figure

SKIP = {"kind", "epoch", "lr", "images_per_s", "seconds", "data_seconds", "val", "step", "global_step"}


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a metrics JSONL file (a run directory is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise VireidError(f"metrics file {path} does not exist")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise VireidError(f"{path}:{n}: not a JSON line") from None
    return records


def plot_curves(metrics: str | os.PathLike, out: str | os.PathLike, title: str = "") -> Path:
    """Per-epoch loss terms (log scale when positive), the learning rate and validation metrics, as a PNG."""
    epochs = [r for r in read_metrics(metrics) if r.get("kind") == "epoch"]
    if not epochs:
        raise VireidError(f"{metrics}: no finished epoch to plot")
    x = [r["epoch"] for r in epochs]
    terms = [k for k in epochs[0] if k not in SKIP and isinstance(epochs[0][k], int | float)]
    val = [(r["epoch"], r["val"]) for r in epochs if r.get("val")]
    with png_figure(out, nrows=1, ncols=3, figsize=(15, 4), dpi=110) as (fig, axes):
        ax = axes[0]
        for k in terms:
            ax.plot(x, [r.get(k, float("nan")) for r in epochs], label=k, lw=2 if k == "loss" else 1)
        if all(r.get(k, 1) > 0 for r in epochs for k in terms):
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title("training loss terms")
        ax.legend(fontsize=7)
        axes[1].plot(x, [r["lr"] for r in epochs])
        axes[1].set_xlabel("epoch")
        axes[1].set_title("learning rate")
        ax = axes[2]
        if val:
            for k in ("rank1", "mAP", "mINP"):
                ax.plot([e for e, _ in val], [v.get(k, float("nan")) for _, v in val], marker="o", label=k)
            ax.legend(fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_title("validation (held-out training ids, %)")
        if title:
            fig.suptitle(title)
    return Path(out)
