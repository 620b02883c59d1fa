"""The authors' released checkpoint, read through our loader, computes what the release computes.

Oracle: ``../shared/data/released-vd`` (its README): the release's 1,065 state-dict keys and shapes, a
deterministic fill of the weights, four normalised input images and the release's own outputs (CPU,
fp32, eval mode): the 8192-d features, the four bottleneck outputs z and the four z-classifier logits.
The checkpoint is built from the manifest, saved as the release saved it (``{'model': state_dict, ...}``,
with and without the ``module.`` prefix of a DataParallel save) and read with ``load_model``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vireid.errors import CheckpointError
from vireid.models.loading import load_model
from vireid.models.released import model_from_released

ORDER = [("I", "grey"), ("S", "grey"), ("V", "raw"), ("S", "raw")]  # the release's concatenation order
TOL = 1e-5


@pytest.fixture(scope="module", params=["plain", "module."])
def loaded(request, released_state_dict, tmp_path_factory):
    """(model, config) read from a release-format file, keys without / with ``module.``."""
    prefix = "" if request.param == "plain" else "module."
    path = tmp_path_factory.mktemp("released") / "model_best.pth.tar"
    sd = {prefix + k: v for k, v in released_state_dict.items()}
    torch.save({"model": sd, "epoch": 600, "best_top1": 0.6}, path)
    model, config, _ = load_model(path)
    path.unlink()  # 354 MB
    return model, config


@pytest.fixture(scope="module")
def outputs(loaded, oracle_dir):
    """One ``model.extract`` pass over the 4 inputs (the public path), the observations v it computed
    captured in call order (the release's: I-grey, S-grey, V-raw, S-raw), and from them z and logits."""
    model, _ = loaded
    x = torch.from_numpy(np.load(oracle_dir / "input.npy"))
    calls: list[tuple[str, torch.Tensor]] = []
    hooks = [model.heads[b].register_forward_hook(lambda _m, _i, out, b=b: calls.append((b, out[1])))
             for b in ("V", "I", "S")]
    try:
        feats = model.extract(x, torch.zeros(4, dtype=torch.long))
    finally:
        for h in hooks:
            h.remove()
    assert [b for b, _ in calls] == [b for b, _ in ORDER]
    with torch.no_grad():
        zs = [model.bottlenecks[b](v)[0] for b, v in calls]
        logits = [model.z_classifiers[b](z) for (b, _), z in zip(calls, zs, strict=True)]
    return F.normalize(feats, dim=1), torch.cat(zs, dim=1), torch.cat(logits, dim=1)


def test_features_match_the_release(loaded, outputs, oracle_dir):
    model, config = loaded
    feats, _, _ = outputs
    assert config.model.feature == "released_concat" and model.feature_dim == 8192
    assert np.abs(feats.numpy() - np.load(oracle_dir / "expected_features.npy")).max() < TOL


def test_features_one_image_at_a_time_whatever_the_modality(loaded, oracle_dir, request):
    if "module." in request.node.name:
        pytest.skip("the same model as the plain-key variant: once is enough")
    model, _ = loaded
    x = torch.from_numpy(np.load(oracle_dir / "input.npy"))
    one = torch.cat([model.extract(x[i : i + 1], torch.ones(1, dtype=torch.long)) for i in (0, 3)])
    expected = np.load(oracle_dir / "expected_features.npy")[[0, 3]]
    assert np.abs(F.normalize(one, dim=1).numpy() - expected).max() < TOL


def test_representations_and_logits_match_the_release(outputs, oracle_dir):
    _, z, logits = outputs
    assert z.shape == (4, 2048) and logits.shape == (4, 1580)
    assert np.abs(z.numpy() - np.load(oracle_dir / "expected_representations.npy")).max() < TOL
    assert np.abs(logits.numpy() - np.load(oracle_dir / "expected_z_logits.npy")).max() < TOL


def test_the_release_config_reproduces_its_extraction(loaded):
    """What `vireid extract` / `test` and the inference layer take from the config, with no flag."""
    model, config = loaded
    assert (config.data.height, config.data.width, config.data.resize) == (256, 128, "pil")
    assert tuple(config.data.mean) == (0.485, 0.456, 0.406) and tuple(config.data.std) == (0.229, 0.224, 0.225)
    assert config.test.flip is False and config.train.amp is False
    assert config.model.routing == "released" and model.heads["S"].classifier.out_features == 395


def test_the_unused_fc_is_ignored_and_said_so(released_state_dict, caplog):
    with caplog.at_level(logging.WARNING, logger="vireid.models.released"):
        model_from_released({"model": released_state_dict}, "model_best.pth.tar")
    fc = [r.getMessage() for r in caplog.records if "fc" in r.getMessage()]
    assert len(fc) == 1 and "ignored" in fc[0]
    for branch in ("IR", "RGB", "shared"):
        assert f"{branch}_backbone.base.fc.weight" in fc[0] and f"{branch}_backbone.base.fc.bias" in fc[0]


def _one_line_error(obj) -> str:
    with pytest.raises(CheckpointError) as err:
        model_from_released(obj, "model_best.pth.tar")
    message = str(err.value)
    assert "\n" not in message and message.startswith("checkpoint model_best.pth.tar")
    return message


def test_missing_unexpected_and_reshaped_keys_are_one_line_errors_naming_the_first_few(released_state_dict):
    no_rgb = {k: v for k, v in released_state_dict.items() if not k.startswith("RGB_")}
    message = _one_line_error({"model": no_rgb})
    assert "missing: RGB_backbone.base.conv1.weight, RGB_backbone.base.bn1.weight, RGB_backbone.base.bn1.bias" \
        " (+" in message
    extra = {**released_state_dict, "IR_backbone.extra.weight": torch.zeros(1), "RGB_attention.w": torch.zeros(1)}
    assert "unexpected keys: IR_backbone.extra.weight, RGB_attention.w" in _one_line_error({"model": extra})
    reshaped = {**released_state_dict, "RGB_Bottleneck.classifier.4.weight": torch.zeros(394, 256)}
    assert "shape differs: RGB_Bottleneck.classifier.4.weight (394, 256) vs (395, 256)" in _one_line_error(
        {"model": reshaped})
