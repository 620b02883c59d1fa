"""Training throughput (images/s) of a recipe: the ResNet-50 paper recipe at 256x128 and the CPU-sized one.

Run by hand, never by the tests:

    .venv/bin/python benchmarks/bench_training.py                    # both recipes, defaults below
    .venv/bin/python benchmarks/bench_training.py --recipe sysu_vd --ids-per-batch 16 --steps 20  # on a GPU

It generates a SynthVI tree (SYSU-MM01 layout) at the recipe's input size in a temporary folder, builds the
trainer exactly as ``vireid train`` does (without ImageNet weights: ``model.pretrained=none``, which does
not change the speed), times ``--steps`` optimisation steps after ``--warmup`` steps, and prints images/s
(data loading included, as in training). On a CPU the paper recipe's batch of 16 ids x 8 images is
impractical, so the default there is fewer ids per batch; the printed line says which batch was used.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vireid.config import load_config
from vireid.data.synthvi import generate
from vireid.training.trainer import Trainer


def bench(recipe: str, ids_per_batch: int | None, steps: int, warmup: int, device: str, extra: list[str]) -> dict:
    overrides = ["model.pretrained=none", "train.progress=false", "data.cache=false", f"train.device={device}",
                 "data.val_split=none", "train.select=last", *extra]
    if ids_per_batch is not None:
        overrides.append(f"data.ids_per_batch={ids_per_batch}")
    cfg = load_config(recipe, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        num_ids = max(30, int(cfg.data.ids_per_batch / 0.6) + 5)  # 60% of SynthVI ids are training ids
        root = generate(Path(tmp) / "synth", layout="sysu", num_ids=num_ids, seed=0,
                        height=max(32, cfg.data.height), width=max(16, cfg.data.width))
        trainer = Trainer(cfg, Path(tmp) / "run", data_root=root, hooks=[])
        trainer.setup()
        trainer.model.train()
        done, images, start = 0, 0, None
        while done < warmup + steps:
            for batch in trainer.data.loader:
                if done == warmup:
                    if trainer.device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                trainer.run_step(batch)
                if done >= warmup:
                    images += int(batch["images"].shape[0])
                done += 1
                if done == warmup + steps:
                    break
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    return {"recipe": recipe, "device": str(trainer.device), "batch": cfg.data.ids_per_batch * 2 * cfg.data.instances,
            "input": f"{cfg.data.height}x{cfg.data.width}", "backbone": cfg.model.backbone, "model": cfg.model.name,
            "amp": trainer.use_amp, "steps": steps, "seconds": elapsed, "images_per_s": images / elapsed,
            "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", action="append", help="recipe(s) to time (default: sysu_vd and synthvi_cpu)")
    p.add_argument("--ids-per-batch", type=int, help="override data.ids_per_batch (default: CPU 2 for sysu_vd)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = torch.cuda.is_available() and args.device != "cpu"
    for recipe in args.recipe or ["sysu_vd", "synthvi_cpu"]:
        ids = args.ids_per_batch
        if ids is None and recipe.startswith(("sysu", "regdb")) and not on_gpu:
            ids = 2
        r = bench(recipe, ids, args.steps, args.warmup, args.device, args.overrides)
        print(f"{r['recipe']:<14} {r['model']}/{r['backbone']} {r['input']} batch {r['batch']} on {r['device']} "
              f"(amp {r['amp']}, {r['threads']} threads): {r['images_per_s']:.1f} images/s "
              f"over {r['steps']} steps ({r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
