"""Parameters, inference and training-step throughput of the models on this machine's CPU.

Run by hand: ``python benchmarks/bench_models.py [--batch 8] [--repeats 2] [--threads N]``.
Measures ``vd`` with ResNet-50 at 256x128 (paper routing: 2 backbone passes per image; released routing:
4 passes per image) and the CPU-sized MobileNetV3-small, random init (no weights needed). Each figure is
the median over ``--repeats`` timed runs after one warm-up run; batches follow the sampler's order
(identities x [K visible, K infrared]). Forward = ``model.extract`` in eval mode (no grad); training step
= forward + criterion + backward + Adam step in training mode.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from vireid.losses import LossConfig, build_criterion
from vireid.models import ModelConfig, build_model

NUM_CLASSES = 395  # SYSU-MM01 training identities

SETUPS = [
    ("vd resnet50 paper", dict(backbone="resnet50", routing="paper"), 256, 128),
    ("vd resnet50 released", dict(backbone="resnet50", routing="released", bottleneck="deterministic",
                                  bottleneck_hidden=[1000, 500], shallow_cam=True, z_classifier="mlp",
                                  test_feature="released_concat"), 256, 128),
    ("vd mobilenet_v3_small paper", dict(backbone="mobilenet_v3_small", routing="paper"), 256, 128),
    ("baseline resnet50", dict(name="baseline", backbone="resnet50"), 256, 128),
]


def _batch(n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = 2
    ids = max(1, n // (2 * k))
    labels = torch.arange(ids).repeat_interleave(2 * k) % NUM_CLASSES
    modality = torch.tensor([0] * k + [1] * k).repeat(ids)
    return torch.randn(len(labels), 3, height, width), labels, modality


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(overrides: dict, height: int, width: int, batch: int, repeats: int) -> tuple[float, int, float, float]:
    """Parameters (millions), feature dimension, forward and training-step images/s of one setup."""
    cfg = ModelConfig(pretrained="none", **{"name": "vd", **overrides})
    model = build_model(cfg, NUM_CLASSES)
    criterion = build_criterion(LossConfig(), cfg, NUM_CLASSES)
    images, labels, modality = _batch(batch, height, width)
    opt = torch.optim.Adam(model.parameters(), lr=2.6e-4)

    def forward():
        model.eval()
        model.extract(images, modality)

    def train_step():
        model.train()
        loss = criterion(model(images, modality), labels, modality)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    params = sum(p.numel() for p in model.parameters()) / 1e6
    fwd = len(labels) / _median_seconds(forward, repeats)
    trn = len(labels) / _median_seconds(train_step, repeats)
    return params, model.feature_dim, fwd, trn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="images per batch (multiple of 4)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", default="", help="run the setups whose name contains this text")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.repeats}")
    print(f"{'setup':32s} {'params (M)':>10s} {'feat dim':>8s} {'forward img/s':>14s} {'train img/s':>12s}")
    for name, overrides, height, width in SETUPS:
        if args.only in name:
            params, dim, fwd, trn = measure(overrides, height, width, args.batch, args.repeats)
            print(f"{name:32s} {params:10.2f} {dim:8d} {fwd:14.2f} {trn:12.2f}", flush=True)

if __name__ == "__main__":
    main()
