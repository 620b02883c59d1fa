"""The HTML report: one self-contained folder (``index.html`` and the PNG files it shows, no network, no
script) that a person can open in any browser or copy elsewhere.

It shows, for one or several methods: the results table (mean ± std and every trial's values), the CMC
curves of each setting (one line per method), the t-SNE picture, the training curves when the run
directory is known, and ranked lists (infrared query, then its top-10 visible gallery images; green
frame = correct match, red = wrong) of a few sample queries, the same for every method, and of each
method's worst queries (latest first correct match). Ranked lists use one trial's gallery of the
protocol (SYSU-MM01: trial 1 of the mode's gallery, a cam-3 query never sees cam 2; RegDB: thermal
queries against the visible images of the trial), Euclidean distance between L2-normalised features.

``write_report(out_dir, methods, split=...)`` is the library call (``vireid test --report`` and
``vireid demo`` use it); ``sysu_split`` / ``regdb_split`` give the query/gallery split.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vireid import __version__
from vireid.data.records import INFRARED, VISIBLE, ImageRecord
from vireid.datasets import get_dataset
from vireid.errors import VireidError
from vireid.evaluation.result import METRIC_KEYS, ProtocolResult
from vireid.features.store import FeatureSet
from vireid.utils.io import atomic_path, atomic_write_text

REPORT_MARKER = ".vireid-report"
_LABELS = {"rank1": "Rank-1", "rank5": "Rank-5", "rank10": "Rank-10", "rank20": "Rank-20", "mAP": "mAP",
           "mINP": "mINP"}


class ReportError(VireidError):
    """A report folder that would lose the user's files, or inputs a report cannot use."""


@dataclass
class MethodResults:
    """What the report shows about one method.

    ``results``: setting label (e.g. ``"all-search"``) -> protocol result. ``features``: the test features
    (for ranked lists and, without ``tsne``, the t-SNE picture). ``tsne`` / ``curves``: existing pictures
    to include; without ``curves``, ``run_dir``'s ``metrics.jsonl`` is drawn when there is one.
    """

    name: str
    results: dict[str, ProtocolResult]
    features: FeatureSet | None = None
    feature: str = ""
    checkpoint: str = ""
    run_dir: Path | None = None
    tsne: Path | None = None
    curves: Path | None = None


@dataclass
class RankedSplit:
    """The queries and gallery ranked lists are drawn from; ``records``: the images the t-SNE picture may
    draw from; ``sysu_rules``: a cam-3 query never sees cam-2 gallery images."""

    queries: list[ImageRecord]
    gallery: list[ImageRecord]
    records: list[ImageRecord]
    sysu_rules: bool
    label: str


def sysu_split(root: str | os.PathLike, mode: str = "all", shots: int = 1, sampling: str = "seeded",
               trial: int = 1) -> RankedSplit:
    """SYSU-MM01: every infrared test image as a query, trial ``trial``'s gallery of ``mode``."""
    from vireid.data.sysu import (
        CAMERA_MODALITY,
        INFRARED_CAMERAS,
        check_sysu_root,
        index_images,
        read_split_ids,
    )
    from vireid.evaluation.protocols.sysu import MODES, official_galleries, seeded_galleries

    if mode not in MODES:
        raise ReportError(f"--mode: expected all or indoor, got {mode!r}")
    root = check_sysu_root(root)
    ids = read_split_ids(root, "test")
    cameras = MODES[mode]
    ir_index = index_images(root, ids, INFRARED_CAMERAS)
    index = index_images(root, ids, cameras)
    if sampling == "official":
        gallery_paths = official_galleries(root, ids, cameras, index, shots)[trial - 1]
    else:
        gallery_paths = seeded_galleries(ids, cameras, index, shots)[trial - 1]

    def records(idx: dict[tuple[int, int], list[str]]) -> list[ImageRecord]:
        return [ImageRecord(p, pid, cam, CAMERA_MODALITY[cam]) for (cam, pid), ps in sorted(idx.items()) for p in ps]

    pool = records(index)
    by_path = {r.path: r for r in pool}
    queries = records(ir_index)
    return RankedSplit(queries, [by_path[p] for p in gallery_paths], queries + pool, True,
                       f"SYSU-MM01 {mode}-search, {shots}-shot, {sampling} gallery of trial {trial}")


