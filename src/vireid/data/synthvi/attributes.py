"""An identity of SynthVI: latent attributes, some visible-only, some infrared-only, some shared.

Visible-only attributes (colours) and infrared-only attributes (emissivities, body temperature) are
drawn from separate random streams, so colour carries no information about infrared appearance.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

# Random streams: each thing that is drawn has its own seed sequence, independent of generation order.
STREAM_SHAPE, STREAM_COLOUR, STREAM_THERMAL, STREAM_IMAGE, STREAM_CAMERA, STREAM_SPLIT = range(1, 7)

PATTERNS = ("plain", "hstripes", "vstripes", "checks", "logo")
LOWER_KINDS = ("trousers", "shorts", "skirt")
BAG_KINDS = ("none", "backpack", "shoulder")


def make_rng(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A generator for one (stream, keys) of the dataset seed: the same numbers whatever the order."""
    return np.random.default_rng([seed, stream, *keys])


@dataclass(frozen=True)
class Shape:
    """Shared attributes: visible in both modalities (silhouette, patterns, accessories, hair length)."""

    female: bool
    height: float  # body height as a fraction of the nominal person height
    build: float  # width multiplier (thin < 1 < broad)
    shoulder: float  # shoulder half-width, in person heights
    hip: float  # hip half-width, in person heights
    head: float  # head height, in person heights
    leg: float  # leg length, in person heights
    hair_length: int  # 0 short, 1 medium (to the neck), 2 long (below the shoulders)
    long_sleeves: bool
    lower: str  # one of LOWER_KINDS
    pattern: str  # one of PATTERNS, on the upper garment
    pattern_freq: int  # stripe/check cycles over the torso height
    pattern_phase: float
    logo_size: float  # logo half-size, in torso widths
    logo_y: float  # logo centre, in torso heights from the shoulders
    logo_round: bool
    bag: str  # one of BAG_KINDS
    bag_side: int  # -1 or +1: the body side the shoulder bag hangs on
    bag_size: float
    hat: bool


@dataclass(frozen=True)
class Colours:
    """Visible-only attributes: RGB colours in [0, 1]."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    upper: tuple[float, float, float]
    pattern: tuple[float, float, float]  # second colour of stripes, checks or the logo
    lower: tuple[float, float, float]
    shoes: tuple[float, float, float]
    bag: tuple[float, float, float]
    hat: tuple[float, float, float]


@dataclass(frozen=True)
class Thermal:
    """Infrared-only attributes: apparent intensities in [0, 1], drawn independently of the colours."""

    skin: float  # body temperature: the brightest part
    hair: float
    upper: float
    pattern: float  # intensity of the stripes, checks or logo (their own emissivity)
    lower: float
    shoes: float
    bag: float
    hat: float


@dataclass(frozen=True)
class Identity:
    """A person: the union of its shared, visible-only and infrared-only attributes."""

    pid: int
    shape: Shape
    colours: Colours
    thermal: Thermal


def _garment_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A clothing colour: one in three neutral (black, grey, white, navy), the rest saturated hues."""
    if rng.random() < 0.35:
        v = float(rng.choice([0.08, 0.2, 0.4, 0.6, 0.85]) + rng.uniform(-0.05, 0.05))
        tint = rng.uniform(-0.04, 0.04, size=3)
        if rng.random() < 0.25:  # navy / khaki-ish neutrals
            tint = np.array([-0.05, -0.02, 0.08]) if rng.random() < 0.5 else np.array([0.07, 0.05, -0.04])
        return tuple(float(np.clip(v + t, 0.0, 1.0)) for t in tint)  # type: ignore[return-value]
    h, s, v = rng.random(), rng.uniform(0.45, 0.95), rng.uniform(0.35, 0.95)
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def _distinct_colour(rng: np.random.Generator, other: tuple[float, float, float]) -> tuple[float, float, float]:
    """A garment colour at least a clear step away from ``other`` (so patterns show in visible light)."""
    for _ in range(20):
        c = _garment_colour(rng)
        if np.abs(np.subtract(c, other)).sum() > 0.6:
            return c
    return tuple(float(1.0 - x) for x in other)  # type: ignore[return-value]


