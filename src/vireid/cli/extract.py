"""``vireid extract``: features of every image a test protocol needs, from a checkpoint, as a .npz."""

from __future__ import annotations

import argparse

from vireid.cli.evaluate import add_dataset_argument
from vireid.datasets import all_datasets, all_trials
from vireid.models.loading import FORMATS


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("extract", help="extract a protocol's test features from a checkpoint",
                       description=__doc__.split(": ", 1)[1])
    p.add_argument("--checkpoint", required=True, help="checkpoint file, or a run directory (its model.pt)")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="checkpoint format: auto (recognised from the contents, the default), vireid, or released "
                        "(the authors' model_best.pth.tar)")
    add_dataset_argument(p)
    p.add_argument("--root", required=True, help="dataset root (original layout; never written to)")
    p.add_argument("--trial", type=int, default=1, choices=all_trials() or None,
                   help=f"{', '.join(s.title for s in all_datasets() if s.trials)} trial (default 1)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average each feature with its mirror image's (default: the checkpoint's test.flip)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the checkpoint's test.batch_size)")
    p.add_argument("--out", required=True, help="features file to write (.npz: paths, feats)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.features.extract import extract_protocol

    fs = extract_protocol(args.checkpoint, args.dataset, args.root, trial=args.trial, flip=args.flip,
                          device=args.device, batch_size=args.batch_size, out=args.out, progress=True,
                          format=args.format)
    print(f"{len(fs)} features of dimension {fs.dim} written to {args.out}")
    return 0