def regdb_split(root: str | os.PathLike, trial: int = 1) -> RankedSplit:
    """RegDB: the thermal test images of ``trial`` as queries, its visible test images as the gallery."""
    from vireid.data.regdb import test_records

    recs = test_records(root, trial)
    queries = [r for r in recs if r.modality == INFRARED]
    gallery = [r for r in recs if r.modality == VISIBLE]
    return RankedSplit(queries, gallery, recs, False, f"RegDB trial {trial}, thermal queries, visible gallery")


@dataclass
class Ranking:
    """Each query's top-k gallery positions and distances, its first correct rank (0: no match) and AP."""

    top: np.ndarray
    dist: np.ndarray
    first: np.ndarray
    ap: np.ndarray


def rank_split(features: FeatureSet, split: RankedSplit, top_k: int = 10) -> Ranking:
    """Rank the split's gallery for each query (L2-normalised Euclidean, stable order, SYSU camera rule)."""
    from vireid.evaluation.metrics import camera_locations

    def unit(paths: list[str], what: str) -> np.ndarray:
        x = features.lookup(paths, what).astype(np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    q = unit([r.path for r in split.queries], "report queries")
    g = unit([r.path for r in split.gallery], "report gallery images")
    d = np.sqrt(np.clip(2.0 - 2.0 * q @ g.T, 0.0, None))
    q_pid = np.array([r.pid for r in split.queries])
    g_pid = np.array([r.pid for r in split.gallery])
    if split.sysu_rules:
        q_loc = camera_locations([r.camera for r in split.queries])
        g_loc = camera_locations([r.camera for r in split.gallery])
        d = np.where(q_loc[:, None] == g_loc[None, :], np.inf, d)
    order = np.argsort(d, axis=1, kind="stable")
    d_sorted = np.take_along_axis(d, order, 1)
    hits = (g_pid[order] == q_pid[:, None]) & np.isfinite(d_sorted)
    pos = np.arange(1, hits.shape[1] + 1)
    n_hits = hits.sum(1)
    first = np.where(n_hits > 0, hits.argmax(1) + 1, 0)
    ap = np.where(n_hits > 0, (np.cumsum(hits, 1) / pos * hits).sum(1) / np.maximum(n_hits, 1), 0.0)
    k = min(top_k, d.shape[1])
    return Ranking(order[:, :k], d_sorted[:, :k], first, ap)


def check_report_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse a report folder that is a file, or a non-empty folder that is not a vireid report."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"--report {out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / REPORT_MARKER).is_file():
        raise ReportError(f"--report {out_dir} already exists, is not empty and is not a vireid report; "
                          "choose a new folder")
    return out_dir


def prepare_report_dir(out_dir: str | os.PathLike) -> Path:
    """Check ``out_dir``, empty it if it holds a previous report, and mark it as a report folder."""
    out_dir = check_report_dir(out_dir)
    if (out_dir / REPORT_MARKER).is_file():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / REPORT_MARKER, "a vireid report folder (a new report may replace it)\n")
    return out_dir


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "method"


def _copy(src: Path, dst: Path) -> Path:
    with atomic_path(dst, suffix=dst.suffix) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def plot_cmc(methods: Sequence[MethodResults], out: Path) -> Path | None:
    """Mean CMC (± std over trials) of every method, one panel per setting; None if no CMC is known."""
    from vireid.visualization.figure import png_figure

    settings = list(dict.fromkeys(s for m in methods for s in m.results))
    curves = {s: [(m.name, np.array([t["cmc"] for t in m.results[s].per_trial], dtype=np.float64))
                  for m in methods if s in m.results and all("cmc" in t for t in m.results[s].per_trial)]
              for s in settings}
    settings = [s for s in settings if curves[s]]
    if not settings:
        return None
    with png_figure(out, nrows=1, ncols=len(settings), figsize=(5.2 * len(settings), 4), dpi=110,
                    squeeze=False) as (_, axes):
        for ax, s in zip(axes[0], settings, strict=True):
            for name, c in curves[s]:
                ranks = np.arange(1, c.shape[1] + 1)
                mean, std = c.mean(0), c.std(0)
                ax.plot(ranks, mean, marker="o", ms=3, label=name)
                ax.fill_between(ranks, mean - std, mean + std, alpha=0.15)
            ax.set_xlabel("rank")
            ax.set_ylabel("matching rate (%)")
            ax.set_title(f"CMC: {s}")
            last = max(c.shape[1] for _, c in curves[s])
            ax.set_xlim(1, last)
            ax.set_xticks([1, *range(5, last + 1, 5)])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
    return out