def sample_shape(rng: np.random.Generator) -> Shape:
    female = bool(rng.random() < 0.5)
    pattern = str(rng.choice(PATTERNS, p=[0.2, 0.22, 0.18, 0.18, 0.22]))
    lower_p = [0.55, 0.15, 0.3] if female else [0.8, 0.2, 0.0]
    bag = str(rng.choice(BAG_KINDS, p=[0.4, 0.35, 0.25]))
    hair_p = [0.15, 0.35, 0.5] if female else [0.7, 0.25, 0.05]
    return Shape(
        female=female,
        height=float(rng.uniform(0.9, 1.0)),
        build=float(rng.uniform(0.82, 1.22)),
        shoulder=float(rng.uniform(0.13, 0.16) if female else rng.uniform(0.15, 0.18)),
        hip=float(rng.uniform(0.11, 0.14)),
        head=float(rng.uniform(0.12, 0.145)),
        leg=float(rng.uniform(0.44, 0.51)),
        hair_length=int(rng.choice(3, p=hair_p)),
        long_sleeves=bool(rng.random() < 0.6),
        lower=str(rng.choice(LOWER_KINDS, p=lower_p)),
        pattern=pattern,
        pattern_freq=int(rng.integers(2, 6)),
        pattern_phase=float(rng.uniform(0, 2 * np.pi)),
        logo_size=float(rng.uniform(0.22, 0.4)),
        logo_y=float(rng.uniform(0.25, 0.5)),
        logo_round=bool(rng.random() < 0.5),
        bag=bag,
        bag_side=int(rng.choice([-1, 1])),
        bag_size=float(rng.uniform(0.8, 1.2)),
        hat=bool(rng.random() < 0.2),
    )


def sample_colours(rng: np.random.Generator) -> Colours:
    tone = rng.uniform(0.0, 1.0)  # light to dark skin
    skin = colorsys.hsv_to_rgb(rng.uniform(0.03, 0.09), 0.25 + 0.35 * tone, 0.95 - 0.6 * tone)
    hair_base = [(0.06, 0.05, 0.05), (0.25, 0.16, 0.1), (0.45, 0.3, 0.15), (0.8, 0.68, 0.4), (0.6, 0.6, 0.6)]
    hair = np.array(hair_base[int(rng.choice(5, p=[0.45, 0.25, 0.12, 0.1, 0.08]))]) + rng.uniform(-0.04, 0.04, 3)
    upper = _garment_colour(rng)
    return Colours(
        skin=tuple(float(c) for c in skin),  # type: ignore[arg-type]
        hair=tuple(float(c) for c in np.clip(hair, 0, 1)),  # type: ignore[arg-type]
        upper=upper,
        pattern=_distinct_colour(rng, upper),
        lower=_garment_colour(rng),
        shoes=_garment_colour(rng),
        bag=_garment_colour(rng),
        hat=_garment_colour(rng),
    )


def sample_thermal(rng: np.random.Generator) -> Thermal:
    body = float(rng.uniform(0.78, 0.96))
    upper = body * float(rng.uniform(0.42, 0.88))  # thin shirts glow, thick jackets insulate
    contrast = float(rng.uniform(0.15, 0.35)) * float(rng.choice([-1.0, 1.0]))
    return Thermal(
        skin=body,
        hair=body * float(rng.uniform(0.35, 0.6)),
        upper=upper,
        pattern=float(np.clip(upper + contrast, 0.05, 1.0)),
        lower=body * float(rng.uniform(0.4, 0.85)),
        shoes=float(rng.uniform(0.2, 0.45)),
        bag=float(rng.uniform(0.12, 0.45)),
        hat=body * float(rng.uniform(0.35, 0.7)),
    )


def sample_identity(seed: int, pid: int) -> Identity:
    """The identity ``pid`` of the dataset ``seed``; shape, colours and thermal use separate streams."""
    return Identity(
        pid=pid,
        shape=sample_shape(make_rng(seed, STREAM_SHAPE, pid)),
        colours=sample_colours(make_rng(seed, STREAM_COLOUR, pid)),
        thermal=sample_thermal(make_rng(seed, STREAM_THERMAL, pid)),
    )
