"""Helpers of the fault-injection tests: the tiny recipe, real ``vireid`` subprocesses, weight checks.

The recipe is tiny (12 identities at 32x16, MobileNet, 3 steps per epoch) so a subprocess ``vireid train``
takes a few seconds; the decoded-image cache is on (so its build can be interrupted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

# 12 identities at 32x16: 7 train, 2 validation, 3 test ids; P=2 ids x (2 V + 2 I) -> 3 steps per epoch.
TINY = [
    "data.height=32", "data.width=16", "data.ids_per_batch=2", "data.instances=2", "data.num_workers=0",
    "data.val_split=official", "data.cache=true",
    "model.backbone=mobilenet_v3_small", "model.pretrained=none", "model.share_deep_stages=3", "model.z_dim=16",
    "model.bottleneck_hidden=[32]",
    "schedule.warmup_epochs=1", "schedule.milestones=[2]",
    "train.epochs=2", "train.select=val", "train.eval_every=1", "train.log_every=1", "train.progress=false",
    "train.tensorboard=false", "train.device=cpu", "test.batch_size=64",
]


def cli_env(cache_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a ``vireid`` subprocess: one torch thread, its own cache folder."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    if cache_dir is not None:
        env["VIREID_CACHE_DIR"] = str(cache_dir)
    env.update(extra)
    return env


KILLER = Path(__file__).with_name("killer.py")


def vireid_cmd(*args: str, kill: tuple[str, ...] = ()) -> list[str]:
    """``python -m vireid ARGS``, or with ``kill`` specs the same command under killer.py (which SIGKILLs
    it at the point the specs name)."""
    if kill:
        return [sys.executable, str(KILLER), *kill, "--", *args]
    return [sys.executable, "-m", "vireid", *args]


def run_vireid(
    *args: str, kill: tuple[str, ...] = (), env: dict[str, str] | None = None, timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run ``vireid ARGS`` to the end or to its injected kill (the timeout only guards against a hang)."""
    return subprocess.run(vireid_cmd(*args, kill=kill), env=env if env is not None else cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed (asserting it is one line, without a traceback)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def train_args(root: Path, out: Path, *extra: str, resume: bool = False) -> list[str]:
    """``vireid train`` of the tiny recipe on ``root`` into ``out``."""
    return ["train", "--config", "sysu_vd", *TINY, *extra, "--data-root", str(root), "--output", str(out),
            *(["--resume"] if resume else [])]


def log_records(run_dir: Path) -> list[tuple]:
    """The metrics log without its timings: (kind, epoch, step, loss, validation)."""
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((r["kind"], r["epoch"], r.get("step"), r["loss"], r.get("val")))
    return out


def model_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """Bit-identical state dicts (same keys, equal tensors)."""
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:3]}"
