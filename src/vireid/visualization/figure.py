"""One way to make and write a matplotlib figure: headless backend, atomic PNG, always closed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vireid.utils.io import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (unless a backend was already chosen)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def png_figure(out: str | os.PathLike, **subplots: Any) -> Iterator[tuple[Any, Any]]:
    """Yield ``(fig, axes)`` from ``plt.subplots(**subplots)``; when the block succeeds, lay the figure
    out and write it to ``out`` as a PNG atomically. The figure is closed either way."""
    plt = pyplot()
    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        fig.tight_layout()
        with atomic_path(Path(out), suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
