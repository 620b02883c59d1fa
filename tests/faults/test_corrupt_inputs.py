"""Corrupt inputs: truncated or foreign checkpoints, truncated features, features with inf or NaN, an image
replaced by garbage in the middle of a run, configs with wrong types or values; and exactly what the
decoded-image cache promises about files changed under the same size and modification time. Each
error is one line naming the file or key, with exit status 2."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from faultlib import train_args

from vireid.cli.main import main
from vireid.data.cache import build_cache, load_resized
from vireid.data.training_sets import load_training_set
from vireid.features.store import save_features
from vireid.training import hooks as hooks_mod
from vireid.training import trainer as trainer_mod

pytestmark = pytest.mark.slow


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def finished_run(synth_sysu, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIREID_CACHE_DIR", str(run.parent / "cache"))
        assert main(train_args(synth_sysu, run, "train.epochs=1", "schedule.milestones=[1]")) == 0
    return run


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_a_damaged_last_checkpoint_is_named_on_resume(finished_run, synth_sysu, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    last = run / "last.pt"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    elif damage == "empty":
        last.write_bytes(b"")
    else:
        torch.save({"state_dict": {"w": torch.zeros(2)}}, last)  # a torch file, not ours
    before = last.read_bytes()
    assert main(train_args(synth_sysu, run, "train.epochs=2", "schedule.milestones=[2]", resume=True)) == 2
    expected = "is not a vireid checkpoint" if damage == "foreign" else "is corrupt or not a torch file"
    one_line_error(capsys, str(last), expected)
    assert last.read_bytes() == before  # refused, not overwritten


def test_a_truncated_model_checkpoint_is_named_by_extract(finished_run, synth_sysu, tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes((finished_run / "model.pt").read_bytes()[:5000])
    code = main(["extract", "--checkpoint", str(bad), "--dataset", "sysu", "--root", str(synth_sysu),
                 "--out", str(tmp_path / "f.npz"), "--device", "cpu"])
    assert code == 2
    one_line_error(capsys, str(bad), "corrupt")
    assert not (tmp_path / "f.npz").exists()


# ---------------------------------------------------------------- features


def _features(root: Path, path: Path) -> list[str]:
    """Random features for every image of a SynthVI tree (enough for the SYSU protocol)."""
    paths = sorted(str(p.relative_to(root)).replace(os.sep, "/") for p in root.glob("cam*/*/*.jpg"))
    save_features(path, paths, np.random.default_rng(0).normal(size=(len(paths), 8)).astype(np.float32))
    return paths


def _evaluate(root: Path, features: Path) -> list[str]:
    return ["evaluate", "--dataset", "sysu", "--root", str(root), "--features", str(features), "--mode", "all",
            "--shots", "1", "--sampling", "seeded"]


def test_truncated_features_are_named(synth_sysu, tmp_path, capsys):
    good = tmp_path / "good.npz"
    _features(synth_sysu, good)
    assert main(_evaluate(synth_sysu, good)) == 0
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    capsys.readouterr()
    assert main(_evaluate(synth_sysu, bad)) == 2
    one_line_error(capsys, str(bad), "not a readable .npz features file")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_features_with_inf_or_nan_are_named(synth_sysu, tmp_path, capsys, value):
    path = tmp_path / "f.npz"
    paths = _features(synth_sysu, path)
    with np.load(path) as data:
        feats = data["feats"].copy()
    feats[3, 1] = value
    with open(path, "wb") as fh:  # written by hand: save_features itself refuses such values
        np.savez(fh, paths=np.asarray(paths), feats=feats)
    assert main(_evaluate(synth_sysu, path)) == 2
    one_line_error(capsys, str(path), "1 feature rows contain NaN or inf", paths[3])


# ---------------------------------------------------------------- configs


@pytest.mark.parametrize(("override", "needles"), [
    ("optim.lr=-0.1", ["optim.lr", "positive", "-0.1"]),
    ("data.ids_per_batch=0", ["data.ids_per_batch", "positive integer", "0"]),
    ("schedule.milestones=[5]", ["schedule.milestones", "5 is past the last epoch", "train.epochs=2"]),
    ("schedule.milestones=[2, 1]", ["schedule.milestones", "increasing"]),
    ("train.epochs=two", ["train.epochs", "integer", "two"]),
    ("optim.lr=fast", ["optim.lr", "number", "fast"]),
    ("data.instances=[2]", ["data.instances", "integer"]),
    ("train.select=best", ["train.select", "'val'", "best"]),
])
def test_config_values_and_types_are_named(synth_sysu, tmp_path, capsys, override, needles):
    run = tmp_path / "run"
    assert main(train_args(synth_sysu, run, override)) == 2
    one_line_error(capsys, *needles)
    assert not run.exists()  # refused before anything was written


def test_a_config_file_with_a_wrong_value_is_named(synth_sysu, tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("_base_: []\ntrain:\n  epochs: 3\nschedule:\n  milestones: [4]\n")
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--data-root", str(synth_sysu), "--output", str(run)]) == 2
    one_line_error(capsys, "schedule.milestones", "4 is past the last epoch")
    cfg.write_text("train:\n  epochs: -3\n")
    assert main(["train", "--config", str(cfg), "--data-root", str(synth_sysu), "--output", str(run)]) == 2
    one_line_error(capsys, "train.epochs", ">= 1", "-3")


# ---------------------------------------------------------------- images changed during a run


def _garble_training_images_after_epoch(monkeypatch, root: Path, epoch: int) -> list[Path]:
    """Replace every training image by garbage (same name) once ``epoch`` has finished and been saved."""
    images = [root / r.path for r in load_training_set("sysu", root, val_split="official").records]

    class Garble(hooks_mod.HookBase):
        def after_epoch(self) -> None:
            if self.trainer.epoch + 1 == epoch:
                for p in images:
                    p.write_bytes(b"\xff\xd8 this is not a JPEG any more")

    real = trainer_mod.default_hooks
    monkeypatch.setattr(trainer_mod, "default_hooks", lambda: [*real(), Garble()])
    return images


def test_an_image_replaced_by_garbage_mid_run_is_named(synth_sysu, tmp_path, capsys, monkeypatch):
    """Per-sample decoding (no cache), in a DataLoader worker: the run stops with one line naming the image
    and the checkpoint it kept, which still resumes once the images are back."""
    root = tmp_path / "sysu"
    shutil.copytree(synth_sysu, root)
    backup = tmp_path / "backup"
    shutil.copytree(root, backup)
    _garble_training_images_after_epoch(monkeypatch, root, 1)
    run = tmp_path / "run"
    code = main(train_args(root, run, "data.cache=false", "data.num_workers=1"))
    assert code == 2
    err = one_line_error(capsys, "cannot decode image", str(root / "cam"), "stopped at epoch 2 step 1",
                         f"last good checkpoint {run / 'last.pt'} (epoch 1)")
    assert "DataLoader worker" not in err
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 1
    monkeypatch.setattr(trainer_mod, "default_hooks", hooks_mod.default_hooks)
    shutil.rmtree(root)
    shutil.copytree(backup, root)
    assert main(train_args(root, run, "data.cache=false", "data.num_workers=1", resume=True)) == 0


def test_the_cache_serves_the_images_it_was_built_from_and_the_next_run_names_the_garbage(
    synth_sysu, tmp_path, capsys, monkeypatch,
):
    """With the cache, a run reads the pixels decoded when it started (the garbage does not reach it); the
    next run sees the changed files, rebuilds, and names the unreadable image."""
    root = tmp_path / "sysu"
    shutil.copytree(synth_sysu, root)
    monkeypatch.setenv("VIREID_CACHE_DIR", str(tmp_path / "cache"))
    _garble_training_images_after_epoch(monkeypatch, root, 1)
    assert main(train_args(root, tmp_path / "run")) == 0
    monkeypatch.setattr(trainer_mod, "default_hooks", hooks_mod.default_hooks)
    assert main(train_args(root, tmp_path / "run2")) == 2
    one_line_error(capsys, "cannot decode image", str(root / "cam"), "data.skip_corrupt")


# ---------------------------------------------------------------- what the cache promises


def _cache(root: Path, cache_dir: Path):
    return build_cache(load_training_set("sysu", root).records, root, 32, 16, cache_dir, progress=False)


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_an_image_rewritten_under_the_same_size_and_mtime_is_seen(synth_sysu, tmp_path):
    root = tmp_path / "sysu"
    shutil.copytree(synth_sysu, root)
    records = load_training_set("sysu", root).records
    first = _cache(root, tmp_path / "cache")
    # image 0 becomes another image's JPEG, padded to its old size (decoders ignore bytes after the end marker)
    a = root / records[0].path
    b = next(root / r.path for r in records[1:] if (root / r.path).stat().st_size < a.stat().st_size)
    _rewrite_keeping_size_and_mtime(a, b.read_bytes() + bytes(a.stat().st_size - b.stat().st_size))
    second = _cache(root, tmp_path / "cache")
    assert second.array_path != first.array_path  # a new key: rebuilt from the file as it is now
    expect = load_resized(b, 32, 16).permute(1, 2, 0).numpy()
    assert np.array_equal(np.array(second.open()[0]), expect)
    assert not np.array_equal(np.array(first.open()[0]), expect)


def test_a_cache_array_changed_under_the_same_size_and_mtime_is_rebuilt(synth_sysu, tmp_path, caplog):
    first = _cache(synth_sysu, tmp_path / "cache")
    good = np.array(first.open())
    path = first.array_path
    data = bytearray(path.read_bytes())
    data[-good[-1].size:] = bytes(good[-1].size)  # the last image blacked out, size unchanged
    _rewrite_keeping_size_and_mtime(path, bytes(data))
    again = _cache(synth_sysu, tmp_path / "cache")
    assert "changed after it was built; rebuilding it" in caplog.text
    assert again.array_path == path and np.array_equal(np.array(again.open()), good)
