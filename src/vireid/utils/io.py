"""Atomic file writes: a reader never sees a half-written file, and an interrupted or failed
write leaves the previous file intact."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    ``suffix`` lets writers that infer the format from the name (``np.savez``) see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(fh)`` on a binary temporary file, then atomically move it to ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def check_output_dir(
    path: Path,
    *,
    overwrite: bool,
    ours: Callable[[Path], bool],
    what: str,
    kind: str,
    error: type[Exception],
    hint: str = "choose a new one or pass --overwrite",
) -> None:
    """Refuse an output folder that would lose the user's files: a file in its place, a non-empty folder
    (unless ``overwrite``), or, with ``overwrite``, a folder that ``ours`` does not recognise as one we
    wrote. ``what`` names the option or folder, ``kind`` what we write there, ``error`` the class raised."""
    if path.exists() and not path.is_dir():
        raise error(f"{what} {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise error(f"{what} {path} already exists and is not empty; {hint}")
        if not ours(path):
            raise error(f"refusing to overwrite {path}: it is not {kind}")
