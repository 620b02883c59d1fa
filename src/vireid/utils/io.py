"""Atomic file writes: a reader never sees a half-written file, and an interrupted or failed
write leaves the previous file intact.

A write that fails because of the device (full disk, quota, read-only or unwritable folder) raises a
one-line :class:`~vireid.errors.OutputError` naming the file; a process killed mid-write leaves at most a
hidden ``.<name>.*.tmp`` file beside the target (:func:`remove_stale_temporaries` clears them).
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from vireid.errors import OutputError

# errno values that mean "the device or folder refused the write", as opposed to a bug in the writer.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES,
                          errno.EPERM})


def output_error(path: str | os.PathLike, exc: OSError, existed: bool, what: str = "") -> OutputError:
    """The one-line error of a failed write of ``path`` (``what`` names the kind of file)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    kept = f"the previous {what or 'file'} is intact" if existed else "nothing was written"
    return OutputError(f"could not write {what + ' ' if what else ''}{path}: {reason}; {kept}", reason)


def _temporary(path: Path, suffix: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", what: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed over ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched; an OSError of the
    device (``WRITE_ERRNOS``: full disk, read-only, ...) becomes an :class:`OutputError` naming ``path``
    (``what``: the kind of file, for the message). ``suffix`` lets writers that infer the format from the
    name (``np.savez``) see the right one.
    """
    path = Path(path)
    existed = path.exists()
    try:
        tmp_path = _temporary(path, suffix)
    except OSError as exc:
        raise output_error(path, exc, existed, what) from None
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno in WRITE_ERRNOS:
            raise output_error(path, exc, existed, what) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s temporaries (``.<name>.<random><suffix>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that killed writers left in ``folder`` (not recursive); the caller must know
    that no live process is writing there (it holds the folder's lock). Returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        if is_temporary(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], what: str = "") -> None:
    """Call ``write(fh)`` on a binary temporary file, then atomically move it to ``path``."""
    with atomic_path(path, what=what) as tmp, open(tmp, "wb") as fh:
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
    ignore: tuple[str, ...] = (),
) -> None:
    """Refuse an output folder that would lose the user's files: a file in its place, a non-empty folder
    (unless ``overwrite``), or, with ``overwrite``, a folder that ``ours`` does not recognise as one we
    wrote. ``what`` names the option or folder, ``kind`` what we write there, ``error`` the class raised;
    entries named in ``ignore`` (a lock file) do not make a folder non-empty."""
    if path.exists() and not path.is_dir():
        raise error(f"{what} {path} exists and is not a directory")
    if path.is_dir() and any(p.name not in ignore for p in path.iterdir()):
        if not overwrite:
            raise error(f"{what} {path} already exists and is not empty; {hint}")
        if not ours(path):
            raise error(f"refusing to overwrite {path}: it is not {kind}")
