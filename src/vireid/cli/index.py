"""``vireid index``: embed every image under a folder with a checkpoint's model into a gallery index (.npz)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("index", help="embed a folder of images into a gallery index for vireid search",
                       description=__doc__.split(": ", 1)[1] + " Paths are stored relative to the folder, with "
                       "the checkpoint's identity; SYSU-MM01 / RegDB paths keep their person id and camera. "
                       "An interrupted run resumes when started again with the same options.")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    p.add_argument("--images", required=True, help="folder of images (recursive; .jpg .jpeg .png .bmp)")
    p.add_argument("--modality", choices=("visible", "infrared", "auto"), default="auto",
                   help="modality of the images (auto: the dataset layout's where paths follow SYSU-MM01 or "
                        "RegDB, else per image: three equal channels = infrared)")
    p.add_argument("--out", required=True, help="index file to write (.npz)")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image instead of skipping it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the checkpoint's test.batch_size)")
    p.add_argument("--workers", type=int, help="decoding processes (default: the checkpoint's data.num_workers)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vireid.inference.index import build_index, check_index_output
    from vireid.inference.model import ReIDModel

    check_index_output(args.out, args.overwrite)  # before the model is loaded
    model = ReIDModel.load(args.checkpoint, args.device)
    summary = build_index(model, args.images, args.out, modality=args.modality, strict=args.strict,
                          batch_size=args.batch_size, num_workers=args.workers, overwrite=args.overwrite)
    index = summary.index
    print(f"{len(index)} images of {args.images} indexed ({model.feature}, dimension {model.feature_dim}) "
          f"in {summary.path}")
    known = int((index.pids >= 0).sum())
    if known:
        print(f"{known} paths follow the SYSU-MM01 or RegDB layout: person id and camera kept")
    if summary.skipped:
        first = summary.skipped[0][1]
        print(f"skipped {len(summary.skipped)} unreadable image(s) (first: {first}); --strict makes this an error",
              file=sys.stderr)
    if summary.other_files:
        print(f"ignored {summary.other_files} file(s) that are not .jpg/.jpeg/.png/.bmp images", file=sys.stderr)
    return 0
