"""``vireid test``: extract a checkpoint's features and score them with the dataset's test protocol."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from vireid.cli.evaluate import add_dataset_argument, add_protocol_arguments, protocol_values, report
from vireid.datasets import get_dataset
from vireid.models.loading import FORMATS

EPILOG = """\
RegDB with --trial all: --checkpoint is the run directory of `vireid train --trial all` (its trial_<t>/
folders) or a pattern containing {trial} (e.g. 'runs/regdb/trial_{trial}/model.pt'); each trial's model
is scored on its own trial and the result is the mean (and std) over the trials found.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("test", help="extract features from a checkpoint and evaluate them", description=__doc__.split(": ", 1)[1],
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run directory (RegDB all: see below)")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="checkpoint format: auto (recognised from the contents, the default), vireid, or released "
                        "(the authors' model_best.pth.tar)")
    add_dataset_argument(p)
    p.add_argument("--root", required=True, help="dataset root (original layout)")
    add_protocol_arguments(p, trial_default=1)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation (default: the checkpoint's test.flip)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the checkpoint's test.batch_size)")
    p.add_argument("--save-features", help="also keep the extracted features (.npz)")
    p.add_argument("--report", type=Path, help="also write an HTML report into this folder (results, CMC curves, "
                   "t-SNE, training curves, ranked lists); a new folder or a previous report")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.report is None:
        return _test(args, args.save_features)
    from vireid.visualization.report import check_report_dir

    check_report_dir(args.report)  # before the minutes of extraction
    if args.save_features:
        return _test(args, args.save_features)
    per_trial = _per_trial(args)
    with tempfile.TemporaryDirectory(prefix="vireid-report-") as tmp:
        return _test(args, str(Path(tmp) / ("features_trial{trial}.npz" if per_trial else "features.npz")))


def _test(args: argparse.Namespace, features_to: str | None) -> int:
    from vireid.training.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(
        args.checkpoint, args.dataset, args.root, trial=args.trial, normalize=args.normalize, rerank=args.rerank,
        flip=args.flip, device=args.device, batch_size=args.batch_size, save_features_to=features_to,
        progress=True, format=args.format, **protocol_values(args),
    )
    report(result, args.json, checkpoint=str(args.checkpoint))
    if args.report is not None:
        _write_report(args, result, features_to)
    return 0


def _per_trial(args: argparse.Namespace) -> bool:
    """Whether the run scores one model per trial (``--trial all`` on a dataset with numbered splits)."""
    return bool(get_dataset(args.dataset, "--dataset").trials) and args.trial == "all"


def _write_report(args: argparse.Namespace, result, features_to: str) -> None:
    from vireid.features.store import load_features
    from vireid.visualization.report import checkpoint_report

    trial = args.trial if isinstance(args.trial, int) else min(t["trial"] for t in result.per_trial)
    path = Path(features_to)
    if _per_trial(args):  # evaluate_checkpoint's per-trial file names
        path = Path(features_to.format(trial=trial)) if "{trial}" in features_to else \
            path.with_name(f"{path.stem}_trial{trial}{path.suffix}")
    page = checkpoint_report(args.report, result, load_features(path), checkpoint=args.checkpoint,
                             dataset=args.dataset, root=args.root, mode=args.mode, shots=args.shots,
                             sampling=args.sampling, trial=trial)
    print(f"report written to {page}")
