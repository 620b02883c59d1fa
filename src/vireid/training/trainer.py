"""The trainer: a small train step with hooks around it (fast-reid style).

``train(config, run_dir)`` builds data, model, criterion, optimiser and schedule from a ``Config``,
runs the epochs and returns a :class:`RunResult`. Hooks (``training/hooks.py``: ``before_train``,
``before_epoch``, ``after_step``, ``after_epoch``, ``after_train``) do everything else: validation on
held-out TRAINING identities, checkpoints, the metrics log and the progress bar. Only the main process
(rank 0) writes. Run-directory rules are ``training/run_dir.py``; RegDB's all-trials driver is
``training/trials.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vireid import __version__
from vireid.config import Config, save_config
from vireid.errors import CheckpointError, ConfigError, VireidError, one_line
from vireid.training import checkpoint as ckpt
from vireid.training import distributed as _dist
from vireid.training.hooks import HookBase, default_hooks
from vireid.training.optimizer import build_optimizer
from vireid.training.run_dir import (
    CONFIG_FILE,
    RUN_FILE,
    RunDirError,
    RunDirLock,
    check_run_dir,
    prepare_run_dir,
    resumable,
    trial_dir,
)
from vireid.training.schedule import build_scheduler
from vireid.training.seeding import process_seed, seed_everything
from vireid.utils.device import autocast_settings, flush_denormals, keep_freed_memory, use_channels_last

__all__ = [
    "CONFIG_FILE", "RUN_FILE", "HookBase", "RunDirError", "RunResult", "Trainer", "TrainingDivergedError",
    "check_run_dir", "default_hooks", "prepare_run_dir", "train", "trial_dir",
]


class TrainingDivergedError(VireidError):
    """The loss became NaN or infinite; the run stopped and the last good checkpoint was kept."""


@dataclass
class RunResult:
    """What a finished (or interrupted) run produced."""

    run_dir: Path
    model_path: Path  # the selected model (``model.pt``): best validation epoch or the last epoch
    last_checkpoint: Path  # ``last.pt``: the resumable state after the last finished epoch
    epochs_done: int
    selected_epoch: int  # 1-based epoch of the selected model
    selected_val: dict[str, float] | None  # validation metrics of the selected model, if validated
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per finished epoch
    config: Config | None = None
    num_classes: int = 0
    is_main: bool = True  # False on the other processes of a torchrun job (they write and print nothing)


def init_context(device: str, timeout_s: float) -> _dist.DistContext:
    """The distributed context (single-process unless launched by torchrun)."""
    return _dist.init_distributed(device, timeout_s)


def _barrier(ctx) -> None:
    if ctx.world_size > 1:
        _dist.barrier(ctx)


def _main_only(ctx, fn, *args: Any, **kwargs: Any) -> Any:
    """``fn`` on rank 0 only, its result (or its failure) on every process; a plain call with one process."""
    if ctx.world_size > 1:
        return _dist.main_process_only(ctx, fn, *args, **kwargs)
    return fn(*args, **kwargs)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; a scheduler's preemption, `kill`, a dying sweep


def _install_stop_signals(trainer: Trainer) -> dict[int, Any]:
    """First SIGINT or SIGTERM: ask the trainer to stop after this step; a second one: KeyboardInterrupt at once.

    Returns the handlers it replaced, for :func:`_restore_signals`; none are touched off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum, frame):
        if trainer._stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()
        if trainer.ctx.is_main:  # under torchrun every process gets the signal; one says so
            print(f"{signal.Signals(signum).name}: stopping after this step (send it again to stop at once)",
                  file=sys.stderr)

    return {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


# --------------------------------------------------------------------------- trainer


def _no_partial_epoch() -> dict[str, Any]:
    """The partial-epoch state of a run stopped at an epoch boundary (nothing to carry into the next epoch)."""
    return {"sums": {}, "images": 0, "seconds": 0.0, "data_seconds": 0.0}


class Trainer:
    """Owns the training state; :meth:`run_step` is one optimisation step, hooks do the rest.

    ``model``, ``criterion`` and ``data`` (a ``TrainingData``) may be given already built (library use:
    a model of your own, a custom objective); by default each is built from ``config``. A given model
    must follow the model contract (``docs/architecture.md``) and a given criterion the criterion one.
    """

    def __init__(
        self,
        config: Config,
        run_dir: str | os.PathLike,
        *,
        data_root: str | os.PathLike | None = None,
        resume: bool = False,
        overwrite: bool = False,
        hooks: list[HookBase] | None = None,
        ctx=None,
        model: nn.Module | None = None,
        criterion: nn.Module | None = None,
        data: Any = None,
    ) -> None:
        self.cfg = config
        self._given = {"model": model, "criterion": criterion, "data": data}
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.overwrite = overwrite
        self.ctx = ctx if ctx is not None else init_context(config.train.device, config.train.dist_timeout_s)
        self.device = self.ctx.device
        root = data_root if data_root is not None else config.data.root
        if root is None and resume and (self.run_dir / RUN_FILE).is_file():
            root = json.loads((self.run_dir / RUN_FILE).read_text()).get("data_root")
        if root is None:
            raise ConfigError("no dataset root: pass --data-root DIR or set data.root")
        self.data_root = Path(root)
        self.hooks: list[HookBase] = []
        for hook in hooks if hooks is not None else default_hooks():
            self.register(hook)
        self.epoch = 0
        self.start_epoch = 0
        self.start_step = 0
        self.partial: dict[str, Any] = _no_partial_epoch()
        self._stop_requested = False
        self.last_saved: tuple[int, int] | None = None  # (finished epochs, steps into the next) of last.pt
        self.step = 0
        self.global_step = 0
        self.terms: dict[str, float] = {}
        self.lr = config.optim.lr
        self.images_per_s = 0.0
        self.best: dict[str, Any] | None = None
        self.improved = False
        self.history: list[dict[str, Any]] = []
        self.epoch_record: dict[str, Any] = {}
        self._lock: RunDirLock | None = None

    def register(self, hook: HookBase) -> None:
        hook.trainer = self
        self.hooks.append(hook)

    def _call(self, name: str) -> None:
        for hook in self.hooks:
            getattr(hook, name)()

    # ---- setup

    def setup(self) -> None:
        """Build everything (seeded), then restore the resumed state if any."""
        cfg = self.cfg
        cfg.validate_for_training()
        if self.device.type == "cpu":  # process-wide; first, so that torch's worker threads inherit it
            if cfg.train.flush_denormal:
                flush_denormals()
            if cfg.train.keep_freed_memory:
                keep_freed_memory()
        if self.resume and not _main_only(self.ctx, resumable, self.run_dir):
            self.resume, self.overwrite = False, True  # stopped before its first checkpoint: start afresh
        # refuse early (rank 0 checks, every rank fails); the old run is removed only once everything is built
        _main_only(self.ctx, check_run_dir, self.run_dir, resume=self.resume, overwrite=self.overwrite)
        resumed = None
        if self.resume:
            path = self.run_dir / ckpt.LAST
            resumed = ckpt.load_checkpoint(path, map_location="cpu")
            # through the current schema: keys added since the checkpoint take their defaults
            saved = ckpt.checkpoint_config(resumed, path).to_dict()
            ckpt.check_same_config(saved, cfg.to_dict(), path)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(cfg.train.seed)

        from vireid.data.loaders import build_training_data
        from vireid.losses.criteria import build_criterion
        from vireid.models.build import build_model

        self.data = self._given["data"] if self._given["data"] is not None else build_training_data(
            cfg.data, self.data_root, seed=cfg.train.seed, rank=self.ctx.rank, world_size=self.ctx.world_size,
            progress=self.ctx.is_main and cfg.train.progress, pin_memory=self.device.type == "cuda")
        self.num_classes = int(self.data.num_classes)
        self.has_validation = bool(self.data.val_query) and bool(self.data.val_gallery)
        if cfg.train.select == "val" and not self.has_validation:
            raise ConfigError(
                "train.select is 'val' but no training identities are held out for validation: "
                "set data.val_split (e.g. 'official' or a number of ids) or train.select=last"
            )
        self.steps_per_epoch = len(self.data.loader)
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"an epoch has no batch: data.ids_per_batch={cfg.data.ids_per_batch} exceeds the "
                f"{self.num_classes} training identities"
            )
        model = self._given["model"]
        model = (model if model is not None else build_model(cfg.model, self.num_classes)).to(self.device)
        self.use_amp, self.amp_dtype = autocast_settings(self.device, cfg.train.amp, cfg.train.amp_dtype)
        self.channels_last = use_channels_last(self.device, cfg.train.channels_last)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        criterion = self._given["criterion"]
        if criterion is None:
            criterion = build_criterion(cfg.loss, cfg.model, self.num_classes)
        self.criterion = criterion.to(self.device)
        self.optimizer = build_optimizer(nn.ModuleList([model, self.criterion]), cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.schedule)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        ) if self.device.type == "cuda" else None
        if self.ctx.world_size > 1:
            self.model = _dist.wrap_model(model, self.ctx, sync_bn=cfg.train.sync_bn,
                                          find_unused_parameters=cfg.train.find_unused_parameters)
        else:
            self.model = model
        # the forward of a step; self.model stays the plain module (its state dict has no compile prefix)
        self.step_model = torch.compile(self.model) if cfg.train.compile else self.model
        if resumed is not None:
            self._restore(resumed)
        self.lr = self.optimizer.param_groups[0]["lr"]
        if self.ctx.is_main:
            prepare_run_dir(self.run_dir, resume=self.resume, overwrite=self.overwrite)
            save_config(cfg, self.run_dir / CONFIG_FILE)
            from vireid.utils.io import atomic_write_json

            atomic_write_json(self.run_dir / RUN_FILE, {
                "data_root": str(self.data_root), "vireid": __version__, "torch": torch.__version__,
                "device": str(self.device), "world_size": self.ctx.world_size,
                "num_classes": self.num_classes,
            })
        _barrier(self.ctx)

    def _restore(self, state: dict[str, Any]) -> None:
        source = self.run_dir / ckpt.LAST
        ckpt.load_model_state(ckpt.unwrap(self.model), state["model"], source)
        if "criterion" in state:
            self.criterion.load_state_dict(state["criterion"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        sampler = getattr(self.data, "sampler", None)
        if sampler is not None and state.get("sampler") is not None and hasattr(sampler, "load_state_dict"):
            try:
                sampler.load_state_dict(state["sampler"])
            except CheckpointError as exc:
                raise CheckpointError(f"cannot resume {source}: {exc}") from None
        self.start_epoch = int(state["epoch"])
        self.start_step = int(state.get("step", 0))
        self.partial = state.get("partial") or _no_partial_epoch()
        self.global_step = int(state.get("global_step", 0))
        self.last_saved = (self.start_epoch, self.start_step)
        self.best = state.get("best")
        self.history = list(state.get("history", []))
        if state.get("rng") is not None:
            ckpt.set_rng_state(state["rng"])

    # ---- state

    def state(self) -> dict[str, Any]:
        """Everything needed to resume after the current (finished) epoch."""
        sampler = getattr(self.data, "sampler", None)
        return {
            "model": ckpt.unwrap(self.model).state_dict(),
            "criterion": self.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sampler": sampler.state_dict() if sampler is not None and hasattr(sampler, "state_dict") else None,
            "rng": ckpt.rng_state(),
            "epoch": self.epoch + 1,
            "step": 0,
            "global_step": self.global_step,
            "best": self.best,
            "history": self.history,
            "config": self.cfg.to_dict(),
            "num_classes": self.num_classes,
            "label_map": dict(self.data.label_map),
        }

    def save_last(self) -> Path:
        path = ckpt.save_checkpoint(self.run_dir / ckpt.LAST, self.state())
        self.last_saved = (self.epoch + 1, 0)
        return path

    def save_model(self, epoch: int, val: dict[str, float] | None) -> Path:
        """The selected model: weights, config and label map (no optimiser state)."""
        return ckpt.save_checkpoint(self.run_dir / ckpt.MODEL, {
            "model": ckpt.unwrap(self.model).state_dict(),
            "epoch": epoch,
            "val": val,
            "config": self.cfg.to_dict(),
            "num_classes": self.num_classes,
            "label_map": dict(self.data.label_map),
        })

    # ---- one step

    def _to_device(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images = batch["images"].to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        labels = batch["labels"].to(self.device, non_blocking=True)
        return images, labels, batch["modality"].to(self.device, non_blocking=True)

    def run_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """Forward, loss, backward, optimiser step; returns the loss terms as floats."""
        images, labels, modality = self._to_device(batch)
        amp = (torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
               if self.use_amp else nullcontext())
        with amp:
            outputs = self.step_model(images, modality)
        outputs = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in outputs.items()}
        terms = self.criterion(outputs, labels, modality)
        loss = terms["loss"]
        bad = not bool(torch.isfinite(loss))
        if self.ctx.world_size > 1:  # every process stops at the same step, or DDP's all-reduce would wait
            bad = _dist.any_process(bad, self.ctx)
        if bad:
            self._diverged(terms)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None and self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            if self.cfg.train.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
            self.optimizer.step()
        return {k: float(v.detach()) for k, v in terms.items() if torch.is_tensor(v) and v.numel() == 1}

    def _diverged(self, terms: dict[str, torch.Tensor]) -> None:
        shown = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items() if torch.is_tensor(v) and v.numel() == 1)
        if bool(torch.isfinite(terms["loss"])):
            shown = f"on another process; here {shown}"
        raise TrainingDivergedError(
            f"loss is not finite at epoch {self.epoch + 1} step {self.step + 1} ({shown}); "
            f"stopped, {self.kept_message()}; lower optim.lr or check the data"
        )

    def kept_message(self) -> str:
        """What a run stopped by an error keeps: its last checkpoint, for messages."""
        if self.last_saved is None:
            return "no checkpoint had been written yet"
        epoch, step = self.last_saved
        where = f"epoch {epoch}" if step == 0 else f"epoch {epoch + 1} step {step}"
        return f"last good checkpoint {self.run_dir / ckpt.LAST} ({where})"

    # ---- validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Rank the held-out ids' visible images for each of their infrared images (compute_metrics)."""
        from vireid.evaluation.metrics import compute_metrics
        from vireid.evaluation.protocols.common import labels
        from vireid.features.extract import extract_features

        model = ckpt.unwrap(self.model)
        bs = self.cfg.train.eval_batch_size
        kw = {"device": self.device, "batch_size": bs, "flip": self.cfg.test.flip, "amp": self.use_amp}
        if self.ctx.world_size > 1:  # each process extracts a share; every process gets all the features
            kw["ctx"] = self.ctx
        q = extract_features(model, self.data.val_query, self.data_root, self.cfg.data, **kw)
        g = extract_features(model, self.data.val_gallery, self.data_root, self.cfg.data, **kw)
        qf = torch.nn.functional.normalize(torch.from_numpy(q.feats), dim=1)
        gf = torch.nn.functional.normalize(torch.from_numpy(g.feats), dim=1)
        dist = torch.cdist(qf, gf).numpy()
        q_pids, q_cams = labels(self.data.val_query)
        g_pids, g_cams = labels(self.data.val_gallery)
        m = compute_metrics(dist, q_pids, g_pids, q_cams, g_cams)
        cmc = np.asarray(m.cmc)
        return {"rank1": 100.0 * float(cmc[0]), "rank5": 100.0 * float(cmc[min(4, len(cmc) - 1)]),
                "mAP": 100.0 * float(m.mAP), "mINP": 100.0 * float(m.mINP)}

    # ---- loop

    def train(self) -> RunResult:
        """Run the remaining epochs.

        The first Ctrl-C (SIGINT) or SIGTERM stops after the current step and writes ``last.pt`` at that step
        (a resumable mid-epoch state), then raises ``KeyboardInterrupt``; a second one interrupts at once.
        """
        _main_only(self.ctx, self._take_lock)  # before anything else: a second process is refused at once
        try:
            self.setup()
            self._call("before_train")
            self._stop_requested = False
            previous = _install_stop_signals(self)
            try:
                for epoch in range(self.start_epoch, self.cfg.train.epochs):
                    self._run_epoch(epoch)
            finally:
                _restore_signals(previous)
                self._call("after_train")
        finally:
            if self._lock is not None:
                self._lock.release()
        return self.result()

    def _take_lock(self) -> None:
        self._lock = RunDirLock(self.run_dir).acquire()

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (what the first Ctrl-C or SIGTERM does)."""
        self._stop_requested = True

    def _run_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        resuming_mid_epoch = epoch == self.start_epoch and self.start_step > 0
        sampler = getattr(self.data, "sampler", None)
        if resuming_mid_epoch:
            self.step, sums, images, elapsed0 = self.start_step, dict(self.partial["sums"]), \
                self.partial["images"], self.partial["seconds"]
            waited = float(self.partial.get("data_seconds", 0.0))  # absent in checkpoints before it was kept
            if self.ctx.world_size > 1:  # the checkpoint holds rank 0's generators only
                seed_everything(process_seed(self.cfg.train.seed, epoch, self.ctx.rank, self.start_step))
        else:
            self.step, sums, images, elapsed0, waited = 0, {}, 0, 0.0, 0.0
            self.improved = False
            if sampler is not None and hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            if self.ctx.world_size > 1:
                seed_everything(process_seed(self.cfg.train.seed, epoch, self.ctx.rank))
        self.lr = self.optimizer.param_groups[0]["lr"]
        self.model.train()
        self._call("before_epoch")
        start = tick = time.perf_counter()
        for batch, wait in self._batches():
            waited += wait
            self.terms = self.run_step(batch)
            n = int(batch["images"].shape[0]) * self.ctx.world_size
            images += n
            now = time.perf_counter()
            self.images_per_s = n / max(now - tick, 1e-9)
            tick = now
            for key, value in self.terms.items():
                sums[key] = sums.get(key, 0.0) + value
            self.step += 1
            self.global_step += 1
            self._call("after_step")
            if self._stop_agreed() and self.step < self.steps_per_epoch:
                self._interrupt(sums, images, elapsed0 + time.perf_counter() - start, waited)
        elapsed = elapsed0 + time.perf_counter() - start
        self.scheduler.step()
        means = {k: v / max(self.step, 1) for k, v in sums.items()}
        if self.ctx.world_size > 1:  # each process's losses are over its own share of the global batch
            means = _dist.all_reduce_mean(means, self.ctx)
        self.epoch_record = {"epoch": epoch + 1, "lr": self.lr, **means,
                             "images_per_s": round(images / max(elapsed, 1e-9), 2), "seconds": round(elapsed, 3),
                             "data_seconds": round(waited, 3)}
        self.history.append(self.epoch_record)  # before the hooks: the checkpoint includes this epoch
        self._call("after_epoch")
        self.start_step = 0
        if self._stop_agreed() and epoch + 1 < self.cfg.train.epochs:
            self._interrupt_message(epoch + 1, 0)
            raise KeyboardInterrupt

    def _batches(self) -> Iterator[tuple[dict[str, Any], float]]:
        """The epoch's batches, each with the seconds spent blocked on the loader for it (input pipeline vs
        step); an input error (an image replaced by garbage mid-run) stops the run with one line naming the
        file and what was kept."""
        batches = iter(self.data.loader)
        while True:
            wait_start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            except VireidError as exc:
                raise type(exc)(f"{one_line(exc)}; stopped at epoch {self.epoch + 1} step {self.step + 1}, "
                                f"{self.kept_message()}") from None
            yield batch, time.perf_counter() - wait_start

    def _stop_agreed(self) -> bool:
        """Whether to stop now: a Ctrl-C reached this process or, under torchrun, any process (they may see
        the signal a step apart; one stopping alone would leave the others waiting in DDP's all-reduce)."""
        if self.ctx.world_size > 1:
            self._stop_requested = _dist.any_process(self._stop_requested, self.ctx)
        return self._stop_requested

    def _interrupt(self, sums: dict[str, float], images: int, seconds: float, data_seconds: float) -> None:
        """Write a mid-epoch ``last.pt`` (rank 0) and raise KeyboardInterrupt."""
        if self.ctx.world_size > 1:  # the partial sums are resumed on every process: save their mean
            sums = _dist.all_reduce_mean(sums, self.ctx)
        if self.ctx.is_main:
            state = self.state()
            state["epoch"] = self.epoch  # unfinished
            state["step"] = self.step
            state["partial"] = {"sums": sums, "images": images, "seconds": seconds, "data_seconds": data_seconds}
            sampler = getattr(self.data, "sampler", None)
            if sampler is not None and hasattr(sampler, "state_dict"):
                state["sampler"] = sampler.state_dict(batches_done=self.step)
            ckpt.save_checkpoint(self.run_dir / ckpt.LAST, state)
            self.last_saved = (self.epoch, self.step)
            self._interrupt_message(self.epoch, self.step)
        _barrier(self.ctx)
        raise KeyboardInterrupt

    def _interrupt_message(self, epoch: int, step: int) -> None:
        if self.ctx.is_main:
            print(f"interrupted: saved {self.run_dir / ckpt.LAST} at epoch {epoch + (1 if step else 0)} "
                  f"step {step}; continue with --resume", file=sys.stderr)

    def result(self) -> RunResult:
        done = self.history[-1]["epoch"] if self.history else self.start_epoch
        if self.cfg.train.select == "val" and self.best is not None:
            sel_epoch, sel_val = self.best["epoch"], self.best["val"]
        else:
            sel_epoch = done
            sel_val = next((h.get("val") for h in reversed(self.history) if h["epoch"] == done), None)
        return RunResult(
            run_dir=self.run_dir, model_path=self.run_dir / ckpt.MODEL, last_checkpoint=self.run_dir / ckpt.LAST,
            epochs_done=done, selected_epoch=sel_epoch, selected_val=sel_val, history=list(self.history),
            config=self.cfg, num_classes=self.num_classes, is_main=self.ctx.is_main,
        )


def train(
    config: Config,
    output_dir: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    hooks: list[HookBase] | None = None,
    model: nn.Module | None = None,
    criterion: nn.Module | None = None,
) -> RunResult:
    """Train ``config`` into ``output_dir`` (refused if it exists, unless ``resume`` or ``overwrite``);
    ``model`` / ``criterion`` replace the ones the config would build."""
    trainer = Trainer(config, output_dir, data_root=data_root, resume=resume, overwrite=overwrite, hooks=hooks,
                      model=model, criterion=criterion)
    try:
        return trainer.train()
    finally:
        if trainer.ctx.world_size > 1:
            _dist.cleanup(trainer.ctx)

