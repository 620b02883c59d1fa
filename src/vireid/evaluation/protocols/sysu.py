"""SYSU-MM01 evaluation protocol (Wu et al. 2017), read from the dataset's original layout.

Query: every infrared image (cams 3 and 6) of the test ids; it is fixed across trials.
Gallery, per trial: ``shots`` visible images per (test id, camera) from cams 1, 2, 4, 5 (``all``)
or 1, 2 (``indoor``). Sampling:

- ``official``: the rows of the official ``rand_perm_cam.mat`` (trial t uses row t, the first
  ``shots`` indices, which refer to the sorted file order of the ``camC/PPPP`` folder), exactly as
  the official MATLAB code. Gallery order: camera, then test id, then permutation order.
- ``seeded``: the AGW-family sampling (``process_gallery_sysu``): ``random.seed(trial)`` for trial
  0..9, ids sorted, cameras in order, ``random.choice`` over the folder's sorted images; gallery
  order: id, then camera. For ``shots > 1`` (not defined by AGW) the same loop draws
  ``random.sample(images, min(shots, n))`` instead of ``random.choice``.

Trials are numbered 1..10 in the result; seeded trial t uses ``random.seed(t - 1)`` (AGW's 0..9).
Scoring: stable sort, cam3 probes skip cam2, CMC over de-duplicated identities, AP/INP over the
whole filtered ranking (see ``vireid.evaluation.metrics``).
"""

from __future__ import annotations

import os
import random
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io
import torch

from vireid.data.records import ImageRecord
from vireid.data.sysu import (
    CAMERA_MODALITY,
    INDOOR_CAMERAS,
    INFRARED_CAMERAS,
    VISIBLE_CAMERAS,
    check_sysu_root,
    index_images,
    read_split_ids,
    test_records,
)
from vireid.errors import DatasetError
from vireid.features.store import FeatureSet

from ..result import ProtocolResult
from .common import euclidean, labels, record_features, score_trial

MODES = {"all": VISIBLE_CAMERAS, "indoor": INDOOR_CAMERAS}
SAMPLINGS = ("official", "seeded")
NUM_TRIALS = 10


def sysu_test_records(root: str | os.PathLike) -> list[ImageRecord]:
    """Every image the protocol may need (``vireid.data.sysu.test_records``)."""
    return test_records(root)


def _records(index: dict[tuple[int, int], list[str]]) -> list[ImageRecord]:
    return [
        ImageRecord(path=p, pid=pid, camera=cam, modality=CAMERA_MODALITY[cam])
        for (cam, pid), paths in sorted(index.items())
        for p in paths
    ]


def load_rand_perm_cam() -> list[list[np.ndarray]]:
    """The official gallery permutations: ``perm[cam - 1][pid - 1]`` is a 10 x n array of 1-based indices."""
    ref = resources.files("vireid") / "resources" / "sysu-mm01" / "rand_perm_cam.mat"
    with resources.as_file(ref) as path:
        cells = scipy.io.loadmat(str(path))["rand_perm_cam"]
    return [[np.asarray(c).reshape(NUM_TRIALS, -1) for c in cells[cam, 0].ravel()] for cam in range(6)]


def check_official_fit(
    root: str | Path, ids: list[int], cameras: tuple[int, ...], index: dict[tuple[int, int], list[str]]
) -> list[list[np.ndarray]]:
    """Raise ``DatasetError`` unless ``rand_perm_cam.mat`` has exactly the tree's image count for every
    (camera, id) folder; return the permutations."""
    perm = load_rand_perm_cam()
    mismatches = []
    for cam in cameras:
        for pid in ids:
            n_files = len(index.get((cam, pid), []))
            table = perm[cam - 1]
            n_perm = table[pid - 1].shape[1] if 1 <= pid <= len(table) else None
            if n_perm != n_files:
                have = "no entry" if n_perm is None else f"{n_perm} images"
                mismatches.append(f"cam{cam}/{pid:04d} has {n_files} images, rand_perm_cam.mat {have}")
    if mismatches:
        raise DatasetError(
            f"{root}: the official gallery permutations do not fit this tree ({len(mismatches)} camera/id "
            f"folders differ, e.g. {mismatches[0]}); use --sampling seeded"
        )
    return perm


def official_galleries(
    root: str | Path, ids: list[int], cameras: tuple[int, ...], index: dict[tuple[int, int], list[str]], shots: int
) -> list[list[str]]:
    """The 10 official galleries (lists of relative paths), checked against the tree's image counts."""
    perm = check_official_fit(root, ids, cameras, index)
    galleries = []
    for t in range(NUM_TRIALS):
        gallery = []
        for cam in cameras:
            for pid in ids:
                paths = index.get((cam, pid), [])
                gallery += [paths[int(i) - 1] for i in perm[cam - 1][pid - 1][t, :shots]]
        galleries.append(gallery)
    return galleries


def seeded_galleries(
    ids: list[int], cameras: tuple[int, ...], index: dict[tuple[int, int], list[str]], shots: int
) -> list[list[str]]:
    """The 10 AGW-style seeded galleries (``random.seed(trial)``, trial 0..9)."""
    galleries = []
    for t in range(NUM_TRIALS):
        rng = random.Random(t)
        gallery = []
        for pid in sorted(ids):
            for cam in cameras:
                paths = index.get((cam, pid))
                if not paths:
                    continue
                if shots == 1:
                    gallery.append(rng.choice(paths))
                else:
                    gallery += rng.sample(paths, min(shots, len(paths)))
        galleries.append(gallery)
    return galleries


