"""``vireid tsne``: the t-SNE picture of a model's joint embedding of both modalities (test identities)."""

from __future__ import annotations

import argparse

from vireid.cli.evaluate import add_dataset_argument
from vireid.datasets import all_datasets


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("tsne", help="t-SNE picture of the visible/infrared embedding", description=__doc__.split(": ", 1)[1])
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    p.add_argument("--root", required=True, help="dataset root (original layout)")
    add_dataset_argument(p, required=False,
                         default_help=" (which protocol's test images; default: the checkpoint's training dataset)")
    p.add_argument("--trial", type=int, default=1,
                   help=f"{', '.join(s.title for s in all_datasets() if s.trials)} trial (default 1)")
    p.add_argument("--ids", type=int, default=20, help="number of test identities to draw (default 20)")
    p.add_argument("--per-id", type=int, default=10,
                   help="at most this many images per identity and modality (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the identity draw and of t-SNE")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out", required=True, help="PNG to write")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.visualization.tsne import checkpoint_tsne

    path, n_ids, n_images = checkpoint_tsne(args.checkpoint, args.root, args.out, dataset=args.dataset,
                                            trial=args.trial, num_ids=args.ids, per_id=args.per_id, seed=args.seed, device=args.device)
    print(f"t-SNE of {n_images} images of {n_ids} identities written to {path}")
    return 0
