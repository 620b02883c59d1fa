"""Launching torchrun jobs for the distributed tests (a helper module, not a test module: the test modules
import it; tests/distributed is on sys.path in pytest's prepend import mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKERS = Path(__file__).with_name("dist_workers.py")
JOB_LIMIT_S = 300  # a guard only: a hung job fails the test instead of hanging the suite


def torchrun_env() -> dict[str, str]:
    """This environment without a launcher's variables, one torch thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def run_torchrun(
    scenario: str, out: Path, timeout_s: float, nproc: int = 2, monitor_interval_s: float | None = None,
) -> subprocess.CompletedProcess:
    """``torchrun --standalone`` (a free port is chosen by the rendezvous) of a dist_workers.py scenario;
    ``timeout_s`` is the job's own collective timeout. ``monitor_interval_s``: how often torchrun looks at
    its workers (it stops the others as soon as it sees one fail)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    if monitor_interval_s is not None:
        cmd.append(f"--monitor-interval={monitor_interval_s}")
    cmd += [str(WORKERS), scenario, str(out), str(timeout_s)]
    return subprocess.run(cmd, env=torchrun_env(), capture_output=True, text=True, timeout=JOB_LIMIT_S)
