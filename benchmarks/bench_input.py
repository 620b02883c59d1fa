"""Benchmark of the training input pipeline at 288x144: images/s of the per-sample path (decode or cache, one
augmentation call per image) against the batched path (one cache read and one augmentation pass per batch),
for several loader worker counts.

Builds a SYSU-MM01-layout tree in a temporary folder (with SynthVI when it is available, else with textured
JPEGs written here), then times the training loader each way. The per-sample path is the reference
implementation the batched one is tested against (tests/data/test_batch_augment.py: same pixels); here it is
run through the same sampler with torch's default collate, as the loader did before batching. Run by hand:

    python benchmarks/bench_input.py [--ids 60] [--workers 0 1 2] [--batches 30] [--augment full]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vireid.data.config import AugmentConfig, DataConfig
from vireid.data.loaders import build_training_data

AUGMENTS = {
    "flip-pad": AugmentConfig(flip=0.5, pad=10),  # the setting of the earlier figures
    "full": AugmentConfig(flip=0.5, pad=10, erasing=0.5, channel=0.5),
}


def count_images(root: Path) -> int:
    return sum(1 for _ in root.glob("cam*/*/*.*"))


def synthvi_tree(out: Path, ids: int, height: int, width: int) -> float | None:
    """Generate a SynthVI tree; return images/s, or None if the generator is not available."""
    try:
        from vireid.data.synthvi import generate
    except ImportError:
        return None
    start = time.perf_counter()
    generate(out, layout="sysu", num_ids=ids, seed=0, height=height, width=width)
    return count_images(out) / (time.perf_counter() - start)


def jpeg_tree(out: Path, ids: int, height: int, width: int) -> None:
    """A SYSU-MM01-layout tree of textured JPEGs (smooth noise, so the files are not trivially small)."""
    rng = np.random.default_rng(0)
    pids = list(range(1, ids + 1))
    for pid in pids:
        for cam in range(1, 7):
            for n in range(1, 9):
                small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
                img = Image.fromarray(small).resize((width, height), Image.BILINEAR)
                if cam in (3, 6):
                    img = img.convert("L")
                path = out / f"cam{cam}" / f"{pid:04d}" / f"{n:04d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                img.save(path, quality=90)
    (out / "exp").mkdir(parents=True, exist_ok=True)
    half = len(pids) * 3 // 4
    (out / "exp" / "train_id.txt").write_text(",".join(map(str, pids[:half])))
    (out / "exp" / "val_id.txt").write_text(",".join(map(str, pids[half:])))
    (out / "exp" / "test_id.txt").write_text("9999")


class PerSample(Dataset):
    """The training dataset without its batch method: one ``dataset[draw]`` (decode or cache read, then the
    per-sample transform) per image, stacked by torch's default collate."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        return self.dataset[item]


def time_loader(cfg: DataConfig, root: Path, batches: int, per_sample: bool) -> tuple[float, float, float]:
    """(seconds to build the training data, images/s over ``batches`` batches after a warm-up batch, images per
    CPU-second of this process: with no workers the whole cost, steadier than the wall clock on a busy machine)."""
    start = time.perf_counter()
    td = build_training_data(cfg, root, seed=0, progress=False)
    setup = time.perf_counter() - start
    loader = td.loader
    if per_sample:
        loader = DataLoader(PerSample(td.loader.dataset), batch_sampler=td.sampler, num_workers=cfg.num_workers,
                            persistent_workers=cfg.num_workers > 0)
    n_img, epoch, t0 = 0, 0, None
    while n_img < batches * td.sampler.batch_size:
        td.sampler.set_epoch(epoch)
        for b in loader:
            if t0 is None:  # skip the first batch: worker start-up
                t0, c0 = time.perf_counter(), time.process_time()
                continue
            n_img += b["images"].shape[0]
            if n_img >= batches * td.sampler.batch_size:
                break
        epoch += 1
    return setup, n_img / (time.perf_counter() - t0), n_img / max(time.process_time() - c0, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=60, help="identities in the generated tree")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader worker counts to time")
    parser.add_argument("--batches", type=int, default=30, help="batches timed per mode")
    parser.add_argument("--augment", choices=sorted(AUGMENTS), default="flip-pad")
    parser.add_argument("--src-height", type=int, default=256, help="height of the generated images")
    parser.add_argument("--src-width", type=int, default=128, help="width of the generated images")
    parser.add_argument("--jpeg", action="store_true", help="use plain JPEGs even if SynthVI is available")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "SYSU-MM01"
        speed = None if args.jpeg else synthvi_tree(root, args.ids, args.src_height, args.src_width)
        if speed is None:
            jpeg_tree(root, args.ids, args.src_height, args.src_width)
            source = "textured JPEGs"
        else:
            source = "SynthVI"
            print(f"SynthVI generation: {speed:.0f} images/s at {args.src_height}x{args.src_width} "
                  f"({count_images(root)} images, 1 process)")
        print(f"tree: {source}, {count_images(root)} images of {args.src_height}x{args.src_width}; "
              f"{os.cpu_count()} CPUs, torch threads 1; augmentation {args.augment}: {AUGMENTS[args.augment]}")
        cfg = DataConfig(dataset="sysu", height=288, width=144, ids_per_batch=8, instances=4,
                         cache_dir=str(Path(tmp) / "cache"), augment=AUGMENTS[args.augment])
        setup, _, _ = time_loader(replace(cfg, num_workers=0), root, 1, per_sample=False)
        print(f"cache build (first run): {setup:.2f} s")
        base = None
        print(f"{'workers':>7}  {'path':<34} {'images/s':>9}  {'x per-sample decoding':>22}  "
              f"{'images/CPU-s (0 workers)':>24}")
        for workers in args.workers:
            for label, cache, per_sample in (("per-sample, decode each image", False, True),
                                             ("per-sample, decoded-image cache", True, True),
                                             ("batched, decode each image", False, False),
                                             ("batched, decoded-image cache", True, False)):
                c = replace(cfg, num_workers=workers, cache=cache)
                _, ips, per_cpu = time_loader(c, root, args.batches, per_sample)
                if per_sample and not cache:
                    base = ips
                cpu = f"{per_cpu:24.0f}" if workers == 0 else f"{'':>24}"
                print(f"{workers:>7}  {label:<34} {ips:9.0f}  {ips / base:22.2f}  {cpu}", flush=True)


if __name__ == "__main__":
    main()
