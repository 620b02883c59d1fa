"""Training and evaluation loaders end to end on tiny trees."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from vireid.data.cache import CorruptImageError
from vireid.data.config import AugmentConfig
from vireid.data.loaders import build_eval_loader, build_training_data
from vireid.data.records import INFRARED, VISIBLE
from vireid.errors import ConfigError

AUG = AugmentConfig(flip=0.5, pad=1, erasing=0.3, channel=0.3)


def batches(td, epoch=0):
    td.sampler.set_epoch(epoch)
    return list(td.loader)


def test_training_batches_follow_the_contract(sysu_root, data_cfg, trees):
    td = build_training_data(data_cfg, sysu_root, seed=0, progress=False)
    assert td.num_classes == len(trees.SYSU_TRAIN + trees.SYSU_VAL) == len(td.label_map)
    assert len(td.loader) == td.num_classes // data_cfg.ids_per_batch
    b = next(iter(td.loader))
    n = data_cfg.ids_per_batch * 2 * data_cfg.instances
    assert b["images"].shape == (n, 3, data_cfg.height, data_cfg.width) and b["images"].dtype == torch.float32
    for key in ("labels", "modality", "pids", "cameras", "index"):
        assert b[key].dtype == torch.int64 and b[key].shape == (n,)
    k = data_cfg.instances
    assert b["modality"].tolist() == ([VISIBLE] * k + [INFRARED] * k) * data_cfg.ids_per_batch
    vis, ir = b["modality"] == VISIBLE, b["modality"] == INFRARED
    assert torch.equal(b["labels"][vis], b["labels"][ir])
    for j, i in enumerate(b["index"].tolist()):
        r = td.train_records[i]
        assert (r.label, r.pid, r.camera, r.modality) == tuple(b[x][j].item() for x in ("labels", "pids", "cameras", "modality"))
        assert td.label_map[r.pid] == r.label


def test_cache_and_per_sample_decoding_agree(sysu_root, data_cfg):
    cfg = replace(data_cfg, augment=AUG)
    cached = batches(build_training_data(cfg, sysu_root, seed=3, progress=False), epoch=2)
    decoded = batches(build_training_data(replace(cfg, cache=False), sysu_root, seed=3, progress=False), epoch=2)
    for a, b in zip(cached, decoded, strict=True):
        assert torch.equal(a["index"], b["index"])
        torch.testing.assert_close(a["images"], b["images"])


def test_augmentation_is_deterministic_with_and_without_workers(sysu_root, data_cfg):
    cfg = replace(data_cfg, augment=AUG)
    a = batches(build_training_data(cfg, sysu_root, seed=5, progress=False), epoch=1)
    b = batches(build_training_data(replace(cfg, num_workers=2), sysu_root, seed=5, progress=False), epoch=1)
    c = batches(build_training_data(cfg, sysu_root, seed=6, progress=False), epoch=1)
    assert all(torch.equal(x["images"], y["images"]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x["images"], y["images"]) for x, y in zip(a, c, strict=False))


def test_loading_leaves_the_global_generator_alone(sysu_root, data_cfg):
    td = build_training_data(replace(data_cfg, augment=AUG), sysu_root, seed=0, progress=False)
    torch.manual_seed(123)
    expect = torch.rand(3)
    torch.manual_seed(123)
    next(iter(td.loader))
    assert torch.equal(torch.rand(3), expect)


def test_nothing_is_written_to_the_dataset(sysu_root, regdb_root, data_cfg, trees):
    before = {r: trees.snapshot(r) for r in (sysu_root, regdb_root)}
    for cache in (True, False):
        cfg = replace(data_cfg, cache=cache, val_split="official", augment=AUG)
        td = build_training_data(cfg, sysu_root, seed=0, progress=False)
        batches(td)
        list(build_eval_loader(td.val_query, sysu_root, cfg, 4, cache=cache))
        rcfg = replace(cfg, dataset="regdb", val_split=2, ids_per_batch=2)
        batches(build_training_data(rcfg, regdb_root, seed=0, progress=False))
    assert {r: trees.snapshot(r) for r in (sysu_root, regdb_root)} == before


def test_validation_split_and_eval_loader(sysu_root, data_cfg, trees):
    td = build_training_data(replace(data_cfg, val_split="official"), sysu_root, seed=0, progress=False)
    assert td.num_classes == len(trees.SYSU_TRAIN)
    assert {r.pid for r in td.val_query} == set(trees.SYSU_VAL)
    assert not {r.pid for r in td.train_records} & {r.pid for r in td.val_gallery}
    loader = build_eval_loader(td.val_gallery, sysu_root, data_cfg, batch_size=5)
    got = list(loader)
    assert torch.cat([b["index"] for b in got]).tolist() == list(range(len(td.val_gallery)))
    assert all(b["images"].shape[1:] == (3, data_cfg.height, data_cfg.width) for b in got)
    assert (torch.cat([b["modality"] for b in got]) == VISIBLE).all()
    cached = list(build_eval_loader(td.val_gallery, sysu_root, data_cfg, batch_size=5, cache=True))
    assert all(torch.equal(a["images"], b["images"]) for a, b in zip(got, cached, strict=True))


def test_regdb_training_data(regdb_root, data_cfg, trees):
    td = build_training_data(replace(data_cfg, dataset="regdb", trial=1), regdb_root, seed=0, progress=False)
    assert td.num_classes == len(trees.REGDB_TRAIN[1])
    assert len(batches(td)) == td.num_classes // data_cfg.ids_per_batch


@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_image_error_or_skip(sysu_root, data_cfg, cache):
    bad = sysu_root / "cam1" / "0004" / "0001.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    cfg = replace(data_cfg, cache=cache)
    if cache:
        with pytest.raises(CorruptImageError, match="cam1/0004/0001.jpg"):
            build_training_data(cfg, sysu_root, seed=0, progress=False)
    else:  # decoding per sample: the error comes when the image is read
        td = build_training_data(cfg, sysu_root, seed=0, progress=False)
        with pytest.raises(CorruptImageError, match="cam1/0004/0001.jpg"):
            for e in range(20):
                batches(td, e)
    td = build_training_data(replace(cfg, skip_corrupt=True), sysu_root, seed=0, progress=False)
    assert len(td.skipped) == 1 and "cam1/0004/0001.jpg" in td.skipped[0]
    assert "cam1/0004/0001.jpg" not in {r.path for r in td.train_records}
    for e in range(3):
        batches(td, e)


def test_root_is_required(data_cfg):
    with pytest.raises(ConfigError, match="data.root"):
        build_training_data(data_cfg, None, seed=0)


@pytest.mark.parametrize("layout", ["sysu", "regdb"])
def test_synthvi_tree_feeds_the_training_loader(tmp_path, data_cfg, trees, layout):
    synthvi = pytest.importorskip("vireid.data.synthvi")
    if not hasattr(synthvi, "generate"):
        pytest.skip("SynthVI generator not available")
    root = synthvi.generate(tmp_path / layout, layout=layout, num_ids=12, seed=0, height=32, width=16)
    before = trees.snapshot(root)
    cfg = replace(data_cfg, dataset=layout, val_split=2, augment=AUG)
    td = build_training_data(cfg, root, seed=0, progress=False)
    assert td.num_classes >= 2 and td.val_query and td.val_gallery
    b = batches(td)[0]
    assert torch.equal(b["labels"][b["modality"] == VISIBLE], b["labels"][b["modality"] == INFRARED])
    assert trees.snapshot(root) == before


def test_skipping_all_infrared_images_of_an_identity_drops_it(sysu_root, data_cfg):
    # id 8 has 4 cam3 images and 3 cam6 images (sysu_count); corrupt them all
    for cam in (3, 6):
        for f in (sysu_root / f"cam{cam}" / "0008").iterdir():
            f.write_bytes(b"broken")
    td = build_training_data(replace(data_cfg, skip_corrupt=True), sysu_root, seed=0, progress=False)
    assert len(td.skipped) == 7
    assert 8 not in {r.pid for r in td.train_records}
    for b in batches(td):
        assert 8 not in b["pids"].tolist()
        assert torch.equal(b["labels"][b["modality"] == VISIBLE], b["labels"][b["modality"] == INFRARED])
