"""Run-directory rules: what a run directory holds, when an existing one may be reused, resumed or
replaced, and where the trials of a RegDB ``--trial all`` run live."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vireid.errors import VireidError
from vireid.training import checkpoint as ckpt
from vireid.utils.io import check_output_dir

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"


class RunDirError(VireidError):
    """The run directory exists (without --resume / --overwrite) or cannot be resumed."""


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse an existing run directory unless resuming, or overwriting one of ours (no side effect)."""
    if resume:
        if not (run_dir / ckpt.LAST).is_file():
            raise RunDirError(f"cannot resume: {run_dir / ckpt.LAST} does not exist")
        return
    check_output_dir(
        run_dir, overwrite=overwrite, what="run directory", error=RunDirError,
        ours=lambda p: (p / CONFIG_FILE).is_file() or any(p.glob("trial_*/" + CONFIG_FILE)),
        kind=f"a vireid run directory (no {CONFIG_FILE})",
        hint="pass --resume to continue it or --overwrite to replace it",
    )


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """:func:`check_run_dir`, then empty it (``overwrite``) and create it."""
    check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if not resume and overwrite and run_dir.is_dir() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def trial_dir(output_dir: str | os.PathLike, trial: int) -> Path:
    """Where trial ``trial`` of a RegDB ``--trial all`` run lives."""
    return Path(output_dir) / f"trial_{trial}"
