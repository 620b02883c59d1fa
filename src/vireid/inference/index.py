"""Gallery indexes: the features of every image under a folder, with what identifies the model.

``build_index(model, images_dir, out)`` embeds every ``.jpg/.jpeg/.png/.bmp`` file under ``images_dir``
(recursive, any layout) and writes ``out`` (``.npz``, atomically) with:

- ``paths``: POSIX paths relative to ``images_dir``; ``feats``: float32 N x D, L2-normalised;
- ``pids``/``cameras``: the person id and camera where a path (the folder's included, so ``--images
  SYSU/cam1`` works) ends in the SYSU-MM01 (``camC/PPPP/f``) or RegDB (``Visible|Thermal/<id>/f``) layout,
  else -1; ``modality``: 0 visible, 1 infrared;
- ``meta``: JSON with the checkpoint's identity (SHA-256, path, model, feature, dimension, config), the
  folder, the modality option, the images skipped and why.

Modality ``auto`` takes the dataset layout's modality where the path follows one (as ``vireid extract``
does) and otherwise decides per image (three equal channels = infrared).

Large folders are embedded in chunks, each saved under ``<out>.parts/`` as it is done: an interrupted run
started again with the same model, folder and options resumes after the last finished chunk; the parts
are removed once the index is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vireid import __version__
from vireid.data.cache import CorruptImageError, decode_image
from vireid.errors import DatasetError, VireidError
from vireid.inference.images import guess_modality, list_image_files, parse_modality, path_identity
from vireid.inference.model import ReIDModel
from vireid.utils.io import atomic_path, atomic_write_json

INDEX_FORMAT = "vireid-index"
INDEX_VERSION = 1
PARTS_FORMAT = "vireid-index-parts"
ARRAYS = ("paths", "feats", "pids", "cameras", "modality", "meta")
MAX_SKIPPED_STORED = 1000  # skipped images named in the index's meta (the count is always exact)


class GalleryIndexError(VireidError):
    """An index file is missing, malformed, from another model, or cannot be built."""


@dataclass
class GalleryIndex:
    """An index in memory: one row per image, plus ``meta`` (see the module docstring)."""

    paths: list[str]
    feats: np.ndarray
    pids: np.ndarray
    cameras: np.ndarray
    modality: np.ndarray
    meta: dict[str, Any]
    source: str = "<index>"

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def root(self) -> Path:
        """The folder the paths are relative to (as it was when the index was built)."""
        return Path(self.meta.get("root", "."))

    @property
    def checkpoint(self) -> dict[str, Any]:
        """The identity of the model that built the index."""
        return dict(self.meta.get("checkpoint", {}))

    def check_model(self, model: ReIDModel) -> None:
        """Refuse a model other than the one that built the index (compared by checkpoint hash)."""
        built = self.checkpoint
        if built.get("sha256") != model.sha256:
            raise GalleryIndexError(
                f"index {self.source} was built by checkpoint {built.get('path', '?')} (sha256 "
                f"{str(built.get('sha256', '?'))[:12]}, {built.get('model', '?')} {built.get('feature', '?')}), "
                f"not by {model.checkpoint} (sha256 {model.sha256[:12]}); rebuild it with vireid index"
            )


def save_index(path: str | os.PathLike, index: GalleryIndex) -> Path:
    """Write ``index`` to ``path`` atomically (a failure leaves any previous file intact)."""
    path = Path(path)
    try:
        with atomic_path(path, suffix=".npz", what="index") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, paths=np.asarray(index.paths, dtype=str), feats=np.asarray(index.feats, dtype=np.float32),
                     pids=np.asarray(index.pids, dtype=np.int64), cameras=np.asarray(index.cameras, dtype=np.int64),
                     modality=np.asarray(index.modality, dtype=np.int8), meta=np.asarray(json.dumps(index.meta)))
    except OSError as exc:
        kept = "the previous file is intact" if path.exists() else "nothing was written"
        raise GalleryIndexError(f"could not write index {path}: {exc.strerror or exc}; {kept}") from None
    return path


def read_index_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``meta`` of a vireid index file, or None if the file is not one (never raises)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"])) if "meta" in data.files else None
    except Exception:  # noqa: BLE001 - any unreadable file is simply "not an index"
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == INDEX_FORMAT else None


def load_index(path: str | os.PathLike) -> GalleryIndex:
    """Read and check an index file; any problem is a one-line GalleryIndexError naming it."""
    path = Path(path)
    if not path.is_file():
        raise GalleryIndexError(f"index {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ARRAYS if k not in data.files]
            if missing:
                raise GalleryIndexError(f"{path} is not a vireid index (missing {', '.join(missing)})")
            arrays = {k: data[k] for k in ARRAYS}
        meta = json.loads(str(arrays["meta"]))
    except GalleryIndexError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy/zip/json raise many types for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GalleryIndexError(f"{path} is not a readable vireid index ({reason[:120]})") from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
        raise GalleryIndexError(f"{path} is not a vireid index (no '{INDEX_FORMAT}' header)")
    if int(meta.get("version", 0)) > INDEX_VERSION:
        raise GalleryIndexError(f"{path}: index version {meta.get('version')} is newer than this vireid reads")
    feats = arrays["feats"]
    n = len(arrays["paths"])
    if feats.ndim != 2 or feats.shape[0] != n or any(len(arrays[k]) != n for k in ("pids", "cameras", "modality")):
        raise GalleryIndexError(f"{path}: arrays of different lengths ({n} paths, feats {feats.shape})")
    if not np.isfinite(feats).all():
        raise GalleryIndexError(f"{path}: features contain NaN or inf")
    return GalleryIndex([str(p) for p in arrays["paths"].tolist()], feats.astype(np.float32, copy=False),
                        arrays["pids"].astype(np.int64), arrays["cameras"].astype(np.int64),
                        arrays["modality"].astype(np.int8), meta, source=str(path))


def check_index_output(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an output that exists (unless ``overwrite`` and it is a vireid index) or is a folder."""
    out = Path(out)
    if out.is_dir():
        raise GalleryIndexError(f"--out {out} is a directory; expected an index file name (e.g. gallery.npz)")
    if out.exists():
        if not overwrite:
            raise GalleryIndexError(f"--out {out} already exists; choose another name or pass --overwrite")
        if read_index_meta(out) is None:
            raise GalleryIndexError(f"refusing to overwrite {out}: it is not a vireid index")
    return out


