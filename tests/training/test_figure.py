"""png_figure: the one way pictures are written (atomic PNG, figure always closed)."""

from __future__ import annotations

import pytest

from vireid.visualization.figure import png_figure, pyplot


def test_png_figure_writes_a_png_and_closes_the_figure(tmp_path):
    plt = pyplot()
    before = len(plt.get_fignums())
    out = tmp_path / "sub" / "f.png"
    with png_figure(out, nrows=1, ncols=2, figsize=(3, 2), dpi=50) as (fig, axes):
        axes[0].plot([0, 1], [1, 0])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(plt.get_fignums()) == before


def test_a_failing_drawing_leaves_the_previous_picture_and_no_temporary_file(tmp_path):
    plt = pyplot()
    before = len(plt.get_fignums())
    out = tmp_path / "f.png"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), png_figure(out, figsize=(2, 2), dpi=50) as (_, ax):
        ax.plot([0, 1])
        raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
    assert len(plt.get_fignums()) == before
