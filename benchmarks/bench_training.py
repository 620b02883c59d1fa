"""Training throughput (images/s) of a recipe, the CPU levers each on its own, and the released code's own step.

Run by hand, never by the tests:

    .venv/bin/python benchmarks/bench_training.py                    # sysu_vd and synthvi_cpu, defaults below
    .venv/bin/python benchmarks/bench_training.py --recipe sysu_vd --ids-per-batch 4 --steps 3 --warmup 1 \\
        --threads 2 --device cpu                                     # the issue-13 measurement
    .venv/bin/python benchmarks/bench_training.py --recipe sysu_vd --ids-per-batch 4 --steps 3 --warmup 1 \\
        --threads 2 --device cpu --release-dir /path/to/release-checkout   # and the release, side by side
    .venv/bin/python benchmarks/bench_training.py --recipe demo_vd --levers --steps 10   # each lever on its own

It generates a SynthVI tree (SYSU-MM01 layout) at the recipe's input size in a temporary folder, builds the
trainer exactly as ``vireid train`` does (without ImageNet weights: ``model.pretrained=none``, which does not
change the speed), loads ``--warmup + --steps`` batches, then times ``Trainer.run_step`` on them (forward,
loss, backward, optimiser; the input pipeline has its own benchmark, bench_input.py). It prints images/s
(wall clock) and the process's CPU seconds per step: on a shared machine the CPU time is the steadier figure.

``--release-dir DIR``: DIR is a checkout of the released code (git clone of RELEASE_URL, commit ae7c018).
It is copied into a temporary folder and patched there for a CPU (RELEASE_PATCHES: ``.cuda()`` removed,
``torch.cuda.LongTensor`` -> ``torch.LongTensor``, no ImageNet download, one ``addmm_`` call in today's
signature); nothing of it enters this repository. Ours and then the release's own ``Trainer.train`` (forward,
its losses, backward, Adam) are timed on the same SynthVI tree and the same batches, each in a fresh process
with the same process settings (flush-to-zero, the allocator): the release's fair best. (One process for both
would keep both models' freed activation memory: 17 GB at batch 32.)

``--levers``: each CPU lever on its own against "before" (fp32, contiguous, denormals kept, default glibc
allocator, no compile), each in a fresh process (the process-wide settings cannot be undone), then the
defaults. bf16 autocast is skipped on CPUs without native bf16 unless ``--with-emulated-bf16``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from vireid.config import load_config
from vireid.data.loaders import build_training_data
from vireid.data.synthvi import generate
from vireid.training.trainer import Trainer
from vireid.utils.device import cpu_supports_bf16, flush_denormals, keep_freed_memory, resolve_device

RELEASE_URL = ("https://github.com/FutabaSakuraXD/Farewell-to-Mutual-Information-Variational-Distiilation-for-"
               "Cross-Modal-Person-Re-identification")
# (pattern, replacement) applied to every .py file of the temporary copy of the release
RELEASE_PATCHES = [
    (r"\.cuda\(\)", ""),  # run on the CPU
    (r"torch\.cuda\.LongTensor", "torch.LongTensor"),
    (r"resnet50\(pretrained= True\)", "resnet50(pretrained=False)"),  # no download; the speed is the same
    (r"dist\.addmm_\(1, -2, x, y\.t\(\)\)", "dist.addmm_(x, y.t(), beta=1, alpha=-2)"),  # removed signature
]
BEFORE = ["train.flush_denormal=false", "train.keep_freed_memory=false", "train.channels_last=false",
          "train.amp=false", "train.compile=false"]
LEVERS = {
    "before": BEFORE,
    "+ flush denormals": BEFORE + ["train.flush_denormal=true"],
    "+ keep freed memory": BEFORE + ["train.keep_freed_memory=true"],
    "+ channels_last": BEFORE + ["train.channels_last=true"],
    "+ bf16 autocast": BEFORE + ["train.amp=true", "train.amp_dtype=bfloat16"],
    "+ torch.compile": BEFORE + ["train.compile=true"],
    "after (defaults)": [],
}


def build_config(recipe: str, ids_per_batch: int | None, device: str, extra: list[str]):
    overrides = ["model.pretrained=none", "train.progress=false", "data.cache=false", f"train.device={device}",
                 "data.val_split=none", "train.select=last", "data.num_workers=0", *extra]
    if ids_per_batch is not None:
        overrides.append(f"data.ids_per_batch={ids_per_batch}")
    return load_config(recipe, overrides)


def process_settings(cfg) -> None:
    """The trainer's process-wide CPU settings, applied before anything else runs (worker threads inherit
    flush-to-zero only from the thread that creates them)."""
    if resolve_device(cfg.train.device).type == "cpu":
        if cfg.train.flush_denormal:
            flush_denormals()
        if cfg.train.keep_freed_memory:
            keep_freed_memory()


class ReleaseStep:
    """The released code's training step (its model, losses, Adam and ``Trainer.train``) on our batches."""

    def __init__(self, release_dir: Path, workdir: Path, num_classes: int, label_of_pid: dict[int, int]) -> None:
        copy = workdir / "release"
        shutil.copytree(release_dir, copy, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"))
        for path in copy.rglob("*.py"):
            text = path.read_text(errors="replace")
            patched = text
            for pattern, repl in RELEASE_PATCHES:
                patched = re.sub(pattern, repl, patched)
            if patched != text:
                path.write_text(patched)
        sys.path.insert(0, str(copy))
        import warnings

        warnings.filterwarnings("ignore", message="reduction: 'mean' divides")  # its kl_div calls
        from reid.models.newresnet import ft_net
        from reid.trainers import Trainer as ReleaseTrainer
        from utlis import ASS_loss, CrossEntropyLabelSmooth, Rank_loss

        # mm01.py's defaults (the SYSU-MM01 recipe)
        args = argparse.Namespace(z_dim=256, lr=2.6e-4, CE_loss=1, Triplet_loss=1, CML_loss=8, VSD_loss=2,
                                  VCD_loss=2, temperature=1)
        torch.manual_seed(1)
        self.model = ft_net(args=args, num_classes=num_classes, num_features=2048)
        self.optim = self.model.optims()
        rank = Rank_loss(margin_1=0.9, margin_2=1.0, alpha_1=2.2, alpha_2=2.0)
        self.trainer = ReleaseTrainer(args, self.model, CrossEntropyLabelSmooth(num_classes, epsilon=0.1), rank,
                                      ASS_loss(), label_of_pid)

    def __call__(self, batch: dict) -> None:
        # its loader yields (images, file names, pids, 0-based cameras); cams 2 and 5 are infrared there
        inputs = (batch["images"], None, batch["pids"], batch["cameras"] - 1)
        self.trainer.train(0, [inputs], self.optim, print_freq=10**9)


def timed(fn, *args) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench(cfg, steps: int, warmup: int, root: Path | None = None, release_dir: Path | None = None) -> dict:
    """Time ``steps`` training steps of ``cfg`` after ``warmup``: ours, or the release's own step on the
    batches our loader draws (``release_dir``). A SynthVI tree is generated unless ``root`` is given."""
    with tempfile.TemporaryDirectory() as tmp:
        if root is None:
            root = synth_tree(cfg, Path(tmp))
        if release_dir is None:
            trainer = Trainer(cfg, Path(tmp) / "run", data_root=root, hooks=[])
            trainer.setup()
            trainer.model.train()
            data, device = trainer.data, trainer.device
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            step = lambda b: (trainer.run_step(b), sync())  # noqa: E731
        else:
            data, device = build_training_data(cfg.data, root, seed=cfg.train.seed, progress=False), torch.device("cpu")
            step = ReleaseStep(release_dir, Path(tmp), data.num_classes, {r.pid: r.label for r in data.train_records})
        batches: list[dict] = []
        epoch = 0
        while len(batches) < warmup + steps:
            data.sampler.set_epoch(epoch)
            batches += list(data.loader)
            epoch += 1
        batches = batches[: warmup + steps]
        times = []
        for i, batch in enumerate(batches):
            wall, cpu = timed(step, batch)
            if i >= warmup:
                times.append((wall, cpu))
            print(f"  {'release' if release_dir else 'ours'} step {i + 1}/{len(batches)}"
                  f"{' (warm-up)' if i < warmup else ''}: {wall:.2f} s ({cpu:.1f} CPU s)", file=sys.stderr, flush=True)
    n = int(batches[0]["images"].shape[0])
    out = {"recipe": cfg.model.name, "device": str(device), "batch": n, "input": f"{cfg.data.height}x{cfg.data.width}",
           "backbone": cfg.model.backbone, "compile": cfg.train.compile, "ftz": cfg.train.flush_denormal,
           "keep_freed_memory": cfg.train.keep_freed_memory, "steps": steps, "threads": torch.get_num_threads(),
           **summary(times, n)}
    if release_dir is None:
        out.update(amp=f"{trainer.amp_dtype}".replace("torch.", "") if trainer.use_amp else "off",
                   channels_last=trainer.channels_last)
    return out


def synth_tree(cfg, folder: Path) -> Path:
    num_ids = max(30, int(cfg.data.ids_per_batch / 0.6) + 5)  # 60% of SynthVI ids are training ids
    return generate(folder / "synth", layout="sysu", num_ids=num_ids, seed=0,
                    height=max(32, cfg.data.height), width=max(16, cfg.data.width))


def child(args: argparse.Namespace, recipe: str, ids: int | None, role: str, root: Path | None,
          extra: list[str]) -> dict | None:
    """This script in a fresh process (``--json-out``): its figures, or None if it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, __file__, "--recipe", recipe, "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--device", args.device, "--json-out", str(out)]
        cmd += ["--ids-per-batch", str(ids)] if ids is not None else []
        cmd += ["--threads", str(args.threads)] if args.threads else []
        cmd += ["--root", str(root)] if root is not None else []
        cmd += ["--release-dir", str(args.release_dir), "--role", "release"] if role == "release" else []
        cmd += [*args.overrides, *extra]
        done = subprocess.run(cmd, check=False)
        return json.loads(out.read_text()) if done.returncode == 0 else None


def summary(times: list[tuple[float, float]], n: int) -> dict:
    wall = sum(t[0] for t in times)
    cpu = sum(t[1] for t in times)
    return {"seconds": wall, "s_per_step": wall / len(times), "images_per_s": n * len(times) / wall,
            "cpu_s_per_step": cpu / len(times)}


def line(r: dict) -> str:
    return (f"{r['recipe']}/{r['backbone']} {r['input']} batch {r['batch']} on {r['device']} "
            f"(amp {r['amp']}, channels_last {r['channels_last']}, ftz {r['ftz']}, compile {r['compile']}, "
            f"{r['threads']} threads): {r['images_per_s']:.2f} images/s, {r['s_per_step']:.2f} s/step, "
            f"{r['cpu_s_per_step']:.1f} CPU s/step over {r['steps']} steps")


def run_levers(args: argparse.Namespace, recipe: str, ids: int | None) -> None:
    """Each lever in a fresh process (this script with --json-out), then a table against "before"."""
    rows = []
    for name, overrides in LEVERS.items():
        if "train.amp_dtype=bfloat16" in overrides and not cpu_supports_bf16() and not args.with_emulated_bf16:
            rows.append((name, None, "skipped: this CPU has no native bf16 (emulated, many times slower)"))
            continue
        print(f"[{name}] {' '.join(overrides) or '(recipe defaults)'}", flush=True)
        r = child(args, recipe, ids, "ours", None, overrides)
        rows.append((name, r, "" if r else "failed"))
    base = next((r for n, r, _ in rows if n == "before" and r), None)
    print(f"\nlevers, {recipe}: each on its own against 'before'")
    print(f"{'lever':<22} {'images/s':>9} {'s/step':>8} {'CPU s/step':>11} {'x before (wall)':>16} {'x before (CPU)':>15}")
    for name, r, note in rows:
        if r is None:
            print(f"{name:<22} {note}")
            continue
        rel = (f"{r['images_per_s'] / base['images_per_s']:16.2f} {base['cpu_s_per_step'] / r['cpu_s_per_step']:15.2f}"
               if base else "")
        print(f"{name:<22} {r['images_per_s']:9.2f} {r['s_per_step']:8.2f} {r['cpu_s_per_step']:11.2f} {rel}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", action="append", help="recipe(s) to time (default: sysu_vd and synthvi_cpu)")
    p.add_argument("--ids-per-batch", type=int, help="override data.ids_per_batch (default: CPU 2 for sysu_vd)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--release-dir", type=Path, help="a checkout of the released code: time its step too")
    p.add_argument("--levers", action="store_true", help="time each CPU lever on its own (fresh processes)")
    p.add_argument("--with-emulated-bf16", action="store_true", help="--levers: time bf16 even where emulated")
    p.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--role", choices=("ours", "release"), default="ours", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help="extra key=value overrides")
    args = p.parse_args()
    if args.release_dir is not None and not (args.release_dir / "reid" / "trainers.py").is_file():
        p.error(f"--release-dir: {args.release_dir} is not a checkout of the released code (no reid/trainers.py); "
                f"git clone {RELEASE_URL}")
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = torch.cuda.is_available() and args.device != "cpu"
    for recipe in args.recipe or ["sysu_vd", "synthvi_cpu"]:
        ids = args.ids_per_batch
        if ids is None and recipe.startswith(("sysu", "regdb")) and not on_gpu:
            ids = 2
        if args.levers:
            run_levers(args, recipe, ids)
            continue
        cfg = build_config(recipe, ids, args.device, args.overrides)
        if args.json_out:  # a child process: one measurement
            process_settings(cfg)
            r = bench(cfg, args.steps, args.warmup, args.root, args.release_dir if args.role == "release" else None)
            args.json_out.write_text(json.dumps(r))
            continue
        if args.release_dir is None:
            process_settings(cfg)
            r = bench(cfg, args.steps, args.warmup)
            print(f"{recipe:<14} {line(r)}", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:  # one tree, then ours and the release each in a fresh process
            root = synth_tree(cfg, Path(tmp))
            r = child(args, recipe, ids, "ours", root, [])
            rel = child(args, recipe, ids, "release", root, [])
        if r is None or rel is None:
            sys.exit(f"bench_training: the {'ours' if r is None else 'release'} measurement failed")
        print(f"{recipe:<14} {line(r)}")
        print(f"{'release':<14} ft_net (4 ResNet-50 passes per image, CAM, its losses), same batches and process "
              f"settings (ftz {rel['ftz']}, keep freed memory {rel['keep_freed_memory']}): "
              f"{rel['images_per_s']:.2f} images/s, {rel['s_per_step']:.2f} s/step, {rel['cpu_s_per_step']:.1f} CPU s/step")
        print(f"{'ratio':<14} ours / release: {r['images_per_s'] / rel['images_per_s']:.2f}x (wall), "
              f"{rel['cpu_s_per_step'] / r['cpu_s_per_step']:.2f}x (CPU time)", flush=True)


if __name__ == "__main__":
    main()
