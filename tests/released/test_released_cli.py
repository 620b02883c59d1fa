"""End to end: `vireid test` / `vireid extract` on a release-format checkpoint (another class count, keys
with ``module.``) over a tiny SYSU-MM01-shaped SynthVI tree, with no flag; and the format switch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from vireid.cli.main import main
from vireid.data import sysu
from vireid.errors import CheckpointError, ConfigError
from vireid.models.loading import load_model

NUM_CLASSES = 7  # not the oracle's 395: the loader reads the class count from the classifier shapes
CLASSIFIERS = ("_backbone.classifier.0.", "_Bottleneck.classifier.4.")


@pytest.fixture(scope="module")
def release_file(released_state_dict, tmp_path_factory):
    """The oracle's weights with 7-class classifiers, saved from a DataParallel wrapper (``module.``)."""
    sd = {}
    for key, value in released_state_dict.items():
        if any(c in key for c in CLASSIFIERS):
            value = value[:NUM_CLASSES]
        sd["module." + key] = value
    path = tmp_path_factory.mktemp("release") / "model_best.pth.tar"
    torch.save({"model": sd, "epoch": 600, "best_top1": 0.5}, path)
    return path


@pytest.fixture(scope="module")
def sysu_tree(tmp_path_factory):
    from vireid.data.synthvi import generate

    # 12 identities -> 3 test identities, 13 test images (32x16 JPEGs, PIL-resized to 256x128)
    return generate(tmp_path_factory.mktemp("synth") / "sysu", layout="sysu", num_ids=12, seed=0,
                    height=32, width=16, min_images=1, max_images=1)


def test_vireid_test_reads_the_release_format_with_no_flag(release_file, sysu_tree, tmp_path, caplog):
    out_json, feats_file = tmp_path / "result.json", tmp_path / "feats.npz"
    status = main(["test", "--checkpoint", str(release_file), "--dataset", "sysu", "--root", str(sysu_tree),
                   "--sampling", "seeded", "--device", "cpu", "--json", str(out_json),
                   "--save-features", str(feats_file)])
    assert status == 0
    result = json.loads(out_json.read_text())
    assert result and "mAP" in json.dumps(result)
    saved = np.load(feats_file)
    paths, feats = list(saved["paths"]), saved["feats"]
    assert feats.shape == (len(sysu.test_records(sysu_tree)), 8192) and np.isfinite(feats).all()
    # the release's own extraction of the first image: Image.open -> Resize((256, 128)) -> ToTensor ->
    # Normalize -> ft_net -> [v_I(grey), v_S(grey), v_V, v_S(raw)]; our model of the same file does the net
    model, _, _ = load_model(release_file)
    assert model.heads["V"].classifier.out_features == NUM_CLASSES
    release_transform = transforms.Compose([transforms.Resize((256, 128)), transforms.ToTensor(),
                                            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    image = release_transform(Image.open(sysu_tree / paths[0]))[None]
    expected = F.normalize(model.extract(image, torch.zeros(1, dtype=torch.long)), dim=1)[0].numpy()
    got = feats[0] / np.linalg.norm(feats[0])
    assert np.abs(got - expected).max() < 1e-5
    assert any("unused ResNet fc" in r.getMessage() for r in caplog.records)  # ignored, and said so


def test_format_switch(release_file, tmp_path, released_state_dict):
    with pytest.raises(CheckpointError, match="not a vireid checkpoint"):
        load_model(release_file, format="vireid")
    with pytest.raises(ConfigError, match="--format"):
        load_model(release_file, format="onnx")
    vireid_like = tmp_path / "model.pt"
    torch.save({"format": "vireid-checkpoint", "model": {}, "config": {}, "num_classes": 3}, vireid_like)
    with pytest.raises(CheckpointError, match="not in the released model's format"):
        load_model(vireid_like, format="released")
    foreign = tmp_path / "other.pth"
    torch.save({"model": {"backbone.conv1.weight": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="neither a vireid checkpoint .* nor the released model's format"):
        load_model(foreign)


def test_cli_bad_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    foreign = tmp_path / "other.pth"
    torch.save({"weights": [1, 2]}, foreign)
    status = main(["extract", "--checkpoint", str(foreign), "--format", "released", "--dataset", "sysu",
                   "--root", str(tmp_path), "--out", str(tmp_path / "f.npz")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and err.startswith("vireid extract: error:")
