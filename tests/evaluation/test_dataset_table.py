"""The dataset table drives everything chosen by a dataset's name: a dataset registered here (``toy``, with
plain functions that record their calls) is accepted by config validation, offered by the CLI, read,
extracted, checked and scored through its own functions; the built-in entries match their modules."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from eval_trees import write_regdb, write_sysu

from vireid import datasets
from vireid.cli.main import build_parser, main
from vireid.config import load_config
from vireid.data.config import DataConfig
from vireid.datasets import DatasetSpec, Lazy, ProtocolOption, ProtocolSpec, get_dataset, register_dataset
from vireid.errors import ConfigError, DatasetError
from vireid.evaluation.result import ProtocolResult
from vireid.features.store import FeatureSet, save_features

TRIAL = {"trial": 1, "rank1": 50.0, "rank5": 60.0, "rank10": 70.0, "rank20": 80.0, "mAP": 40.0, "mINP": 30.0,
         "num_query": 2, "num_gallery": 2, "num_valid": 2, "cmc": [50.0] * 20}


class Toy:
    """A dataset whose functions record how they were called."""

    def __init__(self, trials: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.trials = trials

    def record(self, name: str, result=None):
        def func(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return result
        return func

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def kwargs(self, name: str) -> dict:
        return next(c[2] for c in self.calls if c[0] == name)

    def spec(self) -> DatasetSpec:
        return DatasetSpec(
            name="toy", title="Toy", description="a test dataset",
            check_root=self.record("check_root"),
            test_records=self.record("test_records", []),
            training_set=self.record("training_set", "a training set"),
            trials=self.trials,
            val_splits=("none", "halves"),
            identify=lambda parts: (7, 9, 1) if parts[-3:-2] == ("toycam",) else None,
            protocol=ProtocolSpec(
                evaluate=self.record("evaluate", ProtocolResult("Toy", [TRIAL], {"band": "x"})),
                check=self.record("check"),
                options=(ProtocolOption("band", ("low", "high"), "low", "which band"),),
                setting="band",
            ),
        )


@pytest.fixture
def toy(monkeypatch):
    t = Toy()
    monkeypatch.setitem(datasets.DATASETS, "toy", t.spec())
    return t


@pytest.fixture
def toy_trials(monkeypatch):
    t = Toy(trials=(1, 2, 3))
    monkeypatch.setitem(datasets.DATASETS, "toy", t.spec())
    return t


def test_config_validation_accepts_a_registered_dataset_and_its_own_rules(toy_trials):
    cfg = load_config("sysu_vd", ["data.dataset=toy", "data.trial=3", "data.val_split=halves"])
    assert (cfg.data.dataset, cfg.data.trial, cfg.data.val_split) == ("toy", 3, "halves")
    with pytest.raises(ConfigError, match=r"data.trial: expected a Toy trial 1\.\.3, got 4"):
        DataConfig(dataset="toy", trial=4).validate()
    with pytest.raises(ConfigError, match="'official' exists only for SYSU-MM01; use 'none' or 'halves'"):
        DataConfig(dataset="toy", val_split="official").validate()
    with pytest.raises(ConfigError, match="'halves' exists only for Toy"):
        DataConfig(dataset="sysu", val_split="halves").validate()


def test_an_unknown_dataset_lists_the_table(toy):
    with pytest.raises(ConfigError) as err:
        load_config("sysu_vd", ["data.dataset=toys"])
    assert "data.dataset" in str(err.value) and "'sysu', 'regdb', 'toy'" in str(err.value)
    with pytest.raises(ConfigError, match="'toy'"):
        get_dataset("nope", "--dataset")


def test_reading_and_listing_go_through_the_entry(toy, tmp_path):
    from vireid.data.training_sets import load_training_set
    from vireid.features.extract import protocol_records

    assert load_training_set("toy", tmp_path, trial=2, val_split=3, val_seed=5) == "a training set"
    assert toy.kwargs("training_set") == {"trial": 2, "val_split": 3, "val_seed": 5}
    assert protocol_records("toy", tmp_path, 2) == []
    assert toy.calls[-1] == ("test_records", (tmp_path, 2), {})


def test_cli_choices_and_protocol_options_come_from_the_table(toy, tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["evaluate", "--dataset", "toy", "--root", "r", "--features", "f", "--band", "high"])
    assert (args.dataset, args.band) == ("toy", "high")
    for command in ("extract", "test"):
        assert parser.parse_args([command, "--dataset", "toy", "--root", "r", "--checkpoint", "c", "--out", "o"]
                                 if command == "extract" else
                                 [command, "--dataset", "toy", "--root", "r", "--checkpoint", "c"]).dataset == "toy"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--dataset", "toy", "--root", "r", "--features", "f", "--band", "mid"])
    capsys.readouterr()

    feats = tmp_path / "f.npz"
    save_features(feats, ["a.jpg"], np.ones((1, 2), np.float32))
    assert main(["evaluate", "--dataset", "toy", "--root", str(tmp_path), "--features", str(feats),
                 "--band", "high"]) == 0
    assert toy.names() == ["check", "evaluate"]  # checked before the features are scored
    assert toy.kwargs("check") == {"band": "high"}  # its own option only: no mode, sampling or direction
    assert toy.kwargs("evaluate") == {"band": "high", "normalize": True, "rerank": False}
    assert "Rank-1" in capsys.readouterr().out
    assert main(["evaluate", "--dataset", "toy", "--root", str(tmp_path), "--features", "f_{trial}.npz"]) == 2
    assert "only applies to --dataset regdb" in capsys.readouterr().err


def test_evaluate_checkpoint_checks_extracts_and_scores_through_the_entry(toy_trials, tmp_path, monkeypatch):
    from vireid.training import evaluate

    extracted = []

    def fake_extract(checkpoint, dataset, root, **kw):
        extracted.append((checkpoint, dataset, kw.get("trial")))
        return FeatureSet(["a.jpg"], np.ones((1, 2), np.float32))

    monkeypatch.setattr(evaluate, "extract_protocol", fake_extract)
    for t in (1, 3):
        (tmp_path / f"trial_{t}").mkdir()
    result = evaluate.evaluate_checkpoint(tmp_path, "toy", "root", trial="all", band="high", mode="indoor")
    assert isinstance(result, ProtocolResult)
    assert toy_trials.names() == ["check", "evaluate"]
    assert toy_trials.kwargs("check") == {"band": "high"}
    assert sorted(extracted) == [(tmp_path / "trial_1", "toy", 1), (tmp_path / "trial_3", "toy", 3)]
    kw = toy_trials.kwargs("evaluate")
    assert kw["trial"] == "all" and kw["band"] == "high" and sorted(toy_trials.calls[-1][1][1]) == [1, 3]
    with pytest.raises(ConfigError, match=r"--trial: expected 1\.\.3 or all, got 4"):
        evaluate.evaluate_checkpoint("ckpt", "toy", "root", trial=4)
    with pytest.raises(ConfigError, match="unknown protocol option 'bnad'"):
        evaluate.evaluate_checkpoint("ckpt", "toy", "root", bnad="high")


def test_sweep_settings_and_path_identity_come_from_the_table(toy):
    from vireid.inference.images import path_identity
    from vireid.sweep import scored_settings

    assert scored_settings("toy") == ("low", "high")
    assert scored_settings("sysu") == ("all", "indoor") and scored_settings("regdb") == ("v2t", "t2v")
    ident = path_identity("data/toycam/0001/x.png")
    assert (ident.pid, ident.camera, ident.modality, ident.layout) == (7, 9, 1, "toy")
    assert path_identity("data/cam3/0012/0001.jpg").layout == "sysu"


def test_a_name_is_registered_once(toy):
    with pytest.raises(ValueError, match="registered already"):
        register_dataset(get_dataset("toy"))


# ------------------------------------------------------------------------ the built-in entries


def _lazy_targets(spec: DatasetSpec) -> list[Lazy]:
    fields = [spec.check_root, spec.test_records, spec.training_set, spec.available_trials, spec.identify,
              spec.protocol.evaluate, spec.protocol.check, spec.protocol.ranked_split]
    return [f for f in fields if isinstance(f, Lazy)]


@pytest.mark.parametrize("name", ["sysu", "regdb"])
def test_every_named_function_exists_and_option_defaults_match_it(name):
    spec = get_dataset(name)
    for ref in _lazy_targets(spec):
        assert callable(ref.resolve()), ref
    for fn in (spec.protocol.evaluate.resolve(), spec.protocol.check.resolve()):
        params = inspect.signature(fn).parameters
        for opt in spec.protocol.options:
            assert params[opt.name].default == opt.default, (fn.__name__, opt.name)
    assert spec.protocol.setting in spec.protocol.option_names


def test_builtin_option_choices_are_what_the_protocols_accept():
    from vireid.data.regdb import TRIALS
    from vireid.data.synthvi import LAYOUTS
    from vireid.evaluation.protocols import regdb, sysu

    proto = get_dataset("sysu").protocol
    assert proto.option("mode").choices == tuple(sysu.MODES) and proto.option("sampling").choices == sysu.SAMPLINGS
    assert get_dataset("regdb").protocol.option("direction").choices == regdb.DIRECTIONS
    assert get_dataset("regdb").trials == TRIALS and get_dataset("sysu").trials == ()
    assert set(LAYOUTS) <= set(datasets.dataset_names())  # SynthVI writes layouts the table reads


def test_builtin_entries_read_their_layouts(tmp_path):
    sysu_root = write_sysu(tmp_path / "sysu", {(c, p): 1 for c in range(1, 7) for p in (1, 2, 3)}, (3,))
    (sysu_root / "exp" / "train_id.txt").write_text("1")
    (sysu_root / "exp" / "val_id.txt").write_text("2")
    regdb_root = write_regdb(tmp_path / "regdb", (4, 5, 6), trials=(1, 2))
    for t in (1, 2):
        for key in ("visible", "thermal"):
            idx = regdb_root / "idx"
            (idx / f"train_{key}_{t}.txt").write_text((idx / f"test_{key}_{t}.txt").read_text())
    sysu, regdb = get_dataset("sysu"), get_dataset("regdb")
    assert sysu.check_root(sysu_root) == sysu_root
    with pytest.raises(DatasetError, match="not a RegDB root"):
        regdb.check_root(sysu_root)
    assert regdb.available_trials(regdb_root) == [1, 2]
    assert sysu.training_set(sysu_root, trial=1, val_split="official", val_seed=0).label_map == {1: 0}
    assert regdb.training_set(regdb_root, trial=2, val_split="none", val_seed=0).num_classes == 3
    assert {r.pid for r in sysu.test_records(sysu_root, 1)} == {3}
    assert {r.modality for r in regdb.test_records(regdb_root, 2)} == {0, 1}
