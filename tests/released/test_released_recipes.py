"""The released recipes hold every value of the release (shared/docs/released_code.md §1-3), written out
in the recipe file itself (not inherited), and the baseline recipes record their two choices."""

import pytest
import yaml

from vireid.config import load_config, resolve_config_path

# (dotted key, the release's value) from released_code.md and the release's mm01.py / regdb.py defaults
RELEASED = {
    "data.height": 256, "data.width": 128, "data.resize": "pil", "data.instances": 4, "data.epoch_length": "ids",
    "data.val_split": "none", "data.augment.flip": 0.5, "data.augment.pad": 0, "data.augment.erasing": 0.0,
    "data.augment.channel": 0.0, "data.augment.grey": 0.0,
    "model.name": "vd", "model.backbone": "resnet50", "model.pretrained": "imagenet", "model.last_stride": 1,
    "model.routing": "released", "model.share_deep_stages": 0, "model.shallow_cam": True,
    "model.bottleneck": "deterministic", "model.bottleneck_hidden": [1000, 500], "model.bottleneck_input": "neck",
    "model.z_dim": 256, "model.z_classifier": "mlp", "model.classifier_std": 0.001,
    "model.test_feature": "released_concat",
    "loss.ce_weight": 1.0, "loss.label_smoothing": 0.1, "loss.metric": "ranking", "loss.metric_weight": 1.0,
    "loss.metric_feature": "neck", "loss.ranking_intra": [0.9, 2.2], "loss.ranking_cross": [1.0, 2.0],
    "loss.ranking_t": 1.0, "loss.branch_weights": {"V": 0.5, "I": 0.5, "S": 0.5}, "loss.vsd_weight": 2.0,
    "loss.vcd_weight": 2.0, "loss.vml_weight": 0.0, "loss.cml_weight": 8.0, "loss.cml_eps": 0.01,
    "loss.temperature": 1.0, "loss.kl_numerics": "released",
    "optim.name": "adam", "optim.lr": 2.6e-4, "optim.weight_decay": 5e-4, "optim.betas": [0.9, 0.999],
    "schedule.warmup_epochs": 10, "schedule.warmup_factor": 0.01, "schedule.milestones": [210],
    "schedule.gamma": 0.1, "schedule.offset": 1, "train.epochs": 600, "train.seed": 1, "test.flip": False,
}


def _get(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


@pytest.mark.parametrize("recipe, ids", [("sysu_vd_released", 16), ("regdb_vd_released", 8)])
def test_released_recipes_hold_every_released_value(recipe, ids):
    resolved = load_config(recipe).to_dict()
    for key, value in RELEASED.items():
        expected = pytest.approx(value) if isinstance(value, float) else value
        assert _get(resolved, key) == expected, key
    assert resolved["data"]["ids_per_batch"] == ids  # [released] 128 images on SYSU, 64 on RegDB
    own = yaml.safe_load(resolve_config_path("sysu_vd_released").read_text())
    missing = []
    for key in RELEASED:
        try:
            _get(own, key)
        except KeyError:
            missing.append(key)
    assert not missing, f"inherited, not written out: {missing}"


@pytest.mark.parametrize("recipe", ["sysu_baseline", "regdb_baseline"])
def test_baseline_recipes_use_the_agw_split_and_the_pre_bn_triplet(recipe):
    cfg = load_config(recipe)
    assert cfg.model.name == "baseline" and cfg.model.split == "stem"
    assert cfg.loss.metric_feature == "pooled"
