"""`vireid demo` on a minimal setting: results.json schema, pictures, refusal of existing folders, CLI errors."""

from __future__ import annotations

import json

import pytest
import torch

from vireid.cli.main import main
from vireid.demo import (
    MARKER,
    METHODS,
    PRESETS,
    DemoError,
    format_table,
    method_config,
    run_demo,
    summary_lines,
)

# 12 SynthVI ids (7 train, 2 validation, 3 test) at 32x16, one epoch of P=2 ids x (2 V + 2 I) per batch.
TINY = ["data.height=32", "data.width=16", "data.ids_per_batch=2", "data.instances=2", "model.z_dim=16",
        "model.bottleneck_hidden=[32]", "test.batch_size=64", "train.eval_batch_size=64"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run_demo(out, quick=True, num_ids=12, epochs=1, overrides=TINY, progress=False)
    finally:
        torch.set_num_threads(before)
    return out, results


def test_results_json_has_the_issue_schema(demo):
    out, results = demo
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert set(on_disk["methods"]) == set(METHODS)
    for method, res in on_disk["methods"].items():
        for mode in ("all", "indoor"):
            scores = res[mode]
            for key in ("rank1", "mAP", "mINP"):
                assert 0.0 <= scores[key] <= 100.0, (method, mode, key)
                assert scores["std"][key] >= 0.0
            assert scores["trials"] == 10
            assert scores["rank1"] <= scores["rank5"] <= scores["rank10"] <= scores["rank20"]
        assert res["selected_epoch"] == 1
        assert set(res["validation"]) >= {"rank1", "mAP", "mINP"}
    assert on_disk["validation"]["vd"] == on_disk["methods"]["vd"]["validation"]
    protocol = on_disk["settings"]["protocol"]
    assert (protocol["shots"], protocol["trials"], protocol["sampling"]) == (1, 10, "seeded")
    assert on_disk["settings"]["dataset"]["num_ids"] == 12
    # the same recipe for every method, except the model and loss sections
    recipes = on_disk["settings"]["recipes"]
    for section in ("data", "optim", "schedule", "train"):
        assert recipes["vd"][section] == recipes["ib"][section] == recipes["baseline"][section], section
    assert recipes["vd"]["model"]["backbone"] == recipes["baseline"]["model"]["backbone"] == "vgg8_bn"
    timings = on_disk["timings"]
    assert timings["total_s"] >= sum(timings[f"{m}/train"] for m in METHODS)


def test_pictures_table_and_dataset_are_written(demo):
    out, results = demo
    for method in METHODS:
        for name in (f"tsne_{method}.png", f"curves_{method}.png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (out / "runs" / method / "model.pt").is_file()
    assert (out / "data" / "synthvi.json").is_file() and (out / "data" / "exp" / "test_id.txt").is_file()
    table = (out / "table.txt").read_text()
    assert table.strip() == results["table"] and all(m in table for m in METHODS)
    assert (out / MARKER).is_file()


def test_existing_non_empty_folder_is_refused(tmp_path, demo):
    out, _ = demo
    with pytest.raises(DemoError, match="not empty.*--overwrite"):
        run_demo(out, quick=True, progress=False)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(DemoError, match="not a vireid demo folder"):
        run_demo(other, overwrite=True, progress=False)
    assert (other / "keep.txt").read_text() == "x"


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, demo):
    out, _ = demo
    cases = [
        ["demo", "--out", str(out), "--quick"],                       # existing, non-empty
        ["demo", "--out", str(tmp_path / "a"), "--methods", "vd,xx"],  # unknown method
        ["demo", "--out", str(tmp_path / "b"), "--ids", "3"],          # too few ids
        ["demo", "--out", str(tmp_path / "c"), "train.nope=1"],        # unknown config key
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("vireid demo: error:") and "\n" not in err, err
    assert not any((tmp_path / n).exists() for n in "abc")  # nothing written on bad input


def test_table_and_verdict_lines():
    scores = {"rank1": 10.0, "mAP": 20.0, "mINP": 5.0, "std": {"rank1": 1.0, "mAP": 2.0, "mINP": 0.5}}
    lower = {**scores, "mAP": 15.0}
    methods = {"vd": {"all": scores, "indoor": scores}, "ib": {"all": lower, "indoor": lower},
               "baseline": {"all": lower, "indoor": lower}}
    table = format_table(methods)
    assert "20.00 ±  2.00" in table and "15.00" in table and len(table.splitlines()) == 5
    lines = summary_lines({"methods": methods, "table": table, "timings": {"total_s": 12.0}})
    assert "vd beats" in lines[1]
    assert "one training seed" in lines[2] and "does not rank the methods" in lines[2]
    methods["ib"]["all"] = {**scores, "mAP": 25.0}
    lines = summary_lines({"methods": methods, "table": table, "timings": {"total_s": 12.0}})
    assert "vd does not beat the best other method (ib)" in lines[1]


def test_presets_share_one_recipe_across_methods():
    for preset in PRESETS.values():
        cfgs = {m: method_config(m, preset).to_dict() for m in METHODS}
        for section in ("data", "optim", "schedule", "train", "test"):
            assert cfgs["vd"][section] == cfgs["ib"][section] == cfgs["baseline"][section]
        assert cfgs["vd"]["train"]["epochs"] == preset.epochs
        assert cfgs["vd"]["data"]["val_split"] == "official" and cfgs["vd"]["train"]["select"] == "val"


def test_resnet10_backbone_is_a_one_block_torchvision_resnet(tmp_path):
    import torchvision

    from vireid.errors import ConfigError
    from vireid.models.backbones import build_stages

    stages, channels = build_stages("resnet10", last_stride=1)
    x = torch.randn(2, 3, 64, 32)
    for s in stages:
        x = s(x)
    assert channels == 512 and x.shape == (2, 512, 4, 2)
    assert sum(isinstance(m, torchvision.models.resnet.BasicBlock) for st in stages for m in st.modules()) == 4
    with pytest.raises(ConfigError, match="no ImageNet weights exist for resnet10"):
        build_stages("resnet10", pretrained="imagenet")
    reference = torchvision.models.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])
    torch.save(reference.state_dict(), tmp_path / "r10.pth")
    stages, _ = build_stages("resnet10", pretrained=str(tmp_path / "r10.pth"))
    assert torch.equal(stages[0][0].weight, reference.conv1.weight)
