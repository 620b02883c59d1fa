"""The image record: what every reader produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass

VISIBLE = 0
INFRARED = 1
MODALITY_NAMES = {VISIBLE: "visible", INFRARED: "infrared"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset.

    ``path`` is relative to the dataset root with POSIX separators (the key of features files);
    ``pid`` is the dataset's own person id; ``camera`` the dataset's camera number (SYSU-MM01: 1..6,
    RegDB: 1 visible, 2 thermal); ``modality`` is ``VISIBLE`` or ``INFRARED``; ``label`` is a
    contiguous training label (or the idx-file label for RegDB), ``-1`` where none applies.
    """

    path: str
    pid: int
    camera: int
    modality: int
    label: int = -1
