"""The GPU path in one command (at most about 5 minutes on one GPU): mixed precision, channels_last, compile,
resume with a GradScaler, extraction, and DDP over NCCL.

    python benchmarks/gpu_check.py [--json results.json] [--budget-s 290] [--skip-compile]

On a GPU it generates SynthVI at 256x128 and, for ``sysu_vd`` (ResNet-50, 16 ids x 8 images = 128 per step)
and ``sysu_baseline``, runs a few training steps under fp32, fp32 + channels_last, bf16, bf16 +
channels_last, fp16 + GradScaler and torch.compile, printing images/s, peak GPU memory and the first step's
loss against fp32's (same weights, batch and noise); then a resume round trip with a GradScaler (fp16, a run
stopped after its first epoch and resumed equals the uninterrupted run), extraction throughput, and a
``torchrun`` job over every visible GPU that trains DDP + SyncBatchNorm steps over NCCL (a process group is
made even with one GPU, so NCCL runs). Compile variants run last, while the time budget allows.

Without CUDA (or with ``--reduced``) it runs the same sections reduced, on the CPU: a tiny tree (32x16),
ResNet-10, two steps per variant, gloo instead of NCCL with two processes, fp16 and compile skipped. The
test suite runs that (tests/cuda/test_gpu_check.py). Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# deterministic cuBLAS for the resume round trip; must be set before CUDA is initialised
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

from vireid.config import load_config  # noqa: E402
from vireid.training.hooks import StopAfterEpoch, default_hooks  # noqa: E402
from vireid.training.trainer import Trainer, train  # noqa: E402

FULL = {"size": (256, 128), "ids": 40, "ids_per_batch": 16, "instances": 4, "warmup": 2, "steps": 5, "extra": []}
REDUCED = {"size": (32, 16), "ids": 12, "ids_per_batch": 2, "instances": 2, "warmup": 1, "steps": 2,
           "extra": ["model.backbone=resnet10", "model.z_dim=16", "model.bottleneck_hidden=[32]"]}
COMMON = ["model.pretrained=none", "train.progress=false", "train.tensorboard=false", "data.val_split=none",
          "train.select=last", "data.num_workers=0", "train.eval_every=0"]
VARIANTS = [  # name, overrides (fp32 first: the reference of the first-step loss)
    ("fp32", ["train.amp=false", "train.channels_last=false"]),
    ("fp32 + channels_last", ["train.amp=false", "train.channels_last=true"]),
    ("bf16", ["train.amp=true", "train.amp_dtype=bfloat16", "train.channels_last=false"]),
    ("bf16 + channels_last", ["train.amp=true", "train.amp_dtype=bfloat16", "train.channels_last=true"]),
    ("fp16 + GradScaler + channels_last", ["train.amp=true", "train.amp_dtype=float16", "train.channels_last=true"]),
]
COMPILE_VARIANT = ("bf16 + channels_last + compile",
                   ["train.amp=true", "train.amp_dtype=bfloat16", "train.channels_last=true", "train.compile=true"])
RECIPES = ("sysu_vd", "sysu_baseline")


class Report:
    """Printed lines and the JSON record; ``fail`` marks the run as failed."""

    def __init__(self, budget_s: float) -> None:
        self.start, self.budget_s = time.perf_counter(), budget_s
        self.data: dict = {"sections": {}}
        self.failed: list[str] = []

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def section(self, name: str) -> dict:
        print(f"\n== {name} ({time.perf_counter() - self.start:.0f} s in)", flush=True)
        return self.data["sections"].setdefault(name, {})

    def fail(self, what: str) -> None:
        self.failed.append(what)
        print(f"FAILED: {what}", flush=True)


def environment(device: torch.device) -> dict:
    env = {"torch": torch.__version__, "device": str(device), "cuda": torch.version.cuda,
           "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if device.type == "cuda":
        nccl = torch.cuda.nccl.version()
        env.update(name=torch.cuda.get_device_name(device), bf16=torch.cuda.is_bf16_supported(),
                   cudnn=torch.backends.cudnn.version(), nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl)
    return env


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def config(recipe: str, plan: dict, device: str, *extra: str):
    h, w = plan["size"]
    return load_config(recipe, [*COMMON, *plan["extra"], f"train.device={device}", f"data.height={h}",
                                f"data.width={w}", f"data.ids_per_batch={plan['ids_per_batch']}",
                                f"data.instances={plan['instances']}", *extra])


def run_variant(recipe: str, name: str, overrides: list[str], plan: dict, root: Path, work: Path, device: str,
                batches: list | None) -> tuple[dict, list]:
    """Set up a trainer, run warm-up + timed steps on ``batches`` (drawn by this trainer if None)."""
    cfg = config(recipe, plan, device, *overrides, f"data.cache_dir={work / 'cache'}")
    dev = torch.device(device)
    _peak_reset(dev)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, work / f"{recipe}-{name.replace(' ', '_')}", data_root=root, hooks=[])
    trainer.setup()
    trainer.model.train()
    if batches is None:
        batches = []
        it = iter(trainer.data.loader)
        while len(batches) < plan["warmup"] + plan["steps"]:
            try:
                batches.append(next(it))
            except StopIteration:
                trainer.data.sampler.set_epoch(len(batches))
                it = iter(trainer.data.loader)
    setup_s = time.perf_counter() - t0
    torch.manual_seed(cfg.train.seed)  # the same bottleneck noise in every variant's first step
    t1 = time.perf_counter()
    terms = trainer.run_step(batches[0])
    _sync(dev)
    first_s = time.perf_counter() - t1
    for b in batches[1 : plan["warmup"]]:
        trainer.run_step(b)
    _sync(dev)
    t2 = time.perf_counter()
    losses = [trainer.run_step(b)["loss"] for b in batches[plan["warmup"] :]]
    _sync(dev)
    elapsed = time.perf_counter() - t2
    n = int(batches[0]["images"].shape[0])
    out = {"images_per_s": n * plan["steps"] / elapsed, "peak_gib": _peak_gib(dev), "first_loss": terms["loss"],
           "finite": all(math.isfinite(v) for v in [terms["loss"], *losses]), "setup_s": setup_s,
           "first_step_s": first_s, "batch": n, "amp": str(trainer.amp_dtype) if trainer.use_amp else "off",
           "channels_last": trainer.channels_last}
    if trainer.scaler is not None and trainer.scaler.is_enabled():
        out["grad_scale"] = float(trainer.scaler.get_scale())
    del trainer
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return out, batches


def step_variants(report: Report, plan: dict, root: Path, work: Path, device: str, variants: list) -> None:
    dev = torch.device(device)
    for recipe in RECIPES:
        sec = report.section(f"training steps: {recipe}")
        batches, ref = None, None
        if "fp32" in sec:
            ref = sec["fp32"]["first_loss"]
        print(f"{'variant':<36} {'images/s':>9} {'peak GiB':>9} {'first loss':>11} {'vs fp32':>10} {'1st step s':>10}")
        for name, overrides in variants:
            if dev.type == "cpu" and "train.amp_dtype=float16" in overrides:
                print(f"{name:<36} skipped: float16 autocast is for CUDA")
                continue
            if "train.compile=true" in overrides and report.left() < 60:
                print(f"{name:<36} skipped: {report.left():.0f} s of the time budget left")
                continue
            try:
                r, batches = run_variant(recipe, name, overrides, plan, root, work, device, batches)
            except Exception as exc:  # a variant that cannot run is a failed check, the others still run
                report.fail(f"{recipe} {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            if ref is None:
                ref = r["first_loss"]
            r["first_loss_minus_fp32"] = r["first_loss"] - ref
            sec[name] = r
            peak = f"{r['peak_gib']:9.2f}" if r["peak_gib"] is not None else f"{'n/a':>9}"
            print(f"{name:<36} {r['images_per_s']:9.1f} {peak} {r['first_loss']:11.5f} "
                  f"{r['first_loss_minus_fp32']:+10.2e} {r['first_step_s']:10.2f}"
                  + (f"  scale {r['grad_scale']:g}" if "grad_scale" in r else ""), flush=True)
            if not r["finite"]:
                report.fail(f"{recipe} {name}: a loss is not finite")


def resume_round_trip(report: Report, plan: dict, root: Path, work: Path, device: str) -> None:
    """Two epochs uninterrupted vs one epoch, stop, resume: the same weights, optimiser and scaler state."""
    from vireid.training import checkpoint as ckpt

    sec = report.section("resume round trip")
    on_cuda = torch.device(device).type == "cuda"
    amp = ["train.amp=true", "train.amp_dtype=float16"] if on_cuda else ["train.amp=false"]
    extra = [] if not on_cuda else ["model.backbone=resnet18", "data.height=128", "data.width=64"]
    cfg = config("sysu_vd", plan, device, *amp, *extra, "train.epochs=2", "train.deterministic=true",
                 "schedule.warmup_epochs=1", "schedule.milestones=[2]", f"data.cache_dir={work / 'cache'}",
                 "data.ids_per_batch=4" if on_cuda else f"data.ids_per_batch={plan['ids_per_batch']}")
    t0 = time.perf_counter()
    whole = train(cfg, work / "resume-whole", data_root=root)
    part = work / "resume-part"
    try:
        train(cfg, part, data_root=root, hooks=[*default_hooks(), StopAfterEpoch(1)])
    except KeyboardInterrupt:
        pass
    resumed = train(cfg, part, resume=True)
    a, b = ckpt.load_checkpoint(whole.last_checkpoint), ckpt.load_checkpoint(resumed.last_checkpoint)
    diff = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in a["model"]
               if a["model"][k].is_floating_point())
    scaler_same = a.get("scaler") == b.get("scaler")
    sec.update(max_weight_diff=diff, scaler=a.get("scaler"), scaler_equal=scaler_same, seconds=time.perf_counter() - t0,
               amp="float16 + GradScaler" if on_cuda else "off (CPU: no GradScaler)")
    print(f"amp {sec['amp']}: largest weight difference {diff:.3g}, scaler state "
          f"{'equal' if scaler_same else 'DIFFERENT'} ({a.get('scaler')}), {sec['seconds']:.1f} s")
    torch.use_deterministic_algorithms(False)  # train.deterministic set it for the whole process
    if diff != 0.0 or not scaler_same:
        report.fail("resume round trip: the resumed run differs from the uninterrupted one")


def extraction(report: Report, plan: dict, root: Path, device: str) -> None:
    from vireid.data.sysu import test_records
    from vireid.features.extract import extract_features
    from vireid.models.build import build_model

    sec = report.section("extraction")
    cfg = config("sysu_vd", plan, device)
    records = test_records(root)
    model = build_model(cfg.model, 10).to(device)
    if torch.device(device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    kw = {"device": device, "batch_size": 256, "amp": cfg.train.amp}
    extract_features(model, records[:256], root, cfg.data, **kw)  # warm-up
    t0 = time.perf_counter()
    fs = extract_features(model, records, root, cfg.data, **kw)
    _sync(torch.device(device))
    seconds = time.perf_counter() - t0
    sec.update(images=len(records), seconds=seconds, images_per_s=len(records) / seconds,
               dim=int(fs.feats.shape[1]), finite=bool(torch.isfinite(torch.from_numpy(fs.feats)).all()))
    print(f"sysu_vd z_shared, {len(records)} test images (decode + resize + model): {sec['images_per_s']:.0f} images/s")
    if not sec["finite"]:
        report.fail("extraction: features are not finite")


def ddp(report: Report, plan: dict, root: Path, work: Path, device: str, reduced: bool) -> None:
    """torchrun over every visible GPU (NCCL; gloo with 2 processes on a CPU): DDP + SyncBatchNorm steps."""
    sec = report.section("DDP (torchrun)")
    nproc = torch.cuda.device_count() if torch.device(device).type == "cuda" else 2
    out = work / "ddp"
    out.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__,
           "--ddp-worker", str(out), "--root", str(root), "--device", device] + (["--reduced"] if reduced else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not reduced and torch.device(device).type == "cuda":
        env.setdefault("OMP_NUM_THREADS", "4")
    else:
        env["OMP_NUM_THREADS"] = "1"
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)  # a guard against a hang
    seconds = time.perf_counter() - t0
    recs = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    sec.update(processes=nproc, seconds=seconds, returncode=proc.returncode, ranks=recs)
    if proc.returncode != 0 or len(recs) != nproc:
        report.fail(f"DDP: torchrun exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
        return
    same = len({r["checksum"] for r in recs}) == 1
    finite = all(all(math.isfinite(v) for v in r["losses"]) for r in recs)
    print(f"{nproc} process(es), backend {recs[0]['backend']}, DDP + SyncBatchNorm, amp {recs[0]['amp']}: losses "
          f"{[round(v, 4) for v in recs[0]['losses']]}, weights identical on every rank: {same}, "
          f"{recs[0]['images_per_s']:.1f} images/s per process, {seconds:.1f} s with start-up")
    if not same or not finite:
        report.fail("DDP: weights differ between ranks or a loss is not finite")


def ddp_worker(out: Path, root: Path, device: str, reduced: bool) -> None:
    """One torchrun process: a process group even at world size 1 (so NCCL runs on one GPU), the vireid model
    wrapped as the trainer wraps it (SyncBatchNorm + DDP), a few steps on this rank's batches."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from vireid.data.loaders import build_training_data
    from vireid.losses.criteria import build_criterion
    from vireid.models.build import build_model
    from vireid.training import distributed as _dist
    from vireid.training.optimizer import build_optimizer
    from vireid.utils.device import autocast_settings

    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    on_cuda = torch.device(device).type == "cuda"
    dev = torch.device(f"cuda:{local}") if on_cuda else torch.device("cpu")
    if on_cuda:
        torch.cuda.set_device(dev)
    dist.init_process_group("nccl" if on_cuda else "gloo", rank=rank, world_size=world, device_id=dev if on_cuda else None)
    plan = REDUCED if reduced else {**FULL, "ids_per_batch": max(1, 16 // world)}  # 16 ids of SynthVI's 24
    cfg = config("sysu_vd", plan, str(dev), f"data.cache_dir={out / f'cache{rank}'}")
    ctx = _dist.DistContext(rank, world, local, dev, dist.get_backend())
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    data = build_training_data(cfg.data, root, seed=cfg.train.seed, rank=rank, world_size=world, progress=False)
    model = build_model(cfg.model, data.num_classes).to(dev)
    criterion = build_criterion(cfg.loss, cfg.model, data.num_classes).to(dev)
    optimizer = build_optimizer(torch.nn.ModuleList([model, criterion]), cfg.optim)
    channels_last = on_cuda
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = DistributedDataParallel(_dist.convert_sync_batchnorm(model, ctx),
                                    device_ids=[local] if on_cuda else None)
    use_amp, dtype = autocast_settings(dev, cfg.train.amp)
    losses, images, t0 = [], 0, None
    steps = 2 if reduced else 4
    for i, batch in enumerate(data.loader):
        if i == 1:
            _sync(dev)
            t0 = time.perf_counter()
        x = batch["images"].to(dev, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y, m = batch["labels"].to(dev), batch["modality"].to(dev)
        with torch.autocast(dev.type, dtype=dtype, enabled=use_amp):
            outputs = model(x, m)
        loss = criterion({k: v.float() if v.is_floating_point() else v for k, v in outputs.items()}, y, m)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
        if i >= 1:
            images += int(x.shape[0])
        if len(losses) == steps:
            break
    _sync(dev)
    rate = images / (time.perf_counter() - t0) if t0 is not None and images else 0.0
    checksum = sum(float(p.detach().double().sum()) for p in model.module.parameters())
    (out / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world_size": world, "backend": dist.get_backend(), "losses": losses,
        "checksum": round(checksum, 6), "images_per_s": rate, "amp": str(dtype) if use_amp else "off"}))
    dist.barrier()
    dist.destroy_process_group()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reduced", action="store_true", help="the reduced CPU version (default without CUDA)")
    p.add_argument("--device", default="auto", help="auto: cuda if available, else cpu (reduced)")
    p.add_argument("--json", type=Path, help="write every figure to this JSON file")
    p.add_argument("--budget-s", type=float, default=290.0, help="compile variants run only while time is left")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--skip-ddp", action="store_true")
    p.add_argument("--ddp-worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    reduced = args.reduced or torch.device(device).type != "cuda"
    if reduced:
        torch.set_num_threads(1)  # tiny models: a second thread only adds synchronisation on a busy CPU
    if args.ddp_worker is not None:
        ddp_worker(args.ddp_worker, args.root, device, reduced)
        return 0
    from vireid.data.synthvi import generate

    plan = REDUCED if reduced else FULL
    report = Report(args.budget_s)
    report.data["environment"] = environment(torch.device(device))
    report.data["reduced"] = reduced
    print(f"gpu_check: {'REDUCED (CPU) ' if reduced else ''}{json.dumps(report.data['environment'])}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        h, w = plan["size"]
        extra = {"min_images": 2, "max_images": 3} if reduced else {}
        root = generate(work / "synthvi", layout="sysu", num_ids=plan["ids"], seed=0, height=h, width=w, **extra)
        report.section("SynthVI")["seconds"] = time.perf_counter() - t0
        print(f"SynthVI at {h}x{w}, {plan['ids']} identities: {time.perf_counter() - t0:.1f} s")
        sections = [
            lambda: step_variants(report, plan, root, work, device, VARIANTS),
            lambda: resume_round_trip(report, plan, root, work, device),
            lambda: extraction(report, plan, root, device),
        ]
        if not args.skip_ddp:
            sections.append(lambda: ddp(report, plan, root, work, device, reduced))
        if not args.skip_compile and not reduced:
            sections.append(lambda: step_variants(report, plan, root, work, device, [COMPILE_VARIANT]))
        for run in sections:
            try:
                run()
            except Exception as exc:
                report.fail(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    report.data["failed"] = report.failed
    report.data["seconds"] = time.perf_counter() - report.start
    print(f"\n{'FAILED: ' + '; '.join(report.failed) if report.failed else 'all checks passed'} "
          f"({report.data['seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(report.data, indent=1, default=str))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
