"""Multi-process training with ``torch.distributed``: one process per GPU (or CPU worker), launched by torchrun.

The trainer calls :func:`init_distributed` once, wraps its model with :func:`wrap_model`, and uses the small
collectives below for logging (:func:`all_reduce_mean`), coordination (:func:`barrier`,
:func:`main_process_only`) and distributed feature extraction (:func:`shard_indices` +
:func:`gather_features`). Without torchrun every function degrades to its single-process meaning, so the
same code path serves one process and many.

Semantics (see docs/distributed.md): ``data.ids_per_batch`` is per process (the global batch is
``world_size`` x P identities) and the learning rate is used as given. DDP averages gradients over
processes, so for a loss that is a mean over a batch's samples one step on N processes equals one
single-process step on the N batches combined (exactly so with SyncBatchNorm).

Failure handling: every process group gets ``timeout_s``; a collective that a peer never joins raises
:class:`DistributedError` (or, under NCCL, the watchdog aborts the process) instead of hanging, and
torchrun then stops the remaining workers and reports the first failure.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from vireid.errors import ConfigError
from vireid.utils.device import resolve_device

T = TypeVar("T")

# Environment variables torchrun (and other launchers: SLURM wrappers, mpirun scripts) set for env://.
_LAUNCH_VARS = ("RANK", "WORLD_SIZE")
_RENDEZVOUS_VARS = ("MASTER_ADDR", "MASTER_PORT")


class DistributedError(RuntimeError):
    """A collective failed: a peer process died, hung past the timeout, or disagreed on the data."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` processes and the device it computes on.

    ``backend`` is ``"nccl"``/``"gloo"`` when a process group is active, else ``None``.
    ``owns_group`` says whether :func:`cleanup` should destroy the group (False when it was created by
    someone else, e.g. a test harness, before :func:`init_distributed` was called).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None
    timeout_s: float = 1800.0
    owns_group: bool = field(default=False, compare=False)

    @property
    def is_main(self) -> bool:
        """True on the one process (rank 0) that writes files, logs and progress bars."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when there are several processes and collectives actually communicate."""
        return self.world_size > 1 and self.backend is not None


# --------------------------------------------------------------------------- set-up and tear-down


def _env_int(name: str, default: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise ConfigError(f"environment variable {name} is not set; launch with torchrun")
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {raw!r}") from None


def launched_distributed() -> bool:
    """True when a launcher (torchrun) set RANK and WORLD_SIZE for this process."""
    return all(name in os.environ for name in _LAUNCH_VARS)


def _resolve_device(device: str, local_rank: int, distributed: bool) -> torch.device:
    """``auto`` -> ``cuda`` if available else ``cpu``; under a launcher ``cuda`` means ``cuda:LOCAL_RANK``."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        if distributed:
            if dev.index is not None:
                raise ConfigError(
                    f"train.device: {device!r} names a GPU, but under torchrun each process uses "
                    "cuda:LOCAL_RANK; use 'cuda' or 'auto' (and CUDA_VISIBLE_DEVICES to choose GPUs)"
                )
            count = torch.cuda.device_count()
            if local_rank >= count:
                raise ConfigError(
                    f"LOCAL_RANK {local_rank} but only {count} CUDA device(s) are visible; "
                    "use --nproc_per_node <= the number of GPUs on each machine"
                )
            dev = torch.device("cuda", local_rank)
        elif dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    elif distributed and dev.type != "cpu":
        raise ConfigError(f"train.device: {device!r}; multi-process training supports only 'cuda' and 'cpu'")
    return dev


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Set up this process: join the process group when launched by torchrun, else a single-process context.

    Under torchrun (RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT in the environment) with more than
    one process: the backend is NCCL on CUDA (the process is bound to ``cuda:LOCAL_RANK``) and gloo on
    CPU, and every collective times out after ``timeout_s`` seconds, so a dead or stuck peer ends the job
    with an error instead of a hang. A group that already exists is reused (and not destroyed by
    :func:`cleanup`).
    """
    if timeout_s <= 0:
        raise ConfigError(f"train.dist_timeout_s: expected a positive number of seconds, got {timeout_s!r}")
    if dist.is_available() and dist.is_initialized():
        world_size, rank = dist.get_world_size(), dist.get_rank()
        local_rank = _env_int("LOCAL_RANK", rank)
        dev = _resolve_device(device, local_rank, distributed=world_size > 1)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        return DistContext(rank, world_size, local_rank, dev, dist.get_backend(), float(timeout_s), False)

    if not launched_distributed():
        return DistContext(device=_resolve_device(device, 0, distributed=False), timeout_s=float(timeout_s))

    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"environment: RANK={rank} is not in [0, WORLD_SIZE={world_size})")
    dev = _resolve_device(device, local_rank, distributed=world_size > 1)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size == 1:
        return DistContext(rank, 1, local_rank, dev, None, float(timeout_s))
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support")
    missing = [name for name in _RENDEZVOUS_VARS if name not in os.environ]
    if missing:
        raise ConfigError(
            f"environment: RANK and WORLD_SIZE are set but {', '.join(missing)} is not; launch with torchrun"
        )

    backend = "nccl" if dev.type == "cuda" else "gloo"
    if backend == "nccl":
        # torchrun sets this already; other launchers may not. 1 = on a failed or timed-out collective the
        # watchdog tears the process down (so torchrun sees the failure) rather than leaving it blocked.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    try:
        dist.init_process_group(
            backend=backend,
            init_method="env://",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=dev if backend == "nccl" else None,
        )
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"rank {rank}/{world_size}: could not join the process group at "
            f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} within {timeout_s:g}s: {_first_line(exc)}"
        ) from exc
    return DistContext(rank, world_size, local_rank, dev, backend, float(timeout_s), True)


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group that :func:`init_distributed` created (no-op otherwise)."""
    if ctx.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- models


class _AllReduceSum(torch.autograd.Function):
    """Differentiable all-reduce: the gradient of a sum over processes is the sum of the gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any) -> Tensor:
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


class PortableSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """SyncBatchNorm that runs on any device and backend (gloo on CPU included).

    ``torch.nn.SyncBatchNorm`` only runs on CUDA (its kernels do not exist for CPU); this computes the
    same statistics, over the samples of every process, with two differentiable all-reduces
    (sum -> mean, then sum of squared deviations -> biased variance), in float32. Used for CPU multi-process
    training and to test the DDP maths without a GPU; on CUDA :func:`convert_sync_batchnorm` uses torch's.
    Same parameters, buffers and state-dict keys as ``BatchNorm*d``. (It is deliberately not a subclass
    of ``nn.SyncBatchNorm``: DDP refuses those on CPU.) ``process_group``: None = the whole world.
    """

    def __init__(self, *args: Any, process_group: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        group = self.process_group or dist.group.WORLD
        need_sync = (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1
        )
        if not need_sync:
            return super().forward(input)  # plain batch norm
        factor = 0.0
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        x = input.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        total = _AllReduceSum.apply(torch.cat([x.sum(dims), count]), group)
        n = total[-1].detach()
        mean = total[:-1] / n
        centred = x - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims), group) / n
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.float().view(shape) + self.bias.float().view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), factor)
        return out.to(input.dtype)


def convert_sync_batchnorm(model: nn.Module, ctx: DistContext) -> nn.Module:
    """Replace every ``BatchNorm*d`` by a synchronised one: torch's on CUDA, :class:`PortableSyncBatchNorm`
    elsewhere. Weights, buffers and ``requires_grad`` flags are kept."""
    if ctx.device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_portable(model)


def _convert_portable(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, PortableSyncBatchNorm):
        out = PortableSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:  # the same Parameter objects: an optimiser built before the conversion still works
            out.weight = module.weight
            out.bias = module.bias
        out.running_mean = module.running_mean
        out.running_var = module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
        if hasattr(module, "qconfig"):
            out.qconfig = module.qconfig
    for name, child in module.named_children():
        out.add_module(name, _convert_portable(child))
    return out


