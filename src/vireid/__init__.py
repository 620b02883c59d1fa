"""vireid: visible-infrared person re-identification with Variational Distillation.

The package layout follows the pipeline:
``data`` (dataset layouts, SynthVI, cache, sampler) -> ``models`` -> ``losses`` -> ``training``
-> ``features`` -> ``evaluation`` -> ``visualization``; ``inference`` (load a model, embed, index,
search, export) never imports ``training``; ``cli`` is a thin layer over all of them.

``from vireid import ReIDModel`` is resolved on first use, so ``import vireid`` stays light.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "ReIDModel":
        from vireid.inference.model import ReIDModel

        return ReIDModel
    raise AttributeError(f"module 'vireid' has no attribute {name!r}")
