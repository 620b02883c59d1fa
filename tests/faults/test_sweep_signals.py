"""A ``vireid sweep --jobs 2`` stopped by SIGTERM (a scheduler's preemption, ``kill``) or killed outright:
nothing queued starts, each running training stops after its step with a resumable ``last.pt``, and no
worker trains on as an orphan."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from faultlib import TINY, cli_env, vireid_cmd

from vireid.training import checkpoint as ckpt

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie left for a non-reaping init counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def start_sweep(root: Path, out: Path, err: Path, procs: list) -> tuple[subprocess.Popen, list[int]]:
    """Three seeds on two workers, long enough to be stopped; returns the sweep and the two workers' pids
    once both are training (their run directories' locks name them, and each has logged a step)."""
    long = [*TINY, "train.epochs=500", "schedule.milestones=[400]", "train.eval_every=100"]
    cmd = vireid_cmd("sweep", "--configs", "sysu_vd", *long, "--seeds", "0", "1", "2", "--jobs", "2",
                     "--quiet", "--data-root", str(root), "--out", str(out))
    with err.open("w") as fh:
        proc = subprocess.Popen(cmd, env=cli_env(out.parent / "cache"), stdout=subprocess.DEVNULL, stderr=fh)
    procs.append(proc)
    runs = [out / "runs" / "sysu_vd" / f"seed_{s}" for s in (0, 1)]

    def training() -> bool:
        assert proc.poll() is None, err.read_text()
        return all((r / "metrics.jsonl").is_file() and '"kind": "step"' in (r / "metrics.jsonl").read_text()
                   for r in runs)

    wait_for(training, 240, "both workers to train")
    return proc, [int((r / ".lock").read_text().strip()) for r in runs]


def test_sigterm_stops_the_sweep_and_its_workers_after_their_step(synth_sysu, tmp_path, procs):
    out, err = tmp_path / "sweep", tmp_path / "stderr.txt"
    proc, workers = start_sweep(synth_sysu, out, err, procs)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    text = err.read_text()
    assert text.count("SIGTERM: stopping after this step") == 2 and text.count("interrupted: saved") == 2, text
    assert "Traceback" not in text, text
    assert not any(alive(pid) for pid in workers)
    assert not (out / "runs" / "sysu_vd" / "seed_2").exists()  # queued, never started
    for s in (0, 1):
        run = out / "runs" / "sysu_vd" / f"seed_{s}"
        saved = ckpt.load_checkpoint(run / ckpt.LAST)
        assert saved["epoch"] + saved["step"] > 0 and not (run / "result.json").exists()  # at a step, unfinished


def test_killed_sweep_leaves_no_orphan_training(synth_sysu, tmp_path, procs):
    out, err = tmp_path / "sweep", tmp_path / "stderr.txt"
    proc, workers = start_sweep(synth_sysu, out, err, procs)
    proc.kill()
    proc.wait(timeout=60)
    wait_for(lambda: not any(alive(pid) for pid in workers), 120, "the orphaned workers to stop")
    text = err.read_text()
    assert text.count("SIGTERM: stopping after this step") == 2 and text.count("interrupted: saved") == 2, text
    for s in (0, 1):
        assert (out / "runs" / "sysu_vd" / f"seed_{s}" / ckpt.LAST).is_file()
