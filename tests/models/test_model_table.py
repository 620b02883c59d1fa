"""The model table drives everything chosen by a model's name: a model registered here (``toy``) is accepted
by config validation, built, given its default feature, its own rules and its modality rule; every model
has a criterion under the same name."""

from __future__ import annotations

import pytest
from torch import nn

from vireid.config import load_config
from vireid.errors import ConfigError
from vireid.inference.model import is_modality_dependent
from vireid.losses import CRITERIA, LossConfig, build_criterion
from vireid.losses.criteria import BaselineCriterion
from vireid.models import build
from vireid.models.build import MODELS, ModelSpec, build_model, get_model, register_model
from vireid.models.config import ModelConfig
from vireid.models.vd import VariationalDistillationNet


class ToyNet(nn.Module):
    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.fc = nn.Linear(3, num_classes)


def _no_mlp(cfg: ModelConfig) -> None:
    if cfg.z_classifier == "mlp":
        raise ConfigError("model.z_classifier: the toy model has no z classifier")


TOY = ModelSpec(ToyNet, "a test model", features=("toy_a", "toy_b"), default_feature="toy_b",
                modality_dependent=lambda cfg: cfg.feature == "toy_a", check=_no_mlp)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(MODELS, "toy", TOY)


def test_a_registered_model_is_validated_built_and_described(toy):
    cfg = load_config("sysu_vd", ["model.name=toy", "model.test_feature=toy_a"])
    assert cfg.model.name == "toy" and cfg.model.feature == "toy_a"
    model = build_model(ModelConfig(name="toy"), 5)
    assert isinstance(model, ToyNet) and model.fc.out_features == 5
    assert ModelConfig(name="toy").feature == "toy_b"  # the table's default feature
    assert is_modality_dependent(ModelConfig(name="toy", test_feature="toy_a"))
    assert not is_modality_dependent(ModelConfig(name="toy"))
    from vireid.cli.train import tables_epilog

    assert "toy        a test model" in tables_epilog()


def test_a_registered_model_keeps_its_own_rules(toy):
    with pytest.raises(ConfigError, match="the toy model gives toy_a, toy_b, got 'z_shared'"):
        ModelConfig(name="toy", test_feature="z_shared").validate()
    with pytest.raises(ConfigError, match="the toy model has no z classifier"):
        ModelConfig(name="toy", z_classifier="mlp").validate()
    with pytest.raises(ConfigError, match="the toy model has no criterion"):
        build_criterion(LossConfig(), ModelConfig(name="toy"), 5)


def test_its_criterion_is_registered_under_the_same_name(toy, monkeypatch):
    monkeypatch.setitem(CRITERIA, "toy", BaselineCriterion)
    crit = build_criterion(LossConfig(), ModelConfig(name="toy"), 5)
    assert isinstance(crit, BaselineCriterion) and crit.metric_key == "g"  # the baseline's pooled default


def test_unknown_names_list_the_table(toy):
    with pytest.raises(ConfigError) as err:
        load_config("sysu_vd", ["model.name=vdd"])
    assert "model.name: expected one of 'vd', 'ib', 'baseline', 'toy', got 'vdd'" in str(err.value)
    with pytest.raises(ConfigError, match="model.backbone: expected one of resnet10, vgg8_bn, resnet18"):
        ModelConfig(backbone="resnet51").validate()


def test_register_refuses_duplicates_and_a_default_it_does_not_give(monkeypatch):
    monkeypatch.setattr(build, "MODELS", dict(MODELS))
    with pytest.raises(ValueError, match="registered already"):
        register_model("vd", get_model("vd"))
    with pytest.raises(ValueError, match="default feature"):
        register_model("toy2", ModelSpec(ToyNet, "x", ("a",), "b", lambda cfg: True))
    assert register_model("toy2", ModelSpec(ToyNet, "x", ("a",), "a", lambda cfg: True)) is build.MODELS["toy2"]


def test_every_model_has_a_criterion_and_the_builtin_rules_hold():
    assert set(CRITERIA) == set(MODELS) == {"vd", "ib", "baseline"}
    assert [ModelConfig(name=n).feature for n in ("vd", "ib", "baseline")] == ["z_shared", "z_shared", "v_shared"]
    with pytest.raises(ConfigError, match="the vd model gives .*got 'pooled'"):
        ModelConfig(name="vd", test_feature="pooled").validate()
    with pytest.raises(ConfigError, match="the baseline model gives v_shared, pooled, got 'z_shared'"):
        ModelConfig(name="baseline", test_feature="z_shared").validate()
    with pytest.raises(ConfigError, match="the ib model needs the 'gaussian' bottleneck"):
        ModelConfig(name="ib", bottleneck="deterministic").validate()
    assert is_modality_dependent(ModelConfig(name="baseline"))
    assert not is_modality_dependent(ModelConfig(name="vd"))
    assert is_modality_dependent(ModelConfig(name="vd", test_feature="z_concat"))
    assert not is_modality_dependent(ModelConfig(name="vd", test_feature="z_concat", routing="released"))
    model = MODELS["vd"](ModelConfig(backbone="resnet10", pretrained="none", z_dim=4, bottleneck_hidden=[8]), 3)
    assert isinstance(model, VariationalDistillationNet)  # a spec builds when called, as MODELS[name] did
