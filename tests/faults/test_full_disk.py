"""A real full disk: a size-limited tmpfs mounted by the test (root only; skipped otherwise, saying why).
Every output fails with one line naming the file and exit status 2, and whatever was there before is
intact: checkpoints, the decoded-image cache, features, results.json, pictures, the gallery index and
the ONNX export."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from faultlib import cli_env, error_line, run_vireid, train_args

from vireid.cli.main import main

pytestmark = pytest.mark.slow

DISK_MB = 48


class SmallDisk:
    """A mounted tmpfs of ``DISK_MB`` MiB, and a filler file that takes what is left of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / ".filler"

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Fill the disk to the last block, then give ``leave`` bytes back."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 4096, 1):  # big writes, then the last pages
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        if leave:
            os.truncate(self.filler, max(0, self.filler.stat().st_size - leave))
        assert self.free() <= leave + 8192

    def empty(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root to mount a size-limited tmpfs (not running as root)")
    if shutil.which("mount") is None:
        pytest.skip("a real full disk needs the mount command (not found)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full-disk tests: {proc.stderr.strip() or proc.returncode}")
    try:
        yield SmallDisk(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def one_line_error(capsys, *needles: str) -> str:
    """The one error line (a progress bar may precede it on stderr), without a traceback."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the filler) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".filler"}


@pytest.fixture(scope="module")
def finished_run(synth_sysu, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIREID_CACHE_DIR", str(run.parent / "cache"))
        assert main(train_args(synth_sysu, run, "train.epochs=1", "schedule.milestones=[1]")) == 0
    return run


def test_checkpoints_on_a_full_disk(disk, synth_sysu, tmp_path, capsys, monkeypatch):
    """Training and --resume on a full disk: one line, the previous last.pt and model.pt intact and loadable,
    no temporary left; the same --resume finishes once there is room again."""
    monkeypatch.setenv("VIREID_CACHE_DIR", str(tmp_path / "cache"))
    run = disk.path / "run"
    assert main(train_args(synth_sysu, run, "train.epochs=1", "schedule.milestones=[1]")) == 0
    before = snapshot(run)
    disk.fill(leave=256 * 1024)  # room for the config and the log, not for a checkpoint
    capsys.readouterr()
    more = ("train.epochs=2", "schedule.milestones=[1]")
    assert main(train_args(synth_sysu, run, *more, resume=True)) == 2
    one_line_error(capsys, "could not write checkpoint", str(run), "No space left on device",
                   "the previous checkpoint is intact")
    after = snapshot(run)
    assert {k: after[k] for k in ("last.pt", "model.pt")} == {k: before[k] for k in ("last.pt", "model.pt")}
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 1
    assert not [name for name in after if name.endswith(".tmp")]
    disk.empty()
    assert main(train_args(synth_sysu, run, *more, resume=True)) == 0
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 2


def test_the_decoded_image_cache_on_a_full_disk(disk, synth_sysu, tmp_path):
    """In its own process: a memory-mapped write past the free space would be a SIGBUS, not an error."""
    env = cli_env(disk.path / "cache")
    small = ("data.height=16", "data.width=8")  # another cache (another key) that must survive
    assert run_vireid(*train_args(synth_sysu, tmp_path / "first", *small, "train.epochs=1",
                                  "schedule.milestones=[1]"), env=env).returncode == 0
    before = snapshot(disk.path / "cache")
    disk.fill(leave=64 * 1024)  # room for the array's header, not for its pixels
    proc = run_vireid(*train_args(synth_sysu, tmp_path / "second"), env=env)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "could not write the decoded-image cache" in line and "No space left on device" in line
    after = snapshot(disk.path / "cache")
    assert {k: after[k] for k in before} == before  # the other cache intact
    assert [k for k in after if k not in before and not k.endswith(".lock")] == []  # nothing half-written
    assert not (tmp_path / "second").exists()


def _evaluate(root: Path, features: Path, out: Path) -> list[str]:
    return ["evaluate", "--dataset", "sysu", "--root", str(root), "--features", str(features), "--mode", "all",
            "--shots", "1", "--sampling", "seeded", "--json", str(out)]


OUTPUTS = {
    # name: (file under the disk, command writing it, words of the error)
    "features": ("f.npz", lambda run, root, out: [
        "extract", "--checkpoint", str(run), "--dataset", "sysu", "--root", str(root), "--out", str(out),
        "--device", "cpu"], "could not write features file"),
    "results.json": ("results.json", lambda run, root, out: _evaluate(root, run.parent / "f.npz", out),
                     "could not write"),
    "picture": ("tsne.png", lambda run, root, out: [
        "tsne", "--checkpoint", str(run), "--root", str(root), "--out", str(out), "--device", "cpu"],
        "could not write"),
    "index": ("index.npz", lambda run, root, out: [
        "index", "--checkpoint", str(run), "--images", str(root / "cam1"), "--out", str(out), "--overwrite",
        "--device", "cpu"], "could not write"),
    "onnx": ("model.onnx", lambda run, root, out: [
        "export", "--checkpoint", str(run), "--format", "onnx", "--out", str(out), "--overwrite"],
        "could not write"),
}


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_outputs_on_a_full_disk(name, disk, finished_run, synth_sysu, capsys):
    filename, command, words = OUTPUTS[name]
    if name == "results.json":
        assert main(OUTPUTS["features"][1](finished_run, synth_sysu, finished_run.parent / "f.npz")) == 0
    out = disk.path / filename
    assert main(command(finished_run, synth_sysu, out)) == 0
    before = snapshot(disk.path)
    assert out.name in before
    disk.fill()
    capsys.readouterr()
    assert main(command(finished_run, synth_sysu, out)) == 2
    one_line_error(capsys, words, str(out), "No space left on device")
    assert snapshot(disk.path) == before  # the previous file (and its sidecar) intact, no temporary left
    if name in ("features", "index"):
        with np.load(out) as data:
            assert "feats" in data.files
