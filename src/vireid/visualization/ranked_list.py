"""Ranked-list pictures: a query, then its top-k gallery images with rank and distance; a green frame
marks a correct match, a red one a wrong match, a grey one an image whose identity is unknown.

Drawn with Pillow (no figure machinery: one picture per query, fast enough for thousands of queries) and
written atomically as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vireid.utils.io import atomic_path

GREEN = (22, 163, 74)
RED = (220, 38, 38)
GREY = (156, 163, 175)
BLUE = (37, 99, 235)
BORDER = 4
GAP = 6
QUERY_GAP = 22
MARGIN = 8


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _load(image: Any) -> Image.Image | None:
    """A PIL RGB image from a path, a PIL image or a uint8 array/tensor ([3, H, W] or H x W x 3); None if
    a file is missing or unreadable."""
    if image is None:
        return None
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, str | os.PathLike):
        try:
            with Image.open(image) as img:
                return img.convert("RGB")
        except (OSError, ValueError, SyntaxError):
            return None
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = a.transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(a).astype(np.uint8)).convert("RGB")


def _thumb(image: Image.Image | None, size: tuple[int, int]) -> Image.Image:
    """``image`` fitted inside ``size`` (w, h), aspect kept, on white; a placeholder when missing."""
    w, h = size
    tile = Image.new("RGB", (w, h), (255, 255, 255))
    if image is None:
        d = ImageDraw.Draw(tile)
        d.rectangle([0, 0, w - 1, h - 1], fill=(229, 231, 235))
        d.text((4, h // 2 - 6), "missing", fill=(75, 85, 99), font=_font(11))
        return tile
    scale = min(w / image.width, h / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR)
    tile.paste(resized, ((w - resized.width) // 2, (h - resized.height) // 2))
    return tile


def _fit(text: str, font: Any, width: int, draw: ImageDraw.ImageDraw) -> str:
    """``text`` cut from the left (keeping its end, e.g. a file name) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength("…" + text, font=font) > width:
        text = text[1:]
    return "…" + text


def draw_ranked_list(
    query: Any,
    gallery: Sequence[Any],
    distances: Sequence[float],
    out: str | os.PathLike,
    *,
    matches: Sequence[bool | None] | None = None,
    title: str = "",
    query_caption: str = "query",
    thumb: tuple[int, int] = (64, 128),
) -> Path:
    """Draw the query and its ranked gallery images (paths, PIL images or uint8 arrays) into a PNG.

    ``matches[i]``: True (green frame), False (red) or None (identity unknown: grey).
    """
    if len(distances) != len(gallery):
        raise ValueError(f"{len(gallery)} gallery images but {len(distances)} distances")
    matches = list(matches) if matches is not None else [None] * len(gallery)
    tw, th = thumb
    cell_w, cell_h = tw + 2 * BORDER, th + 2 * BORDER
    caption_h, title_h = 30, 18 if title else 0
    n = len(gallery)
    width = 2 * MARGIN + cell_w + QUERY_GAP + n * cell_w + max(0, n - 1) * GAP
    height = 2 * MARGIN + title_h + cell_h + caption_h
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    small, text_font = _font(11), _font(12)
    if title:
        draw.text((MARGIN, MARGIN), _fit(title, text_font, width - 2 * MARGIN, draw), fill=(17, 24, 39),
                  font=text_font)
    top = MARGIN + title_h

    def cell(x: int, image: Any, colour: tuple[int, int, int], lines: list[str]) -> None:
        draw.rectangle([x, top, x + cell_w - 1, top + cell_h - 1], fill=colour)
        canvas.paste(_thumb(_load(image), thumb), (x + BORDER, top + BORDER))
        for i, line in enumerate(lines):
            draw.text((x + 1, top + cell_h + 2 + 13 * i), _fit(line, small, cell_w, draw), fill=(17, 24, 39), font=small)

    cell(MARGIN, query, BLUE, [query_caption])
    x = MARGIN + cell_w + QUERY_GAP
    for rank, (image, dist, ok) in enumerate(zip(gallery, distances, matches, strict=True), start=1):
        colour = GREY if ok is None else GREEN if ok else RED
        cell(x, image, colour, [f"#{rank}", f"d={float(dist):.3f}"])
        x += cell_w + GAP
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        canvas.save(tmp, format="PNG")
    return out
