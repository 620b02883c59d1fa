"""Backbones: stages, last stride, and local-only ImageNet weights."""

import pytest
import torch
import torchvision

from vireid.errors import ConfigError
from vireid.models import build_model
from vireid.models.backbones import build_stages, find_imagenet_weights, stem_length, weight_file_names


def _run(stages, x):
    for s in stages:
        x = s(x)
    return x


@pytest.mark.parametrize("name, channels", [("resnet18", 512), ("mobilenet_v3_small", 576)])
def test_last_stride_doubles_the_final_map(name, channels):
    x = torch.randn(1, 3, 64, 32)
    s2, c2 = build_stages(name, last_stride=2)
    s1, c1 = build_stages(name, last_stride=1)
    assert c1 == c2 == channels
    assert _run(s2, x).shape == (1, channels, 2, 1)
    assert _run(s1, x).shape == (1, channels, 4, 2)
    assert _run(s1[:1], x).shape[-2:] == (16, 8)  # stage 1 has output stride 4


def test_missing_imagenet_weights_name_the_file_and_folder(tmp_path, monkeypatch, tiny_config):
    with pytest.raises(ConfigError) as err:
        find_imagenet_weights("resnet50", str(tmp_path))
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and str(tmp_path) in msg and "\n" not in msg
    # default folder: torch's hub cache
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match=str(tmp_path / "hub" / "checkpoints")):
        build_model(tiny_config(pretrained="imagenet"), 4)


def test_local_weights_are_loaded(tmp_path):
    reference = torchvision.models.mobilenet_v3_small(weights=None)
    fname = weight_file_names("mobilenet_v3_small")[0]
    torch.save(reference.state_dict(), tmp_path / fname)
    stages, _ = build_stages("mobilenet_v3_small", pretrained="imagenet", weights_dir=str(tmp_path), last_stride=2)
    assert torch.equal(stages[0][0][0].weight, reference.features[0][0].weight)
    stages, _ = build_stages("mobilenet_v3_small", pretrained=str(tmp_path / fname), last_stride=2)
    assert torch.equal(stages[-1][-1][0].weight, reference.features[12][0].weight)


def test_bad_weight_files_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_stages("resnet18", pretrained=str(tmp_path / "nope.pth"))
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="not a state dict of this backbone"):
        build_stages("mobilenet_v3_small", pretrained=str(tmp_path / "other.pth"))


def test_vgg8_bn_keeps_full_resolution_in_its_first_stage(tmp_path):
    x = torch.randn(2, 3, 64, 32)
    s2, c2 = build_stages("vgg8_bn", last_stride=2)
    s1, c1 = build_stages("vgg8_bn", last_stride=1)
    assert c1 == c2 == 256 and len(s2) == len(s1) == 4
    assert _run(s2[:1], x).shape == (2, 32, 64, 32)
    assert _run(s2, x).shape == (2, 256, 8, 4)
    assert _run(s1, x).shape == (2, 256, 16, 8)
    with pytest.raises(ConfigError, match="no ImageNet weights exist for vgg8_bn"):
        build_stages("vgg8_bn", pretrained="imagenet")
    # weights from a file: a state dict of the uncut layer list
    reference = torchvision.models.vgg.make_layers([32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256], batch_norm=True)
    torch.save(reference.state_dict(), tmp_path / "vgg8.pth")
    loaded, _ = build_stages("vgg8_bn", pretrained=str(tmp_path / "vgg8.pth"), last_stride=2)
    assert torch.equal(loaded[-1][-2].running_var, reference[-2].running_var)
    assert torch.equal(loaded[0][0].weight, reference[0].weight)


@pytest.mark.parametrize("name", ["vd", "baseline"])
def test_models_build_on_vgg8_bn(name, tiny_config):
    cfg = tiny_config(backbone="vgg8_bn", last_stride=2, split="stem", name=name)
    model = build_model(cfg, 4).train()
    images, modality = torch.randn(4, 3, 64, 32), torch.tensor([0, 0, 1, 1])
    out = model(images, modality)
    assert all(torch.isfinite(v).all() for v in out.values() if v.is_floating_point())


@pytest.mark.parametrize("name, stem_pool, expected", [
    ("resnet10", True, ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]),
    ("resnet18", False, ["Conv2d", "BatchNorm2d", "ReLU"]),
    ("vgg8_bn", True, ["Conv2d", "BatchNorm2d", "ReLU"]),
    ("mobilenet_v3_small", True, ["Conv2dNormActivation"]),
])
def test_stem_is_found_from_the_first_stage(name, stem_pool, expected):
    stages, _ = build_stages(name, last_stride=2, stem_pool=stem_pool)
    k = stem_length(stages[0])
    assert [type(m).__name__ for m in stages[0][:k]] == expected
    assert len(stages[0][k:]) > 0  # something is left for the shared part of the first stage