def _results_tables(methods: Sequence[MethodResults]) -> str:
    settings = list(dict.fromkeys(s for m in methods for s in m.results))
    parts = []
    for s in settings:
        rows = []
        for m in methods:
            if s not in m.results:
                continue
            r = m.results[s]
            mean, std = r.mean, r.std
            cells = "".join(f"<td>{mean[k]:.2f} <span class=sd>± {std[k]:.2f}</span></td>" for k in METRIC_KEYS)
            rows.append(f"<tr><th>{html.escape(m.name)}</th>{cells}<td>{len(r.per_trial)}</td>"
                        f"<td>{html.escape(_size(r.num_query))}</td><td>{html.escape(_size(r.num_gallery))}</td></tr>")
        head = "".join(f"<th>{_LABELS[k]}</th>" for k in METRIC_KEYS)
        parts.append(f"<h3>{html.escape(s)}</h3><table><tr><th>method</th>{head}<th>trials</th><th>queries</th>"
                     f"<th>gallery</th></tr>{''.join(rows)}</table>")
        for m in methods:
            if s not in m.results:
                continue
            trs = "".join(
                f"<tr><td>{t['trial']}</td>" + "".join(f"<td>{t[k]:.2f}</td>" for k in METRIC_KEYS if k in t)
                + f"<td>{t.get('num_query', '')}</td><td>{t.get('num_gallery', '')}</td></tr>"
                for t in m.results[s].per_trial
            )
            settings_text = ", ".join(f"{k}={v}" for k, v in m.results[s].settings.items())
            parts.append(f"<details><summary>{html.escape(m.name)}: every trial ({html.escape(settings_text)})"
                         f"</summary><table><tr><th>trial</th>{head}<th>queries</th><th>gallery</th></tr>{trs}"
                         "</table></details>")
    return "\n".join(parts)


def _size(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def _figure(src: str, caption: str, cls: str = "") -> str:
    attr = f" class={cls}" if cls else ""
    return (f'<figure{attr}><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _ranked_pictures(out_dir: Path, m: MethodResults, split: RankedSplit, root: Path, sample: np.ndarray,
                     num_worst: int, top_k: int) -> tuple[list[str], list[str]]:
    from vireid.visualization.ranked_list import draw_ranked_list

    ranking = rank_split(m.features, split, top_k)
    valid = np.flatnonzero(ranking.first > 0)
    worst = valid[np.lexsort((ranking.ap[valid], -ranking.first[valid]))][:num_worst]
    out: tuple[list[str], list[str]] = ([], [])
    for kind, chosen, files in (("sample", sample, out[0]), ("worst", worst, out[1])):
        for n, qi in enumerate(chosen.tolist()):
            q = split.queries[qi]
            kept = np.isfinite(ranking.dist[qi])  # gallery images the protocol hides from this query left out
            top = [split.gallery[j] for j in ranking.top[qi][kept]]
            rel = f"ranked/{_slug(m.name)}_{kind}_{n:02d}.png"
            first = int(ranking.first[qi])
            draw_ranked_list(
                root / q.path, [root / g.path for g in top], ranking.dist[qi][kept].tolist(), out_dir / rel,
                matches=[g.pid == q.pid for g in top],
                title=f"{m.name}: {q.path} (id {q.pid}); first correct match at rank "
                      f"{first if first else '-'}, AP {100 * ranking.ap[qi]:.1f}%",
            )
            files.append(rel)
    return out


def write_report(
    out_dir: str | os.PathLike,
    methods: Sequence[MethodResults],
    *,
    split: RankedSplit | None = None,
    root: str | os.PathLike | None = None,
    title: str = "vireid report",
    info: dict[str, Any] | None = None,
    num_samples: int = 4,
    num_worst: int = 4,
    top_k: int = 10,
    tsne_ids: int = 12,
    seed: int = 0,
) -> Path:
    """Write ``out_dir/index.html`` and its pictures (see the module docstring); returns the page's path.

    ``split`` and ``root`` (the dataset root the split's paths are relative to) are needed for the ranked
    lists and for drawing t-SNE pictures from features; ``info`` adds rows to the page's header table.
    A folder that is not empty must be a previous vireid report (it is then written into).
    """
    if not methods:
        raise ReportError("a report needs at least one method's results")
    out_dir = check_report_dir(out_dir)
    if not (out_dir / REPORT_MARKER).is_file():
        prepare_report_dir(out_dir)
    root = Path(root) if root is not None else None
    body: list[str] = []
    head_rows = {"generated": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "vireid": __version__,
                 **(info or {})}
    body.append("<table class=info>" + "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in head_rows.items())
        + "</table>")
    body.append("<h2>Results</h2><p>Percent, mean ± standard deviation over the protocol's trials; every "
                "trial's values under each table.</p>" + _results_tables(methods))
    cmc = plot_cmc(methods, out_dir / "cmc.png")
    if cmc is not None:
        body.append("<h2>CMC curves</h2>" + _figure(cmc.name, "mean CMC over the trials (band: ± std)", "cmc"))

    sample = np.zeros(0, np.int64)
    have_ranked = split is not None and root is not None
    if have_ranked:
        usable = [m for m in methods if m.features is not None]
        if usable:
            ranking = rank_split(usable[0].features, split, top_k)
            valid = np.flatnonzero(ranking.first > 0)
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(valid, size=min(num_samples, len(valid)), replace=False))
    for m in methods:
        section = [f"<h2>{html.escape(m.name)}</h2>"]
        meta = ", ".join(x for x in (f"feature {m.feature}" if m.feature else "",
                                     f"checkpoint {m.checkpoint}" if m.checkpoint else "") if x)
        if meta:
            section.append(f"<p class=meta>{html.escape(meta)}</p>")
        pics = []
        tsne = _tsne(out_dir, m, split, tsne_ids, seed)
        if tsne:
            pics.append(_figure(tsne, f"t-SNE of {m.name}'s test features (colour: identity; o visible, ^ infrared)",
                                "tsne"))
        curves = _curves(out_dir, m)
        if curves:
            pics.append(_figure(curves, f"training curves of {m.name}", "curves"))
        if pics:
            section.append("<div class=row>" + "".join(pics) + "</div>")
        if have_ranked and m.features is not None:
            samples, worst = _ranked_pictures(out_dir, m, split, root, sample, num_worst, top_k)
            section.append(f"<h3>Ranked lists: sample queries</h3><p class=meta>{html.escape(split.label)}; "
                           "blue: the query; green: correct match; red: wrong match; d: distance.</p>")
            section += [f'<img class=ranked src="{html.escape(f)}" alt="ranked list">' for f in samples]
            section.append("<h3>Ranked lists: worst queries</h3><p class=meta>the queries whose first correct "
                           "match comes latest.</p>")
            section += [f'<img class=ranked src="{html.escape(f)}" alt="ranked list">' for f in worst]
        body.append("\n".join(section))
    page = _PAGE.format(title=html.escape(title), body="\n".join(body))
    path = out_dir / "index.html"
    atomic_write_text(path, page)
    return path


