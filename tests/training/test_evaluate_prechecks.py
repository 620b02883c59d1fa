"""Bad options and trees are refused before any model is loaded or feature extracted."""

from __future__ import annotations

import pytest

from vireid.errors import DatasetError
from vireid.evaluation.protocols import check_regdb_protocol, check_sysu_protocol
from vireid.features import extract
from vireid.training import evaluate


def _no_extraction(*args, **kwargs):
    raise AssertionError("features were extracted before the protocol check")


def test_official_sampling_on_a_synthetic_tree_fails_before_extraction(synth_sysu, monkeypatch):
    check_sysu_protocol(synth_sysu, mode="all", sampling="seeded")  # fits: no error
    with pytest.raises(DatasetError, match="use --sampling seeded"):
        check_sysu_protocol(synth_sysu, mode="all", sampling="official")
    monkeypatch.setattr(evaluate, "extract_protocol", _no_extraction)
    with pytest.raises(DatasetError, match="rand_perm_cam.mat"):
        evaluate.evaluate_checkpoint("no-such-checkpoint.pt", "sysu", synth_sysu, sampling="official")
    with pytest.raises(DatasetError, match="unknown SYSU-MM01 mode 'outdoor'"):
        evaluate.evaluate_checkpoint("no-such-checkpoint.pt", "sysu", synth_sysu, mode="outdoor", sampling="seeded")


def test_bad_regdb_direction_fails_before_extraction(synth_regdb, synth_sysu, monkeypatch):
    assert check_regdb_protocol(synth_regdb, direction="t2v") == synth_regdb
    monkeypatch.setattr(evaluate, "extract_protocol", _no_extraction)
    with pytest.raises(DatasetError, match="unknown RegDB direction 'x2y'"):
        evaluate.evaluate_checkpoint("no-such-checkpoint.pt", "regdb", synth_regdb, direction="x2y")
    with pytest.raises(DatasetError, match="is not a RegDB root"):
        evaluate.evaluate_checkpoint("no-such-checkpoint.pt", "regdb", synth_sysu)


def test_extract_protocol_reads_the_layout_before_loading_the_model(synth_regdb, monkeypatch):
    monkeypatch.setattr(extract, "load_model", _no_extraction)
    with pytest.raises(DatasetError, match="not a SYSU-MM01 root"):
        extract.extract_protocol("no-such-checkpoint.pt", "sysu", synth_regdb, device="cpu")


def test_tsne_with_a_named_dataset_reads_the_layout_before_loading_the_model(synth_regdb, tmp_path, monkeypatch):
    from vireid.visualization.tsne import checkpoint_tsne

    monkeypatch.setattr(extract, "load_model", _no_extraction)
    with pytest.raises(DatasetError, match="not a SYSU-MM01 root"):
        checkpoint_tsne("no-such-checkpoint.pt", synth_regdb, tmp_path / "t.png", dataset="sysu", device="cpu")
    assert not (tmp_path / "t.png").exists()
