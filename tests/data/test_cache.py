"""Decoded-image cache: build, reuse, invalidation, atomicity, corrupt images."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import vireid.data.cache as cache_mod
from vireid.data.cache import CorruptImageError, build_cache, cache_key, decode_image, load_resized
from vireid.data.training_sets import sysu_training_set

H, W = 8, 4


@pytest.fixture
def recs(sysu_root):
    return sysu_training_set(sysu_root).records


def build(recs, root, cache_dir, **kw):
    return build_cache(recs, root, H, W, cache_dir, progress=False, **kw)


def test_build_matches_decoding_and_is_reused(recs, sysu_root, tmp_path, monkeypatch):
    c = build(recs, sysu_root, tmp_path / "c")
    arr = c.open()
    assert arr.shape == (len(recs), H, W, 3) and arr.dtype == np.uint8
    assert c.rows == list(range(len(recs))) and c.skipped == []
    for i in (0, len(recs) // 2, len(recs) - 1):
        expect = load_resized(sysu_root / recs[i].path, H, W).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(arr[i], expect)
    assert json.loads(c.array_path.with_suffix(".json").read_text())["shape"] == [len(recs), H, W, 3]

    mtime = os.stat(c.array_path).st_mtime_ns

    def no_decoding(*a, **k):
        raise AssertionError("a valid cache must not be rebuilt")

    monkeypatch.setattr(cache_mod, "decode_all", no_decoding)
    again = build(recs, sysu_root, tmp_path / "c")
    assert again.array_path == c.array_path and os.stat(c.array_path).st_mtime_ns == mtime


def test_key_changes_with_list_size_and_files(recs, sysu_root, trees):
    k = cache_key(recs, sysu_root, H, W)
    assert cache_key(recs, sysu_root, H, W) == k
    assert cache_key(recs[:-1], sysu_root, H, W) != k
    assert cache_key(recs, sysu_root, H + 1, W) != k
    img = sysu_root / recs[3].path
    trees.write_image(img, (1, 2, 3))
    os.utime(img, ns=(1, 1))
    assert cache_key(recs, sysu_root, H, W) != k


def test_changed_list_rebuilds(recs, sysu_root, tmp_path):
    a = build(recs, sysu_root, tmp_path / "c")
    b = build(recs[:-2], sysu_root, tmp_path / "c")
    assert a.array_path != b.array_path and b.open().shape[0] == len(recs) - 2
    assert a.array_path.exists()  # the other list's cache is kept for reuse


def test_interrupted_build_leaves_no_valid_cache(recs, sysu_root, tmp_path, monkeypatch):
    real = cache_mod.decode_all

    def interrupted(*a, **k):
        for n, item in enumerate(real(*a, **k)):
            if n == 5:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(cache_mod, "decode_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(recs, sysu_root, tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.npy")) and not list((tmp_path / "c").glob("*.json"))
    assert not list((tmp_path / "c").glob(".*.tmp"))
    monkeypatch.setattr(cache_mod, "decode_all", real)
    c = build(recs, sysu_root, tmp_path / "c")
    assert c.open()[-1].any()


def test_array_without_marker_is_not_valid(recs, sysu_root, tmp_path):
    c = build(recs, sysu_root, tmp_path / "c")
    np.lib.format.open_memmap(c.array_path, mode="r+")[:] = 0  # as if a build died before its marker
    c.array_path.with_suffix(".json").unlink()
    again = build(recs, sysu_root, tmp_path / "c")
    assert again.open()[0].any()


def test_corrupt_image_is_named_or_skipped(recs, sysu_root, tmp_path, caplog):
    bad = sysu_root / recs[4].path
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    with pytest.raises(CorruptImageError, match=recs[4].path):
        build(recs, sysu_root, tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.json"))

    c = build(recs, sysu_root, tmp_path / "c", skip_corrupt=True)
    assert len(c.skipped) == 1 and recs[4].path in c.skipped[0]
    assert 4 not in c.rows and len(c.rows) == len(recs) - 1
    assert "skipped 1 unreadable" in caplog.text
    with pytest.raises(CorruptImageError, match=recs[4].path):  # the reused cache still refuses without the option
        build(recs, sysu_root, tmp_path / "c")


def test_decode_is_always_rgb(tmp_path, trees):
    trees.write_image(tmp_path / "g.png", (90, 0, 0), grey=True)
    img = decode_image(tmp_path / "g.png")
    assert img.shape == (3, 16, 8) and img.dtype == torch.uint8 and (img == 90).all()
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(CorruptImageError, match="junk.jpg"):
        decode_image(tmp_path / "junk.jpg")


def test_stale_temporary_files_of_a_killed_build_are_removed(recs, sysu_root, tmp_path):
    key = cache_key(recs, sysu_root, H, W)
    (tmp_path / "c").mkdir()
    stale = tmp_path / "c" / f".{key}.npy.abc123.npy.tmp"
    stale.write_bytes(b"half")
    build(recs, sysu_root, tmp_path / "c")
    assert not stale.exists()
