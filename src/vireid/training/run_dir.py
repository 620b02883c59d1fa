"""Run-directory rules: what a run directory holds, when an existing one may be reused, resumed or
replaced, who may write it (one process at a time: a lock), and where the trials of a RegDB
``--trial all`` run live."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vireid.errors import VireidError
from vireid.training import checkpoint as ckpt
from vireid.utils.io import check_output_dir, remove_stale_temporaries

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"  # held (fcntl.flock) by the process training into the folder; the kernel drops it on exit


class RunDirError(VireidError):
    """The run directory exists (without --resume / --overwrite), cannot be resumed, or is in use."""


def _ours(p: Path) -> bool:
    return (p / CONFIG_FILE).is_file() or any(p.glob("trial_*/" + CONFIG_FILE))


def _is_empty(run_dir: Path) -> bool:
    return not run_dir.is_dir() or not any(p.name != LOCK_FILE for p in run_dir.iterdir())


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse an existing run directory unless resuming, or overwriting one of ours (no side effect)."""
    if resume:
        if not (run_dir / ckpt.LAST).is_file():
            raise RunDirError(f"cannot resume: {run_dir / ckpt.LAST} does not exist")
        return
    check_output_dir(
        run_dir, overwrite=overwrite, what="run directory", error=RunDirError, ours=_ours,
        kind=f"a vireid run directory (no {CONFIG_FILE})",
        hint="pass --resume to continue it or --overwrite to replace it", ignore=(LOCK_FILE,),
    )


def resumable(run_dir: Path) -> bool:
    """For ``--resume``: True if ``run_dir`` holds a checkpoint to continue from; False if the run stopped
    before its first checkpoint (no folder, an empty one, or one of ours without ``last.pt``), after
    saying that it starts afresh; a RunDirError for a folder that is not a run directory."""
    if (run_dir / ckpt.LAST).is_file():
        return True
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"cannot resume: run directory {run_dir} exists and is not a directory")
    if not (_is_empty(run_dir) or _ours(run_dir)):
        raise RunDirError(f"cannot resume: {run_dir} holds no {ckpt.LAST} and is not a vireid run directory "
                          f"(no {CONFIG_FILE})")
    import sys

    print(f"{run_dir / ckpt.LAST} does not exist (the run stopped before its first checkpoint): starting afresh",
          file=sys.stderr)
    return False


def _empty(run_dir: Path) -> None:
    """Remove everything in ``run_dir`` but its lock, the config last (so that a folder emptied halfway,
    by a kill, is still recognised as a run directory)."""
    entries = sorted((p for p in run_dir.iterdir() if p.name != LOCK_FILE), key=lambda p: p.name == CONFIG_FILE)
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """:func:`check_run_dir`, then empty it (``overwrite``) or clear what killed writes left (``resume``),
    and create it. The caller holds the folder's lock (:class:`RunDirLock`)."""
    check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if resume:
        remove_stale_temporaries(run_dir)
    elif overwrite and run_dir.is_dir():
        _empty(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


class RunDirLock:
    """An exclusive lock on a run directory (``fcntl.flock`` on ``RUN_DIR/.lock``, which names its holder's
    pid): a second process that would train into the same folder is refused while the first lives. The
    kernel releases it when the holder exits or is killed (a killed holder leaves the file, harmlessly).
    On release the file is removed, and so is a folder that the lock alone created: a refused or failed
    start leaves nothing behind."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fh = None
        self._created = False

    def acquire(self) -> RunDirLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return self
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunDirError(f"run directory {self.run_dir} exists and is not a directory")
        self._created = not self.run_dir.exists()
        while True:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                fh = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
            except OSError as exc:
                raise RunDirError(f"cannot lock run directory {self.run_dir}: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip()
                fh.close()
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise RunDirError(f"run directory {self.run_dir} is in use by another vireid process{who}; "
                                  "wait for it to finish or choose another --output") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()  # its holder removed the file as we opened it (release of a folder it created): again
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is None:
            return
        # Removed while still held: a process that opened it meanwhile finds, once it gets the lock, that
        # the path no longer names its file, and starts again (see acquire).
        self.path.unlink(missing_ok=True)
        if self._created and _is_empty(self.run_dir):
            try:
                self.run_dir.rmdir()
            except OSError:
                pass
        self._fh.close()  # closing the file drops the lock
        self._fh = None

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def trial_dir(output_dir: str | os.PathLike, trial: int) -> Path:
    """Where trial ``trial`` of a RegDB ``--trial all`` run lives."""
    return Path(output_dir) / f"trial_{trial}"
