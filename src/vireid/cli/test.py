"""``vireid test``: extract a checkpoint's features and score them with the SYSU-MM01 or RegDB protocol."""

from __future__ import annotations

import argparse

from vireid.cli.evaluate import add_protocol_arguments, report

EPILOG = """\
RegDB with --trial all: --checkpoint is the run directory of `vireid train --trial all` (its trial_<t>/
folders) or a pattern containing {trial} (e.g. 'runs/regdb/trial_{trial}/model.pt'); each trial's model
is scored on its own trial and the result is the mean (and std) over the trials found.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("test", help="extract features from a checkpoint and evaluate them", description=__doc__.split(": ", 1)[1],
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run directory (RegDB all: see below)")
    p.add_argument("--dataset", required=True, choices=("sysu", "regdb"))
    p.add_argument("--root", required=True, help="dataset root (original layout)")
    add_protocol_arguments(p, trial_default=1)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation (default: the checkpoint's test.flip)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the checkpoint's test.batch_size)")
    p.add_argument("--save-features", help="also keep the extracted features (.npz)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.training.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(
        args.checkpoint, args.dataset, args.root, trial=args.trial, mode=args.mode, shots=args.shots,
        sampling=args.sampling, direction=args.direction, normalize=args.normalize, rerank=args.rerank,
        flip=args.flip, device=args.device, batch_size=args.batch_size, save_features_to=args.save_features,
        progress=True,
    )
    report(result, args.json, checkpoint=str(args.checkpoint))
    return 0