def wrap_model(
    model: nn.Module,
    ctx: DistContext,
    sync_bn: bool = False,
    *,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """Move ``model`` to ``ctx.device`` and, with several processes, wrap it in DistributedDataParallel.

    DDP broadcasts rank 0's weights and buffers at construction (so every rank starts identical whatever
    its seed) and averages gradients over processes in ``backward``. ``sync_bn`` first converts BatchNorm
    layers to synchronised ones (statistics over the global batch); it is a no-op with one process.
    ``find_unused_parameters`` must be True when some parameters get no gradient in a step (a branch not
    run, a loss with weight 0 that is skipped): DDP otherwise stops with "Expected to have finished
    reduction in the prior iteration". It costs an extra graph traversal per step, so it is off by default.
    Checkpoints should store ``unwrap_model(model).state_dict()`` (no ``module.`` prefix).
    """
    model = model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    if sync_bn:
        model = convert_sync_batchnorm(model, ctx)
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The underlying model of a DDP (or DataParallel) wrapper; the model itself otherwise."""
    while isinstance(model, DistributedDataParallel | nn.DataParallel):
        model = model.module
    return model


# --------------------------------------------------------------------------- collectives


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fail(ctx: DistContext, what: str, exc: BaseException) -> DistributedError:
    return DistributedError(
        f"rank {ctx.rank}/{ctx.world_size}: {what} failed; a peer process probably died or did not "
        f"answer within {ctx.timeout_s:g}s ({_first_line(exc)})"
    )


def _comm_device(ctx: DistContext) -> torch.device:
    """Where tensors must live for this backend's collectives (NCCL: the GPU; gloo: the CPU)."""
    return ctx.device if ctx.backend == "nccl" else torch.device("cpu")


def barrier(ctx: DistContext) -> None:
    """Wait for every process. Under gloo a ``monitored_barrier`` names the ranks that did not arrive."""
    if not ctx.is_distributed:
        return
    try:
        if ctx.backend == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=ctx.timeout_s), wait_all_ranks=True)
        else:
            dist.barrier(device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    except RuntimeError as exc:
        raise _fail(ctx, "barrier", exc) from exc


def all_reduce_mean(value: Any, ctx: DistContext) -> Any:
    """Average ``value`` over processes (for logging): a float, a tensor, or a mapping of them.

    Returns the same kind: a float for a float, a detached tensor (on the input's device) for a tensor,
    a dict of floats for a mapping. All values of a mapping travel in one collective; every process
    must pass the same keys.
    """
    if isinstance(value, Mapping):
        keys = list(value)
        if not keys:
            return {}
        flat = torch.stack(
            [torch.as_tensor(value[k], dtype=torch.float64).detach().cpu().reshape(()) for k in keys]
        )
        mean = _all_reduce_mean_tensor(flat, ctx)
        return {k: float(v) for k, v in zip(keys, mean.tolist(), strict=True)}
    if isinstance(value, Tensor):
        return _all_reduce_mean_tensor(value.detach(), ctx).to(value.device)
    return float(_all_reduce_mean_tensor(torch.tensor(float(value), dtype=torch.float64), ctx))


def _all_reduce_mean_tensor(tensor: Tensor, ctx: DistContext) -> Tensor:
    if not ctx.is_distributed:
        return tensor.clone()
    buf = tensor.to(_comm_device(ctx), copy=True)
    try:
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    except RuntimeError as exc:
        raise _fail(ctx, "all_reduce", exc) from exc
    return buf / ctx.world_size


def any_process(flag: bool, ctx: DistContext) -> bool:
    """True on every process if ``flag`` is true on any of them.

    For decisions all ranks must take at the same step, e.g. stopping after a Ctrl-C that reached the
    processes at slightly different times: a rank that stops alone leaves the others blocked in DDP's
    gradient all-reduce until the timeout.
    """
    if not ctx.is_distributed:
        return bool(flag)
    buf = torch.tensor([1.0 if flag else 0.0], device=_comm_device(ctx))
    try:
        dist.all_reduce(buf, op=dist.ReduceOp.MAX)
    except RuntimeError as exc:
        raise _fail(ctx, "all_reduce", exc) from exc
    return bool(buf.item() > 0)


def broadcast_object(obj: T, ctx: DistContext, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` (any picklable value) on every process; ``obj`` elsewhere is ignored."""
    if not ctx.is_distributed:
        return obj
    box = [obj]
    try:
        dist.broadcast_object_list(box, src=src, device=_comm_device(ctx))
    except RuntimeError as exc:
        raise _fail(ctx, "broadcast", exc) from exc
    return box[0]


def main_process_only(ctx: DistContext, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on rank 0 only and return its result on every process.

    For work that must happen once (creating a run folder, writing a cache, generating data) and whose
    result the others need. The call doubles as a barrier. If ``fn`` raises on rank 0, rank 0 re-raises
    it and the other ranks raise :class:`DistributedError` naming it, so nobody waits for a timeout.
    """
    if not ctx.is_distributed:
        return fn(*args, **kwargs)
    if ctx.is_main:
        try:
            outcome: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:
            broadcast_object((False, f"{type(exc).__name__}: {_first_line(exc)}"), ctx)
            raise
        broadcast_object(outcome, ctx)
        return outcome[1]
    ok, result = broadcast_object((True, None), ctx)
    if not ok:
        raise DistributedError(f"rank {ctx.rank}/{ctx.world_size}: rank 0 failed: {result}")
    return result


# --------------------------------------------------------------------------- distributed extraction


def shard_indices(n: int, ctx: DistContext) -> range:
    """This process's contiguous share of ``range(n)``: shares differ in size by at most one, cover
    every index once, and keep each process's images in the original order."""
    if n < 0:
        raise ValueError(f"shard_indices: n must be >= 0, got {n}")
    start = ctx.rank * n // ctx.world_size
    stop = (ctx.rank + 1) * n // ctx.world_size
    return range(start, stop)


def gather_features(feats: Tensor, index: Tensor | Sequence[int], total: int, ctx: DistContext) -> Tensor:
    """Assemble per-process features into one ``[total, D]`` matrix, in the original order, on every process.

    ``feats[i]`` is the feature of item ``index[i]`` (a position in ``range(total)``). Shares may have
    different sizes (even zero). Every position must be covered exactly once over all processes, else a
    ``ValueError``. The result has ``feats``' dtype and device, and equals what one process extracting
    everything would hold.
    """
    index = torch.as_tensor(index, dtype=torch.int64).reshape(-1).cpu()
    n_local = int(index.numel())
    if feats.shape[0] != n_local:
        raise ValueError(f"gather_features: {feats.shape[0]} features for {n_local} indices")
    if n_local and feats.dim() != 2:
        raise ValueError(f"gather_features: expected features [N, D], got shape {tuple(feats.shape)}")
    out_device, dtype = feats.device, feats.dtype
    if not ctx.is_distributed:
        dim = feats.shape[1] if feats.dim() == 2 else 0
        return _assemble([feats.reshape(n_local, dim)], [index], total, dim).to(out_device)

    comm = _comm_device(ctx)
    dim_local = feats.shape[1] if n_local else -1
    try:
        meta = _all_gather(torch.tensor([n_local, dim_local], dtype=torch.int64, device=comm), ctx)
        sizes = [int(m[0]) for m in meta]
        dims = {int(m[1]) for m in meta if int(m[0]) > 0}
        if len(dims) > 1:
            raise ValueError(f"gather_features: processes hold features of different sizes {sorted(dims)}")
        dim = dims.pop() if dims else 0
        width = max(sizes)
        buf = torch.zeros(width, dim, dtype=dtype, device=comm)
        ibuf = torch.full((width,), -1, dtype=torch.int64, device=comm)
        if n_local:
            buf[:n_local] = feats.reshape(n_local, dim).to(comm)
            ibuf[:n_local] = index.to(comm)
        all_feats = _all_gather(buf, ctx)
        all_index = _all_gather(ibuf, ctx)
    except RuntimeError as exc:
        raise _fail(ctx, "gather_features", exc) from exc
    chunks = [f[:s].cpu() for f, s in zip(all_feats, sizes, strict=True)]
    indices = [i[:s].cpu() for i, s in zip(all_index, sizes, strict=True)]
    return _assemble(chunks, indices, total, dim).to(out_device)


def _all_gather(tensor: Tensor, ctx: DistContext) -> list[Tensor]:
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor)
    return parts


def _assemble(chunks: list[Tensor], indices: list[Tensor], total: int, dim: int) -> Tensor:
    """Place each chunk's rows at its indices, checking that ``range(total)`` is covered exactly once."""
    index = torch.cat(indices)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= total):
        raise ValueError(f"gather_features: an index is outside range({total})")
    counts = torch.bincount(index, minlength=total)
    if index.numel() != total or bool((counts != 1).any()):
        missing = int((counts == 0).sum())
        repeated = int((counts > 1).sum())
        raise ValueError(
            f"gather_features: the shares must cover range({total}) exactly once "
            f"({missing} positions missing, {repeated} repeated)"
        )
    rows = torch.cat(chunks)
    out = torch.empty(total, dim, dtype=rows.dtype, device=rows.device)
    out[index.to(rows.device)] = rows
    return out
