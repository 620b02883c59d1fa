"""``--trial all`` (RegDB): one fresh model per trial, each in its own run directory ``trial_<t>/``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from vireid.config import Config
from vireid.datasets import DatasetSpec, all_datasets, get_dataset
from vireid.errors import ConfigError
from vireid.training import checkpoint as ckpt
from vireid.training import distributed as _dist
from vireid.training.run_dir import RunDirLock, prepare_run_dir, trial_dir
from vireid.training.trainer import RunResult, Trainer, _main_only, init_context


def dataset_trials(dataset: str, root: str | os.PathLike) -> list[int]:
    """The numbered splits of ``dataset`` present under ``root`` (RegDB: the trials 1..10 whose training idx
    files exist; all 10 in the real dataset)."""
    spec = _with_trials(dataset)
    return list(spec.trials) if spec.available_trials is None else list(spec.available_trials(root))


def _with_trials(dataset: str) -> DatasetSpec:
    spec = get_dataset(dataset)
    if not spec.trials:
        with_trials = ", ".join(s.title for s in all_datasets() if s.trials)
        raise ConfigError(f"data.trial=all is for datasets with numbered splits ({with_trials}); "
                          f"{spec.title} has a single training split")
    return spec


def regdb_trials(root: str | os.PathLike) -> list[int]:
    """The trials 1..10 whose training idx files exist under a RegDB root (all 10 in the real dataset)."""
    return dataset_trials("regdb", root)


def train_trials(
    config: Config,
    output_dir: str | os.PathLike,
    trials: list[int] | range | None = None,
    *,
    data_root: str | os.PathLike | None = None,
    **kwargs: Any,
) -> list[RunResult]:
    """One fresh model per trial into ``output_dir/trial_<t>`` (a dataset with numbered splits: RegDB);
    ``trials`` default to every trial of the dataset under the root (RegDB 1..10; the release trained idx
    2..11 and scored 8 of them)."""
    from dataclasses import replace

    output_dir = Path(output_dir)
    _with_trials(config.data.dataset)
    root = data_root if data_root is not None else config.data.root
    if trials is None:
        if root is None:
            raise ConfigError("no dataset root: pass --data-root DIR or set data.root")
        trials = dataset_trials(config.data.dataset, root)
    resume, overwrite = kwargs.pop("resume", False), kwargs.pop("overwrite", False)
    # one process group for all the trials; rank 0 alone touches the folders, the others wait for it
    ctx = init_context(config.train.device, config.train.dist_timeout_s)
    lock = RunDirLock(output_dir)
    try:
        # the whole folder, for all the trials (each trial also locks its own); every rank fails if it is taken
        _main_only(ctx, lambda: lock.acquire() and None)
        if not resume:
            _main_only(ctx, prepare_run_dir, output_dir, resume=False, overwrite=overwrite)
        results = []
        for t in trials:
            cfg = replace(config, data=replace(config.data, trial=int(t)))
            sub = trial_dir(output_dir, t)
            sub_resume = resume and _main_only(ctx, _trial_resumable, sub)
            trainer = Trainer(cfg, sub, data_root=root, resume=sub_resume, ctx=ctx, **kwargs)
            results.append(trainer.train())
        return results
    finally:
        lock.release()
        if ctx.world_size > 1:
            _dist.cleanup(ctx)


def _trial_resumable(sub: Path) -> bool:
    """Whether a trial folder holds a checkpoint; one started but never checkpointed is removed (restarted)."""
    if (sub / ckpt.LAST).is_file():
        return True
    if sub.exists():
        shutil.rmtree(sub)
    return False
