"""Inference: a trained model put to work, with no training code imported.

``ReIDModel`` (load a checkpoint, embed any images), gallery indexes (``build_index``, ``load_index``),
search (``search_index``, exact or faiss, optional re-ranking) and export (``export_model``: ONNX, TorchScript).
The submodules are imported on first use, so ``import vireid.inference`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "ReIDModel": "vireid.inference.model",
    "build_index": "vireid.inference.index",
    "load_index": "vireid.inference.index",
    "GalleryIndex": "vireid.inference.index",
    "search_index": "vireid.inference.search",
    "write_search_output": "vireid.inference.search",
    "export_model": "vireid.inference.export",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'vireid.inference' has no attribute {name!r}")
