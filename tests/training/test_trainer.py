"""Training end to end on a tiny SynthVI tree: resume equals an uninterrupted run, train -> checkpoint ->
resume -> extract -> evaluate, NaN handling, metrics log."""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest
import torch

from vireid.evaluation.protocols import evaluate_sysu
from vireid.features.extract import extract_protocol
from vireid.features.store import load_features
from vireid.training import checkpoint as ckpt
from vireid.training.hooks import StopAfterEpoch
from vireid.training.trainer import HookBase, TrainingDivergedError, default_hooks, train

pytestmark = pytest.mark.slow


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_uninterrupted_run_writes_a_complete_run_directory(trained_run):
    run = trained_run.run_dir
    assert {"config.yaml", "run.json", "last.pt", "model.pt", "metrics.jsonl"} <= {p.name for p in run.iterdir()}
    assert trained_run.epochs_done == 2 and len(trained_run.history) == 2
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    assert [r["global_step"] for r in steps] == list(range(1, 7))  # 3 steps per epoch
    assert {"loss", "ce", "metric", "vsd", "vcd", "vml", "lr", "images_per_s"} <= steps[0].keys()
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all("val" in r for r in epochs)
    # time blocked on the loader is part of the epoch's time, and the steps take the rest
    assert all(0 < r["data_seconds"] < r["seconds"] for r in epochs)
    # validation picked the best epoch on held-out TRAINING ids; model.pt holds that epoch
    best = max(epochs, key=lambda r: r["val"]["mAP"])
    model = ckpt.load_checkpoint(run / "model.pt")
    assert model["epoch"] == trained_run.selected_epoch == best["epoch"]
    assert 0 <= trained_run.selected_val["mAP"] <= 100
    last = ckpt.load_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and last["label_map"] and last["num_classes"] == 7


def test_resume_at_an_epoch_boundary_equals_the_uninterrupted_run(trained_run, synth_sysu, tmp_path, tiny):
    run = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):  # stopped between the epochs (a milestone past train.epochs is refused)
        train(tiny(), run, data_root=synth_sysu, hooks=[*default_hooks(), StopAfterEpoch(1)])
    assert ckpt.load_checkpoint(run / "last.pt")["epoch"] == 1
    result = train(tiny(), run, resume=True)  # data root from run.json
    ref = ckpt.load_checkpoint(trained_run.last_checkpoint)
    got = ckpt.load_checkpoint(result.last_checkpoint)
    assert_same_state(ref["model"], got["model"])
    assert [h["loss"] for h in result.history] == [h["loss"] for h in trained_run.history]
    assert result.selected_epoch == trained_run.selected_epoch
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((trained_run.run_dir / "metrics.jsonl").read_text().splitlines())


class StopAfter(HookBase):
    """Ctrl-C: a real SIGINT to this process after a given global step."""

    def __init__(self, step: int) -> None:
        self.at = step

    def after_step(self) -> None:
        if self.trainer.global_step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_interrupt_mid_epoch_saves_and_resumes_to_the_same_result(trained_run, synth_sysu, tmp_path, tiny):
    run = tmp_path / "interrupted"
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]  # SIGINT: SIG_IGN in a background job
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), run, data_root=synth_sysu, hooks=[*default_hooks(), StopAfter(4)])
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before  # the handlers were put back
    saved = ckpt.load_checkpoint(run / "last.pt")
    assert (saved["epoch"], saved["step"]) == (1, 1)  # epoch 2 of 2, after its first step
    waited = saved["partial"]["data_seconds"]
    assert 0 < waited < saved["partial"]["seconds"]
    result = train(tiny(), run, resume=True)
    assert result.history[-1]["data_seconds"] > waited  # the resumed epoch carries on the saved part's time
    ref = ckpt.load_checkpoint(trained_run.last_checkpoint)
    assert_same_state(ref["model"], ckpt.load_checkpoint(result.last_checkpoint)["model"])
    for a, b in zip(ref["optimizer"]["state"].values(), saved and
                    ckpt.load_checkpoint(result.last_checkpoint)["optimizer"]["state"].values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"])
    assert [h["loss"] for h in result.history] == pytest.approx([h["loss"] for h in trained_run.history], abs=1e-6)


def test_round_trip_extract_and_evaluate(trained_run, synth_sysu, tmp_path):
    out = tmp_path / "feats.npz"
    fs = extract_protocol(trained_run.run_dir, "sysu", synth_sysu, device="cpu", out=out)
    loaded = load_features(out)
    assert loaded.paths == fs.paths and np.array_equal(loaded.feats, fs.feats)
    assert loaded.dim == 16  # z_shared of a z_dim=16 model
    result = evaluate_sysu(synth_sysu, fs, mode="all", sampling="seeded")
    d = result.to_dict()
    assert d["num_trials"] == 10 and 0.0 < d["mAP"] <= 100.0 and 0.0 <= d["rank1"] <= 100.0


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(trained_run, tmp_path, monkeypatch, tiny):
    import vireid.losses.criteria as criteria

    real = criteria.build_criterion

    class PoisonAfter(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, outputs, labels, modality):
            self.calls += 1
            terms = self.inner(outputs, labels, modality)
            if self.calls == 2:
                terms["loss"] = terms["loss"] * float("nan")
            return terms

    monkeypatch.setattr(criteria, "build_criterion", lambda *a: PoisonAfter(real(*a)))
    run = tmp_path / "nan"
    shutil.copytree(trained_run.run_dir, run)
    before = (run / "last.pt").read_bytes()
    with pytest.raises(TrainingDivergedError, match=r"epoch 3 step 2.*last good checkpoint .*last\.pt \(epoch 2\)"):
        train(tiny("train.epochs=3"), run, resume=True)
    assert (run / "last.pt").read_bytes() == before


class Asymmetric(torch.nn.Module):
    """A model whose feature changes under a horizontal flip: the column profile of channel 0."""

    def extract(self, images, modality):
        return images[:, 0].mean(dim=1) + modality[:, None].float()


def test_flip_augmentation_averages_the_image_and_its_mirror(synth_sysu, tiny):
    from vireid.data.sysu import scan_images
    from vireid.features.extract import extract_features

    records = scan_images(synth_sysu, [1, 2], (1, 3))[:5]
    cfg = tiny().data
    plain = extract_features(Asymmetric(), records, synth_sysu, cfg, batch_size=2)
    both = extract_features(Asymmetric(), records, synth_sysu, cfg, batch_size=3, flip=True)
    assert plain.paths == [r.path for r in records] and plain.feats.shape == (5, 16)
    expected = (plain.feats + plain.feats[:, ::-1]) / 2
    np.testing.assert_allclose(both.feats, expected, rtol=1e-6, atol=1e-6)
    assert not np.allclose(both.feats, plain.feats)
