"""vd / ib / baseline: routing, output shapes, test-time features, configuration errors."""

import pytest
import torch

from vireid.errors import ConfigError
from vireid.models import MODELS, ModelConfig, build_model
from vireid.models.vd import released_greyscale


def test_registry():
    assert set(MODELS) == {"vd", "ib", "baseline"}


def test_paper_routing_shapes(batch, tiny_config):
    images, _, modality = batch
    model = build_model(tiny_config(), 4).train()
    out = model(images, modality)
    assert out["V/rows"].tolist() == [0, 1, 4, 5]  # E_V sees the visible images
    assert out["I/rows"].tolist() == [2, 3, 6, 7]  # E_I the infrared images
    assert out["S/rows"].tolist() == list(range(8))  # E_S every image
    for b, n in (("V", 4), ("I", 4), ("S", 8)):
        assert out[f"{b}/v"].shape == (n, 576) and out[f"{b}/v_logits"].shape == (n, 4)
        assert out[f"{b}/z"].shape == (n, 8) and out[f"{b}/std"].shape == (n, 8)
        assert out[f"{b}/z_logits"].shape == (n, 4)


def test_released_routing_runs_four_passes_per_image(batch, tiny_config):
    images, _, modality = batch
    model = build_model(tiny_config(routing="released", bottleneck="deterministic"), 4).train()
    out = model(images, modality)
    assert out["V/rows"].tolist() == list(range(8)) and out["I/rows"].tolist() == list(range(8))
    assert out["S/rows"].tolist() == list(range(8)) * 2
    assert out["S/v"].shape == (16, 576) and out["S/z"].shape == (16, 16)  # z = 2 * z_dim, no std
    assert "S/std" not in out


def _first_bn(module):
    return next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_released_routing_runs_the_shared_encoder_in_two_separate_calls(batch, tiny_config):
    """The release calls shared_backbone(grey) and shared_backbone(x) separately (newresnet.py:80-84):
    in training mode each call is normalised with its own batch statistics, and the running mean is
    updated by the grey call, then the raw one: r = (1 - m)(m mu_grey) + m mu_raw (momentum m, from 0)."""
    images, _, modality = batch
    model = build_model(tiny_config(routing="released", bottleneck="deterministic"), 4).train()
    grey = released_greyscale(images)
    enc, head = model.encoders["S"], model.heads["S"]
    bn = _first_bn(enc)
    conv = next(m for m in enc.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        mu_raw, mu_grey = conv(images).mean(dim=(0, 2, 3)), conv(grey).mean(dim=(0, 2, 3))
    out = model(images, modality)
    m = bn.momentum
    assert torch.allclose(bn.running_mean, (1 - m) * m * mu_grey + m * mu_raw, atol=1e-7)
    assert not torch.allclose(bn.running_mean, m * (mu_grey + mu_raw) / 2, atol=1e-7)  # not one mixed batch
    assert out["S/rows"].tolist() == list(range(8)) * 2 and out["S/call"].tolist() == [0] * 8 + [1] * 8

    def alone(x):
        for stage in enc:
            x = stage(x)
        return head(x)

    with torch.no_grad():
        g_raw, g_grey, g_mixed = alone(images)[0], alone(grey)[0], alone(torch.cat([images, grey]))[0]
    assert torch.allclose(out["S/g"][:8], g_raw, atol=1e-5) and torch.allclose(out["S/g"][8:], g_grey, atol=1e-5)
    assert not torch.allclose(g_mixed[:8], g_raw, atol=1e-3)  # one 2B batch would mix the statistics


def test_released_greyscale_formula():
    x = torch.randn(3, 3, 4, 2)
    grey = released_greyscale(x)
    expected = 0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]
    for c in range(3):
        assert torch.allclose(grey[:, c], expected)


def test_sharing_deep_stages_shares_modules_and_saves_parameters(tiny_config):
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    separate, shared = build_model(tiny_config(), 4), build_model(tiny_config(share_deep_stages=2), 4)
    enc = shared.encoders
    assert enc["V"][3] is enc["I"][3] is enc["S"][3] and enc["V"][2] is enc["S"][2]
    assert enc["V"][1] is not enc["S"][1]
    assert count(shared) < count(separate)
    as_bool = build_model(tiny_config(share_deep_stages=True), 4).encoders
    assert as_bool["V"][2] is as_bool["I"][2] and as_bool["V"][1] is not as_bool["I"][1]