# ---- building ---------------------------------------------------------------------------------------
class _PrepareDataset(Dataset):
    """Decode + test transform of each image; an undecodable one yields its error instead of raising."""

    def __init__(self, root: Path, paths: list[str], transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.root, self.paths, self.transform = root, paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, int, str]:
        try:
            img = decode_image(self.root / self.paths[i])
        except (CorruptImageError, DatasetError) as exc:
            return i, None, -1, str(exc)
        return i, self.transform(img), guess_modality(img), ""


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


def _listing_key(root: Path, paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(root / p)
        h.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


@dataclass
class IndexSummary:
    """What ``build_index`` did: the index, the images skipped (path, reason), files that are not images,
    and how many images a previous interrupted run had already embedded."""

    index: GalleryIndex
    path: Path
    skipped: list[tuple[str, str]] = field(default_factory=list)
    other_files: int = 0
    resumed: int = 0


def build_index(
    model: ReIDModel,
    images_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    modality: str = "auto",
    strict: bool = False,
    batch_size: int | None = None,
    num_workers: int | None = None,
    chunk_size: int = 4096,
    overwrite: bool = False,
    progress: bool = True,
) -> IndexSummary:
    """Embed every image under ``images_dir`` with ``model`` and write the index to ``out``.

    An image that cannot be decoded is skipped and counted (``strict``: a GalleryIndexError naming it).
    ``num_workers`` decoding processes (default: the checkpoint's ``data.num_workers``).
    """
    out = check_index_output(out, overwrite)
    fixed = parse_modality(modality, "--modality")
    listing = list_image_files(images_dir)
    root = listing.root
    if not listing.paths:
        raise GalleryIndexError(
            f"--images {root} holds no image files (.jpg, .jpeg, .png, .bmp)"
            + (f"; it has {listing.other_files} other files" if listing.other_files else "")
        )
    if chunk_size < 1:
        raise GalleryIndexError(f"chunk_size: expected a positive integer, got {chunk_size}")
    paths = listing.paths
    ids = [path_identity(root / p) for p in paths]  # the folder may itself be a layout folder (cam1/)
    parts_dir = Path(f"{out}.parts")
    manifest = {"format": PARTS_FORMAT, "sha256": model.sha256, "root": str(root.resolve()),
                "listing": _listing_key(root, paths), "modality": modality, "chunk_size": chunk_size,
                "num_images": len(paths)}
    resumed = _open_parts(parts_dir, manifest, progress)
    chunks = range(0, len(paths), chunk_size)
    done = [k for k in range(len(chunks)) if (parts_dir / f"part-{k:06d}.npz").is_file()]
    done_images = sum(min(chunk_size, len(paths) - k * chunk_size) for k in done)
    workers = model.config.data.num_workers if num_workers is None else int(num_workers)
    bs = int(batch_size or model.config.test.batch_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), initial=done_images, desc="index", unit="img", mininterval=1.0)
    try:
        for k, start in enumerate(chunks):
            if k in done:
                continue
            chunk = paths[start:start + chunk_size]
            ds = _PrepareDataset(root, chunk, model.transform)
            loader = DataLoader(ds, batch_size=bs, shuffle=False, num_workers=workers, collate_fn=_as_list)
            rows, feats, mods, skipped_rows, skipped_msgs = [], [], [], [], []
            for batch in loader:
                good = [b for b in batch if b[1] is not None]
                for i, _, _, err in batch:
                    if err:
                        if strict:
                            raise GalleryIndexError(f"--strict: {err}")
                        skipped_rows.append(start + i)
                        skipped_msgs.append(err)
                if good:
                    mod = [_modality(fixed, ids[start + i].modality, g) for i, _, g, _ in good]
                    f = model.embed_batch(torch.stack([b[1] for b in good]), torch.tensor(mod))
                    feats.append(torch.nn.functional.normalize(f, dim=1).numpy())
                    rows += [start + b[0] for b in good]
                    mods += mod
                if bar is not None:
                    bar.update(len(batch))
            _save_part(parts_dir / f"part-{k:06d}.npz", rows, feats, mods, skipped_rows, skipped_msgs,
                       model.feature_dim)
    finally:
        if bar is not None:
            bar.close()
    index, skipped = _assemble(parts_dir, len(chunks), paths, ids, model, root, modality, listing.other_files)
    save_index(out, index)
    shutil.rmtree(parts_dir, ignore_errors=True)
    return IndexSummary(index, out, skipped, listing.other_files, resumed)


