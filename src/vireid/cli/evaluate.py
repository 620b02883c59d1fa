"""``vireid evaluate``: score saved features with the SYSU-MM01 or RegDB protocol."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vireid.data.regdb import TRIALS
from vireid.errors import VireidError
from vireid.evaluation.protocols import (
    check_regdb_protocol,
    check_sysu_protocol,
    evaluate_regdb,
    evaluate_sysu,
)
from vireid.evaluation.result import ProtocolResult
from vireid.features.store import load_features
from vireid.utils.io import atomic_write_json


def trial_arg(value: str) -> int | str:
    """argparse type of ``--trial``: a RegDB trial 1..10 or ``all``."""
    if value == "all":
        return value
    try:
        t = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1..10 or 'all', got {value!r}") from None
    if t not in TRIALS:
        raise argparse.ArgumentTypeError(f"expected 1..10 or 'all', got {value!r}")
    return t


def add_protocol_arguments(p: argparse.ArgumentParser, *, trial_default: int | str) -> None:
    """The protocol options shared by ``evaluate`` and ``test``: mode, shots, sampling, direction, trial,
    normalisation, re-ranking and the JSON output."""
    p.add_argument("--mode", choices=("all", "indoor"), default="all", help="SYSU-MM01 search mode")
    p.add_argument("--shots", type=int, choices=(1, 10), default=1, help="SYSU-MM01 gallery images per id and camera")
    p.add_argument(
        "--sampling",
        choices=("official", "seeded"),
        default="official",
        help="SYSU-MM01 gallery sampling: official rand_perm_cam.mat rows, or AGW-style random.seed(trial)",
    )
    p.add_argument("--direction", choices=("v2t", "t2v"), default="v2t", help="RegDB query -> gallery modality")
    p.add_argument(
        "--trial", type=trial_arg, default=trial_default, help=f"RegDB trial 1..10 or 'all' (default {trial_default})"
    )
    p.add_argument("--no-normalize", dest="normalize", action="store_false", help="do not L2-normalise features")
    p.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")


def report(result: ProtocolResult, json_path: Path | None, **extra: Any) -> None:
    """Print the result table; with ``json_path`` also write the result (plus ``extra`` keys) as JSON."""
    print(result.format_table())
    if json_path is not None:
        atomic_write_json(json_path, {**result.to_dict(), **extra})


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
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
    add_protocol_arguments(p, trial_default="all")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.dataset == "sysu":
        # the cheap checks first: a wrong root or sampling before a large features file is read
        check_sysu_protocol(args.root, mode=args.mode, shots=args.shots, sampling=args.sampling)
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
        check_regdb_protocol(args.root, direction=args.direction)
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
    report(result, args.json)
    return 0
