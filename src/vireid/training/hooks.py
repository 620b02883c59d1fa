"""The hooks around the training step (fast-reid style): validation on held-out training identities,
checkpoints, the metrics log and the progress bar. Each is a ``HookBase`` whose methods the trainer calls
at fixed points (``before_train``, ``before_epoch``, ``after_step``, ``after_epoch``, ``after_train``);
``self.trainer`` is the :class:`~vireid.training.trainer.Trainer`. Only the main process writes.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from vireid.errors import OutputError
from vireid.training import distributed as _dist

if TYPE_CHECKING:
    from vireid.training.trainer import Trainer

METRICS_FILE = "metrics.jsonl"


def _barrier(ctx) -> None:
    if ctx.world_size > 1:
        _dist.barrier(ctx)


class HookBase:
    """Override any of these; ``self.trainer`` is set when the hook is registered."""

    trainer: Trainer

    def before_train(self) -> None: ...

    def before_epoch(self) -> None: ...

    def after_step(self) -> None: ...

    def after_epoch(self) -> None: ...

    def after_train(self) -> None: ...


class ValidationHook(HookBase):
    """Every ``train.eval_every`` epochs (and after the last), rank held-out training ids (IR -> visible)."""

    def after_epoch(self) -> None:
        t = self.trainer
        every = t.cfg.train.eval_every
        last = t.epoch + 1 == t.cfg.train.epochs
        if not t.has_validation or not (last or (every > 0 and (t.epoch + 1) % every == 0)):
            return
        # every process extracts its share of the images and receives all the features, so every
        # process computes the same metrics and keeps the same ``best``
        metrics = t.validate()
        t.epoch_record["val"] = metrics
        score = metrics[t.cfg.train.select_metric]
        if t.best is None or score > t.best["score"]:
            t.best = {"score": score, "epoch": t.epoch + 1, "val": metrics}
            t.improved = True


class CheckpointHook(HookBase):
    """Write ``model.pt``, then ``last.pt`` every ``train.checkpoint_every`` epochs (and after the last).

    ``last.pt`` is written last: it is the commit point of an epoch. A process killed before it resumes
    from the previous ``last.pt`` and redoes the epoch, rewriting ``model.pt`` and the log identically."""

    def after_epoch(self) -> None:
        t = self.trainer
        last = t.epoch + 1 == t.cfg.train.epochs
        every = max(1, t.cfg.train.checkpoint_every)
        if t.ctx.is_main:
            save = last or (t.epoch + 1) % every == 0
            if t.cfg.train.select == "val" and t.improved:
                t.save_model(t.best["epoch"], t.best["val"])
            elif t.cfg.train.select == "last" and save:
                t.save_model(t.epoch + 1, t.epoch_record.get("val"))
            if save:
                t.save_last()
        _barrier(t.ctx)


class MetricsLogger(HookBase):
    """JSON lines in ``metrics.jsonl`` (and TensorBoard scalars when tensorboard is importable)."""

    def __init__(self) -> None:
        self.writer = None

    def before_train(self) -> None:
        t = self.trainer
        if not t.ctx.is_main:
            return
        path = t.run_dir / METRICS_FILE
        if t.resume and path.is_file():  # drop the lines written after the checkpoint we resume from
            keep = [ln for ln in path.read_text().splitlines() if _before(_record(ln), t)]
            from vireid.utils.io import atomic_write_text

            atomic_write_text(path, "".join(line + "\n" for line in keep))
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in after_train
        if t.cfg.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(t.run_dir / "tensorboard"), purge_step=t.global_step or None)

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as exc:
            kept = self.trainer.kept_message()
            raise OutputError(f"could not append to the metrics log {self.file.name}: "
                              f"{exc.strerror or exc}; stopped, {kept}", exc.strerror or str(exc)) from None

    def after_step(self) -> None:
        t = self.trainer
        if not t.ctx.is_main or t.cfg.train.log_every <= 0 or t.step % t.cfg.train.log_every:
            return
        record = {"kind": "step", "epoch": t.epoch + 1, "step": t.step, "global_step": t.global_step,
                  "lr": t.lr, "images_per_s": round(t.images_per_s, 2), **t.terms}
        self._write(record)
        if self.writer is not None:
            for key, value in t.terms.items():
                self.writer.add_scalar(f"train/{key}", value, t.global_step)
            self.writer.add_scalar("train/lr", t.lr, t.global_step)

    def after_epoch(self) -> None:
        t = self.trainer
        if not t.ctx.is_main:
            return
        self._write({"kind": "epoch", **t.epoch_record})
        if self.writer is not None:
            for key, value in t.epoch_record.get("val", {}).items():
                self.writer.add_scalar(f"val/{key}", value, t.epoch + 1)
            self.writer.flush()

    def after_train(self) -> None:
        if hasattr(self, "file"):
            self.file.close()
        if self.writer is not None:
            self.writer.close()


def _record(line: str) -> dict[str, Any] | None:
    """A metrics line, or None for a line torn by a killed process or a full disk."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _before(record: dict[str, Any] | None, t: Trainer) -> bool:
    """Whether a metrics line describes training that precedes the resumed checkpoint."""
    if record is None:
        return False
    epoch = record.get("epoch", 0)
    if epoch <= t.start_epoch:
        return True
    return record.get("kind") == "step" and epoch == t.start_epoch + 1 and record.get("step", 0) <= t.start_step


class ProgressBar(HookBase):
    """A tqdm bar per epoch with the loss terms, learning rate and images/s (rank 0 only)."""

    def __init__(self) -> None:
        self.bar = None

    def before_epoch(self) -> None:
        t = self.trainer
        if not (t.ctx.is_main and t.cfg.train.progress):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=t.steps_per_epoch, desc=f"epoch {t.epoch + 1}/{t.cfg.train.epochs}",
                        leave=False, dynamic_ncols=True, file=sys.stderr)

    def after_step(self) -> None:
        if self.bar is None:
            return
        t = self.trainer
        post = {k: f"{v:.3g}" for k, v in t.terms.items()}
        post["lr"] = f"{t.lr:.2e}"
        post["img/s"] = f"{t.images_per_s:.0f}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def after_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            t = self.trainer
            rec = t.epoch_record
            val = rec.get("val")
            msg = (f"epoch {t.epoch + 1}/{t.cfg.train.epochs} loss {rec['loss']:.4f} | {rec['images_per_s']:.0f} img/s, "
                   f"{100 * rec['data_seconds'] / max(rec['seconds'], 1e-9):.0f}% waiting for data")
            if val:
                msg += " | val " + " ".join(f"{k} {v:.2f}" for k, v in val.items() if k in ("rank1", "mAP", "mINP"))
            print(msg, file=sys.stderr)

    def after_train(self) -> None:
        if self.bar is not None:
            self.bar.close()


class StopAfterEpoch(HookBase):
    """Stop at the end of epoch ``n`` (1-based) as Ctrl-C does: the run ends with a resumable ``last.pt``
    there. For interrupting a run on purpose (resume tests, the GPU check's round trip)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def after_epoch(self) -> None:
        if self.trainer.epoch + 1 == self.n:
            self.trainer.request_stop()


def default_hooks() -> list[HookBase]:
    """Validation first (the checkpoint records the best score), then the log, then the checkpoint (the
    commit point of an epoch: a run killed before it redoes the epoch and its log lines), then the bar."""
    return [ValidationHook(), MetricsLogger(), CheckpointHook(), ProgressBar()]