def _modality(fixed: int | None, layout: int | None, guessed: int) -> int:
    if fixed is not None:
        return fixed
    return layout if layout is not None else guessed


def _open_parts(parts_dir: Path, manifest: dict[str, Any], progress: bool) -> int:
    """Reuse the parts of an interrupted run with the same manifest (returns how many parts), else start
    afresh (removing parts left by a different run)."""
    mf = parts_dir / "manifest.json"
    if parts_dir.exists():
        try:
            old = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict) or old.get("format") != PARTS_FORMAT:
            if not (parts_dir.is_dir() and not any(parts_dir.iterdir())):
                raise GalleryIndexError(
                    f"{parts_dir} exists and is not the parts folder of an interrupted vireid index; "
                    "move it away or choose another --out"
                )
            parts_dir.rmdir()  # an empty folder left by a run killed before its manifest was written
        elif old == manifest:
            n = len(list(parts_dir.glob("part-*.npz")))
            if n and progress:
                print(f"vireid index: resuming: {n} finished chunk(s) found in {parts_dir}", file=sys.stderr)
            return n
        else:
            if progress:
                print(f"vireid index: {parts_dir} is from another model, folder or option: starting afresh",
                      file=sys.stderr)
            shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True)
    atomic_write_json(mf, manifest)
    return 0


def _save_part(path: Path, rows: list[int], feats: list[np.ndarray], mods: list[int], skipped_rows: list[int],
               skipped_msgs: list[str], dim: int) -> None:
    f = np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)
    with atomic_path(path, suffix=".npz", what="index part") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, rows=np.asarray(rows, np.int64), feats=f.astype(np.float32), modality=np.asarray(mods, np.int8),
                 skipped_rows=np.asarray(skipped_rows, np.int64), skipped_msgs=np.asarray(skipped_msgs, dtype=str))


def _assemble(parts_dir: Path, n_parts: int, paths: list[str], ids: list[Any], model: ReIDModel, root: Path,
              modality: str, other_files: int) -> tuple[GalleryIndex, list[tuple[str, str]]]:
    rows, feats, mods, skipped = [], [], [], []
    for k in range(n_parts):
        with np.load(parts_dir / f"part-{k:06d}.npz", allow_pickle=False) as p:
            rows.append(p["rows"])
            feats.append(p["feats"])
            mods.append(p["modality"])
            skipped += [(paths[int(i)], str(m)) for i, m in zip(p["skipped_rows"], p["skipped_msgs"], strict=True)]
    row = np.concatenate(rows)
    if row.size == 0:
        first = f" (first: {skipped[0][1]})" if skipped else ""
        raise GalleryIndexError(f"--images {root}: none of the {len(paths)} image files could be read{first}")
    meta = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "vireid": __version__, "root": str(root.resolve()),
        "modality": modality, "normalized": True, "distance": "euclidean",
        "checkpoint": model.identity(), "num_images": int(row.size), "num_skipped": len(skipped),
        "skipped": [{"path": p, "error": e} for p, e in skipped[:MAX_SKIPPED_STORED]],
        "other_files": other_files,
    }
    index = GalleryIndex(
        [paths[i] for i in row], np.concatenate(feats), np.array([ids[i].pid for i in row], np.int64),
        np.array([ids[i].camera for i in row], np.int64), np.concatenate(mods), meta,
    )
    return index, skipped