def _tsne(out_dir: Path, m: MethodResults, split: RankedSplit | None, tsne_ids: int, seed: int) -> str | None:
    name = f"tsne_{_slug(m.name)}.png"
    if m.tsne is not None and Path(m.tsne).is_file():
        _copy(Path(m.tsne), out_dir / name)
        return name
    if m.features is None or split is None:
        return None
    from vireid.visualization.tsne import pick_identities, tsne_plot

    try:
        chosen = pick_identities(split.records, tsne_ids, seed, 10)
        feats = m.features.lookup([r.path for r in chosen], "t-SNE images")
        tsne_plot(feats, chosen, out_dir / name, seed=seed,
                  title=f"{m.name}: {len({r.pid for r in chosen})} test identities")
    except VireidError:
        return None  # too few identities or images for a t-SNE picture: the report goes without it
    return name


def _curves(out_dir: Path, m: MethodResults) -> str | None:
    name = f"curves_{_slug(m.name)}.png"
    if m.curves is not None and Path(m.curves).is_file():
        _copy(Path(m.curves), out_dir / name)
        return name
    if m.run_dir is None or not (Path(m.run_dir) / "metrics.jsonl").is_file():
        return None
    from vireid.visualization.curves import plot_curves

    try:
        plot_curves(Path(m.run_dir) / "metrics.jsonl", out_dir / name, title=m.name)
    except VireidError:
        return None  # no finished epoch yet
    return name


def run_dir_of(checkpoint: str | os.PathLike) -> Path | None:
    """The run directory of a checkpoint (itself if a folder, else the file's folder) when it holds
    ``metrics.jsonl``; else None."""
    p = Path(checkpoint)
    run = p if p.is_dir() else p.parent
    return run if (run / "metrics.jsonl").is_file() else None


def setting_label(result: ProtocolResult) -> str:
    """A short name of a result's setting: ``all-search, 1-shot`` (SYSU-MM01), ``v2t`` (RegDB)."""
    st = result.settings
    if "mode" in st:
        label = f"{st['mode']}-search, {st.get('shots', 1)}-shot"
    else:
        label = str(st.get("direction", result.dataset))
    return label + (", re-ranked" if st.get("rerank") else "")


