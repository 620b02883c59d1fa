"""Bad input to vireid index / search / export: one line naming the problem, exit status 2, nothing
overwritten; unreadable gallery images skipped and counted (or refused with --strict)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from vireid.cli.main import main


def _fails(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("vireid ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def small_gallery(gallery_dir, tmp_path):
    out = tmp_path / "gallery"
    shutil.copytree(gallery_dir / "cam1", out / "cam1")
    return out


def test_unreadable_images_are_skipped_and_counted_or_refused_with_strict(ckpt, small_gallery, tmp_path, capsys):
    (small_gallery / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (small_gallery / "notes.txt").write_text("not an image")
    n_good = len(list(small_gallery.rglob("*.jpg"))) - 1
    out = tmp_path / "idx.npz"
    assert main(["index", "--checkpoint", str(ckpt), "--images", str(small_gallery), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 unreadable image" in captured.err and "broken.jpg" in captured.err
    assert "ignored 1 file" in captured.err
    with np.load(out) as data:
        assert len(data["paths"]) == n_good
        meta = json.loads(str(data["meta"]))
    assert meta["num_skipped"] == 1 and meta["skipped"][0]["path"] == "broken.jpg"
    strict = tmp_path / "strict.npz"
    _fails(capsys, ["index", "--checkpoint", str(ckpt), "--images", str(small_gallery), "--out", str(strict),
                    "--strict"], "--strict", "broken.jpg")
    assert not strict.exists()


def test_empty_or_missing_folder(ckpt, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    _fails(capsys, ["index", "--checkpoint", str(ckpt), "--images", str(empty), "--out", str(tmp_path / "a.npz")],
           "holds no image files", "1 other files")
    _fails(capsys, ["index", "--checkpoint", str(ckpt), "--images", str(tmp_path / "nope"),
                    "--out", str(tmp_path / "a.npz")], "does not exist")
    assert not (tmp_path / "a.npz").exists()


def test_foreign_checkpoint(small_gallery, tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state": {"w": torch.zeros(3)}}, foreign)
    _fails(capsys, ["index", "--checkpoint", str(foreign), "--images", str(small_gallery),
                    "--out", str(tmp_path / "a.npz")], "foreign.pt", "vireid checkpoint")
    _fails(capsys, ["export", "--checkpoint", str(foreign), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
           "foreign.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"certainly not a checkpoint")
    _fails(capsys, ["index", "--checkpoint", str(garbage), "--images", str(small_gallery),
                    "--out", str(tmp_path / "a.npz")], "garbage.pt")


def test_index_of_another_checkpoint_is_refused(ckpt, ckpt_concat, small_gallery, query_paths, tmp_path, capsys):
    index = tmp_path / "idx.npz"
    assert main(["index", "--checkpoint", str(ckpt), "--images", str(small_gallery), "--out", str(index)]) == 0
    capsys.readouterr()
    line = _fails(capsys, ["search", "--checkpoint", str(ckpt_concat), "--index", str(index), "--query",
                           str(query_paths[0]), "--out", str(tmp_path / "s")], "was built by checkpoint", ckpt.name,
                  ckpt_concat.name)
    assert "rebuild" in line
    assert not (tmp_path / "s").exists()


def test_missing_query_bad_index_and_existing_outputs(ckpt, small_gallery, query_paths, tmp_path, capsys):
    index = tmp_path / "idx.npz"
    assert main(["index", "--checkpoint", str(ckpt), "--images", str(small_gallery), "--out", str(index)]) == 0
    capsys.readouterr()
    search = ["search", "--checkpoint", str(ckpt), "--index", str(index), "--out"]
    _fails(capsys, [*search, str(tmp_path / "s"), "--query", str(query_paths[0]), str(tmp_path / "ghost.jpg")],
           "--query", "ghost.jpg", "does not exist")
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    _fails(capsys, ["search", "--checkpoint", str(ckpt), "--index", str(tmp_path / "bad.npz"), "--query",
                    str(query_paths[0]), "--out", str(tmp_path / "s")], "bad.npz", "not a readable vireid index")
    np.savez(tmp_path / "features.npz", paths=np.array(["a"]), feats=np.zeros((1, 4), np.float32))
    _fails(capsys, ["search", "--checkpoint", str(ckpt), "--index", str(tmp_path / "features.npz"), "--query",
                    str(query_paths[0]), "--out", str(tmp_path / "s")], "is not a vireid index")
    # An index file that exists: refused without --overwrite; with it, only a vireid index is replaced.
    before = index.read_bytes()
    _fails(capsys, ["index", "--checkpoint", str(ckpt), "--images", str(small_gallery), "--out", str(index)],
           "already exists", "--overwrite")
    assert index.read_bytes() == before
    other = tmp_path / "precious.npz"
    other.write_bytes(b"my data")
    _fails(capsys, ["index", "--checkpoint", str(ckpt), "--images", str(small_gallery), "--out", str(other),
                    "--overwrite"], "refusing to overwrite", "not a vireid index")
    assert other.read_bytes() == b"my data"
    # A search folder that holds someone else's files.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("keep")
    _fails(capsys, [*search, str(mine), "--query", str(query_paths[0])], "already exists")
    _fails(capsys, [*search, str(mine), "--query", str(query_paths[0]), "--overwrite"], "refusing to overwrite")
    assert (mine / "keep.txt").read_text() == "keep"
    # Our own search folder is replaced with --overwrite.
    s = tmp_path / "s"
    assert main([*search, str(s), "--query", str(query_paths[0]), "--no-pictures"]) == 0
    _fails(capsys, [*search, str(s), "--query", str(query_paths[0])], "already exists")
    assert main([*search, str(s), "--query", str(query_paths[0]), "--overwrite"]) == 0
    assert (s / "results.json").is_file() and len(list((s / "ranked").glob("*.png"))) == 1
