"""vireid export: ONNX (onnxruntime) and TorchScript equal PyTorch's extracted features; the sidecar alone is
enough to prepare inputs; the modality input; refusing to overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vireid.cli.main import main
from vireid.data import sysu
from vireid.inference.export import ExportError, export_model, run_exported
from vireid.inference.model import ReIDModel

pytest.importorskip("onnxruntime")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def protocol_inputs(synth_root):
    """The SYSU test images (both modalities) and their modality, from the layout."""
    recs = sysu.test_records(synth_root)
    return recs, np.array([r.modality for r in recs], np.int64)


@pytest.fixture(scope="module")
def concat_onnx(ckpt_concat, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "concat.onnx"
    model = ReIDModel.load(ckpt_concat, device="cpu")
    return export_model(model, out, "onnx"), model


def _prepared(model, synth_root, recs) -> torch.Tensor:
    return torch.stack([model.prepare(synth_root / r.path)[0] for r in recs])


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("which", ["ckpt", "ckpt_concat"])
def test_exported_model_equals_pytorch(fmt, which, request, synth_root, protocol_inputs, extracted, tmp_path):
    """On the real test images, the exported file's features equal `vireid extract`'s within 1e-4 after L2
    normalisation (and to 1e-4 relative before): the modality-dependent, flip-averaged z_concat model
    through its 'modality' input."""
    ckpt = request.getfixturevalue(which)
    recs, modality = protocol_inputs
    model = ReIDModel.load(ckpt, device="cpu")
    if which == "ckpt_concat" and fmt == "onnx":
        res, _ = request.getfixturevalue("concat_onnx")
    else:
        res = export_model(model, tmp_path / f"m.{fmt}", fmt)
    assert res.inputs == (["images", "modality"] if model.modality_dependent else ["images"])
    assert res.max_abs_diff_normalized < 1e-4
    fs = extracted(ckpt)
    x = _prepared(model, synth_root, recs)
    inputs = (x, torch.from_numpy(modality)) if model.modality_dependent else (x,)
    got = run_exported(res.path, fmt, inputs)
    ref = fs.lookup([r.path for r in recs])
    assert got.shape == ref.shape
    assert np.abs(_unit(got) - _unit(ref)).max() < 1e-4
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


def test_sidecar_alone_prepares_the_inputs(concat_onnx, ckpt_concat, synth_root, protocol_inputs, extracted):
    """A deployer's path: PIL resize + mean/std from the sidecar, onnxruntime; cosine >= 0.999 against
    `vireid extract` (here the images are 32x16 and the model's input 24x12: a real resize)."""
    import onnxruntime as ort

    res, model = concat_onnx
    side = json.loads(res.sidecar.read_text())
    assert res.sidecar.name == "concat.onnx.json"
    assert (side["height"], side["width"]) == (24, 12) and side["interpolation"] == "bilinear"
    assert side["feature"] == "z_concat" and side["feature_dim"] == 32 and side["l2_normalize"] is True
    assert side["checkpoint"]["sha256"] == model.sha256 and side["vireid"]
    assert [i["name"] for i in side["inputs"]] == ["images", "modality"]
    assert side["inputs"][1]["values"] == {"visible": 0, "infrared": 1}
    recs, modality = protocol_inputs
    mean, std = np.array(side["mean"], np.float32), np.array(side["std"], np.float32)

    def prepare(path):
        img = Image.open(path).convert("RGB").resize((side["width"], side["height"]), Image.BILINEAR)
        return ((np.asarray(img, np.float32) / 255 - mean) / std).transpose(2, 0, 1)

    x = np.stack([prepare(synth_root / r.path) for r in recs]).astype(np.float32)
    session = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x, "modality": modality})[0]
    ref = extracted(ckpt_concat).lookup([r.path for r in recs])
    cos = (_unit(got) * _unit(ref)).sum(1)
    assert cos.min() >= 0.999


def test_fixed_modality_bakes_one_path(ckpt_concat, synth_root, tmp_path):
    model = ReIDModel.load(ckpt_concat, device="cpu")
    res = export_model(model, tmp_path / "ir.pt", "torchscript", modality="infrared")
    assert res.inputs == ["images"]
    assert json.loads(res.sidecar.read_text())["fixed_modality"] == "infrared"
    images = sorted((synth_root / "cam1").rglob("*.jpg"))[:4]
    x = torch.stack([model.prepare(p)[0] for p in images])
    got = run_exported(res.path, "torchscript", (x,))
    np.testing.assert_allclose(_unit(got), model.embed(images, "infrared"), atol=1e-5)


def test_cli_export_prints_the_difference_and_refuses_to_overwrite(ckpt, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "largest difference vs PyTorch" in printed and str(out) in printed
    before = out.read_bytes(), (tmp_path / "model.onnx.json").read_text()
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--overwrite" in err
    assert (out.read_bytes(), (tmp_path / "model.onnx.json").read_text()) == before
    (tmp_path / "other.onnx.json").write_text("{}")  # a sidecar in the way counts too
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "other.onnx")]) == 2
    assert "other.onnx.json already exists" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out), "--overwrite"]) == 0
    with pytest.raises(ExportError, match="--format"):
        export_model(ReIDModel.load(ckpt, device="cpu"), tmp_path / "x.bin", "tflite")
