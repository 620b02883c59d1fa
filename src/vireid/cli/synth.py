"""``vireid synth``: generate a SynthVI dataset in the SYSU-MM01 or RegDB layout."""

from __future__ import annotations

import argparse

from vireid.data.synthvi import LAYOUTS, SynthConfig, count_images, generate_config


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "synth",
        help="generate a synthetic visible-infrared dataset (SynthVI)",
        description="Generate SynthVI, a procedural visible-infrared pedestrian dataset, in the SYSU-MM01 "
        "layout (default) or the RegDB layout, readable by the same commands as the real datasets.",
    )
    parser.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    defaults = SynthConfig()  # the generator's own defaults, so that CLI and API cannot drift apart
    parser.add_argument("--layout", default=defaults.layout,
                        help=f"on-disk layout: {' or '.join(LAYOUTS)} (default %(default)s)")
    parser.add_argument("--ids", type=int, default=defaults.num_ids, help="number of identities (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="dataset seed: same seed, same bytes (default %(default)s)")
    parser.add_argument("--height", type=int, default=defaults.height, help="image height in pixels (default %(default)s)")
    parser.add_argument("--width", type=int, default=defaults.width, help="image width in pixels (default %(default)s)")
    parser.add_argument("--nuisance", type=float, default=defaults.nuisance,
                        help="difficulty: strength of per-image nuisance, 0 (clean) to 2 (default %(default)s)")
    parser.add_argument("--train-fraction", type=float, default=defaults.train_fraction,
                        help="SYSU layout: share of identities in exp/train_id.txt (default %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction,
                        help="SYSU layout: share in exp/val_id.txt, the rest being test identities (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous SynthVI output in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    cfg = SynthConfig(layout=args.layout, num_ids=args.ids, seed=args.seed, height=args.height,
                      width=args.width, nuisance=args.nuisance, train_fraction=args.train_fraction,
                      val_fraction=args.val_fraction)
    out = generate_config(cfg, args.out, overwrite=args.overwrite, progress=not args.quiet)
    print(f"wrote {count_images(cfg)} images of {cfg.num_ids} identities ({cfg.layout} layout) to {out}")
    return 0
