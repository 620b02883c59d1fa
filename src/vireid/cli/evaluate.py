"""``vireid evaluate``: score saved features with the SYSU-MM01 or RegDB protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from vireid.data.regdb import TRIALS, check_regdb_root
from vireid.data.sysu import check_sysu_root
from vireid.errors import VireidError
from vireid.evaluation.protocols import evaluate_regdb, evaluate_sysu
from vireid.features.store import load_features
from vireid.utils.io import atomic_write_json


def _trial(value: str) -> int | str:
    if value == "all":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1..10 or 'all', got {value!r}") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="score saved features with the SYSU-MM01 or RegDB protocol",
        description="Score a features file (.npz with 'paths' and 'feats') with the SYSU-MM01 or RegDB "
        "protocol, read from the dataset in its original layout.",
    )
    p.add_argument("--dataset", required=True, choices=("sysu", "regdb"))
    p.add_argument("--root", required=True, help="dataset root (SYSU-MM01 or RegDB original layout)")
    p.add_argument(
        "--features",
        required=True,
        help="features .npz; for RegDB a name containing '{trial}' gives one file per trial",
    )
    p.add_argument("--mode", choices=("all", "indoor"), default="all", help="SYSU-MM01 search mode")
    p.add_argument("--shots", type=int, choices=(1, 10), default=1, help="SYSU-MM01 gallery images per id and camera")
    p.add_argument(
        "--sampling",
        choices=("official", "seeded"),
        default="official",
        help="SYSU-MM01 gallery sampling: official rand_perm_cam.mat rows, or AGW-style random.seed(trial)",
    )
    p.add_argument("--direction", choices=("v2t", "t2v"), default="v2t", help="RegDB query -> gallery modality")
    p.add_argument("--trial", type=_trial, default="all", help="RegDB trial 1..10 or 'all' (default)")
    p.add_argument("--no-normalize", dest="normalize", action="store_false", help="do not L2-normalise features")
    p.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.dataset == "sysu":
        check_sysu_root(args.root)  # the cheap checks first: a wrong root before a large features file
        if "{trial}" in args.features:
            raise VireidError("--features: '{trial}' only applies to --dataset regdb")
        result = evaluate_sysu(
            args.root,
            load_features(args.features),
            mode=args.mode,
            shots=args.shots,
            sampling=args.sampling,
            normalize=args.normalize,
            rerank=args.rerank,
        )
    else:
        check_regdb_root(args.root)
        trials = list(TRIALS) if args.trial == "all" else [args.trial]
        if "{trial}" in args.features:
            features = {t: load_features(args.features.format(trial=t)) for t in trials}
        else:
            features = load_features(args.features)
        result = evaluate_regdb(
            args.root,
            features,
            trial=args.trial,
            direction=args.direction,
            normalize=args.normalize,
            rerank=args.rerank,
        )
    print(result.format_table())
    if args.json is not None:
        atomic_write_json(args.json, result.to_dict())
    return 0
