"""Feature files: ``.npz`` with ``paths`` (image paths relative to the dataset root, POSIX
separators) and ``feats`` (float32, N x D). Written atomically, validated on load."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vireid.errors import FeaturesError
from vireid.utils.io import atomic_path

MAX_NAMED = 3  # how many missing paths an error message names


def _clean_path(p: str) -> str:
    p = str(p).replace("\\", "/")
    return p[2:] if p.startswith("./") else p


@dataclass
class FeatureSet:
    """Features keyed by relative image path. ``source`` names where they came from (for messages)."""

    paths: list[str]
    feats: np.ndarray
    source: str = "<features>"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.paths = [_clean_path(p) for p in self.paths]
        feats = np.asarray(self.feats)
        if feats.ndim != 2:
            raise FeaturesError(f"{self.source}: 'feats' must be a 2-D array (N x D), got shape {feats.shape}")
        if not np.issubdtype(feats.dtype, np.number) or np.iscomplexobj(feats):
            raise FeaturesError(f"{self.source}: 'feats' must be real numbers, got dtype {feats.dtype}")
        if len(self.paths) != feats.shape[0]:
            raise FeaturesError(
                f"{self.source}: {len(self.paths)} paths but {feats.shape[0]} feature rows"
            )
        self.feats = np.ascontiguousarray(feats, dtype=np.float32)
        bad = ~np.isfinite(self.feats).all(axis=1)
        if bad.any():
            first = [self.paths[i] for i in np.flatnonzero(bad)[:MAX_NAMED]]
            raise FeaturesError(
                f"{self.source}: {int(bad.sum())} feature rows contain NaN or inf (first: {', '.join(first)})"
            )
        self._index = {p: i for i, p in enumerate(self.paths)}
        if len(self._index) != len(self.paths):
            seen: set[str] = set()
            dup = next(p for p in self.paths if p in seen or seen.add(p))
            raise FeaturesError(f"{self.source}: path {dup!r} appears more than once")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.feats.shape[1])

    def indices(self, paths: Sequence[str], what: str = "images") -> np.ndarray:
        """Row indices of ``paths``; raise a FeaturesError naming how many are missing and the first few."""
        idx = [self._index.get(p, -1) for p in paths]
        missing = [p for p, i in zip(paths, idx, strict=True) if i < 0]
        if missing:
            names = ", ".join(missing[:MAX_NAMED]) + (", ..." if len(missing) > MAX_NAMED else "")
            raise FeaturesError(
                f"{self.source} lacks {len(missing)} of the {len(paths)} {what} the protocol needs "
                f"(first: {names})"
            )
        return np.asarray(idx, dtype=np.int64)

    def lookup(self, paths: Sequence[str], what: str = "images") -> np.ndarray:
        """Feature rows of ``paths`` (float32, len(paths) x D), in that order."""
        return self.feats[self.indices(paths, what)]


def save_features(path: str | os.PathLike, paths: Sequence[str], feats: np.ndarray) -> None:
    """Write ``paths`` and ``feats`` (N x D, stored as float32) to ``path`` atomically."""
    fs = FeatureSet(list(paths), np.asarray(feats), source=str(path))
    with atomic_path(path, what="features file") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, paths=np.asarray(fs.paths, dtype=str), feats=fs.feats)


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read and validate a features file; any problem is a one-line FeaturesError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FeaturesError(f"features file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("paths", "feats") if k not in data.files]
            if missing:
                raise FeaturesError(
                    f"{path}: expected arrays 'paths' and 'feats', missing {', '.join(missing)}"
                )
            paths, feats = data["paths"], data["feats"]
    except FeaturesError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeaturesError(f"{path}: not a readable .npz features file ({msg})") from None
    if paths.ndim != 1 or paths.dtype.kind not in "US":
        raise FeaturesError(f"{path}: 'paths' must be a 1-D array of strings, got {paths.dtype} {paths.shape}")
    names = [p.decode() if isinstance(p, bytes) else str(p) for p in paths.tolist()]
    return FeatureSet(names, feats, source=str(path))
