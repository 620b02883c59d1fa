"""``vireid demo``: generate SynthVI, train vd, ib and baseline on the CPU, evaluate, draw, in one command."""

from __future__ import annotations

import argparse

from vireid.demo import METHODS, PRESETS


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="the whole system on a laptop CPU: SynthVI, train vd/ib/baseline, evaluate, t-SNE (start here)",
        description="Generate SynthVI (SYSU-MM01 layout) into --out, train vd, ib and baseline with the same "
        "CPU-sized recipe (checkpoints selected on validation identities), evaluate each with the SYSU-MM01 "
        "protocol (all-search and indoor, single-shot, 10 seeded trials), print the table and write "
        "results.json, tsne_<method>.png and curves_<method>.png. No data, network or GPU needed: about "
        "11 minutes on a slow 2-core CPU (--quick: about 2.5, and its networks are barely trained).",
    )
    parser.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    quick = PRESETS["quick"]
    parser.add_argument("--quick", action="store_true", help=f"{quick.num_ids} ids and {quick.epochs} epochs: checks that "
                        "everything runs (about 2.5 minutes)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous demo folder in --out")
    parser.add_argument("--seed", type=int, default=0, help="dataset and training seed (default 0)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {','.join(METHODS)} (default all)")
    parser.add_argument("--ids", type=int, default=None, help="SynthVI identities (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the preset's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or stage lines")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted config overrides applied to every method's recipe (e.g. optim.lr=5e-4)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from vireid.demo import run_demo, summary_lines

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    results = run_demo(args.out, quick=args.quick, seed=args.seed, device=args.device, methods=methods,
                       num_ids=args.ids, epochs=args.epochs, overrides=args.overrides, overwrite=args.overwrite,
                       progress=not args.quiet)
    print("SynthVI test split, SYSU-MM01 protocol, single-shot, 10 seeded trials (mean ± std, %)")
    print("\n".join(summary_lines(results)))
    print(f"results.json, tsne_<method>.png and curves_<method>.png written to {args.out}")
    return 0
