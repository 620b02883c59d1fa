"""A plain-CNN reference for the CPU recipes: what a small network learns in the same budget.

Run by hand, never by the tests (it trains for minutes):

    .venv/bin/python benchmarks/cnn_reference.py --root DATA [--epochs 15] [--seed 0] [--json OUT]

The reference the team measured our recipes against (issue 10): an 8-layer CNN (four blocks of two
3x3 conv + BN + ReLU, 32-64-128-256 channels, max-pooling between blocks), global average pooling, one
256-d feature, a linear classifier, cross-entropy only; random greyscale of visible images (p 0.5),
horizontal flip and small shifts (pad 4, random crop); 64x32 input; ``--epochs`` passes over all
training images in random batches of 64 (Adam 1e-3, weight decay 5e-4, x0.1 after 80 % of the epochs);
test feature = the 256-d pooled feature averaged with its mirror's. It is deliberately not part of the
package: it is a yardstick, trained with the same data readers and scored with the same protocol code as
the recipes (SYSU-MM01: all-search and indoor, single-shot, 10 seeded trials; RegDB: trial 1 (or
``--trial``), both directions). It also prints the validation score on the held-out training identities
(``--val-split``, as the recipes' checkpoint selection sees it) and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vireid.data import regdb as regdb_layout
from vireid.data import sysu as sysu_layout
from vireid.data.cache import load_resized
from vireid.data.records import VISIBLE
from vireid.data.training_sets import load_training_set
from vireid.evaluation.metrics import compute_metrics
from vireid.evaluation.protocols import evaluate_regdb, evaluate_sysu
from vireid.evaluation.protocols.common import labels
from vireid.features.store import FeatureSet

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
GREY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class PlainCNN(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(block(3, 32), nn.MaxPool2d(2), block(32, 64), nn.MaxPool2d(2),
                                      block(64, 128), nn.MaxPool2d(2), block(128, 256))
        self.classifier = nn.Linear(256, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def load_images(records, root: Path, height: int, width: int) -> torch.Tensor:
    return torch.stack([load_resized(root / r.path, height, width) for r in records])


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - MEAN) / STD


def augment(x: torch.Tensor, modality: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random greyscale of visible images, flip, shift; uint8 batch in, normalised float batch out."""
    x = x.float()
    grey = (x * GREY).sum(1, keepdim=True).expand_as(x)
    to_grey = ((modality == VISIBLE) & (torch.rand(len(x), generator=g) < 0.5)).view(-1, 1, 1, 1)
    x = torch.where(to_grey, grey, x)
    flip = (torch.rand(len(x), generator=g) < 0.5).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(3), x)
    h, w = x.shape[-2:]
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (len(x),), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (len(x),), generator=g)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(len(x))])
    return (x / 255 - MEAN) / STD


@torch.no_grad()
def embed_all(model: PlainCNN, images: torch.Tensor, batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = normalise(images[i:i + batch])
        out.append((model.embed(x) + model.embed(x.flip(3))) / 2)
    return torch.cat(out).numpy()


def validation(model: PlainCNN, query, gallery, root: Path, height: int, width: int) -> dict[str, float]:
    qf = torch.nn.functional.normalize(torch.from_numpy(embed_all(model, load_images(query, root, height, width))), dim=1)
    gf = torch.nn.functional.normalize(torch.from_numpy(embed_all(model, load_images(gallery, root, height, width))), dim=1)
    (q_pids, q_cams), (g_pids, g_cams) = labels(query), labels(gallery)
    m = compute_metrics(torch.cdist(qf, gf).numpy(), q_pids, g_pids, q_cams, g_cams)
    return {"rank1": 100 * float(m.cmc[0]), "mAP": 100 * float(m.mAP)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="a SYSU-MM01- or RegDB-layout tree (e.g. SynthVI)")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--val-split", default="official", help="held-out training ids: official (SYSU), none or N")
    p.add_argument("--trial", type=int, default=1, help="RegDB trial")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    root = Path(args.root)
    dataset = "regdb" if (root / "idx").is_dir() else "sysu"
    val_split = args.val_split if args.val_split in ("official", "none") else int(args.val_split)
    if dataset == "regdb" and val_split == "official":
        val_split = "none"
    start = time.perf_counter()
    ts = load_training_set(dataset, root, trial=args.trial, val_split=val_split)
    images = load_images(ts.records, root, args.height, args.width)
    targets = torch.tensor([r.label for r in ts.records])
    modality = torch.tensor([r.modality for r in ts.records])
    model = PlainCNN(ts.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.8 * args.epochs)], 0.1)
    g = torch.Generator().manual_seed(args.seed)
    steps = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=g)
        total = 0.0
        for i in range(0, len(order) - 63, 64):
            idx = order[i:i + 64]
            loss = F.cross_entropy(model(augment(images[idx], modality[idx], g)), targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            steps += 1
        sched.step()
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / max(1, len(order) // 64):.3f}", flush=True)
    train_s = time.perf_counter() - start
    out: dict = {"dataset": dataset, "root": str(root), "epochs": args.epochs, "steps": steps, "seed": args.seed,
                 "train_images": len(images), "train_ids": ts.num_classes, "train_seconds": round(train_s, 1)}
    if ts.val_query and ts.val_gallery:
        out["validation"] = validation(model, ts.val_query, ts.val_gallery, root, args.height, args.width)
    if dataset == "sysu":
        records = sysu_layout.test_records(root)
        fs = FeatureSet([r.path for r in records], embed_all(model, load_images(records, root, args.height, args.width)))
        for mode in ("all", "indoor"):
            res = evaluate_sysu(root, fs, mode=mode, shots=1, sampling="seeded")
            out[mode] = {k: round(res.mean[k], 2) for k in ("rank1", "mAP", "mINP")}
    else:
        records = regdb_layout.test_records(root, args.trial)
        fs = FeatureSet([r.path for r in records], embed_all(model, load_images(records, root, args.height, args.width)))
        for direction in ("v2t", "t2v"):
            res = evaluate_regdb(root, {args.trial: fs}, trial=args.trial, direction=direction)
            out[direction] = {k: round(res.mean[k], 2) for k in ("rank1", "mAP", "mINP")}
    out["total_seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