def evaluate_sysu(
    root: str | os.PathLike,
    features: FeatureSet,
    *,
    mode: str = "all",
    shots: int = 1,
    sampling: str = "official",
    normalize: bool = True,
    rerank: bool = False,
    device: torch.device | str | None = None,
) -> ProtocolResult:
    """Run the 10-trial SYSU-MM01 protocol on saved features; see the module docstring."""
    root, ids, ir_index, index = _read_test_tree(root, mode, shots, sampling)
    return evaluate_sysu_index(
        ids, ir_index, index, features, mode=mode, shots=shots, sampling=sampling, normalize=normalize,
        rerank=rerank, device=device, source=str(root),
    )


def check_sysu_protocol(
    root: str | os.PathLike, *, mode: str = "all", shots: int = 1, sampling: str = "official"
) -> None:
    """Raise ``DatasetError`` if ``evaluate_sysu`` with these settings would refuse this tree (bad option,
    layout, no test images, official permutations that do not fit). Cheap: lists files, reads no image;
    call it before extracting features."""
    root, ids, _, index = _read_test_tree(root, mode, shots, sampling)
    if sampling == "official":
        check_official_fit(root, ids, MODES[mode], index)


def _check_options(mode: str, shots: int, sampling: str) -> None:
    if mode not in MODES:
        raise DatasetError(f"unknown SYSU-MM01 mode {mode!r}: expected all or indoor")
    if sampling not in SAMPLINGS:
        raise DatasetError(f"unknown gallery sampling {sampling!r}: expected official or seeded")
    if shots < 1:
        raise DatasetError(f"shots must be >= 1, got {shots}")


def _read_test_tree(
    root: str | os.PathLike, mode: str, shots: int, sampling: str
) -> tuple[Path, list[int], dict[tuple[int, int], list[str]], dict[tuple[int, int], list[str]]]:
    """Check the options and the layout; return (root, test ids, query index, gallery-camera index)."""
    _check_options(mode, shots, sampling)
    root = check_sysu_root(root)
    ids = read_split_ids(root, "test")
    cameras = MODES[mode]
    ir_index = index_images(root, ids, INFRARED_CAMERAS)
    if not ir_index:
        raise DatasetError(f"{root}: no infrared test images (cam3, cam6) for the {len(ids)} test ids")
    index = index_images(root, ids, cameras)
    if not index:
        raise DatasetError(f"{root}: no visible test images in cams {', '.join(map(str, cameras))}")
    return root, ids, ir_index, index


def evaluate_sysu_index(
    ids: list[int],
    ir_index: dict[tuple[int, int], list[str]],
    index: dict[tuple[int, int], list[str]],
    features: FeatureSet,
    *,
    mode: str = "all",
    shots: int = 1,
    sampling: str = "official",
    normalize: bool = True,
    rerank: bool = False,
    device: torch.device | str | None = None,
    source: str = "SYSU-MM01",
) -> ProtocolResult:
    """The protocol on an already-read tree: ``ir_index``/``index`` map (camera, id) to sorted paths
    of the query and gallery cameras (as ``vireid.data.sysu.index_images`` returns them)."""
    _check_options(mode, shots, sampling)
    cameras = MODES[mode]
    queries = _records(ir_index)
    if sampling == "official":
        galleries = official_galleries(source, ids, cameras, index, shots)
    else:
        galleries = seeded_galleries(ids, cameras, index, shots)

    # One matrix product against the visible images any trial uses; each trial takes its columns.
    pool = _records(index)
    used = set().union(*galleries)
    pool = [r for r in pool if r.path in used]
    pool_pos = {r.path: i for i, r in enumerate(pool)}
    device = torch.device(device) if device is not None else torch.device("cpu")
    features.indices([r.path for r in queries + pool], "test images")  # every missing image in one message
    q = record_features(features, queries, "query images", normalize).to(device)
    g = record_features(features, pool, "gallery images", normalize).to(device)
    dist = euclidean(q, g)
    q_q = euclidean(q, q) if rerank else None
    g_g = euclidean(g, g) if rerank else None
    q_labels = labels(queries)
    pool_pids, pool_cams = labels(pool)
    per_trial = []
    for t, gallery_paths in enumerate(galleries, start=1):
        cols = np.array([pool_pos[p] for p in gallery_paths], dtype=np.int64)
        cols_t = torch.from_numpy(cols).to(device)
        blocks = (q_q, g_g[cols_t][:, cols_t]) if rerank else None
        per_trial.append(
            score_trial(
                t, dist[:, cols_t], q_labels, (pool_pids[cols], pool_cams[cols]), sysu_rules=True, rerank_blocks=blocks
            )
        )
    settings = {
        "mode": mode,
        "shots": shots,
        "sampling": sampling,
        "normalize": normalize,
        "rerank": rerank,
        "distance": "euclidean",
    }
    return ProtocolResult("SYSU-MM01", per_trial, settings)
