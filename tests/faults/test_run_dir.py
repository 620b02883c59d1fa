"""Run-directory rules under faults: the one-writer lock, --resume of a run without a checkpoint, and an
--overwrite that a kill interrupts."""

from __future__ import annotations

import os

import pytest

from vireid.training.run_dir import (
    CONFIG_FILE,
    LOCK_FILE,
    RunDirError,
    RunDirLock,
    prepare_run_dir,
    resumable,
)


def test_the_lock_refuses_a_second_holder_and_is_released(tmp_path):
    run = tmp_path / "run"
    first = RunDirLock(run).acquire()
    assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())
    with pytest.raises(RunDirError, match=rf"{run} is in use by another vireid process \(pid {os.getpid()}\)"):
        RunDirLock(run).acquire()  # flock locks belong to an open file: a second open conflicts, even here
    first.release()
    assert not run.exists()  # the lock alone had created the folder: nothing is left behind
    with RunDirLock(run):
        (run / CONFIG_FILE).write_text("x\n")
    assert sorted(p.name for p in run.iterdir()) == [CONFIG_FILE]  # a used folder stays, without the lock
    with RunDirLock(run), pytest.raises(RunDirError, match="in use"):
        RunDirLock(run).acquire()


def test_a_stale_lock_file_of_a_killed_holder_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("999999\n")  # what a killed process leaves: the file, not the lock
    with RunDirLock(run):
        assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_a_file_in_place_of_the_run_directory_is_refused(tmp_path):
    (tmp_path / "run").write_text("mine")
    with pytest.raises(RunDirError, match="exists and is not a directory"):
        RunDirLock(tmp_path / "run").acquire()
    assert (tmp_path / "run").read_text() == "mine"


def test_resume_without_a_checkpoint_starts_afresh_only_in_a_run_directory(tmp_path, capsys):
    assert resumable(tmp_path / "missing") is False
    assert "does not exist (the run stopped before its first checkpoint): starting afresh" in capsys.readouterr().err
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / LOCK_FILE).write_text("1\n")
    assert resumable(tmp_path / "locked") is False  # only the lock of a run killed while it started
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / CONFIG_FILE).write_text("x\n")
    assert resumable(ours) is False
    (ours / "last.pt").write_bytes(b"x")
    assert resumable(ours) is True
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="holds no last.pt and is not a vireid run directory"):
        resumable(theirs)
    assert (theirs / "notes.txt").read_text() == "mine"


def test_overwrite_keeps_the_lock_and_removes_the_config_last(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("a.txt", CONFIG_FILE, "z.txt", LOCK_FILE):
        (run / name).write_text("old\n")
    (run / "tensorboard").mkdir()
    removed = []
    real_unlink = type(run).unlink

    def unlink(self, missing_ok=False):
        removed.append(self.name)
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(type(run), "unlink", unlink)
    prepare_run_dir(run, resume=False, overwrite=True)
    assert removed[-1] == CONFIG_FILE  # a kill halfway leaves a folder still recognised as a run directory
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]


def test_resume_clears_the_temporaries_of_killed_writers(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"whole")
    (run / ".last.pt.abc123.pt.tmp").write_bytes(b"half")
    (run / ".model.pt.def456.pt.tmp").write_bytes(b"half")
    prepare_run_dir(run, resume=True, overwrite=False)
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]
