"""Searching an index: the top-k gallery images of each query, by Euclidean distance between
L2-normalised features (the evaluation's distance).

Back ends: ``exact`` (default) is a chunked matrix product, memory bounded by ``block_elements`` floats
whatever the gallery size; ``faiss`` uses ``faiss.IndexFlatIP`` (``pip install vireid[faiss]``), also
exact, faster on galleries of millions. Both give the same top-k; results are ordered by distance, ties
by gallery position (the evaluation's stable order).

``rerank=True`` applies k-reciprocal re-ranking (``vireid.evaluation.rerank``) to the queries searched
together: over the whole gallery when queries + gallery hold at most ``RERANK_MAX_IMAGES`` images (then
it is the evaluation's re-ranking exactly), otherwise over the union of each query's
``RERANK_POOL`` nearest gallery images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vireid.errors import VireidError
from vireid.inference.images import list_image_files, parse_modality, path_identity
from vireid.inference.index import GalleryIndex
from vireid.inference.model import ReIDModel, modality_name

BACKENDS = ("exact", "faiss")
RERANK_MAX_IMAGES = 6000
RERANK_POOL = 100
DEFAULT_BLOCK_ELEMENTS = 1 << 24  # query x gallery similarities held at once (64 MiB of float32)


class SearchError(VireidError):
    """A query, option or back end that a search cannot use."""


def _finish(sims: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by similarity (descending), ties by gallery index; similarities -> distances."""
    order = np.lexsort((idx, -sims), axis=-1)
    sims = np.take_along_axis(sims, order, 1)
    idx = np.take_along_axis(idx, order, 1)
    return np.sqrt(np.clip(2.0 - 2.0 * sims, 0.0, None)).astype(np.float32), idx.astype(np.int64)


def exact_topk(
    queries: np.ndarray, gallery: np.ndarray, k: int, *, block_elements: int = DEFAULT_BLOCK_ELEMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and gallery indices (nq x min(k, ng)) of each query's ``k`` nearest gallery rows (rows
    L2-normalised), computed block by block: at most ``block_elements`` similarities in memory."""
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    g = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32))
    nq, ng = q.shape[0], g.shape[0]
    k = min(int(k), ng)
    q_step = max(1, min(nq, 1024))
    g_step = max(k, block_elements // q_step)
    out_s = np.zeros((nq, k), np.float32)
    out_i = np.zeros((nq, k), np.int64)
    for qs in range(0, nq, q_step):
        qc = q[qs:qs + q_step]
        best_s = qc.new_empty(qc.shape[0], 0)
        best_i = torch.empty(qc.shape[0], 0, dtype=torch.int64)
        for gs in range(0, ng, g_step):
            s = qc @ g[gs:gs + g_step].T
            top = s.topk(min(k, s.shape[1]), dim=1)
            cand_s = torch.cat([best_s, top.values], 1)
            cand_i = torch.cat([best_i, top.indices + gs], 1)
            keep = cand_s.topk(k, dim=1).indices
            best_s, best_i = cand_s.gather(1, keep), cand_i.gather(1, keep)
        out_s[qs:qs + q_step], out_i[qs:qs + q_step] = best_s.numpy(), best_i.numpy()
    return _finish(out_s, out_i)


def faiss_topk(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same as ``exact_topk`` with faiss's exact inner-product index (``faiss-cpu``)."""
    try:
        import faiss
    except ImportError:
        raise SearchError("--backend faiss needs faiss-cpu: pip install 'vireid[faiss]'") from None
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    k = min(int(k), g.shape[0])
    index = faiss.IndexFlatIP(g.shape[1])
    index.add(g)
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return _finish(sims, idx)


