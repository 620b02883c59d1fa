"""``vireid test``: extract a checkpoint's features and score them with the SYSU-MM01 or RegDB protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from vireid.utils.io import atomic_write_json

EPILOG = """\
RegDB with --trial all: --checkpoint is the run directory of `vireid train --trial all` (its trial_<t>/
folders) or a pattern containing {trial} (e.g. 'runs/regdb/trial_{trial}/model.pt'); each trial's model
is scored on its own trial and the result is the mean (and std) over the trials found.
"""


def _trial(value: str) -> int | str:
    if value == "all":
        return value
    try:
        t = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1..10 or 'all', got {value!r}") from None
    if not 1 <= t <= 10:
        raise argparse.ArgumentTypeError(f"expected 1..10 or 'all', got {value!r}")
    return t


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("test", help="extract features from a checkpoint and evaluate them", description=__doc__.split(": ", 1)[1],
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run directory (RegDB all: see below)")
    p.add_argument("--dataset", required=True, choices=("sysu", "regdb"))
    p.add_argument("--root", required=True, help="dataset root (original layout)")
    p.add_argument("--mode", choices=("all", "indoor"), default="all", help="SYSU-MM01 search mode")
    p.add_argument("--shots", type=int, choices=(1, 10), default=1, help="SYSU-MM01 gallery images per id and camera")
    p.add_argument("--sampling", choices=("official", "seeded"), default="official",
                   help="SYSU-MM01 gallery sampling (official rand_perm_cam.mat, or seeded)")
    p.add_argument("--direction", choices=("v2t", "t2v"), default="v2t", help="RegDB query -> gallery modality")
    p.add_argument("--trial", type=_trial, default=1, help="RegDB trial 1..10 or 'all' (default 1)")
    p.add_argument("--no-normalize", dest="normalize", action="store_false", help="do not L2-normalise features")
    p.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation (default: the checkpoint's test.flip)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the checkpoint's test.batch_size)")
    p.add_argument("--save-features", help="also keep the extracted features (.npz)")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")
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
    print(result.format_table())
    if args.json is not None:
        out = result.to_dict()
        out["checkpoint"] = str(args.checkpoint)
        atomic_write_json(args.json, out)
    return 0
