"""SynthVI: a procedural visible-infrared pedestrian dataset written in the SYSU-MM01 or RegDB layout.

Identities are latent attributes (visible-only colours, infrared-only emissivities, shared shape,
patterns and accessories); every image adds nuisance (viewpoint, pose, placement, camera, background,
occlusion, blur, noise). See docs/synthvi.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from .attributes import Identity, sample_identity
from .config import LAYOUTS, SynthConfig
from .writer import MARKER, count_images, plan_sysu, split_sysu, write_dataset

__all__ = [
    "LAYOUTS", "MARKER", "Identity", "SynthConfig", "count_images", "generate", "generate_config",
    "plan_sysu", "sample_identity", "split_sysu",
]


def generate_config(cfg: SynthConfig, out_dir: str | os.PathLike, *, overwrite: bool = False,
                    progress: bool = False) -> Path:
    """Write the dataset described by ``cfg`` to ``out_dir`` and return its path.

    ``out_dir`` must not exist or be empty; with ``overwrite`` a previous SynthVI output is replaced.
    The same config gives byte-identical files. ``progress`` shows a tqdm bar on stderr.
    """
    total = count_images(cfg)
    with tqdm(total=total, unit="img", disable=not progress, desc=f"SynthVI {cfg.layout}") as bar:
        return write_dataset(cfg, Path(out_dir), overwrite, bar.update)


def generate(out_dir: str | os.PathLike, *, layout: str = "sysu", num_ids: int = 300, seed: int = 0,
             height: int = 128, width: int = 64, nuisance: float = 1.0, overwrite: bool = False,
             progress: bool = False, **knobs: object) -> Path:
    """Generate a SynthVI dataset in ``layout`` ("sysu" or "regdb") under ``out_dir``; returns its path.

    Further ``knobs`` are :class:`SynthConfig` fields (``min_images``, ``max_images``, ``regdb_images`` ...).
    """
    cfg = SynthConfig(layout=layout, num_ids=num_ids, seed=seed, height=height, width=width,
                      nuisance=nuisance, **knobs)  # type: ignore[arg-type]
    return generate_config(cfg, out_dir, overwrite=overwrite, progress=progress)
