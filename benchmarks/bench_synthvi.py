"""SynthVI benchmark: generation speed on one core, and calibration proxies.

Run by hand:  .venv/bin/python benchmarks/bench_synthvi.py [--ids 150] [--nuisance 1.0]

Speed: images/s of ``generate`` (drawing, JPEG/BMP encoding and writing) on one core, at 128x64 and
other sizes. Calibration: nearest-neighbour Rank-1 with hand-made features, which a trained
two-stream CNN should beat by a clear margin but which show whether the cues are where they should be:
- colour histograms: high within the visible modality (across cameras), about chance across modalities;
- downsampled greyscale and gradient-orientation features: above chance across modalities, far from 1.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from vireid.data.synthvi import generate  # noqa: E402
from vireid.data.sysu import index_images, read_split_ids  # noqa: E402


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def speed(tmp: Path, layout: str, ids: int, height: int, width: int) -> tuple[float, float, int]:
    """(images per CPU second, images per wall second, images) of one ``generate`` call."""
    out = tmp / f"speed-{layout}-{height}x{width}"
    c0, t0 = time.process_time(), time.perf_counter()
    generate(out, layout=layout, num_ids=ids, height=height, width=width, seed=1)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    n = sum(1 for _ in out.rglob("*.jpg")) + sum(1 for _ in out.rglob("*.bmp"))
    return n / cpu, n / wall, n


def colour_hist(img: np.ndarray) -> np.ndarray:
    """Hue-saturation histogram of the central half of the image (dark and grey pixels in their own bins).

    12 hues x 2 saturations for coloured pixels, 3 brightness bins for grey ones, 1 bin for dark ones;
    square-rooted (Hellinger), so that Euclidean distance compares distributions.
    """
    h, w = img.shape[:2]
    hsv = np.asarray(Image.fromarray(img[h // 8: h - h // 8, w // 4: w - w // 4]).convert("HSV"), dtype=np.int64)
    hue, sat, val = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()
    coloured = 4 + (hue * 12 // 256) * 2 + (sat >= 140)
    grey = 1 + np.minimum(val * 3 // 256, 2)
    bins = np.where(val < 40, 0, np.where(sat < 60, grey, coloured))
    hist = np.bincount(bins, minlength=28).astype(np.float64)
    return np.sqrt(hist / hist.sum())


def grey_small(img: np.ndarray) -> np.ndarray:
    """Greyscale at 32x16, standardised per image."""
    g = np.asarray(Image.fromarray(img).convert("L").resize((16, 32), Image.BILINEAR), dtype=np.float64).ravel()
    g = g - g.mean()
    return g / (np.linalg.norm(g) + 1e-9)


def gradient_hist(img: np.ndarray) -> np.ndarray:
    """Unsigned gradient orientations (9 bins) weighted by magnitude in 8x8 cells of the 64x32 image.

    Unsigned orientation ignores contrast polarity, which differs between visible and infrared.
    """
    g = np.asarray(Image.fromarray(img).convert("L").resize((32, 64), Image.BILINEAR), dtype=np.float64)
    gy, gx = np.gradient(g)
    mag = np.hypot(gx, gy)
    ang = (np.arctan2(gy, gx) % np.pi) / np.pi * 9
    b = np.minimum(ang.astype(int), 8)
    feats = np.zeros((8, 4, 9))
    for i in range(8):
        for j in range(4):
            sl = (slice(i * 8, i * 8 + 8), slice(j * 8, j * 8 + 8))
            feats[i, j] = np.bincount(b[sl].ravel(), weights=mag[sl].ravel(), minlength=9)
    f = feats.ravel()
    return f / (np.linalg.norm(f) + 1e-9)


def rank1(q: np.ndarray, qp: np.ndarray, g: np.ndarray, gp: np.ndarray) -> float:
    """Nearest-neighbour Rank-1 over the queries whose id is in the gallery."""
    valid = np.isin(qp, gp)
    q, qp = q[valid], qp[valid]
    d = (q**2).sum(1)[:, None] + (g**2).sum(1)[None, :] - 2 * q @ g.T
    return float((gp[d.argmin(1)] == qp).mean())


def proxies(root: Path) -> None:
    ids = sorted(set(read_split_ids(root, "test")) | set(read_split_ids(root, "train")) | set(read_split_ids(root, "val")))
    index = index_images(root, ids, (1, 2, 3, 4, 5, 6))
    imgs = {k: [np.asarray(Image.open(root / p).convert("RGB")) for p in v[:4]] for k, v in index.items()}
    feats = {"colour histogram": colour_hist, "greyscale 32x16": grey_small, "gradient orientation": gradient_hist}
    settings = {
        "visible cam 1 -> visible cam 2 (indoor)": ((1,), (2,)),
        "visible cams 1,2 -> visible cams 4,5": ((1, 2), (4, 5)),
        "infrared cams 3,6 -> visible cams 1,2,4,5": ((3, 6), (1, 2, 4, 5)),
        "visible cams 1,2,4,5 -> infrared cams 3,6": ((1, 2, 4, 5), (3, 6)),
        "infrared cam 3 -> infrared cam 6": ((3,), (6,)),
    }
    print(f"\nNearest-neighbour Rank-1 on {len(ids)} ids (4 images per id and camera), chance ~ {1 / len(ids):.3f}")
    print(f"{'query -> gallery':45s}" + "".join(f"{n:>22s}" for n in feats))
    for name, (qc, gc) in settings.items():
        row = []
        for fn in feats.values():
            def collect(cams, fn=fn):
                f, p = [], []
                for (cam, pid), ims in imgs.items():
                    if cam in cams:
                        f += [fn(im) for im in ims]
                        p += [pid] * len(ims)
                return np.asarray(f), np.asarray(p)
            (q, qp), (g, gp) = collect(qc), collect(gc)
            row.append(rank1(q, qp, g, gp))
        print(f"{name:45s}" + "".join(f"{r:22.3f}" for r in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=150, help="identities for the calibration proxies")
    parser.add_argument("--nuisance", type=float, default=1.0)
    parser.add_argument("--speed-ids", type=int, default=60, help="identities per speed measurement")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-proxies", action="store_true")
    args = parser.parse_args()
    pin_one_core()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_speed:
            print("Generation speed on one core (drawing + encoding + writing); CPU time is what one core")
            print("delivers, wall time also counts other processes sharing the core:")
            for layout, h, w in (("sysu", 128, 64), ("sysu", 64, 32), ("sysu", 256, 128), ("sysu", 288, 144),
                                 ("regdb", 128, 64)):
                cpu, wall, n = speed(tmp, layout, args.speed_ids, h, w)
                print(f"  {layout:5s} {h:3d}x{w:<3d} {cpu:7.0f} images/s (CPU)  {wall:7.0f} images/s (wall)  [{n} images]")
        if not args.skip_proxies:
            proxies(generate(tmp / "proxy", num_ids=args.ids, seed=0, nuisance=args.nuisance))


if __name__ == "__main__":
    main()
