"""t-SNE picture of the joint embedding of both modalities: colour = identity, marker = modality."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vireid.data.records import INFRARED, VISIBLE, ImageRecord
from vireid.errors import ConfigError
from vireid.visualization.figure import png_figure, pyplot

MARKERS = {VISIBLE: ("o", "visible"), INFRARED: ("^", "infrared")}


def pick_identities(
    records: Sequence[ImageRecord], num_ids: int, seed: int = 0, per_id: int | None = None
) -> list[ImageRecord]:
    """The records of ``num_ids`` identities seen in both modalities (a seeded draw), in input order;
    with ``per_id``, at most that many images per identity and modality (also a seeded draw)."""
    if num_ids < 2:
        raise ConfigError(f"--ids: expected at least 2 identities, got {num_ids}")
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r.pid, r.modality), []).append(i)
    both = sorted({p for p, _ in groups if (p, VISIBLE) in groups and (p, INFRARED) in groups})
    if len(both) < 2:
        raise ConfigError("t-SNE needs at least 2 identities with both visible and infrared images")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(both, size=min(num_ids, len(both)), replace=False).tolist()
    keep: list[int] = []
    for pid in chosen:
        for mod in (VISIBLE, INFRARED):
            idx = groups[(pid, mod)]
            if per_id is not None and len(idx) > per_id:
                idx = rng.choice(idx, size=per_id, replace=False).tolist()
            keep += idx
    return [records[i] for i in sorted(keep)]


def embed_2d(feats: np.ndarray, seed: int = 0, normalize: bool = True) -> np.ndarray:
    """scikit-learn t-SNE of (L2-normalised) features to 2-D; perplexity adapted to small sets."""
    from sklearn.manifold import TSNE

    x = np.asarray(feats, dtype=np.float64)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = x.shape[0]
    if n < 4:
        raise ConfigError(f"t-SNE needs at least 4 images, got {n}")
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="euclidean")
    return tsne.fit_transform(x)


def plot_embedding(
    points: np.ndarray,
    pids: Sequence[int],
    modality: Sequence[int],
    out: str | os.PathLike,
    title: str = "",
) -> Path:
    """Scatter the 2-D points (colour = identity, marker = modality) into a PNG, written atomically."""
    plt = pyplot()
    pids = np.asarray(pids)
    modality = np.asarray(modality)
    uniq = sorted(set(pids.tolist()))
    if len(uniq) <= 10:
        colours = {p: plt.get_cmap("tab10")(i) for i, p in enumerate(uniq)}
    elif len(uniq) <= 20:
        colours = {p: plt.get_cmap("tab20")(i) for i, p in enumerate(uniq)}
    else:
        colours = {p: plt.get_cmap("turbo")(i / (len(uniq) - 1)) for i, p in enumerate(uniq)}
    with png_figure(out, figsize=(7, 7), dpi=120) as (_, ax):
        for mod, (marker, label) in MARKERS.items():
            sel = modality == mod
            if not sel.any():
                continue
            ax.scatter(points[sel, 0], points[sel, 1], c=[colours[p] for p in pids[sel]], marker=marker,
                       s=28, alpha=0.85, edgecolors="black" if mod == INFRARED else "none", linewidths=0.4)
            ax.scatter([], [], c="grey", marker=marker, label=label)  # colour-neutral legend entry
        ax.legend(loc="best", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title or f"t-SNE: {len(uniq)} identities (colour), visible o / infrared ^")
    return Path(out)


def tsne_plot(
    feats: np.ndarray,
    records: Sequence[ImageRecord],
    out: str | os.PathLike,
    *,
    seed: int = 0,
    title: str = "",
) -> Path:
    """Embed ``feats`` (one row per record) with t-SNE and write the picture to ``out``."""
    points = embed_2d(feats, seed=seed)
    return plot_embedding(points, [r.pid for r in records], [r.modality for r in records], out, title)


def checkpoint_tsne(
    checkpoint: str | os.PathLike,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dataset: str | None = None,
    trial: int = 1,
    num_ids: int = 20,
    per_id: int | None = 10,
    seed: int = 0,
    device: str = "auto",
) -> tuple[Path, int, int]:
    """Draw ``num_ids`` test identities (at most ``per_id`` images per modality each), extract their
    features with the checkpoint's model, plot.

    Returns (picture path, identities, images).
    """
    from vireid.features.extract import extract_features, protocol_records, resolve_device
    from vireid.models.loading import load_model

    def pick(name: str) -> list[ImageRecord]:
        return pick_identities(protocol_records(name, root, trial), num_ids, seed, per_id)

    # With the dataset named, a bad root or --ids fails before the model is loaded.
    records = pick(dataset) if dataset is not None else None
    dev = resolve_device(device)
    model, config, _ = load_model(checkpoint, dev)
    if records is None:
        dataset = config.data.dataset
        records = pick(dataset)
    fs = extract_features(model, records, root, config.data, device=dev, batch_size=config.test.batch_size,
                          flip=config.test.flip)
    title = f"{config.model.name} ({config.model.feature}) on {dataset}: {len({r.pid for r in records})} test ids"
    path = tsne_plot(fs.feats, records, out, seed=seed, title=title)
    return path, len({r.pid for r in records}), len(records)
