"""SynthConfig: every knob of the SynthVI generator, validated in one place."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from vireid.errors import ConfigError

LAYOUTS = ("sysu", "regdb")


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the SynthVI generator (docs/synthvi.md explains the generative model they drive).

    ``nuisance`` is the overall difficulty: it scales every per-image nuisance (pose and placement
    jitter, camera colour casts and illumination changes, occlusion, blur, noise, loose crops).
    0 gives clean, centred, evenly lit images; 1 is the calibrated default; up to 2 is harder.
    """

    layout: str = "sysu"
    num_ids: int = 300
    seed: int = 0
    height: int = 128
    width: int = 64
    nuisance: float = 1.0
    # SYSU-MM01 layout: images per (id, camera) are drawn uniformly from [min, max]; a camera of an
    # id is kept with ``camera_presence`` (at least one visible and one infrared camera is always kept).
    min_images: int = 4
    max_images: int = 10
    camera_presence: float = 0.75
    # Fractions of ids in exp/train_id.txt and exp/val_id.txt; the rest is exp/test_id.txt.
    train_fraction: float = 0.6
    val_fraction: float = 0.2
    # RegDB layout: images per id and modality (the real dataset has 10), and the number of trials.
    regdb_images: int = 10
    regdb_trials: int = 10
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        def bad(option: str, expected: str, got: Any) -> ConfigError:
            return ConfigError(f"SynthVI option {option}: expected {expected}, got {got!r}")

        if self.layout not in LAYOUTS:
            raise bad("layout", "one of " + ", ".join(LAYOUTS), self.layout)
        min_ids = 2 if self.layout == "regdb" else 3
        if not isinstance(self.num_ids, int) or self.num_ids < min_ids:
            raise bad("num_ids", f"an integer >= {min_ids} for the {self.layout} layout", self.num_ids)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", "a non-negative integer", self.seed)
        if not (isinstance(self.height, int) and 16 <= self.height <= 1024):
            raise bad("height", "an integer in [16, 1024]", self.height)
        if not (isinstance(self.width, int) and 8 <= self.width <= 1024):
            raise bad("width", "an integer in [8, 1024]", self.width)
        if not 0.0 <= self.nuisance <= 2.0:
            raise bad("nuisance", "a number in [0, 2]", self.nuisance)
        if not 1 <= self.min_images <= self.max_images:
            raise bad("min_images/max_images", "1 <= min_images <= max_images", (self.min_images, self.max_images))
        if self.max_images > 9999:
            raise bad("max_images", "at most 9999 (4-digit image names)", self.max_images)
        if self.num_ids > 9999 and self.layout == "sysu":
            raise bad("num_ids", "at most 9999 for the sysu layout (4-digit id folders)", self.num_ids)
        if not 0.0 < self.camera_presence <= 1.0:
            raise bad("camera_presence", "a probability in (0, 1]", self.camera_presence)
        if not (0.0 < self.train_fraction and 0.0 <= self.val_fraction and self.train_fraction + self.val_fraction < 1.0):
            raise bad("train_fraction/val_fraction", "positive fractions summing to less than 1",
                      (self.train_fraction, self.val_fraction))
        if not 1 <= self.regdb_images <= 99999:
            raise bad("regdb_images", "an integer in [1, 99999]", self.regdb_images)
        if not 1 <= self.regdb_trials <= 99:
            raise bad("regdb_trials", "an integer in [1, 99]", self.regdb_trials)
        if not 1 <= self.jpeg_quality <= 100:
            raise bad("jpeg_quality", "an integer in [1, 100]", self.jpeg_quality)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
