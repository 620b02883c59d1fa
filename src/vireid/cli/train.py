"""``vireid train``: train a recipe into a run directory (config.yaml, last.pt, model.pt, metrics.jsonl)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vireid.config import Config, load_config, resolve_config_path
from vireid.errors import ConfigError

EPILOG = """\
CONFIG is a shipped recipe name (sysu_vd, regdb_vd, ...; see configs/), configs/NAME.yaml or any YAML path.
Overrides are dotted key=value pairs, values read as YAML: train.epochs=10 optim.lr=1e-4 data.val_split=official.
RegDB: --trial all (or data.trial=all) trains trials 1..10 into RUN_DIR/trial_<t>; `vireid test --trial all`
then averages them. A run directory is refused if it exists, unless --resume (continue from its last.pt,
to the same result as an uninterrupted run) or --overwrite (replace it). Ctrl-C or SIGTERM (a scheduler's
preemption) stops after the current step and saves a resumable last.pt.
"""


def tables_epilog() -> str:
    """The models and datasets a config may name, from their tables."""
    from vireid.datasets import all_datasets
    from vireid.models.build import MODELS

    models = "".join(f"\n  {name:<10} {spec.description}" for name, spec in MODELS.items())
    datasets = "".join(f"\n  {spec.name:<10} {spec.description}" for spec in all_datasets())
    return f"\nmodel.name:{models}\ndata.dataset:{datasets}\n"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model from a config (recipe)", description=__doc__.split(": ", 1)[1],
                       epilog=EPILOG + tables_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="recipe name or YAML path (default with --resume: RUN_DIR/config.yaml)")
    p.add_argument("--data-root", help="dataset root (overrides data.root)")
    p.add_argument("--output", help="run directory (default: runs/<config name>)")
    p.add_argument("--trial", help="RegDB trial 1..10, or 'all' (same as data.trial=...)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=run)
    return p


def _split_trial(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """Take ``data.trial=all`` / ``--trial`` out of the overrides ('all' is not a DataConfig value)."""
    trial = args.trial
    overrides = []
    for text in args.overrides:
        key, _, value = text.partition("=")
        if key.strip() == "data.trial":
            trial = value.strip()
        else:
            overrides.append(text)
    if trial is not None and trial != "all":
        overrides.append(f"data.trial={trial}")
    return overrides, trial


def _resume_config(out: Path) -> Path:
    for candidate in (out / "config.yaml", out / "trial_1" / "config.yaml"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"--resume without --config: {out} holds no config.yaml to resume from (a run killed "
                      "before it wrote one starts afresh: pass its --config again)")


def run(args: argparse.Namespace) -> int:
    from vireid.training.trainer import train
    from vireid.training.trials import train_trials

    overrides, trial = _split_trial(args)
    if args.config is None and not args.resume:
        raise ConfigError("--config is required (a recipe name such as sysu_vd, or a YAML path)")
    if args.output is None:
        if args.config is None:
            raise ConfigError("--resume needs --output RUN_DIR")
        args.output = str(Path("runs") / resolve_config_path(args.config).stem)
    out = Path(args.output)
    source = args.config if args.config is not None else _resume_config(out)
    config: Config = load_config(source, overrides)
    if args.data_root is not None:
        config.data.root = args.data_root  # a path is never re-parsed as YAML
    if trial == "all":
        results = train_trials(config, out, resume=args.resume, overwrite=args.overwrite)
        for r in results:
            _report(r, prefix=f"trial {r.config.data.trial}: ")
        if results and not results[0].is_main:
            return 0
        print(f"{len(results)} trials in {out}; evaluate with: vireid test --checkpoint {out} --dataset regdb "
              f"--root DIR --trial all")
        return 0
    result = train(config, out, resume=args.resume, overwrite=args.overwrite)
    _report(result)
    return 0


def _report(result, prefix: str = "") -> None:
    if not result.is_main:
        return
    val = result.selected_val
    shown = ""
    if val:
        shown = " (validation " + ", ".join(f"{k} {val[k]:.2f}" for k in ("rank1", "mAP", "mINP") if k in val) + ")"
    print(f"{prefix}{result.epochs_done} epochs in {result.run_dir}; model {result.model_path} "
          f"= epoch {result.selected_epoch}{shown}", file=sys.stdout)
