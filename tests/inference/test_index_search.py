"""vireid index + vireid search: the ranking equals the nearest neighbours of extracted features; faiss equals
exact; re-ranking; resuming; what the index stores; ranked-list pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vireid.cli.main import main
from vireid.data.records import INFRARED, VISIBLE
from vireid.inference.index import build_index, load_index
from vireid.inference.model import ReIDModel, file_sha256
from vireid.inference.search import SearchError, exact_topk, faiss_topk, rerank_topk, search_index


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def built(ckpt_concat, gallery_dir, tmp_path_factory):
    """`vireid index` of the visible gallery folder with the modality-dependent model."""
    out = tmp_path_factory.mktemp("index") / "gallery.npz"
    assert main(["index", "--checkpoint", str(ckpt_concat), "--images", str(gallery_dir), "--out", str(out),
                 "--device", "cpu"]) == 0
    return out


def test_index_stores_paths_identities_and_the_checkpoint(built, gallery_dir, ckpt_concat):
    index = load_index(built)
    expected = sorted(p.relative_to(gallery_dir).as_posix() for p in gallery_dir.rglob("*.jpg"))
    assert index.paths == expected
    assert index.feats.dtype == np.float32 and index.feats.shape == (len(expected), 32)
    np.testing.assert_allclose(np.linalg.norm(index.feats, axis=1), 1.0, atol=1e-6)
    for path, pid, cam, mod in zip(index.paths, index.pids, index.cameras, index.modality, strict=True):
        c, p, _ = path.split("/")
        assert (pid, cam, mod) == (int(p), int(c[3:]), VISIBLE)
    ck = index.checkpoint
    assert ck["sha256"] == file_sha256(ckpt_concat) and ck["feature"] == "z_concat" and ck["feature_dim"] == 32
    assert ck["config"]["model"]["test_feature"] == "z_concat"
    assert index.root == gallery_dir.resolve()


def test_search_ranks_like_nearest_neighbours_of_extracted_features(built, ckpt_concat, synth_root, query_paths,
                                                                     extracted, tmp_path):
    """The independent check: infrared queries against the visible gallery folder, via the CLI, rank the
    gallery exactly as the nearest neighbours of `vireid extract` features do."""
    fs = extracted(ckpt_concat)
    index = load_index(built)
    g = _unit(fs.lookup(index.paths))  # the gallery folder keeps the dataset's relative paths
    q_rel = [p.relative_to(synth_root).as_posix() for p in query_paths]
    q = _unit(fs.lookup(q_rel))
    dist = np.sqrt(np.clip((q * q).sum(1)[:, None] + (g * g).sum(1)[None] - 2 * q @ g.T, 0, None))
    expected = np.argsort(dist, axis=1, kind="stable")
    out = tmp_path / "search"
    k = len(index)
    assert main(["search", "--checkpoint", str(ckpt_concat), "--index", str(built), "--query",
                 *map(str, query_paths), "--top-k", str(k), "--out", str(out), "--device", "cpu"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [e["query"] for e in res["queries"]] == [str(p) for p in query_paths]
    for qi, entry in enumerate(res["queries"]):
        assert entry["modality"] == "infrared" and entry["pid"] == int(q_rel[qi].split("/")[1])
        assert [r["path"] for r in entry["results"]] == [index.paths[j] for j in expected[qi]]
        np.testing.assert_allclose([r["distance"] for r in entry["results"]], dist[qi, expected[qi]], atol=1e-4)
        assert all(r["match"] == (r["pid"] == entry["pid"]) for r in entry["results"])
        picture = out / entry["picture"]
        with Image.open(picture) as im:
            assert im.format == "PNG" and im.width > im.height
    assert len(list((out / "ranked").glob("*.png"))) == len(query_paths)


def test_search_api_folder_query_and_default_top_k(built, ckpt_concat, synth_root, test_ids):
    model = ReIDModel.load(ckpt_concat, device="cpu")
    index = load_index(built)
    folder = synth_root / "cam3" / f"{test_ids[0]:04d}"
    results = search_index(model, index, [folder])
    assert [r.query for r in results] == [str(p) for p in sorted(folder.glob("*.jpg"))]
    assert all(len(r.matches) == min(10, len(index)) and r.modality == INFRARED for r in results)
    assert all(r.matches[i].distance <= r.matches[i + 1].distance for r in results for i in range(len(r.matches) - 1))
    forced = search_index(model, index, [folder], modality="visible")
    assert forced[0].modality == VISIBLE and forced[0].matches != results[0].matches


def test_exact_search_is_chunked_and_exact():
    rng = np.random.default_rng(0)
    g = _unit(rng.standard_normal((2000, 24)).astype(np.float32))
    q = _unit(rng.standard_normal((37, 24)).astype(np.float32))
    dist, idx = exact_topk(q, g, 15, block_elements=64 * 37)  # many gallery blocks
    full = np.sqrt(np.clip(2 - 2 * q @ g.T, 0, None))
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :15])
    np.testing.assert_allclose(dist, np.take_along_axis(full, idx, 1), atol=1e-5)
    d_all, i_all = exact_topk(q, g[:5], 10)  # k larger than the gallery
    assert i_all.shape == (37, 5)


def test_faiss_gives_the_same_top_k_as_exact(built):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    g = _unit(rng.standard_normal((5000, 64)).astype(np.float32))
    q = _unit(rng.standard_normal((50, 64)).astype(np.float32))
    (d1, i1), (d2, i2) = exact_topk(q, g, 10), faiss_topk(q, g, 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2, atol=1e-5)
    index = load_index(built)  # and on the test gallery
    (_, i1), (_, i2) = exact_topk(index.feats[:4], index.feats, 8), faiss_topk(index.feats[:4], index.feats, 8)
    np.testing.assert_array_equal(i1, i2)


def test_rerank_is_the_evaluations_reranking_on_small_galleries():
    import torch

    from vireid.evaluation.protocols.common import euclidean
    from vireid.evaluation.rerank import k_reciprocal_rerank

    rng = np.random.default_rng(2)
    g = _unit(rng.standard_normal((60, 16)).astype(np.float32))
    q = _unit(rng.standard_normal((7, 16)).astype(np.float32))
    dist, idx = rerank_topk(q, g, 5)
    tq, tg = torch.from_numpy(q), torch.from_numpy(g)
    ref = k_reciprocal_rerank(euclidean(tq, tg), euclidean(tq, tq), euclidean(tg, tg))
    np.testing.assert_array_equal(idx, np.argsort(ref, axis=1, kind="stable")[:, :5])
    plain = exact_topk(q, g, 5)[1]
    assert not np.array_equal(idx, plain)  # re-ranking changed something
    # Larger than max_images: re-ranked over the union of each query's nearest candidates.
    d2, i2 = rerank_topk(q, g, 5, pool=5, max_images=50)
    assert i2.shape == (7, 5) and set(i2.ravel()) <= set(exact_topk(q, g, 5)[1].ravel())
    with pytest.raises(SearchError, match="search fewer queries"):
        rerank_topk(q, g, 5, pool=20, max_images=40)


def test_interrupted_index_resumes(ckpt, gallery_dir, tmp_path, monkeypatch):
    model = ReIDModel.load(ckpt, device="cpu")
    clean = build_index(model, gallery_dir, tmp_path / "clean.npz", chunk_size=5, progress=False).index
    calls = {"n": 0}
    real = model.embed_batch

    def dying(batch, modality):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(batch, modality)

    monkeypatch.setattr(model, "embed_batch", dying)
    out = tmp_path / "resumed.npz"
    with pytest.raises(KeyboardInterrupt):
        build_index(model, gallery_dir, out, chunk_size=5, batch_size=5, progress=False)
    assert not out.exists() and len(list(Path(f"{out}.parts").glob("part-*.npz"))) == 2
    monkeypatch.setattr(model, "embed_batch", real)
    summary = build_index(model, gallery_dir, out, chunk_size=5, batch_size=5, progress=False)
    assert summary.resumed == 2 and not Path(f"{out}.parts").exists()
    assert summary.index.paths == clean.paths
    np.testing.assert_allclose(summary.index.feats, clean.feats, atol=1e-5)


def test_a_layout_subfolder_keeps_identities(ckpt, gallery_dir, tmp_path):
    """Indexing SYSU/cam1 itself: the relative paths are PPPP/file, the identity comes from the full path."""
    model = ReIDModel.load(ckpt, device="cpu")
    index = build_index(model, gallery_dir / "cam1", tmp_path / "cam1.npz", progress=False).index
    assert all(p.count("/") == 1 for p in index.paths)
    assert (index.cameras == 1).all() and [int(p.split("/")[0]) for p in index.paths] == index.pids.tolist()
