"""How ``torch.compile`` (``train.compile``) splits a recipe's training forward: graphs, their sizes, and why.

Run by hand:  python benchmarks/compile_graphs.py [--config demo_vd] [key=value ...]

Traces one training-mode forward of the recipe's model with ``torch._dynamo.explain`` (no code generation, so
it runs in seconds on a CPU; the graph structure is what a GPU compile gets too) on a batch of 4 identities x
(2 visible + 2 infrared) and prints each graph's node count and each graph break's reason and source line.
Heavy compute in one large graph with the breaks in small ones means the breaks cost little beyond the
host syncs eager mode pays anyway. Defaults to a small backbone at 64x32 so that tracing is quick; the split
does not depend on the backbone.
"""

from __future__ import annotations

import argparse

import torch
import torch._dynamo as dynamo

from vireid.config import load_config
from vireid.data.records import INFRARED, VISIBLE
from vireid.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo_vd", help="recipe name or YAML file (default demo_vd)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides (default: a small backbone at 64x32)")
    args = parser.parse_args()
    overrides = ["model.backbone=mobilenet_v3_small", "model.pretrained=none", "data.height=64", "data.width=32",
                 *args.overrides]
    cfg = load_config(args.config, overrides)
    model = build_model(cfg.model, 10).train()
    ids, per_modality = 4, 2
    modality = torch.tensor(([VISIBLE] * per_modality + [INFRARED] * per_modality) * ids)
    images = torch.randn(len(modality), 3, cfg.data.height, cfg.data.width)
    explained = dynamo.explain(model)(images, modality)
    sizes = [len(g.graph.nodes) for g in explained.graphs]
    print(f"{args.config} ({cfg.model.name}, {cfg.model.backbone}): {explained.graph_count} graphs, "
          f"{explained.graph_break_count} breaks; nodes per graph in order: {sizes}")
    print(f"largest graph: {max(sizes)} of {sum(sizes)} nodes ({100 * max(sizes) / max(sum(sizes), 1):.1f} %)")
    for reason in explained.break_reasons:
        frame = reason.user_stack[-1] if reason.user_stack else None
        where = f"{frame.filename.split('/src/')[-1]}:{frame.lineno} ({frame.name})" if frame else "?"
        print(f"break at {where}: {reason.reason.splitlines()[0]}")


if __name__ == "__main__":
    main()
