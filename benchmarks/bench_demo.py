"""Wall time and table of `vireid demo` (full and --quick), as a newcomer would run it.

Run by hand, never by the tests:

    .venv/bin/python benchmarks/bench_demo.py                  # full, then --quick
    .venv/bin/python benchmarks/bench_demo.py --only quick     # just one of them
    .venv/bin/python benchmarks/bench_demo.py --keep DIR       # keep the demo folders under DIR

Each run goes into a fresh folder (a temporary one unless --keep), exactly as `vireid demo --out DIR
[--quick]`. It prints the wall time, the process CPU time (on a shared machine the wall time includes
waiting for the cores), the per-stage timings, the validation score of each selected checkpoint, and the
test-split table. The issue's budget on 2 CPU cores: full within 15 minutes, --quick within 3.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from vireid.demo import run_demo, summary_lines

BUDGET_S = {"full": 15 * 60, "quick": 3 * 60}


def bench(name: str, out: Path, progress: bool) -> dict:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = run_demo(out, quick=name == "quick", progress=progress)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"\n=== vireid demo{' --quick' if name == 'quick' else ''}: wall {wall:.0f}s (budget {BUDGET_S[name]}s, "
          f"{'within' if wall <= BUDGET_S[name] else 'OVER'}), process CPU {cpu:.0f}s, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs ===")
    stages = {k: v for k, v in results["timings"].items() if "/" in k or k == "generate"}
    print("stages (s): " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()))
    for method, res in results["methods"].items():
        val = res["validation"] or {}
        print(f"{method}: selected epoch {res['selected_epoch']}, validation rank1 {val.get('rank1', float('nan')):.2f} "
              f"mAP {val.get('mAP', float('nan')):.2f}, train {res['train_images_per_s']:.0f} img/s, feature {res['feature']}")
    print("test split (SYSU-MM01 protocol, single-shot, 10 seeded trials, mean ± std %):")
    print("\n".join(summary_lines(results)))
    return {"wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("full", "quick"), help="run only this preset")
    parser.add_argument("--keep", help="folder to keep the demo outputs in (default: a temporary folder)")
    parser.add_argument("--progress", action="store_true", help="show the demo's progress bars")
    args = parser.parse_args()
    names = [args.only] if args.only else ["full", "quick"]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        for name in names:
            bench(name, base / f"demo_{name}", args.progress)


if __name__ == "__main__":
    main()
