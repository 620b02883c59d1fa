"""Decoded-image cache: every training image decoded and resized once into one uint8 array file.

The file ``<key>.npy`` (N x H x W x 3, memory-mapped when read) lives in a cache folder outside the
dataset, keyed by a hash of the image list (relative paths, file sizes, modification and status-change
times), the dataset root and the size. The array is written to a temporary name (its whole size reserved
first, so a full disk is an error, not a crash), fsynced and renamed, and only then is the marker
``<key>.json`` written (atomically), recording the array file's identity (inode, size, mtime, ctime):
an interrupted build never looks valid. Row i of the array is image i of the list; rows of skipped
corrupt images stay 0. One process builds a given key at a time (a lock file); the others wait and reuse.

What the cache promises (and ``tests/faults`` checks): the pixels it serves are those of the images as
they were when it was built, and it is rebuilt when any image is added, removed, renamed or rewritten,
even if the rewrite restores the file's size and modification time (the status-change time, which no
user tool can set back, changes); an array file changed after its build, even under the same size and
modification time, is detected the same way and rebuilt. It does not checksum pixels: damage that
changes no file metadata (a failing disk) is not detected.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vireid.errors import DatasetError, OutputError
from vireid.utils.io import atomic_path, atomic_write_json

from .records import ImageRecord
from .transforms import resize_image

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: status-change times in the key, the array's identity in the marker


class CorruptImageError(DatasetError):
    """An image file cannot be decoded (corrupt, truncated or not an image)."""


def decode_image(path: str | os.PathLike) -> torch.Tensor:
    """Decode an image file to an RGB uint8 tensor [3, H, W] (1-channel and palette files become RGB)."""
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"image {path} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptImageError(f"cannot decode image {path}: {exc}") from None
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)


def load_resized(path: str | os.PathLike, height: int, width: int) -> torch.Tensor:
    """Decode ``path`` and resize it to ``height`` x ``width``: uint8 [3, H, W], as stored in the cache."""
    return resize_image(decode_image(path), height, width)


def cache_key(records: Sequence[ImageRecord], root: str | os.PathLike, height: int, width: int) -> str:
    """Hash of the image list (paths, sizes, mtimes, ctimes), the resolved root and the size.

    A missing file raises a DatasetError naming it.
    """
    root = Path(root)
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "root": str(root.resolve()), "size": [height, width]}).encode())
    for r in records:
        try:
            st = os.stat(root / r.path)
        except FileNotFoundError:
            raise DatasetError(f"image {root / r.path} does not exist") from None
        h.update(f"\n{r.path}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}".encode())
    return h.hexdigest()[:32]


@dataclass
class ImageCache:
    """A built cache: the array file, and which rows hold images (the others were corrupt and skipped)."""

    array_path: Path
    shape: tuple[int, int, int, int]
    skipped: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)

    def open(self) -> np.ndarray:
        """The array, memory-mapped read-only."""
        return np.load(self.array_path, mmap_mode="r")


class _DecodeDataset(Dataset):
    """Decode + resize each record; a corrupt image yields its error message instead of raising."""

    def __init__(self, records: Sequence[ImageRecord], root: Path, height: int, width: int) -> None:
        self.paths = [str(root / r.path) for r in records]
        self.height, self.width = height, width

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            return i, load_resized(self.paths[i], self.height, self.width), ""
        except CorruptImageError as exc:
            return i, None, str(exc)


def _identity(x):
    return x


def decode_all(
    records: Sequence[ImageRecord], root: str | os.PathLike, height: int, width: int, *,
    num_workers: int = 0, desc: str = "decoding images", progress: bool = True,
) -> Iterator[tuple[int, torch.Tensor | None, str]]:
    """Yield (index, uint8 [3, H, W] or None, error) for every record, decoded in ``num_workers`` processes."""
    ds = _DecodeDataset(records, Path(root), height, width)
    # A private generator: iterating a DataLoader draws its workers' base seed from ``generator``, which
    # would otherwise be torch's global one, so a run that builds the cache would train differently from
    # the runs that read it (issue 14).
    loader = DataLoader(ds, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_identity,
                        generator=torch.Generator())
    yield from tqdm(loader, total=len(ds), desc=desc, unit="img", disable=not progress, mininterval=1.0)


def _unreadable(error: str) -> CorruptImageError:
    return CorruptImageError(error + " (set data.skip_corrupt to skip unreadable images)")


def _raise_or_warn(errors: list[str], skip_corrupt: bool) -> None:
    if errors and not skip_corrupt:
        raise _unreadable(errors[0])
    if errors:
        log.warning("skipped %d unreadable image(s), e.g. %s", len(errors), errors[0])


@contextlib.contextmanager
def _build_lock(cache_dir: Path, key: str) -> Iterator[None]:
    """An exclusive lock so that concurrent processes (distributed ranks, two runs) build a cache only once."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fh = open(cache_dir / f"{key}.lock", "a+b")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise _cache_write_error(cache_dir, exc.strerror or str(exc)) from None
    with fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _load_valid(array_path: Path, meta_path: Path, key: str, n: int, height: int, width: int) -> ImageCache | None:
    """The cache if its marker says it is complete and the array matches, else None."""
    if not (meta_path.is_file() and array_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        shape = tuple(np.load(array_path, mmap_mode="r").shape)
        identity = _file_identity(array_path)
    except (OSError, ValueError):
        return None
    expected = (n, height, width, 3)
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION or meta.get("key") != key \
            or shape != expected:
        return None
    if meta.get("array") != identity:
        log.warning("decoded-image cache %s changed after it was built; rebuilding it", array_path)
        return None
    return _image_cache(array_path, expected, list(meta.get("skipped", [])), meta.get("skipped_rows", []))


def _file_identity(path: Path) -> dict[str, int]:
    """What changes whenever a file's content is rewritten: inode, size, mtime and ctime (the last
    cannot be set back by ``touch`` or ``os.utime``)."""
    st = os.stat(path)
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _image_cache(array_path: Path, shape: tuple, skipped: list[str], skipped_rows: Sequence[int]) -> ImageCache:
    """The ImageCache whose ``rows`` are all rows but ``skipped_rows``."""
    gone = set(skipped_rows)
    return ImageCache(array_path, shape, skipped, [i for i in range(shape[0]) if i not in gone])


def build_cache(
    records: Sequence[ImageRecord], root: str | os.PathLike, height: int, width: int, cache_dir: str | os.PathLike,
    *, skip_corrupt: bool = False, num_workers: int = 0, progress: bool = True,
) -> ImageCache:
    """Return the cache of ``records`` at ``height`` x ``width``, building it if no valid one exists.

    A corrupt image raises a CorruptImageError naming it; with ``skip_corrupt`` it is skipped with a
    warning (its row stays 0 and is absent from ``rows``; its message is in ``skipped``).
    """
    if not records:
        raise DatasetError("cannot build an image cache of an empty image list")
    root = Path(root)
    cache_dir = Path(cache_dir)
    key = cache_key(records, root, height, width)
    array_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    n = len(records)
    found = _load_valid(array_path, meta_path, key, n, height, width)
    if found is None:
        with _build_lock(cache_dir, key):
            found = _load_valid(array_path, meta_path, key, n, height, width)
            if found is None:
                meta_path.unlink(missing_ok=True)
                # Temporary files of this key left by a killed build (we hold the lock: nobody else writes them).
                for stale in cache_dir.glob(f".{array_path.name}.*.tmp"):
                    stale.unlink(missing_ok=True)
                try:
                    found = _build(records, root, height, width, key, array_path, meta_path,
                                   skip_corrupt=skip_corrupt, num_workers=num_workers, progress=progress)
                except OutputError as exc:
                    raise _cache_write_error(array_path, exc.reason) from None
            else:
                log.info("using decoded-image cache %s (built by another process)", array_path)
    else:
        log.info("using decoded-image cache %s", array_path)
    _raise_or_warn(found.skipped, skip_corrupt)
    return found


def _cache_write_error(path: Path, reason: str) -> OutputError:
    return OutputError(
        f"could not write the decoded-image cache {path}: {reason}; no partial cache was kept (set "
        "data.cache_dir or $VIREID_CACHE_DIR to a folder with room, or data.cache=false)", reason)


def _reserve(path: Path) -> None:
    """Allocate the whole file now: a memory map written past the free space of a full disk kills the
    process with SIGBUS instead of raising."""
    if hasattr(os, "posix_fallocate"):
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # filesystems without fallocate
                raise
        finally:
            os.close(fd)


def _build(
    records: Sequence[ImageRecord], root: Path, height: int, width: int, key: str, array_path: Path,
    meta_path: Path, *, skip_corrupt: bool, num_workers: int, progress: bool,
) -> ImageCache:
    n = len(records)
    shape = (n, height, width, 3)
    errors: list[str] = []
    skipped_rows: list[int] = []
    log.info("building decoded-image cache %s (%d images at %dx%d)", array_path, n, height, width)
    with atomic_path(array_path, suffix=".npy") as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        try:
            _reserve(tmp)
            for i, img, err in decode_all(records, root, height, width, num_workers=num_workers,
                                          desc=f"caching {n} images at {height}x{width}", progress=progress):
                if img is None:
                    if not skip_corrupt:
                        raise _unreadable(err)
                    errors.append(err)
                    skipped_rows.append(i)
                    continue
                arr[i] = img.permute(1, 2, 0).numpy()
            arr.flush()
        finally:
            del arr
    try:
        atomic_write_json(meta_path, {
            "version": CACHE_VERSION, "key": key, "shape": list(shape), "root": str(root),
            "skipped": errors, "skipped_rows": skipped_rows, "array": _file_identity(array_path),
        })
    except BaseException:
        array_path.unlink(missing_ok=True)  # without its marker the array is never used: do not keep it
        raise
    return _image_cache(array_path, shape, errors, skipped_rows)


def check_images(
    records: Sequence[ImageRecord], root: str | os.PathLike, *, skip_corrupt: bool, num_workers: int = 0,
    progress: bool = True,
) -> tuple[list[int], list[str]]:
    """Decode every image once (no cache); return the indices of the readable ones and the errors of the others.

    Used when training decodes per sample but unreadable images must be skipped up front.
    """
    good, errors = [], []
    for i, img, err in decode_all(records, root, 8, 8, num_workers=num_workers, desc="checking images",
                                  progress=progress):
        if img is None:
            if not skip_corrupt:
                raise _unreadable(err)
            errors.append(err)
        else:
            good.append(i)
    _raise_or_warn(errors, skip_corrupt)
    return sorted(good), errors
