"""Scenarios run by ``torchrun`` in tests/distributed; each rank saves what it observed to OUT/rank<R>.pt.

Usage: ``torchrun --standalone --nproc_per_node 2 dist_workers.py SCENARIO OUT_DIR``. The builders
(``make_net``, ``make_batch``, ``make_images``) are shared with the tests, which compute the
single-process reference in the pytest process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from vireid.training import distributed as D

NUM_CLASSES = 5
BATCH = 8  # combined batch; each of the 2 ranks takes half
LR = 0.5
STEPS = 2
N_IMAGES = 11  # extraction set: odd, so the shares differ in size


def make_net(seed: int = 0) -> nn.Module:
    """A small conv net with BatchNorm2d and BatchNorm1d (a BNNeck-like head) and a classifier."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 8),
        nn.BatchNorm1d(8),
        nn.Linear(8, NUM_CLASSES),
    )


def make_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(BATCH, 3, 8, 6, generator=g) * 2 + 0.5
    y = torch.randint(0, NUM_CLASSES, (BATCH,), generator=g)
    return x, y


def make_images() -> torch.Tensor:
    return torch.randn(N_IMAGES, 3, 8, 6, generator=torch.Generator().manual_seed(7))


def extract(net: nn.Module, images: torch.Tensor, batch_size: int = 3) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        parts = [net(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, NUM_CLASSES)


def train_steps(net: nn.Module, rows: slice, ctx: D.DistContext | None = None, **wrap: object) -> dict:
    """SGD (not Adam: Adam would hide a wrong gradient scale) on ``rows`` of each batch; returns the record."""
    opt = torch.optim.SGD(net.parameters(), lr=LR)  # built before wrapping, as the trainer does
    model = D.wrap_model(net, ctx, **wrap) if ctx is not None else net
    model.train()
    losses, grads = [], []
    for step in range(STEPS):
        x, y = make_batch(step)
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows])
        opt.zero_grad()
        loss.backward()
        grads.append({k: p.grad.clone() for k, p in D.unwrap_model(model).named_parameters()})
        opt.step()
        losses.append(loss.detach())
    state = {k: v.clone() for k, v in D.unwrap_model(model).state_dict().items()}
    return {"state": state, "grads": grads, "losses": losses, "model": type(D.unwrap_model(model)).__name__}


class TwoBranch(nn.Module):
    """A model whose ``aux`` branch gets no gradient: DDP needs find_unused_parameters=True."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Linear(4, 3)
        self.aux = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def scenario_collectives(ctx: D.DistContext, out: Path) -> dict:
    rec: dict = {"rank": ctx.rank, "world_size": ctx.world_size, "local_rank": ctx.local_rank}
    rec["backend"], rec["device"], rec["is_main"] = ctx.backend, str(ctx.device), ctx.is_main

    # extraction: contiguous shares, strided shares, and a share that is empty on one rank
    torch.manual_seed(1000 + ctx.rank)  # different per rank on purpose: DDP/extraction must not depend on it
    net, images = make_net(), make_images()
    shard = D.shard_indices(N_IMAGES, ctx)
    rec["shard"] = list(shard)
    rec["gathered"] = D.gather_features(extract(net, images[shard.start : shard.stop]), shard, N_IMAGES, ctx)
    strided = torch.arange(ctx.rank, N_IMAGES, ctx.world_size)
    rec["gathered_strided"] = D.gather_features(extract(net, images[strided]), strided, N_IMAGES, ctx)
    one = D.shard_indices(1, ctx)
    rec["gathered_one"] = D.gather_features(extract(net, images[:1][one.start : one.stop]), one, 1, ctx)
    try:  # both ranks claim position 0: must be refused on every rank
        D.gather_features(extract(net, images[:1]), [0], 2, ctx)
        rec["overlap_error"] = None
    except ValueError as exc:
        rec["overlap_error"] = str(exc)

    rec["mean_float"] = D.all_reduce_mean(float(ctx.rank + 1), ctx)
    rec["mean_dict"] = D.all_reduce_mean({"a": torch.tensor(float(ctx.rank)), "b": 2.0 * ctx.rank}, ctx)
    rec["mean_tensor"] = D.all_reduce_mean(torch.tensor([ctx.rank, 10.0 * ctx.rank]), ctx)
    rec["any"] = [D.any_process(ctx.rank == 1, ctx), D.any_process(False, ctx)]
    rec["broadcast"] = D.broadcast_object({"from": ctx.rank} if ctx.is_main else None, ctx)

    marker = out / "main_only.txt"
    rec["main_only"] = D.main_process_only(
        ctx, lambda: (marker.open("a").write(f"{ctx.rank}\n"), ctx.rank)[1]
    )

    def boom() -> None:
        raise ValueError("cannot create the run folder")

    try:
        D.main_process_only(ctx, boom)
        rec["main_failure"] = None
    except (ValueError, D.DistributedError) as exc:
        rec["main_failure"] = f"{type(exc).__name__}: {exc}"
    D.barrier(ctx)

    # DDP: one step on two half batches vs one single-process step on the whole batch (the test compares)
    rows = slice(ctx.rank * BATCH // 2, (ctx.rank + 1) * BATCH // 2)
    rec["ddp_sync"] = train_steps(make_net(), rows, ctx, sync_bn=True)
    rec["ddp_local_bn"] = train_steps(make_net(), rows, ctx, sync_bn=False)
    rec["ddp_init_seed"] = train_steps(make_net(seed=ctx.rank), rows, ctx, sync_bn=True)

    torch.manual_seed(0)
    branch = D.wrap_model(TwoBranch(), ctx, find_unused_parameters=True)
    opt = torch.optim.SGD(branch.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        branch(torch.full((2, 4), float(ctx.rank + 1))).sum().backward()
        opt.step()
    rec["unused_branch"] = {k: v.clone() for k, v in D.unwrap_model(branch).state_dict().items()}
    return rec


def scenario_dead_peer(ctx: D.DistContext, out: Path) -> dict:
    """Rank 1 dies before a collective; rank 0 must get an error, not hang."""
    if ctx.rank == 1:
        os._exit(3)
    start = time.monotonic()
    try:
        D.all_reduce_mean(1.0, ctx)
        D.barrier(ctx)
    except D.DistributedError as exc:
        (out / "rank0_error.txt").write_text(f"{time.monotonic() - start:.2f}\n{exc}\n")
        raise
    return {}


def scenario_stuck_peer(ctx: D.DistContext, out: Path) -> dict:
    """Rank 1 hangs (alive, never joins); rank 0's barrier must time out and name it."""
    if ctx.rank == 1:
        time.sleep(120)
        return {}
    start = time.monotonic()
    try:
        D.barrier(ctx)
    except D.DistributedError as exc:
        (out / "rank0_error.txt").write_text(f"{time.monotonic() - start:.2f}\n{exc}\n")
        raise
    return {}


