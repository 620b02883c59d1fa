"""Config: defaults, recipes, inheritance, overrides, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from vireid.config import (
    Config,
    apply_overrides,
    config_diff,
    list_recipes,
    load_config,
    recipes_dir,
    resolve_config_path,
)
from vireid.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_round_trip_through_dict():
    cfg = Config()
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.to_dict()["schedule"]["milestones"] == [210]


@pytest.mark.parametrize("name", list_recipes())
def test_every_shipped_recipe_loads_and_validates(name):
    cfg = load_config(name)
    cfg.data.validate()
    cfg.model.validate()
    cfg.loss.validate()


def test_paper_recipe_values():
    sysu, regdb = load_config("sysu_vd"), load_config("regdb_vd")
    assert (sysu.model.name, sysu.model.backbone, sysu.model.pretrained) == ("vd", "resnet50", "imagenet")
    assert (sysu.data.height, sysu.data.width, sysu.data.instances) == (256, 128, 4)
    assert (sysu.optim.name, sysu.optim.lr, sysu.optim.weight_decay) == ("adam", 2.6e-4, 5e-4)
    assert (sysu.schedule.warmup_epochs, sysu.schedule.warmup_factor) == (10, 0.01)
    assert (sysu.schedule.milestones, sysu.schedule.gamma, sysu.train.epochs) == ((210,), 0.1, 600)
    assert (sysu.data.ids_per_batch, regdb.data.ids_per_batch) == (16, 8)
    assert regdb.data.dataset == "regdb" and regdb.model.name == "vd"
    ablation = {n: load_config(n).loss for n in ("sysu_vd_vsd", "sysu_vd_vsd_vcd", "sysu_vd")}
    assert [(lc.vcd_weight > 0, lc.vml_weight > 0) for lc in ablation.values()] == [
        (False, False), (True, False), (True, True)]
    assert load_config("sysu_vd_released").model.routing == "released"


def test_names_resolve_to_shipped_recipes(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./configs here: the package copy must be found
    shipped = recipes_dir() / "sysu_vd.yaml"
    assert resolve_config_path("sysu_vd") == shipped
    assert resolve_config_path("configs/sysu_vd.yaml") == shipped
    assert resolve_config_path(str(shipped)) == shipped
    assert (REPO / "configs" / "sysu_vd.yaml").resolve() == shipped.resolve()
    with pytest.raises(ConfigError, match="sysu_vd") as err:
        resolve_config_path("sysu_dv")
    assert "\n" not in str(err.value)


def test_inheritance_deep_merges_relative_bases(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("data: {height: 64, width: 32}\ntrain: {epochs: 7}\n")
    (tmp_path / "sub" / "child.yaml").write_text("_base_: ../base.yaml\ndata: {width: 48}\n")
    cfg = load_config(tmp_path / "sub" / "child.yaml")
    assert (cfg.data.height, cfg.data.width, cfg.train.epochs) == (64, 48, 7)
    assert cfg.data.instances == Config().data.instances  # untouched keys keep their defaults


def test_inheritance_loop_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("_base_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.yaml")


def test_overrides_are_parsed_as_yaml_values():
    cfg = load_config("sysu_vd", ["train.epochs=3", "schedule.milestones=[5, 8]", "optim.lr=1e-3",
                                  "data.val_split=official", "model.test_feature=null", "optim.betas=[0.5,0.9]"])
    assert cfg.train.epochs == 3 and cfg.schedule.milestones == (5, 8)
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.data.val_split == "official" and cfg.model.test_feature is None
    assert cfg.optim.betas == (0.5, 0.9)
    assert load_config("sysu_vd", ["data.val_split=12"]).data.val_split == 12


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["train.epoch=3"], ["train.epoch", "epochs", "seed"]),
        (["trian.epochs=3"], ["trian", "train", "optim"]),
        (["data.augment.flp=0.5"], ["data.augment.flp", "flip"]),
        (["train.epochs=three"], ["train.epochs", "integer", "three"]),
        (["train.select=best"], ["train.select", "'val'", "'last'"]),
        (["train.amp=maybe"], ["train.amp", "true or false"]),
        (["schedule.milestones=5"], ["schedule.milestones", "list"]),
        (["optim.betas=[0.9]"], ["optim.betas", "2 values"]),
        (["train.epochs"], ["section.key=value"]),
        (["train.epochs.x=1"], ["train.epochs", "not a section"]),
        (["train.epochs=0"], ["train.epochs", ">= 1"]),
        (["data.dataset=regdb", "data.trial=11"], ["data.trial", "1..10"]),
        (["model.name=vdd"], ["model.name", "'vd'"]),
    ],
)
def test_bad_keys_and_values_are_one_line_errors_naming_the_key(overrides, needles):
    with pytest.raises(ConfigError) as err:
        load_config("sysu_vd", overrides)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("_base_: " + str(recipes_dir() / "sysu_vd.yaml") + "\ntrain:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*unknown key 'train\.epoch'.*valid keys of train: epochs"):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)


def test_from_dict_without_yaml_and_diff():
    cfg = Config.from_dict({"train": {"epochs": 5}, "model": {"name": "ib"}})
    assert cfg.train.epochs == 5 and cfg.model.name == "ib"
    assert config_diff(Config().to_dict(), cfg.to_dict()) == ["model.name", "train.epochs"]
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_builds_a_model_and_criterion_that_train(name):
    """The recipes' keys reach real models and losses (tiny backbone, one step on a random batch)."""
    import torch

    from vireid.losses.criteria import build_criterion
    from vireid.models.build import build_model

    cfg = load_config(name, ["model.backbone=resnet18", "model.pretrained=none"])
    model, criterion = build_model(cfg.model, 4), build_criterion(cfg.loss, cfg.model, 4)
    # P=2 identities x (K=2 visible then K=2 infrared), the sampler's layout
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    modality = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        terms = criterion(model(torch.randn(8, 3, 64, 32), modality), labels, modality)
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    model.eval()
    with torch.no_grad():
        assert model.extract(torch.randn(2, 3, 64, 32), torch.tensor([0, 1])).ndim == 2
