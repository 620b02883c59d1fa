"""Writing SynthVI to disk in the SYSU-MM01 or the RegDB layout (shared/docs/protocols.md §1, §3).

The dataset is built in a hidden temporary folder beside the target and renamed into place at the
end, so an interrupted run never leaves a folder that looks like a complete dataset.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from vireid.errors import DatasetError
from vireid.utils.io import check_output_dir

from .attributes import STREAM_IMAGE, STREAM_SPLIT, Identity, make_rng, sample_identity
from .cameras import REGDB_CAMERAS, SYSU_CAMERAS, Camera, make_camera
from .config import SynthConfig
from .render import render, sample_pose

MARKER = "synthvi.json"
SYSU_VISIBLE, SYSU_INFRARED = (1, 2, 4, 5), (3, 6)

Progress = Callable[[int], None]


def plan_sysu(cfg: SynthConfig) -> dict[int, dict[int, int]]:
    """Images per camera of every id (1..num_ids): {pid: {cam: count}}, cameras with no image left out.

    Each camera is kept with ``camera_presence``; at least one visible and one infrared camera always
    is, so every id is a valid cross-modal id (as SYSU-MM01's ``available_id``).
    """
    plan = {}
    for pid in range(1, cfg.num_ids + 1):
        rng = make_rng(cfg.seed, STREAM_SPLIT, 0, pid)
        counts = {}
        for group in (SYSU_VISIBLE, SYSU_INFRARED):
            keep = rng.random(len(group)) < cfg.camera_presence
            if not keep.any():
                keep[rng.integers(len(group))] = True
            n = rng.integers(cfg.min_images, cfg.max_images + 1, size=len(group))
            counts.update({cam: int(k) for cam, k, on in zip(group, n, keep, strict=True) if on})
        plan[pid] = dict(sorted(counts.items()))
    return plan


def split_sysu(cfg: SynthConfig) -> dict[str, list[int]]:
    """Disjoint train / val / test id lists (sorted), about train_fraction / val_fraction / rest."""
    ids = make_rng(cfg.seed, STREAM_SPLIT, 1).permutation(np.arange(1, cfg.num_ids + 1))
    n_train = max(1, int(round(cfg.train_fraction * cfg.num_ids)))
    n_val = max(1, int(round(cfg.val_fraction * cfg.num_ids))) if cfg.val_fraction > 0 else 0
    n_train = min(n_train, cfg.num_ids - n_val - 1)
    parts = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}
    return {k: sorted(int(i) for i in v) for k, v in parts.items()}


def count_images(cfg: SynthConfig) -> int:
    """How many images ``cfg`` generates."""
    if cfg.layout == "regdb":
        return 2 * cfg.regdb_images * cfg.num_ids
    return sum(sum(c.values()) for c in plan_sysu(cfg).values())


def render_sysu_image(cfg: SynthConfig, ident: Identity, camera: Camera, index: int) -> np.ndarray:
    """Image ``index`` (1-based) of ``ident`` in a SYSU-layout camera; a pure function of its keys."""
    rng = make_rng(cfg.seed, STREAM_IMAGE, ident.pid, camera.spec.cam, index)
    pose = sample_pose(rng, cfg.height, cfg.width, cfg.nuisance, camera.background.shape[:2])
    return render(ident, camera, pose, rng, cfg.nuisance, cfg.height, cfg.width)


def _save(array: np.ndarray, path: Path, fmt: str, quality: int) -> None:
    img = Image.fromarray(array, "RGB")
    if fmt == "JPEG":
        img.save(path, fmt, quality=quality)
    else:
        img.save(path, fmt)


def _write_ids(path: Path, ids: list[int]) -> None:
    path.write_text(",".join(str(i) for i in ids) + "\n", encoding="utf-8")
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"id": np.asarray([ids], dtype=np.uint16)})
    data = buf.getvalue()
    # The 116-byte text header carries the creation time; a fixed one keeps the tree byte-deterministic.
    header = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: vireid SynthVI".ljust(116)
    path.with_suffix(".mat").write_bytes(header + data[116:])


def write_sysu(cfg: SynthConfig, root: Path, progress: Progress) -> dict:
    """Write the SYSU-MM01 layout under ``root``; returns a summary for the marker file."""
    plan = plan_sysu(cfg)
    cameras = {c: make_camera(cfg.seed, spec, cfg.height, cfg.width, cfg.nuisance) for c, spec in SYSU_CAMERAS.items()}
    for pid, counts in plan.items():
        ident = sample_identity(cfg.seed, pid)
        for cam, n in counts.items():
            folder = root / f"cam{cam}" / f"{pid:04d}"
            folder.mkdir(parents=True)
            for k in range(1, n + 1):
                _save(render_sysu_image(cfg, ident, cameras[cam], k), folder / f"{k:04d}.jpg", "JPEG",
                      cfg.jpeg_quality)
                progress(1)
    for cam in SYSU_CAMERAS:  # every camera folder exists, even if (tiny datasets) no id uses it
        (root / f"cam{cam}").mkdir(exist_ok=True)
    splits = split_sysu(cfg)
    exp = root / "exp"
    exp.mkdir()
    for name, ids in splits.items():
        _write_ids(exp / f"{name}_id.txt", ids)
    _write_ids(exp / "available_id.txt", sorted(plan))
    return {
        "images": sum(sum(c.values()) for c in plan.values()),
        "images_per_camera": {str(c): sum(p.get(c, 0) for p in plan.values()) for c in SYSU_CAMERAS},
        "ids_per_camera": {str(c): sum(c in p for p in plan.values()) for c in SYSU_CAMERAS},
        "splits": {k: len(v) for k, v in splits.items()},
    }


def regdb_name(ident: Identity, view: str, modality: str, frame: int) -> str:
    """RegDB file name: ``<gender>_<front|back>_<v|t>_<5-digit frame>_<id>.bmp``."""
    gender = "female" if ident.shape.female else "male"
    return f"{gender}_{view}_{modality}_{frame:05d}_{ident.pid}.bmp"


def write_regdb(cfg: SynthConfig, root: Path, progress: Progress) -> dict:
    """Write the RegDB layout under ``root`` (co-registered visible/thermal frames, idx files)."""
    vis_cam = make_camera(cfg.seed, REGDB_CAMERAS[1], cfg.height, cfg.width, cfg.nuisance)
    ir_cam = make_camera(cfg.seed, REGDB_CAMERAS[2], cfg.height, cfg.width, cfg.nuisance)
    files: dict[int, tuple[list[str], list[str]]] = {}
    for pid in range(1, cfg.num_ids + 1):
        ident = sample_identity(cfg.seed, pid)
        plan_rng = make_rng(cfg.seed, STREAM_SPLIT, 0, pid)
        frames = plan_rng.integers(0, 99999 - 60 * cfg.regdb_images) + np.cumsum(
            plan_rng.integers(1, 60, size=cfg.regdb_images))
        vdir, tdir = root / "Visible" / str(pid), root / "Thermal" / str(pid)
        vdir.mkdir(parents=True)
        tdir.mkdir(parents=True)
        vis, ir = [], []
        for k, frame in enumerate(frames.tolist()):
            geo = make_rng(cfg.seed, STREAM_IMAGE, pid, 0, k)
            pose = sample_pose(geo, cfg.height, cfg.width, cfg.nuisance, vis_cam.background.shape[:2],
                               views=("front", "back"))
            for cam, folder, mod, names in ((vis_cam, vdir, "v", vis), (ir_cam, tdir, "t", ir)):
                rng = make_rng(cfg.seed, STREAM_IMAGE, pid, cam.spec.cam, k)
                name = regdb_name(ident, pose.view, mod, frame)
                _save(render(ident, cam, pose, rng, cfg.nuisance, cfg.height, cfg.width), folder / name, "BMP", 0)
                names.append(f"{folder.parent.name}/{pid}/{name}")
                progress(1)
        files[pid] = (vis, ir)
    idx = root / "idx"
    idx.mkdir()
    half = cfg.num_ids // 2
    for trial in range(1, cfg.regdb_trials + 1):
        rng = make_rng(cfg.seed, STREAM_SPLIT, 2, trial)
        ids = rng.permutation(np.arange(1, cfg.num_ids + 1))
        for split, members in (("train", ids[:half]), ("test", ids[half:])):
            labels = rng.permutation(len(members))
            for m, modality in enumerate(("visible", "thermal")):
                lines = [f"{path} {label}" for pid, label in zip(members.tolist(), labels.tolist(), strict=True)
                         for path in files[pid][m]]
                (idx / f"{split}_{modality}_{trial}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"images": 2 * cfg.regdb_images * cfg.num_ids, "train_ids": half, "test_ids": cfg.num_ids - half}


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse a target that is a file, or a non-empty folder unless ``overwrite`` and it holds SynthVI."""
    check_output_dir(out, overwrite=overwrite, ours=lambda p: (p / MARKER).is_file(), what="output directory",
                     kind=f"a SynthVI folder (no {MARKER})", error=DatasetError)


def write_dataset(cfg: SynthConfig, out: Path, overwrite: bool, progress: Progress) -> Path:
    """Generate into a temporary sibling folder, then move it to ``out`` (replacing it if allowed)."""
    check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a dataset folder is readable like any other
    try:
        writer = write_regdb if cfg.layout == "regdb" else write_sysu
        summary = writer(cfg, tmp, progress)
        (tmp / MARKER).write_text(json.dumps({"generator": "SynthVI", "config": cfg.to_dict(), **summary},
                                             indent=2) + "\n", encoding="utf-8")
        check_target(out, overwrite)
        old = None
        if out.is_dir():
            if any(out.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                os.replace(out, old)
            else:
                out.rmdir()
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