@pytest.mark.parametrize(
    "feature, dim", [("z_shared", 8), ("v_shared", 576), ("z_specific", 8), ("v_concat", 1152), ("z_concat", 16),
                     ("released_concat", 4 * 576)]
)
def test_extract_dimensions_and_mixed_batches(batch, feature, dim, tiny_config, calibrated):
    images, _, modality = batch
    model = calibrated(build_model(tiny_config(test_feature=feature), 4), images, modality)
    feats = model.extract(images, modality)
    assert feats.shape == (8, dim) == (8, model.feature_dim)
    vis = modality == 0
    alone = model.extract(images[vis], modality[vis])  # eval mode: each row independent of the others
    assert feats.abs().mean() > 0.1  # not a degenerate all-zero feature
    assert torch.allclose(feats[vis], alone, atol=1e-4)
    assert torch.equal(model.extract(images, modality), feats)  # deterministic


def test_specific_feature_depends_on_modality(batch, tiny_config, calibrated):
    images, _, modality = batch
    model = calibrated(build_model(tiny_config(test_feature="v_specific"), 4), images, modality)
    as_visible = model.extract(images, torch.zeros_like(modality))
    as_infrared = model.extract(images, torch.ones_like(modality))
    assert (as_visible - as_infrared).abs().mean() > 0.1
    shared = calibrated(build_model(tiny_config(test_feature="v_shared"), 4), images, modality)
    assert torch.equal(shared.extract(images, torch.zeros_like(modality)), shared.extract(images, modality))


def test_released_routing_extract(batch, tiny_config):
    images, _, modality = batch
    model = build_model(tiny_config(routing="released", test_feature="v_shared"), 4).eval()
    assert model.extract(images, modality).shape == (8, 2 * 576)


def test_baseline_two_streams(batch, tiny_config):
    images, _, modality = batch
    model = build_model(tiny_config(name="baseline"), 4).train()
    enc = model.encoders
    assert enc["V"][0] is not enc["I"][0] and all(enc["V"][s] is enc["I"][s] for s in (1, 2, 3))
    out = model(images, modality)
    assert out["B/v"].shape == (8, 576) and out["B/v_logits"].shape == (8, 4)
    model.eval()
    assert model.extract(images, modality).shape == (8, 576)


def test_baseline_agw_split_shares_layer1_to_layer4():
    """AGW's two-stream ResNet: only conv1, bn1, relu, maxpool per modality. Against the layer1 split it
    shares layer1 too, saving exactly one layer1: resnet10 has one BasicBlock of two 3x3 64->64 convs
    (2 x 36,864 weights) and two BatchNorm2d(64) (2 x 128): 73,984 parameters."""
    cfg = dict(backbone="resnet10", pretrained="none", name="baseline")
    agw = build_model(ModelConfig(split="stem", **cfg), 4)
    ours = build_model(ModelConfig(split="layer1", **cfg), 4)
    v, i = agw.encoders["V"], agw.encoders["I"]
    assert len(v) == 5 and v[0] is not i[0] and all(v[s] is i[s] for s in range(1, 5))
    assert [type(m).__name__ for m in v[0]] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert type(v[1][0]).__name__ == "Sequential" and len(v[1][0]) == 1  # layer1 (one BasicBlock), shared
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) - count(agw) == 2 * 64 * 64 * 9 + 2 * 2 * 64 == 73984
    images, modality = torch.randn(4, 3, 32, 16), torch.tensor([0, 1, 0, 1])
    out = agw.train()(images, modality)
    assert out["B/v"].shape == (4, 512)


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(backbone="vgg"), "model.backbone"),
        (dict(share_deep_stages=4), "model.share_deep_stages"),
        (dict(name="ib", bottleneck="deterministic"), "model.bottleneck"),
        (dict(test_feature="z_all"), "model.test_feature"),
        (dict(name="baseline", test_feature="z_shared"), "model.test_feature"),
        (dict(routing="mixed"), "model.routing"),
        (dict(name="baseline", split="layer2"), "model.split"),
    ],
)
def test_config_errors_name_the_option(overrides, option, tiny_config):
    with pytest.raises(ConfigError, match=option):
        build_model(tiny_config(**overrides), 4)


def test_released_architecture_has_the_documented_parameter_count():
    """released_code.md section 1: 82.09M parameters without the unused ResNet fc (SYSU, 395 classes)."""
    cfg = ModelConfig(pretrained="none", routing="released", bottleneck="deterministic", bottleneck_hidden=[1000, 500],
                      shallow_cam=True, z_classifier="mlp", test_feature="released_concat")
    with torch.device("meta"):  # shapes only: no memory, no time
        model = build_model(cfg, 395)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(82.09e6, abs=0.005e6)
