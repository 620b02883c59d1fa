"""t-SNE identity draw and pictures, training curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vireid.data.records import INFRARED, VISIBLE, ImageRecord
from vireid.errors import ConfigError, VireidError
from vireid.visualization.curves import plot_curves
from vireid.visualization.tsne import pick_identities, tsne_plot


def records() -> list[ImageRecord]:
    out = []
    for pid in range(1, 6):
        mods = (VISIBLE,) if pid == 5 else (VISIBLE, INFRARED)  # id 5 has no infrared image
        for mod in mods:
            out += [ImageRecord(f"{pid}/{mod}/{k}.jpg", pid, 1 + 2 * mod, mod) for k in range(6)]
    return out


def test_pick_identities_draws_cross_modal_ids_and_caps_images():
    picked = pick_identities(records(), num_ids=3, seed=1, per_id=2)
    pids = {r.pid for r in picked}
    assert len(pids) == 3 and 5 not in pids
    assert len(picked) == 3 * 2 * 2
    assert picked == pick_identities(records(), num_ids=3, seed=1, per_id=2)  # seeded
    assert len(pick_identities(records(), num_ids=10, per_id=None)) == 4 * 12
    with pytest.raises(ConfigError, match="--ids"):
        pick_identities(records(), num_ids=1)


def test_tsne_picture_is_a_png(tmp_path):
    recs = pick_identities(records(), num_ids=4, per_id=3)
    rng = np.random.default_rng(0)
    feats = np.stack([rng.normal(r.pid, 0.1, size=8) for r in recs])
    out = tsne_plot(feats, recs, tmp_path / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_from_metrics(tmp_path):
    lines = [{"kind": "step", "epoch": 1, "step": 1, "loss": 3.0},
             {"kind": "epoch", "epoch": 1, "lr": 0.1, "loss": 3.0, "ce": 2.0},
             {"kind": "epoch", "epoch": 2, "lr": 0.1, "loss": 2.0, "ce": 1.5, "val": {"rank1": 10.0, "mAP": 12.0}}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert plot_curves(tmp_path, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "metrics.jsonl").write_text(json.dumps(lines[0]) + "\n")
    with pytest.raises(VireidError, match="no finished epoch"):
        plot_curves(tmp_path, tmp_path / "d.png")