def topk(queries: np.ndarray, gallery: np.ndarray, k: int, backend: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Nearest gallery rows of each query with ``backend`` (``exact`` or ``faiss``)."""
    if backend not in BACKENDS:
        raise SearchError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if k < 1:
        raise SearchError(f"--top-k: expected a positive integer, got {k}")
    if backend == "faiss":
        return faiss_topk(queries, gallery, k)
    return exact_topk(queries, gallery, k)


def rerank_topk(
    queries: np.ndarray, gallery: np.ndarray, k: int, *, backend: str = "exact", pool: int = RERANK_POOL,
    max_images: int = RERANK_MAX_IMAGES,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k after k-reciprocal re-ranking (see the module docstring for the candidate set)."""
    from vireid.evaluation.protocols.common import euclidean
    from vireid.evaluation.rerank import k_reciprocal_rerank

    nq, ng = len(queries), len(gallery)
    if nq + ng <= max_images:
        cand = np.arange(ng)
    else:
        _, near = topk(queries, gallery, max(pool, k), backend)
        cand = np.unique(near)
        if nq + len(cand) > max_images:
            raise SearchError(
                f"--rerank: {nq} queries with {len(cand)} candidate gallery images exceed {max_images}; "
                "search fewer queries at a time"
            )
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    g = torch.from_numpy(np.ascontiguousarray(gallery[cand], dtype=np.float32))
    dist = k_reciprocal_rerank(euclidean(q, g), euclidean(q, q), euclidean(g, g))
    order = np.argsort(dist, axis=1, kind="stable")[:, : min(k, len(cand))]
    return np.take_along_axis(dist, order, 1).astype(np.float32), cand[order].astype(np.int64)


@dataclass
class Match:
    """One gallery image of a ranked list (``pid``/``camera`` -1 where the layout does not say)."""

    rank: int
    path: str
    distance: float
    pid: int
    camera: int


@dataclass
class QueryResult:
    """A query and its ranked gallery images."""

    query: str
    modality: int
    pid: int
    camera: int
    matches: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        known = self.pid >= 0
        return {
            "query": self.query,
            "modality": modality_name(self.modality),
            **({"pid": self.pid, "camera": self.camera} if known else {}),
            "results": [
                {"rank": m.rank, "path": m.path, "distance": round(float(m.distance), 6),
                 **({"pid": m.pid, "camera": m.camera} if m.pid >= 0 else {}),
                 **({"match": m.pid == self.pid} if known and m.pid >= 0 else {})}
                for m in self.matches
            ],
        }


def expand_queries(queries: Sequence[str | os.PathLike]) -> list[Path]:
    """Query files in the order given; a folder stands for every image under it (sorted). A path that does
    not exist is a SearchError naming it."""
    if not queries:
        raise SearchError("--query: give at least one image file or folder")
    out: list[Path] = []
    for q in queries:
        p = Path(q)
        if p.is_dir():
            listing = list_image_files(p)
            if not listing.paths:
                raise SearchError(f"--query {p}: the folder holds no image files (.jpg, .jpeg, .png, .bmp)")
            out += [p / rel for rel in listing.paths]
        elif p.is_file():
            out.append(p)
        else:
            raise SearchError(f"--query {p} does not exist")
    return out


def search_index(
    model: ReIDModel,
    index: GalleryIndex,
    queries: Sequence[str | os.PathLike],
    *,
    top_k: int = 10,
    rerank: bool = False,
    backend: str = "exact",
    modality: str = "auto",
    batch_size: int | None = None,
) -> list[QueryResult]:
    """Rank ``index`` for each query image (folders expanded). The index must come from ``model``.

    ``modality`` of the queries: ``auto`` takes a dataset layout's modality where the query path follows
    one, else decides per image (three equal channels = infrared); or ``visible``/``infrared``.
    """
    index.check_model(model)
    if backend not in BACKENDS:
        raise SearchError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if top_k < 1:
        raise SearchError(f"--top-k: expected a positive integer, got {top_k}")
    fixed = parse_modality(modality, "--query-modality")
    files = expand_queries(queries)
    ids = [path_identity(p) for p in files]
    mods = [fixed if fixed is not None else i.modality for i in ids]
    feats, used = model.embed_with_modality([str(f) for f in files], modality=mods, batch_size=batch_size)
    if rerank:
        dist, idx = rerank_topk(feats, index.feats, top_k, backend=backend)
    else:
        dist, idx = topk(feats, index.feats, top_k, backend)
    results = []
    for qi, f in enumerate(files):
        matches = [
            Match(r + 1, index.paths[j], float(dist[qi, r]), int(index.pids[j]), int(index.cameras[j]))
            for r, j in enumerate(idx[qi].tolist())
        ]
        results.append(QueryResult(str(f), int(used[qi]), ids[qi].pid, ids[qi].camera, matches))
    return results


SEARCH_MARKER = ".vireid-search"  # written into a search output folder, so that --overwrite only replaces ours


def check_search_output(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an output folder that exists and is not empty (with ``overwrite``: unless it is ours)."""
    from vireid.utils.io import check_output_dir

    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite, ours=lambda p: (p / SEARCH_MARKER).is_file(), what="--out",
                     kind=f"a vireid search folder (no {SEARCH_MARKER})", error=SearchError)
    return out_dir


def write_search_output(
    results: Sequence[QueryResult],
    out_dir: str | os.PathLike,
    index: GalleryIndex,
    *,
    images_root: str | os.PathLike | None = None,
    pictures: bool = True,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/results.json`` and, with ``pictures``, one ranked-list PNG per query
    (``ranked/<n>_<name>.png``). Gallery images are read from ``images_root`` (default: the folder the
    index was built from). Returns the JSON's path."""
    import shutil

    from vireid.utils.io import atomic_write_json, atomic_write_text
    from vireid.visualization.ranked_list import draw_ranked_list

    out_dir = check_search_output(out_dir, overwrite)
    root = Path(images_root) if images_root is not None else index.root
    if out_dir.is_dir() and any(out_dir.iterdir()):
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SEARCH_MARKER, "a vireid search folder (vireid search --overwrite may replace it)\n")
    entries = []
    for n, r in enumerate(results):
        entry = r.to_dict()
        if pictures:
            name = f"ranked/{n:04d}_{Path(r.query).stem}.png"
            known = r.pid >= 0
            draw_ranked_list(
                r.query, [root / m.path for m in r.matches], [m.distance for m in r.matches], out_dir / name,
                matches=[(m.pid == r.pid) if known and m.pid >= 0 else None for m in r.matches],
                title=f"{r.query} ({modality_name(r.modality)})", query_caption="query",
            )
            entry["picture"] = name
        entries.append(entry)
    path = out_dir / "results.json"
    atomic_write_json(path, {**(extra or {}), "index": index.source, "images_root": str(root),
                             "checkpoint": {k: index.checkpoint.get(k) for k in ("sha256", "path", "model", "feature")},
                             "queries": entries})
    return path
