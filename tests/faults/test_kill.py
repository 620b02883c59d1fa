"""kill -9 of real ``vireid`` processes: the run directory resumes (or starts afresh with a message), never
loads a half-written file, and the resumed run ends with the uninterrupted run's weights, bit for bit.

The killed commands run in their own processes (killer.py SIGKILLs them at the point a test names); the
runs that are not killed run in this process through the same CLI entry point (one torch thread either
way), which saves the ~4 s of CPU that starting torch costs each process.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from faultlib import (
    assert_same_weights,
    cli_env,
    log_records,
    model_state,
    run_vireid,
    train_args,
    vireid_cmd,
)

from vireid.cli.main import main

pytestmark = pytest.mark.slow

KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def reference(synth_sysu, tmp_path_factory) -> Path:
    """An uninterrupted run of the tiny recipe."""
    base = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIREID_CACHE_DIR", str(base / "cache"))
        assert main(train_args(synth_sysu, base / "run")) == 0
    return base / "run"


def assert_same_run(run: Path, reference: Path) -> None:
    """Same final weights (last.pt and model.pt), same log, nothing half-written or locked left behind."""
    assert_same_weights(model_state(run / "last.pt"), model_state(reference / "last.pt"))
    assert_same_weights(model_state(run / "model.pt"), model_state(reference / "model.pt"))
    assert log_records(run) == log_records(reference)
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in reference.iterdir())


def test_killed_at_every_stage_then_resumed_equals_the_uninterrupted_run(
    synth_sysu, reference, tmp_path, monkeypatch, capsys,
):
    """One run killed four times in a row (each --resume killed at the next stage), then resumed to the end."""
    run, env = tmp_path / "run", cli_env(tmp_path / "cache")

    def attempt(*kill: str) -> subprocess.CompletedProcess:
        return run_vireid(*train_args(synth_sysu, run, resume=True), kill=kill, env=env)

    # 1. during the decoded-image cache build, before anything is in the run directory
    proc = run_vireid(*train_args(synth_sysu, run), kill=("cache=5",), env=env)
    assert proc.returncode == KILLED
    assert not (run / "config.yaml").exists() and not list((tmp_path / "cache").glob("*.json"))
    # 2. --resume starts afresh (no checkpoint yet); killed inside torch.save of epoch 2's last.pt
    proc = attempt("save=last.pt:2:4096")
    assert proc.returncode == KILLED
    assert "does not exist (the run stopped before its first checkpoint): starting afresh" in proc.stderr
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 1  # epoch 1's, whole
    half = [p for p in run.iterdir() if p.name.startswith(".last.pt.") and p.name.endswith(".tmp")]
    assert len(half) == 1 and half[0].stat().st_size == 4096  # torch's writer was mid-file
    # 3. resumes from epoch 1's last.pt (not the half-written file); killed during epoch 2's validation
    proc = attempt("evalimage=3")
    assert proc.returncode == KILLED and "starting afresh" not in proc.stderr
    assert not half[0].exists()  # the killed writer's temporary was cleared under the lock
    # 4. killed in the middle of an epoch, after a step
    assert attempt("step=2").returncode == KILLED
    # 5. to the end
    monkeypatch.setenv("VIREID_CACHE_DIR", str(tmp_path / "cache"))
    assert main(train_args(synth_sysu, run, resume=True)) == 0, capsys.readouterr().err
    assert_same_run(run, reference)


def test_killed_extraction_keeps_the_previous_features(reference, synth_sysu, tmp_path):
    out = tmp_path / "feats.npz"
    args = ["extract", "--checkpoint", str(reference), "--dataset", "sysu", "--root", str(synth_sysu),
            "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    before = out.read_bytes()
    assert run_vireid(*args, kill=("evalimage=7",)).returncode == KILLED
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["feats.npz"]
    out.unlink()
    assert run_vireid(*args, kill=("evalimage=7",)).returncode == KILLED
    assert not list(tmp_path.iterdir())  # no half-written features file
    assert main(args) == 0
    assert out.read_bytes() == before


def test_killed_synth_leaves_no_dataset_and_runs_again(tmp_path):
    out, ref = tmp_path / "synth", tmp_path / "ref"
    opts = ["--ids", "4", "--height", "32", "--width", "16", "--seed", "3"]
    assert run_vireid("synth", "--out", str(out), *opts, kill=("synth=10",)).returncode == KILLED
    assert not out.exists()  # generated in a hidden folder beside it, renamed into place only when complete
    assert main(["synth", "--out", str(out), *opts]) == 0
    assert main(["synth", "--out", str(ref), *opts]) == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert all((out / f).read_bytes() == (ref / f).read_bytes() for f in files if f.name != "synthvi.json")


def test_a_second_writer_is_refused_while_the_first_lives(synth_sysu, reference, tmp_path, monkeypatch, capsys):
    run, go = tmp_path / "run", tmp_path / "go"
    monkeypatch.setenv("VIREID_CACHE_DIR", str(tmp_path / "cache"))
    first = subprocess.Popen(vireid_cmd(*train_args(synth_sysu, run), kill=(f"hold=step:1:{go}",)),
                             env=cli_env(tmp_path / "cache"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
        while not (run / "metrics.jsonl").is_file() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, first.stderr.read()
        capsys.readouterr()
        for resume in (False, True):
            assert main(train_args(synth_sysu, run, resume=resume)) == 2
            err = capsys.readouterr().err.strip()
            assert "\n" not in err and f"{run} is in use by another vireid process (pid {first.pid})" in err
        first.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process
        assert first.wait(timeout=60) == KILLED
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=60)
    assert main(train_args(synth_sysu, run, resume=True)) == 0
    assert "starting afresh" in capsys.readouterr().err
    assert_same_run(run, reference)
