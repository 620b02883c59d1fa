"""``vireid sweep``: train every config x seed, evaluate each, and summarise over seeds with paired intervals."""

from __future__ import annotations

import argparse

EPILOG = """\
Each config (a recipe name or YAML path) is trained once per seed into OUT/runs/<name>/seed_<s>/ and scored on
the test split with the dataset's protocol (SYSU-MM01: all-search and indoor, single-shot, 10 trials;
RegDB: the recipe's trial, v2t and t2v). A rerun skips finished pairs and resumes unfinished ones.
--variant 'NAME: CONFIG key=value ...' adds a named recipe with its own overrides (an ablation without a
YAML file). Trailing key=value overrides apply to every run. Writes OUT/sweep.json, OUT/table.md (mean ± std
over seeds of each seed's 10-trial mean, the paired difference to --reference with a 95 % interval, every
seed's value) and OUT/sweep.png.

  vireid sweep --configs demo_vd demo_ib demo_baseline --seeds 0 1 2 --data-root data/synthvi --out sweeps/demo
  vireid sweep --variant 'vsd: demo_vd loss.vcd_weight=0 loss.vml_weight=0' --configs demo_vd \\
      --seeds 0 1 2 --data-root data/synthvi --out sweeps/vsd --reference demo_vd train.epochs=10 schedule.milestones=[8]
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="configs x seeds: train, evaluate, mean ± std and paired differences",
                       description=__doc__.split(": ", 1)[1], epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=[], metavar="CONFIG", help="recipe names or YAML paths")
    p.add_argument("--variant", action="append", default=[], metavar="'NAME: CONFIG [key=value ...]'",
                   help="a named config with its own overrides (repeatable)")
    p.add_argument("--seeds", nargs="+", type=int, required=True, metavar="S", help="training seeds (train.seed)")
    p.add_argument("--data-root", help="dataset root (overrides data.root)")
    p.add_argument("--out", required=True, help="sweep folder (created; a rerun continues it)")
    p.add_argument("--reference", help="variant the others are compared with (default: the first)")
    p.add_argument("--sampling", default="auto", choices=("auto", "official", "seeded"),
                   help="SYSU-MM01 gallery sampling (auto: official where the tree fits rand_perm_cam.mat, else seeded)")
    p.add_argument("--device", help="train.device for every run (default: each recipe's)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel, each with cpus/jobs threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides applied to every run")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.sweep import Variant, format_table, run_sweep

    # ``--configs A B key=value`` swallows the overrides: anything with '=' is an override.
    configs = [c for c in args.configs if "=" not in c]
    overrides = [c for c in args.configs if "=" in c] + list(args.overrides)
    variants = [Variant.parse(c) for c in configs] + [Variant.parse(v) for v in args.variant]
    result = run_sweep(variants, args.seeds, args.out, data_root=args.data_root, overrides=overrides,
                       reference=args.reference, sampling=args.sampling, device=args.device, jobs=args.jobs,
                       progress=not args.quiet)
    print(format_table(result.summary))
    print(f"sweep.json, table.md and sweep.png written to {args.out}")
    if result.failed:
        print(f"{len(result.failed)} run(s) failed: " + "; ".join(f"{f['variant']} seed {f['seed']}: {f['error']}"
                                                              for f in result.failed))
        return 1
    return 0
