"""Checkpoints: atomic writes (a failed write keeps the previous file), checks on load, RNG state."""

from __future__ import annotations

import errno
import random

import numpy as np
import pytest
import torch
from torch import nn

from vireid.config import Config
from vireid.errors import CheckpointError
from vireid.training import checkpoint as ckpt


def _state(value: float) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "config": Config().to_dict(), "num_classes": 2, "epoch": 1}


def test_round_trip(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _state(1.0))
    state = ckpt.load_checkpoint(path)
    assert torch.equal(state["model"]["w"], torch.ones(3)) and state["format"] == ckpt.CHECKPOINT_FORMAT


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _state(1.0))
    before = path.read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save({"partial": True}, f)  # something reached the disk, then the device filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="No space left on device; the previous checkpoint is intact"):
        ckpt.save_checkpoint(path, _state(2.0))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_corrupt_or_foreign_files_are_checkpoint_errors(tmp_path, content):
    path = tmp_path / "x.pt"
    if content is None:
        torch.save({"weights": torch.zeros(1)}, path)  # a torch file, but not ours
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="x.pt"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_another_configuration_names_the_keys_that_differ():
    saved = Config().to_dict()
    now = Config.from_dict({"model": {"name": "ib"}, "optim": {"lr": 0.1}, "train": {"epochs": 9}}).to_dict()
    with pytest.raises(CheckpointError) as err:
        ckpt.check_same_config(saved, now, "run/last.pt")
    msg = str(err.value)
    assert "model.name (checkpoint 'vd', now 'ib')" in msg and "optim.lr" in msg
    assert "train.epochs" not in msg  # more epochs may be asked of a resumed run
    ckpt.check_same_config(saved, Config.from_dict({"train": {"epochs": 9}}).to_dict(), "x")


def test_weights_of_another_model_name_the_parameters():
    small, other = nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(CheckpointError, match=r"missing: 0\.weight.*unexpected: weight"):
        ckpt.load_model_state(other, small.state_dict(), "c.pt")
    with pytest.raises(CheckpointError, match=r"shape differs: weight \(2, 3\) vs \(4, 3\)"):
        ckpt.load_model_state(nn.Linear(3, 4), small.state_dict(), "c.pt")


def test_rng_state_restores_every_generator():
    state = ckpt.rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_run_directory_resolves_to_the_selected_model(tmp_path):
    ckpt.save_checkpoint(tmp_path / ckpt.LAST, _state(1.0))
    assert ckpt.resolve_checkpoint(tmp_path) == tmp_path / ckpt.LAST
    ckpt.save_checkpoint(tmp_path / ckpt.MODEL, _state(1.0))
    assert ckpt.resolve_checkpoint(tmp_path) == tmp_path / ckpt.MODEL
    with pytest.raises(CheckpointError, match="holds no model.pt"):
        ckpt.resolve_checkpoint(tmp_path / "sub" if (tmp_path / "sub").mkdir() is None else tmp_path)


def test_regdb_trial_checkpoints_from_a_run_directory_or_a_pattern(tmp_path):
    from vireid.training.evaluate import regdb_trial_checkpoints

    for t in (1, 2, 10):
        (tmp_path / f"trial_{t}").mkdir()
        (tmp_path / f"trial_{t}" / "model.pt").write_bytes(b"")
    (tmp_path / "trial_x").mkdir()
    assert regdb_trial_checkpoints(tmp_path) == {t: tmp_path / f"trial_{t}" for t in (1, 2, 10)}
    pattern = str(tmp_path / "trial_{trial}" / "model.pt")
    assert regdb_trial_checkpoints(pattern) == {t: tmp_path / f"trial_{t}" / "model.pt" for t in (1, 2, 10)}
    with pytest.raises(CheckpointError, match="no per-trial checkpoints"):
        regdb_trial_checkpoints(str(tmp_path / "none_{trial}.pt"))
    with pytest.raises(CheckpointError, match="trial_<t>"):
        regdb_trial_checkpoints(tmp_path / "trial_1" / "model.pt")
