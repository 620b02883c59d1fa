"""``vireid evaluate``: score saved features with a dataset's test protocol."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vireid.datasets import all_datasets, all_trials, dataset_names, get_dataset, protocol_options, span
from vireid.errors import VireidError
from vireid.evaluation.result import ProtocolResult
from vireid.features.store import load_features
from vireid.utils.io import atomic_write_json


def trial_arg(value: str) -> int | str:
    """argparse type of ``--trial``: a trial number of some dataset (RegDB 1..10) or ``all``."""
    expected = f"expected {span(all_trials())} or 'all', got {value!r}"
    if value == "all":
        return value
    try:
        t = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if t not in all_trials():
        raise argparse.ArgumentTypeError(expected)
    return t


def add_dataset_argument(p: argparse.ArgumentParser, *, required: bool = True, default_help: str = "") -> None:
    """``--dataset``: its choices and help come from the dataset table (``vireid.datasets``)."""
    names = "; ".join(f"{s.name}: {s.description}" for s in all_datasets())
    p.add_argument("--dataset", required=required, choices=dataset_names(), help=f"{names}{default_help}")


def add_protocol_arguments(p: argparse.ArgumentParser, *, trial_default: int | str) -> None:
    """The protocol options shared by ``evaluate`` and ``test``: every registered protocol's options
    (SYSU-MM01: mode, shots, sampling; RegDB: direction), trial, normalisation, re-ranking, JSON output."""
    for opt in protocol_options().values():
        p.add_argument(f"--{opt.name}", type=type(opt.default), choices=opt.choices, default=opt.default,
                       help=opt.help)
    with_trials = ", ".join(s.title for s in all_datasets() if s.trials)
    p.add_argument("--trial", type=trial_arg, default=trial_default,
                   help=f"{with_trials} trial {span(all_trials())} or 'all' (default {trial_default})")
    p.add_argument("--no-normalize", dest="normalize", action="store_false", help="do not L2-normalise features")
    p.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking")
    p.add_argument("--json", type=Path, help="also write the result as JSON here")


def titles() -> str:
    """The registered datasets' titles, for help texts: ``SYSU-MM01, RegDB``."""
    return ", ".join(s.title for s in all_datasets())


def protocol_values(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol options' values in parsed arguments (each protocol takes its own from them)."""
    return {name: getattr(args, name) for name in protocol_options() if hasattr(args, name)}


def report(result: ProtocolResult, json_path: Path | None, **extra: Any) -> None:
    """Print the result table; with ``json_path`` also write the result (plus ``extra`` keys) as JSON."""
    print(result.format_table())
    if json_path is not None:
        atomic_write_json(json_path, {**result.to_dict(), **extra})


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help=f"score saved features with a dataset's test protocol ({titles()})",
        description="Score a features file (.npz with 'paths' and 'feats') with the test protocol of a dataset "
        f"({titles()}), read from the dataset in its original layout.",
    )
    add_dataset_argument(p)
    p.add_argument("--root", required=True, help="dataset root (in the dataset's original layout)")
    p.add_argument(
        "--features",
        required=True,
        help="features .npz; for RegDB a name containing '{trial}' gives one file per trial",
    )
    add_protocol_arguments(p, trial_default="all")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    spec = get_dataset(args.dataset, "--dataset")
    opts = spec.protocol.select(protocol_values(args))
    # the cheap checks first: a wrong root or option before a large features file is read
    spec.protocol.check(args.root, **opts)
    if spec.trials:
        trials = list(spec.trials) if args.trial == "all" else [args.trial]
        if "{trial}" in args.features:
            features = {t: load_features(args.features.format(trial=t)) for t in trials}
        else:
            features = load_features(args.features)
        result = spec.protocol.evaluate(args.root, features, trial=args.trial, normalize=args.normalize,
                                        rerank=args.rerank, **opts)
    else:
        if "{trial}" in args.features:
            with_trials = ", ".join(f"--dataset {s.name}" for s in all_datasets() if s.trials)
            raise VireidError(f"--features: '{{trial}}' only applies to {with_trials}")
        result = spec.protocol.evaluate(args.root, load_features(args.features), normalize=args.normalize,
                                        rerank=args.rerank, **opts)
    report(result, args.json)
    return 0
