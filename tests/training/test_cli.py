"""The commands end to end, and each bad input of issue 6 §5 through the CLI: exit status 2, one line on
stderr, nothing lost."""

from __future__ import annotations

import errno
import json
import shutil

import pytest
import torch

from vireid.cli.main import main
from vireid.training import checkpoint as ckpt

pytestmark = pytest.mark.slow


def tiny_args(tiny_overrides: list[str]) -> list[str]:
    return ["--config", "sysu_vd", *tiny_overrides]


@pytest.fixture
def overrides(tiny_overrides):
    return list(tiny_overrides)


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_train_test_extract_tsne_commands(trained_run, synth_sysu, tmp_path, capsys):
    run = trained_run.run_dir
    report = tmp_path / "result.json"
    assert main(["test", "--checkpoint", str(run), "--dataset", "sysu", "--root", str(synth_sysu),
                 "--sampling", "seeded", "--mode", "indoor", "--json", str(report), "--device", "cpu"]) == 0
    result = json.loads(report.read_text())
    assert result["settings"]["mode"] == "indoor" and result["num_trials"] == 10 and 0 < result["mAP"] <= 100
    feats = tmp_path / "f.npz"
    assert main(["extract", "--checkpoint", str(run / "last.pt"), "--dataset", "sysu", "--root",
                 str(synth_sysu), "--out", str(feats), "--flip", "--device", "cpu"]) == 0
    assert main(["evaluate", "--dataset", "sysu", "--root", str(synth_sysu), "--features", str(feats),
                 "--sampling", "seeded"]) == 0
    png = tmp_path / "tsne.png"
    assert main(["tsne", "--checkpoint", str(run), "--root", str(synth_sysu), "--out", str(png), "--ids", "3",
                 "--device", "cpu"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from vireid.visualization.curves import plot_curves

    curves = plot_curves(run, tmp_path / "curves.png")
    assert curves.read_bytes()[:4] == b"\x89PNG"


def test_config_typo(tmp_path, capsys, overrides, synth_sysu):
    out = tmp_path / "run"
    code = main(["train", *tiny_args(overrides), "train.epoch=3", "--data-root", str(synth_sysu),
                 "--output", str(out)])
    assert code == 2
    one_line_error(capsys, "unknown key 'train.epoch'", "valid keys of train: epochs")
    assert not out.exists()


def test_wrong_data_root(tmp_path, capsys, overrides):
    code = main(["train", *tiny_args(overrides), "--data-root", str(tmp_path / "nowhere"),
                 "--output", str(tmp_path / "run")])
    assert code == 2
    one_line_error(capsys, "nowhere")


def test_existing_run_directory_is_refused(trained_run, tmp_path, capsys, overrides, synth_sysu):
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    before = (run / "last.pt").read_bytes()
    code = main(["train", *tiny_args(overrides), "--data-root", str(synth_sysu), "--output", str(run)])
    assert code == 2
    one_line_error(capsys, str(run), "--resume", "--overwrite")
    assert (run / "last.pt").read_bytes() == before
    code = main(["train", *tiny_args(overrides), "--data-root", str(tmp_path / "nowhere"), "--output", str(run),
                 "--overwrite"])
    assert code == 2  # --overwrite removes the old run only once the new one is ready to start
    one_line_error(capsys, "nowhere")
    assert (run / "last.pt").read_bytes() == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code = main(["train", *tiny_args(overrides), "--data-root", str(synth_sysu), "--output",
                 str(tmp_path / "mine"), "--overwrite"])
    assert code == 2
    one_line_error(capsys, "not a vireid run directory")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_checkpoint_of_another_configuration(trained_run, tmp_path, capsys, overrides):
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    before = (run / "last.pt").read_bytes()
    code = main(["train", *tiny_args(overrides), "model.z_dim=32", "optim.lr=0.1", "--output", str(run),
                 "--resume"])
    assert code == 2
    one_line_error(capsys, "belongs to another configuration", "model.z_dim (checkpoint 16, now 32)", "optim.lr")
    assert (run / "last.pt").read_bytes() == before


def test_full_disk_during_save_keeps_the_previous_checkpoint(trained_run, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run)
    before = (run / "last.pt").read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    code = main(["train", "--output", str(run), "--resume", "train.epochs=3"])  # config from the run dir
    assert code == 2
    one_line_error(capsys, "could not write checkpoint", "No space left on device", "previous checkpoint is intact")
    assert (run / "last.pt").read_bytes() == before
    assert ckpt.load_checkpoint(run / "last.pt")["epoch"] == 2
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_bad_checkpoint_paths(tmp_path, capsys, synth_sysu):
    code = main(["extract", "--checkpoint", str(tmp_path / "none.pt"), "--dataset", "sysu", "--root",
                 str(synth_sysu), "--out", str(tmp_path / "f.npz")])
    assert code == 2
    one_line_error(capsys, "none.pt", "does not exist")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    # --sampling seeded: the default (official) does not fit SynthVI and is refused before any checkpoint is read
    code = main(["test", "--checkpoint", str(tmp_path / "junk.pt"), "--dataset", "sysu", "--root", str(synth_sysu),
                 "--sampling", "seeded"])
    assert code == 2
    one_line_error(capsys, "junk.pt", "corrupt")


def test_regdb_trial_all_trains_each_trial_and_test_averages(synth_regdb, tmp_path, capsys, overrides):
    run = tmp_path / "regdb"
    regdb = [o for o in overrides if not o.startswith(("data.val_split", "train.select"))]
    code = main(["train", "--config", "regdb_vd", *regdb, "train.epochs=1", "schedule.milestones=[1]", "data.val_split=1",
                 "train.select=last", "--data-root", str(synth_regdb), "--output", str(run), "--trial", "all"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == [f"trial_{t}" for t in (1, 2)]  # SynthVI made 2 trials
    assert ckpt.load_checkpoint(run / "trial_2" / "model.pt")["config"]["data"]["trial"] == 2
    report = tmp_path / "regdb.json"
    assert main(["test", "--checkpoint", str(run), "--dataset", "regdb", "--root", str(synth_regdb),
                 "--trial", "all", "--json", str(report), "--device", "cpu"]) == 0
    result = json.loads(report.read_text())
    assert [t["trial"] for t in result["per_trial"]] == [1, 2]
    assert result["mAP"] == pytest.approx(sum(t["mAP"] for t in result["per_trial"]) / 2)