def checkpoint_report(
    out_dir: str | os.PathLike,
    result: ProtocolResult,
    features: FeatureSet,
    *,
    checkpoint: str | os.PathLike,
    dataset: str,
    root: str | os.PathLike,
    mode: str = "all",
    shots: int = 1,
    sampling: str = "official",
    trial: int = 1,
    name: str | None = None,
) -> Path:
    """The report of one ``vireid test`` run: its result, features and (when known) run directory."""
    spec = get_dataset(dataset, "--dataset")
    options = spec.protocol.select({"mode": mode, "shots": shots, "sampling": sampling})
    # a dataset without numbered splits shows gallery draw 1 of its protocol, whatever --trial says
    split = spec.protocol.ranked_split(root, trial=trial if spec.trials else 1, **options)
    ckpt = Path(checkpoint)
    method = MethodResults(
        name or (ckpt.name if ckpt.is_dir() else ckpt.parent.name or ckpt.stem), {setting_label(result): result},
        features=features, checkpoint=str(ckpt), run_dir=run_dir_of(ckpt),
    )
    info = {"checkpoint": str(ckpt), "dataset": f"{result.dataset} at {root}",
            "protocol": ", ".join(f"{k}={v}" for k, v in result.settings.items())}
    return write_report(out_dir, [method], split=split, root=root, title=f"vireid test: {method.name}", info=info)


def demo_report(out_dir: str | os.PathLike, results: dict[str, Any], root: str | os.PathLike) -> Path:
    """``out_dir/report/index.html`` for a finished ``vireid demo``: every method's test features
    (``<run_dir>/test_features.npz``) scored again with the demo's protocol (SYSU-MM01, seeded single-shot
    galleries, all and indoor), its t-SNE and training-curve pictures, ranked lists of all-search trial 1."""
    from vireid.evaluation.protocols import evaluate_sysu
    from vireid.features.store import load_features

    out_dir = Path(out_dir)
    methods = []
    for name, r in results["methods"].items():
        fs = load_features(out_dir / r["run_dir"] / "test_features.npz")
        scored = {f"{mode}-search, 1-shot": evaluate_sysu(root, fs, mode=mode, shots=1, sampling="seeded")
                  for mode in ("all", "indoor")}
        files = r.get("files", {})
        methods.append(MethodResults(
            name, scored, features=fs, feature=r.get("feature", ""), run_dir=out_dir / r["run_dir"],
            tsne=out_dir / files["tsne"] if "tsne" in files else None,
            curves=out_dir / files["curves"] if "curves" in files else None,
        ))
    settings = results.get("settings", {})
    info = {"dataset": f"SynthVI ({settings.get('dataset', {}).get('num_ids', '?')} identities, SYSU-MM01 layout)",
            "protocol": "SYSU-MM01, single-shot, 10 trials, seeded gallery sampling",
            "preset": settings.get("preset", "?")}
    return write_report(out_dir / "report", methods, split=sysu_split(root, "all", 1, "seeded", 1), root=root,
                        title="vireid demo", info=info)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1300px;
       color: #111827; padding: 0 1em; }}
h1 {{ font-size: 1.6em; margin-bottom: 0.2em; }}
h2 {{ border-bottom: 2px solid #e5e7eb; padding-bottom: 0.2em; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }}
th, td {{ border: 1px solid #d1d5db; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f3f4f6; }}
table.info th, table.info td {{ text-align: left; }}
tr > th:first-child {{ text-align: left; }}
.sd {{ color: #6b7280; font-size: 0.85em; }}
.meta {{ color: #4b5563; font-size: 0.9em; }}
details {{ margin: 0 0 0.8em 0.5em; }}
summary {{ cursor: pointer; color: #1d4ed8; }}
figure {{ margin: 0.5em 0 1em 0; }}
figure img {{ max-width: 100%; }}
figure.cmc img {{ max-width: min(100%, 1100px); }}
figcaption {{ color: #4b5563; font-size: 0.85em; }}
.row {{ display: flex; gap: 1.5em; align-items: flex-start; }}
.row figure.tsne {{ flex: 0 0 34%; }}
.row figure.curves {{ flex: 1 1 auto; min-width: 0; }}
.row figure img {{ width: 100%; }}
img.ranked {{ display: block; margin: 0.3em 0 0.6em; max-width: 100%; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body}
</body>
</html>
"""
