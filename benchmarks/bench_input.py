"""Benchmark of the training input pipeline: images/s at 288x144, decoding per sample vs the decoded-image cache.

Builds a SYSU-MM01-layout tree in a temporary folder (with SynthVI when it is available, else with
textured JPEGs written here), then times the training loader both ways, plus the cache build and SynthVI's
generation speed. Run by hand:  python benchmarks/bench_input.py [--ids 60] [--workers 2] [--batches 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vireid.data.config import AugmentConfig, DataConfig
from vireid.data.loaders import build_training_data


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


def time_loader(cfg: DataConfig, root: Path, batches: int) -> tuple[float, float]:
    """(seconds to build the training data, images/s over ``batches`` batches after a warm-up batch)."""
    start = time.perf_counter()
    td = build_training_data(cfg, root, seed=0, progress=False)
    setup = time.perf_counter() - start
    n_img, epoch, t0 = 0, 0, None
    while n_img < batches * td.sampler.batch_size:
        td.sampler.set_epoch(epoch)
        for b in td.loader:
            if t0 is None:  # skip the first batch: worker start-up
                t0 = time.perf_counter()
                continue
            n_img += b["images"].shape[0]
            if n_img >= batches * td.sampler.batch_size:
                break
        epoch += 1
    return setup, n_img / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=60, help="identities in the generated tree")
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes")
    parser.add_argument("--batches", type=int, default=30, help="batches timed per mode")
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
            small = synthvi_tree(Path(tmp) / "small", max(10, args.ids // 2), 128, 64)
            print(f"SynthVI generation: {small:.0f} images/s at 128x64 (1 process)")
        print(f"tree: {source}, {count_images(root)} images of {args.src_height}x{args.src_width}; "
              f"{os.cpu_count()} CPUs, {args.workers} loader workers, torch threads 1")
        cfg = DataConfig(dataset="sysu", height=288, width=144, ids_per_batch=8, instances=4,
                         num_workers=args.workers, cache_dir=str(Path(tmp) / "cache"),
                         augment=AugmentConfig(flip=0.5, pad=10))
        for label, c in (("decode per sample", DataConfig(**{**cfg.__dict__, "cache": False})),
                         ("cache (first run, builds it)", cfg), ("cache (reused)", cfg)):
            setup, ips = time_loader(c, root, args.batches)
            print(f"{label:30s} setup {setup:6.2f} s   training input {ips:7.0f} images/s at 288x144")


if __name__ == "__main__":
    main()
