"""Cameras of SynthVI: modality, place (indoor room / outdoor scene), colour cast, sharpness, noise.

Each camera looks at a fixed scene (a wide panorama drawn once per camera); an image crops a window of
it at a random offset, as a detector's crops from a static camera do. Camera 3 (infrared) looks at the
room of camera 2, as in SYSU-MM01. Scene colours and scene infrared intensities are drawn separately.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .attributes import STREAM_CAMERA, make_rng


@dataclass(frozen=True)
class CameraSpec:
    """What a camera is: its number, modality, place and the scene it looks at."""

    cam: int
    infrared: bool
    outdoor: bool
    scene: int  # cameras with the same scene number share a room (SYSU-MM01 cameras 2 and 3)
    cast: tuple[float, float, float]  # nominal colour cast of visible cameras (white balance)
    brightness: float


SYSU_CAMERAS: dict[int, CameraSpec] = {
    1: CameraSpec(1, False, False, 1, (1.04, 1.0, 0.93), 1.0),  # indoor room 1, warm light
    2: CameraSpec(2, False, False, 2, (0.96, 1.0, 1.05), 0.95),  # indoor room 2, cold fluorescent light
    3: CameraSpec(3, True, False, 2, (1.0, 1.0, 1.0), 1.0),  # infrared, room 2 in the dark
    4: CameraSpec(4, False, True, 4, (1.04, 1.02, 0.94), 1.1),  # outdoor gate, daylight
    5: CameraSpec(5, False, True, 5, (0.95, 1.05, 0.95), 0.88),  # outdoor garden, green shade
    6: CameraSpec(6, True, True, 6, (1.0, 1.0, 1.0), 1.0),  # infrared, outdoor passage
}
# RegDB: one dual camera (visible 1, thermal 2) looking at one outdoor scene, co-registered frames.
REGDB_CAMERAS: dict[int, CameraSpec] = {
    1: CameraSpec(1, False, True, 1, (1.0, 1.0, 0.96), 1.0),
    2: CameraSpec(2, True, True, 1, (1.0, 1.0, 1.0), 1.0),
}


@dataclass(frozen=True)
class Camera:
    """A camera of one dataset: its spec plus the dataset's draws (cast, blur, noise) and its scene."""

    spec: CameraSpec
    gain: np.ndarray  # (3,) visible white balance x brightness; infrared: (gain, gain, gain)
    blur: float  # Gaussian blur radius in pixels at 128-pixel height
    noise: float  # noise standard deviation (intensity in [0, 1])
    contrast: float  # infrared contrast compression (1 = none)
    background: np.ndarray  # float32 panorama: (Hp, Wp, 3) visible or (Hp, Wp) infrared
    noise_pool: np.ndarray  # float32 standard normal noise, twice the image size; images crop windows of it


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] of size (h, w): a coarse random grid upsampled bilinearly."""
    coarse = rng.uniform(0, 255, size=(max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.uint8)
    img = Image.fromarray(coarse, "L").resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 127.5 - 1.0


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def draw_scene(seed: int, scene: int, outdoor: bool, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The panorama of a scene: (visible RGB float32 (Hp, Wp, 3), infrared float32 (Hp, Wp)).

    Objects are drawn as a label map; each label gets a colour and, independently, an infrared
    intensity; a low-frequency texture modulates both. Indoor: wall, floor with perspective tiles,
    doors, windows and furniture. Outdoor: sky, buildings, trees, ground and a paved path.
    """
    rng = make_rng(seed, STREAM_CAMERA, 1000 + scene)
    hp, wp = int(round(height * 1.25)), width * 5
    labels = Image.new("L", (wp, hp), 0)
    draw = ImageDraw.Draw(labels)
    colours: list[tuple[float, float, float]] = []
    thermal: list[float] = []

    def add(colour: tuple[float, float, float], ir: float) -> int:
        colours.append(colour)
        thermal.append(ir)
        return len(colours) - 1

    horizon = int(hp * (rng.uniform(0.55, 0.68) if not outdoor else rng.uniform(0.35, 0.5)))
    if not outdoor:
        add(_hsv(rng.random(), rng.uniform(0.05, 0.3), rng.uniform(0.6, 0.9)), rng.uniform(0.18, 0.3))  # wall
        floor = add(_hsv(rng.random(), rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.6)), rng.uniform(0.15, 0.25))
        draw.rectangle([0, horizon, wp, hp], fill=floor)
        skirting = add(_hsv(rng.random(), 0.2, rng.uniform(0.2, 0.5)), rng.uniform(0.15, 0.25))
        draw.rectangle([0, horizon - max(1, hp // 40), wp, horizon], fill=skirting)
        x = int(rng.integers(0, width))
        while x < wp:
            w = int(rng.uniform(0.3, 1.0) * width)
            kind = rng.random()
            if kind < 0.35:  # door: tall, reaches the floor
                top, bottom = int(horizon * rng.uniform(0.15, 0.3)), horizon
                col = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.6))
            elif kind < 0.65:  # window or notice board
                top, bottom = int(horizon * rng.uniform(0.1, 0.3)), int(horizon * rng.uniform(0.5, 0.75))
                col = _hsv(rng.uniform(0.5, 0.65), rng.uniform(0.05, 0.3), rng.uniform(0.6, 1.0))
            else:  # cabinet, desk or radiator
                top, bottom = int(horizon * rng.uniform(0.5, 0.8)), int(horizon + hp * 0.08)
                col = _hsv(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.8))
            warm = rng.random() < 0.15  # a radiator or a screen: warm in infrared
            lab = add(col, rng.uniform(0.45, 0.65) if warm else rng.uniform(0.1, 0.3))
            draw.rectangle([x, top, x + w, bottom], fill=lab)
            x += w + int(rng.uniform(0.2, 1.2) * width)
    else:
        add(_hsv(rng.uniform(0.55, 0.62), rng.uniform(0.1, 0.5), rng.uniform(0.75, 1.0)), rng.uniform(0.02, 0.08))  # sky
        ground = add(_hsv(rng.uniform(0.05, 0.35), rng.uniform(0.1, 0.5), rng.uniform(0.3, 0.6)), rng.uniform(0.3, 0.45))
        draw.rectangle([0, horizon, wp, hp], fill=ground)
        x = int(rng.integers(-width // 2, width // 2))
        while x < wp:
            w = int(rng.uniform(0.4, 1.6) * width)
            if rng.random() < 0.5:  # building
                top = int(horizon * rng.uniform(0.0, 0.6))
                lab = add(_hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.35, 0.85)), rng.uniform(0.2, 0.4))
                draw.rectangle([x, top, x + w, horizon], fill=lab)
                win = add(_hsv(0.58, 0.2, rng.uniform(0.2, 0.5)), rng.uniform(0.1, 0.2))
                step = max(3, int(height * 0.08))
                for wy in range(top + step // 2, horizon - step, step):
                    for wx in range(x + step // 2, x + w - step, step):
                        draw.rectangle([wx, wy, wx + step // 2, wy + step // 2], fill=win)
            else:  # tree: trunk and crown
                trunk = add(_hsv(0.08, 0.5, rng.uniform(0.2, 0.35)), rng.uniform(0.25, 0.35))
                crown = add(_hsv(rng.uniform(0.2, 0.4), rng.uniform(0.4, 0.8), rng.uniform(0.25, 0.6)), rng.uniform(0.15, 0.3))
                cx, tw = x + w // 2, max(2, w // 8)
                draw.rectangle([cx - tw, int(horizon * 0.6), cx + tw, horizon + 2], fill=trunk)
                draw.ellipse([x, int(horizon * rng.uniform(0.0, 0.3)), x + w, int(horizon * 0.85)], fill=crown)
            x += w + int(rng.uniform(0.0, 0.8) * width)
        path = add(_hsv(rng.random(), rng.uniform(0.0, 0.15), rng.uniform(0.5, 0.8)), rng.uniform(0.35, 0.5))
        py = int(horizon + (hp - horizon) * rng.uniform(0.2, 0.5))
        draw.rectangle([0, py, wp, hp], fill=path)

    lab = np.asarray(labels)
    vis = np.asarray(colours, dtype=np.float32)[lab]
    ir = np.asarray(thermal, dtype=np.float32)[lab]
    tex = _smooth_noise(rng, hp, wp, max(2, height // 16))
    if not outdoor:  # perspective floor tiles
        yy, xx = np.mgrid[0:hp, 0:wp].astype(np.float32)
        depth = (hp * 0.6) / np.maximum(yy - horizon + 2.0, 1.0)
        tiles = ((np.floor(xx * depth / width * 3) + np.floor(depth * 4)) % 2) * 2 - 1
        tex = tex + np.where(yy > horizon, tiles * 0.6, 0.0).astype(np.float32)
    vis = np.clip(vis * (1.0 + 0.08 * tex[..., None]), 0, 1)
    ir = np.clip(ir * (1.0 + 0.05 * tex), 0, 1)
    return vis.astype(np.float32), ir.astype(np.float32)


def make_camera(seed: int, spec: CameraSpec, height: int, width: int, nuisance: float) -> Camera:
    """Draw a dataset's camera: its colour cast and brightness (scaled by ``nuisance``), blur and noise."""
    rng = make_rng(seed, STREAM_CAMERA, spec.cam)
    cast = np.asarray(spec.cast, dtype=np.float64) ** nuisance * np.exp(0.06 * nuisance * rng.standard_normal(3))
    gain = cast / cast.mean() * spec.brightness**nuisance
    vis, ir = draw_scene(seed, spec.scene, spec.outdoor, height, width)
    pool_shape = (2 * height, 2 * width) if spec.infrared else (2 * height, 2 * width, 3)
    pool = rng.standard_normal(pool_shape, dtype=np.float32)
    if spec.infrared:
        return Camera(
            spec=spec, gain=np.ones(3, dtype=np.float32), blur=float(rng.uniform(0.9, 1.3)),
            noise=float(rng.uniform(0.018, 0.026)), contrast=float(rng.uniform(0.6, 0.75)), background=ir,
            noise_pool=pool,
        )
    return Camera(
        spec=spec, gain=gain.astype(np.float32), blur=float(rng.uniform(0.35, 0.6)),
        noise=float(rng.uniform(0.012, 0.02)), contrast=1.0, background=vis, noise_pool=pool,
    )