def scenario_trainer_faults(ctx: D.DistContext, out: Path) -> dict:
    """The trainer under two processes, on OUT/synthvi with OUT/tiny.yaml (3 steps per epoch per process):
    a Ctrl-C that reaches rank 1 only (then a resume of that run), then a loss that becomes NaN on rank 1 only. Every rank must stop
    at the same step (a rank stopping alone would leave the other blocked in DDP's all-reduce). Then
    RegDB ``--trial all`` (trials 1 and 2 of OUT/regdb) with ``--overwrite`` over OUT/trials."""
    from vireid.config import load_config
    from vireid.training.trainer import HookBase, Trainer, TrainingDivergedError, default_hooks
    from vireid.training.trials import train_trials

    cfg = load_config(out / "tiny.yaml", ["train.epochs=2", "train.progress=false"])
    rec: dict = {"rank": ctx.rank}

    class StopOnRank1(HookBase):  # what the first SIGINT does, on rank 1 only, after its first step
        def after_step(self) -> None:
            if self.trainer.ctx.rank == 1 and self.trainer.global_step == 1:
                self.trainer.request_stop()

    trainer = Trainer(cfg, out / "stop", data_root=out / "synthvi", hooks=[*default_hooks(), StopOnRank1()], ctx=ctx)
    try:
        trainer.train()
        rec["stop"] = None
    except KeyboardInterrupt:
        rec["stop"] = [trainer.epoch, trainer.step]
    saved = torch.load(out / "stop" / "last.pt", map_location="cpu", weights_only=False)
    rec["stop_checkpoint"] = [saved["epoch"], saved["step"]]
    # resumed mid-epoch with the same number of processes, to the end
    resumed = Trainer(cfg, out / "stop", data_root=out / "synthvi", resume=True, ctx=ctx).train()
    rec["resumed"] = [[h["epoch"] for h in resumed.history], resumed.history[0]["loss"]]

    class NanOnRank1(HookBase):  # rank 1's loss is NaN from the first step of epoch 2 on
        def after_step(self) -> None:
            t = self.trainer
            if t.ctx.rank == 1 and t.global_step == t.steps_per_epoch:
                criterion = t.criterion

                def poisoned(outputs, labels, modality):
                    terms = criterion(outputs, labels, modality)
                    return {**terms, "loss": terms["loss"] * float("nan")}

                t.criterion = poisoned

    trainer = Trainer(cfg, out / "nan", data_root=out / "synthvi", hooks=[*default_hooks(), NanOnRank1()], ctx=ctx)
    try:
        trainer.train()
        rec["nan"] = None
    except TrainingDivergedError as exc:
        rec["nan"] = [trainer.epoch, trainer.step, str(exc)]

    # RegDB --trial all over an earlier run (--overwrite): rank 0 alone replaces the folder, in one group
    regdb = load_config(out / "tiny.yaml", ["data.dataset=regdb", "train.epochs=1", "train.progress=false"])
    results = train_trials(regdb, out / "trials", [1, 2], data_root=out / "regdb", overwrite=True)
    rec["trials"] = [(r.config.data.trial, r.epochs_done, r.is_main) for r in results]
    return rec


SCENARIOS = {
    "trainer_faults": scenario_trainer_faults,
    "collectives": scenario_collectives,
    "dead_peer": scenario_dead_peer,
    "stuck_peer": scenario_stuck_peer,
}


def main(argv: list[str]) -> int:
    name, out = argv[0], Path(argv[1])
    timeout_s = float(argv[2]) if len(argv) > 2 else 60.0
    torch.set_num_threads(1)
    ctx = D.init_distributed("cpu", timeout_s=timeout_s)
    try:
        record = SCENARIOS[name](ctx, out)
        torch.save(record, out / f"rank{ctx.rank}.pt")
    finally:
        D.cleanup(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
