"""ReIDModel: embed equals `vireid extract`, every input type, the modality rule, inspection, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.data.records import INFRARED, VISIBLE
from vireid.errors import CheckpointError, DatasetError, VireidError
from vireid.inference.images import ImageInputError, guess_modality, path_identity
from vireid.inference.model import ReIDModel, is_modality_dependent
from vireid.models.config import ModelConfig


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("which", ["ckpt", "ckpt_concat"])
def test_embed_equals_extracted_features(which, request, synth_root, extracted):
    """Paths embedded with modality=None give `vireid extract`'s features (which take the modality from the
    layout), L2-normalised: same decoder, transform, feature, flip averaging (ckpt_concat: flip, a resize
    and a modality-dependent feature)."""
    ckpt = request.getfixturevalue(which)
    fs = extracted(ckpt)
    model = ReIDModel.load(ckpt, device="cpu")
    got = model.embed([synth_root / p for p in fs.paths])
    assert got.dtype == np.float32 and got.shape == fs.feats.shape
    np.testing.assert_allclose(got, _unit(fs.feats), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    raw = model.embed([synth_root / p for p in fs.paths], normalize=False)
    np.testing.assert_array_equal(raw, fs.feats)


def test_every_input_type_gives_the_same_feature(ckpt, synth_root):
    model = ReIDModel.load(ckpt, device="cpu")
    vis = sorted((synth_root / "cam1").rglob("*.jpg"))[0]
    ir = sorted((synth_root / "cam3").rglob("*.jpg"))[0]
    ref = model.embed([vis, ir])
    pil = [Image.open(vis), Image.open(ir)]
    arrays = [np.array(p.convert("RGB")) for p in pil]
    tensors = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]
    for images in ([str(vis), str(ir)], pil, arrays, tensors, np.stack(arrays), torch.stack(tensors)):
        np.testing.assert_array_equal(model.embed(images), ref)
    # One image -> 1 x D. Another batch size may change the last bits (the CPU kernels block by batch size).
    np.testing.assert_allclose(model.embed(vis), ref[:1], rtol=0, atol=1e-5)
    grey = arrays[1][:, :, 0]  # an infrared image's one channel = the decoded three
    np.testing.assert_allclose(model.embed(grey), ref[1:], rtol=0, atol=1e-5)
    assert model.embed([]).shape == (0, model.feature_dim)


def test_inspection(ckpt_concat):
    model = ReIDModel.load(ckpt_concat, device="cpu")
    assert model.input_size == (24, 12)
    assert model.feature == "z_concat" and model.feature_dim == 32  # [specific z, shared z], z_dim 16
    assert model.config.model.test_feature == "z_concat" and model.config.test.flip is True
    assert model.modality_dependent and model.flip
    assert len(model.sha256) == 64 and model.identity()["sha256"] == model.sha256
    assert "z_concat" in repr(model)


def test_modality_changes_exactly_the_features_the_docs_say(ckpt, ckpt_concat, synth_root):
    images = sorted((synth_root / "cam1").rglob("*.jpg"))[:3]
    shared = ReIDModel.load(ckpt, device="cpu")
    assert not shared.modality_dependent
    np.testing.assert_array_equal(shared.embed(images, "visible"), shared.embed(images, "infrared"))
    concat = ReIDModel.load(ckpt_concat, device="cpu")
    v, i = concat.embed(images, "visible"), concat.embed(images, "infrared")
    assert np.abs(v - i).max() > 1e-3
    np.testing.assert_array_equal(concat.embed(images, modality=None), v)  # colour images: visible
    np.testing.assert_array_equal(concat.embed(images, modality=["infrared"] * 3), i)
    np.testing.assert_array_equal(concat.embed(images, modality=INFRARED), i)


@pytest.mark.parametrize("cfg,dependent", [
    (dict(name="vd"), False),
    (dict(name="vd", test_feature="v_shared"), False),
    (dict(name="vd", test_feature="z_specific"), True),
    (dict(name="vd", test_feature="v_concat"), True),
    (dict(name="vd", routing="released", test_feature="z_concat"), False),
    (dict(name="vd", test_feature="released_concat"), False),
    (dict(name="ib", test_feature="z_specific"), True),
    (dict(name="baseline"), True),
])
def test_modality_dependence_matches_the_network(cfg, dependent):
    """The documented rule, checked against the network itself: extract(x, visible) vs extract(x, infrared)."""
    from vireid.models.build import build_model

    mc = ModelConfig(backbone="mobilenet_v3_small", pretrained="none", z_dim=8, bottleneck_hidden=[16], **cfg)
    assert is_modality_dependent(mc) is dependent
    torch.manual_seed(0)
    net = build_model(mc, 3).eval()
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        differs = not torch.equal(net.extract(x, torch.zeros(2)), net.extract(x, torch.ones(2)))
    assert differs is dependent


def test_modality_rule_and_path_identity(synth_root):
    from vireid.data.cache import decode_image

    assert guess_modality(decode_image(sorted((synth_root / "cam3").rglob("*.jpg"))[0])) == INFRARED
    assert guess_modality(decode_image(sorted((synth_root / "cam2").rglob("*.jpg"))[0])) == VISIBLE
    assert path_identity("x/cam3/0012/0001.jpg") == path_identity("cam3/0012/0001.jpg")
    ident = path_identity("/data/SYSU/cam6/0107/0003.jpg")
    assert (ident.pid, ident.camera, ident.modality, ident.layout) == (107, 6, INFRARED, "sysu")
    ident = path_identity("RegDB/Visible/41/female_front_v_00001_41.bmp")
    assert (ident.pid, ident.camera, ident.modality, ident.layout) == (41, 1, VISIBLE, "regdb")
    assert path_identity("photos/me.jpg").pid == -1 and path_identity("cam9/0001/a.jpg").pid == -1


def test_bad_inputs(ckpt, tmp_path):
    model = ReIDModel.load(ckpt, device="cpu")
    with pytest.raises(ImageInputError, match="uint8"):
        model.embed(np.zeros((32, 16, 3), np.float32))
    with pytest.raises(ImageInputError, match="uint8"):
        model.embed(torch.zeros(3, 32, 16))
    with pytest.raises(ImageInputError, match="shape"):
        model.embed(np.zeros((32, 16, 5), np.uint8))
    with pytest.raises(ImageInputError, match="modality"):
        model.embed(np.zeros((32, 16, 3), np.uint8), modality="thermal")
    with pytest.raises(ImageInputError, match="2 values for 1 images"):
        model.embed(np.zeros((32, 16, 3), np.uint8), modality=["visible", "visible"])
    with pytest.raises(ImageInputError, match="got int"):
        model.embed(3)
    with pytest.raises(DatasetError, match="does not exist"):
        model.embed(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_text("not an image")
    with pytest.raises(DatasetError, match="cannot decode"):
        model.embed(tmp_path / "bad.jpg")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="vireid checkpoint"):
        ReIDModel.load(tmp_path / "foreign.pt", device="cpu")
    with pytest.raises(VireidError, match="does not exist"):
        ReIDModel.load(tmp_path / "nope.pt", device="cpu")


def test_inference_never_imports_the_trainer(ckpt, synth_root):
    """The inference layer (and its commands) load, embed, index, search and export without vireid.training."""
    image = sorted((synth_root / "cam1").rglob("*.jpg"))[0]
    code = f"""
import sys
import torch
torch.set_num_threads(1)
from vireid import ReIDModel
import vireid.inference.index, vireid.inference.search, vireid.inference.export
import vireid.cli.index, vireid.cli.search, vireid.cli.export, vireid.visualization.ranked_list
model = ReIDModel.load({str(ckpt)!r}, device="cpu")
assert model.embed([{str(image)!r}]).shape == (1, model.feature_dim)
bad = sorted(m for m in sys.modules if m == "vireid.training" or m.startswith("vireid.training."))
assert not bad, bad
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
