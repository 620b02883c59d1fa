"""Benchmark: the full-size SYSU-MM01 protocol on random features (run by hand, not a test).

The tree is not needed: the test ids and every (camera, id) image count come from the vendored
``rand_perm_cam.mat``, so the sizes are the real ones (3,803 queries; galleries of 301 / 3,010 for
all-search, 112 / 1,120 for indoor) and the official sampling applies. Features are random
(D = 2048). For each of the 4 settings x 10 trials it prints the protocol's time beside the floor:
the same trials' matrix products and stable sorts alone.

    python benchmarks/bench_evaluation.py [--dim 2048] [--threads N] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

import numpy as np
import torch

from vireid.data.sysu import read_mat_ids
from vireid.evaluation.metrics import _stable_order
from vireid.evaluation.protocols.sysu import (
    INFRARED_CAMERAS,
    MODES,
    evaluate_sysu_index,
    load_rand_perm_cam,
    official_galleries,
)
from vireid.features.store import FeatureSet


def synthetic_index(perm, ids: list[int], cameras) -> dict[tuple[int, int], list[str]]:
    index = {}
    for cam in cameras:
        for pid in ids:
            n = perm[cam - 1][pid - 1].shape[1]
            if n:
                index[(cam, pid)] = [f"cam{cam}/{pid:04d}/{i:04d}.jpg" for i in range(1, n + 1)]
    return index


def floor_time(q, g, pos, galleries, sort) -> float:
    """Seconds for each trial's matrix product and stable sort alone (features already normalised)."""
    total = 0.0
    for gallery in galleries:
        gt = g[torch.tensor([pos[p] for p in gallery])]
        t0 = time.perf_counter()
        sort(2.0 - 2.0 * (q @ gt.T))
        total += time.perf_counter() - t0
    return total


SORTS = {
    # The evaluator's own exact stable sort (unique integer keys, numpy's vectorised sort).
    "key": lambda d: _stable_order(d.numpy(), None),
    "torch": lambda d: torch.sort(d, dim=1, stable=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the fastest is kept (shared CPUs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = resources.files("vireid") / "resources" / "sysu-mm01" / "test_id.mat"
    with resources.as_file(ref) as p:
        ids = read_mat_ids(p)
    perm = load_rand_perm_cam()
    ir_index = synthetic_index(perm, ids, INFRARED_CAMERAS)
    vis_index = synthetic_index(perm, ids, MODES["all"])
    paths = [p for idx in (ir_index, vis_index) for v in idx.values() for p in v]
    rng = np.random.default_rng(0)
    features = FeatureSet(paths, rng.standard_normal((len(paths), args.dim), dtype=np.float32), "random")
    pos = {p: i for i, p in enumerate(paths)}
    feats = torch.nn.functional.normalize(torch.from_numpy(features.feats), dim=1)
    q = feats[[pos[p] for v in ir_index.values() for p in v]]

    print(f"SYSU-MM01 full-size protocol on random features: {len(q)} queries, D={args.dim}, "
          f"torch threads {torch.get_num_threads()}")
    print("floor = the trials' matrix products + stable sorts alone; 'key' sorts as the evaluator does,")
    print("'torch' with torch.sort(stable=True). ratio = protocol / key floor.")
    print(f"{'setting':<16} {'gallery':>7} {'protocol s':>10} {'floor key':>9} {'floor torch':>11} {'ratio':>6}")
    tot_p = tot_f = tot_t = 0.0
    for mode in ("all", "indoor"):
        index = {k: v for k, v in vis_index.items() if k[0] in MODES[mode]}
        for shots in (1, 10):
            galleries = official_galleries("benchmark", ids, MODES[mode], index, shots)
            t_floor = t_torch = t_proto = float("inf")
            for _ in range(args.repeat):  # interleaved, so a busy spell hits both alike
                t_floor = min(t_floor, floor_time(q, feats, pos, galleries, SORTS["key"]))
                t_torch = min(t_torch, floor_time(q, feats, pos, galleries, SORTS["torch"]))
                t0 = time.perf_counter()
                result = evaluate_sysu_index(ids, ir_index, index, features, mode=mode, shots=shots)
                t_proto = min(t_proto, time.perf_counter() - t0)
            tot_p, tot_f, tot_t = tot_p + t_proto, tot_f + t_floor, tot_t + t_torch
            print(f"{mode + ' ' + str(shots) + '-shot':<16} {result.num_gallery!s:>7} {t_proto:10.2f} "
                  f"{t_floor:9.2f} {t_torch:11.2f} {t_proto / t_floor:6.2f}   (R1 {result.mean['rank1']:.2f}%)")
    print(f"{'total':<16} {'':>7} {tot_p:10.2f} {tot_f:9.2f} {tot_t:11.2f} {tot_p / tot_f:6.2f}")


if __name__ == "__main__":
    main()
