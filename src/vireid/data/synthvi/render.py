"""Drawing one pedestrian image: a part label map drawn with PIL, coloured per modality, composited
on the camera's scene, then degraded (illumination, blur, noise).

Geometry (:class:`Pose`) and appearance are separate so that RegDB's co-registered visible/thermal
frames share one pose. All sizes are relative to the image height, so cues survive downscaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .attributes import Identity
from .cameras import Camera

BG, SKIN, HAIR, UPPER, LOWER, SHOES, BAG, HAT, OCCLUDER, PATTERN = range(10)
VIEWS = ("front", "back", "side")


@dataclass(frozen=True)
class Pose:
    """Per-image geometry: viewpoint, walking phase, placement, background window and occluder."""

    view: str
    facing: int  # +1 or -1: mirror of the figure (side view: walking direction)
    cx: float  # body centre x, pixels
    foot: float  # feet y, pixels
    size: float  # nominal person height, pixels
    stride: float  # leg swing, radians (signed)
    arm: float  # arm swing, radians (signed)
    bg_x: int  # background window offset in the camera's panorama
    bg_y: int
    occluder: tuple[str, float, float] | None  # (kind, position, extent) in image fractions


def sample_pose(rng: np.random.Generator, height: int, width: int, nuisance: float, bg_shape: tuple[int, int],
                views: tuple[str, ...] = VIEWS) -> Pose:
    """Draw viewpoint, walking phase, scale and translation jitter, loose crops and partial occlusion."""
    view = str(rng.choice(views))
    loose = rng.random() < 0.12 * nuisance
    size = height * (rng.uniform(0.62, 0.78) if loose else rng.uniform(0.86, 0.96) - 0.06 * nuisance * rng.random())
    cx = width / 2 + width * 0.08 * nuisance * rng.uniform(-1, 1)
    foot = (height + size) / 2 + height * 0.04 * nuisance * rng.uniform(-1, 1)
    phase = rng.uniform(0, 2 * np.pi)
    swing = rng.uniform(0.15, 0.45) * min(1.0, 0.3 + nuisance)
    occluder = None
    if rng.random() < 0.2 * nuisance:
        kind = str(rng.choice(["low", "side", "pole"]))
        occluder = (kind, float(rng.random()), float(rng.uniform(0.15, 0.35)))
    hp, wp = bg_shape
    return Pose(
        view=view, facing=int(rng.choice([-1, 1])), cx=float(cx), foot=float(foot), size=float(size),
        stride=float(swing * np.sin(phase)), arm=float(0.8 * swing * np.sin(phase + np.pi)),
        bg_x=int(rng.integers(0, wp - width + 1)), bg_y=int(rng.integers(0, hp - height + 1)), occluder=occluder,
    )


def _limb(draw: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float, w0: float, w1: float,
          fill: int) -> None:
    """A tapered limb from (x0, y0) (width w0) to (x1, y1) (width w1) as a quadrilateral."""
    dx, dy = x1 - x0, y1 - y0
    n = max(np.hypot(dx, dy), 1e-6)
    px, py = -dy / n, dx / n
    draw.polygon([(x0 + px * w0 / 2, y0 + py * w0 / 2), (x1 + px * w1 / 2, y1 + py * w1 / 2),
                  (x1 - px * w1 / 2, y1 - py * w1 / 2), (x0 - px * w0 / 2, y0 - py * w0 / 2)], fill=fill)


@dataclass(frozen=True)
class _Frame:
    """Body landmarks of one image, in pixels."""

    cx: float
    shoulder_y: float
    hip_y: float
    torso_half: float


def draw_labels(ident: Identity, pose: Pose, height: int, width: int) -> tuple[np.ndarray, _Frame]:
    """The part label map (uint8, ``height`` x ``width``) of the person in ``pose``, plus landmarks."""
    s = ident.shape
    img = Image.new("L", (width, height), BG)
    d = ImageDraw.Draw(img)
    side = pose.view == "side"
    back = pose.view == "back"
    f = pose.facing
    p = pose.size * s.height
    cx, foot = pose.cx, pose.foot
    top = foot - p
    head_h = s.head * p
    head_w = head_h * 0.8 * s.build**0.3
    shoulder_y = top + head_h + 0.035 * p
    hip_y = foot - s.leg * p
    knee_y = (hip_y + foot) / 2
    squash = 0.6 if side else 1.0
    sw = s.shoulder * p * s.build * squash
    hw = s.hip * p * s.build * squash
    leg_w = hw * (1.7 if side else 0.95)
    arm_w = max(1.5, 0.06 * p * s.build**0.5)
    shoe_h = 0.04 * p

    # Long hair hangs behind the head in front and side views.
    hair_down = {0: 0.0, 1: 0.05 * p, 2: 0.16 * p}[s.hair_length]
    if hair_down and not back:
        hx = cx - f * head_w * 0.25 if side else cx
        d.rectangle([hx - head_w * 0.6, top + head_h * 0.4, hx + head_w * 0.6, shoulder_y + hair_down], fill=HAIR)
    # Backpack seen from the side sticks out behind the back.
    if s.bag == "backpack" and side:
        bw = 0.1 * p * s.bag_size
        bx = cx - f * (sw + bw * 0.45)
        d.rectangle([bx - bw / 2, shoulder_y + 0.02 * p, bx + bw / 2, shoulder_y + 0.24 * p * s.bag_size], fill=BAG)

    # Legs (with their swing), shoes, lower garment.
    if side:
        feet = [(cx + f * np.sin(pose.stride) * s.leg * p, foot), (cx - f * np.sin(pose.stride) * s.leg * p, foot)]
        hips = [(cx, hip_y), (cx, hip_y)]
    else:
        spread = hw * 0.5 + abs(pose.stride) * 0.1 * p
        lift = 0.02 * p * np.sign(pose.stride)
        feet = [(cx - spread, foot - max(lift, 0)), (cx + spread, foot + min(lift, 0))]
        hips = [(cx - hw * 0.5, hip_y), (cx + hw * 0.5, hip_y)]
    for (hx, hy), (fx, fy) in zip(hips, feet, strict=True):
        if s.lower == "trousers":
            _limb(d, hx, hy, fx, fy - shoe_h * 0.5, leg_w, leg_w * 0.7, LOWER)
        else:
            _limb(d, hx, hy, fx, fy - shoe_h * 0.5, leg_w * 0.8, leg_w * 0.55, SKIN)
            if s.lower == "shorts":
                kx, ky = (hx + fx) / 2, (hy + fy) / 2
                _limb(d, hx, hy, kx, ky, leg_w * 1.05, leg_w * 0.95, LOWER)
        sx = fx + (f * shoe_h * 0.8 if side else 0.0)
        d.rectangle([sx - leg_w * 0.45 - (shoe_h * 0.4 if side else 0), fy - shoe_h,
                     sx + leg_w * 0.45 + (shoe_h * 0.4 if side else 0), fy], fill=SHOES)
    if s.lower == "skirt":
        flare = hw * 1.6 if not side else hw * 1.4
        d.polygon([(cx - hw * 1.05, hip_y - 0.02 * p), (cx + hw * 1.05, hip_y - 0.02 * p),
                   (cx + flare, knee_y), (cx - flare, knee_y)], fill=LOWER)
    elif s.lower == "trousers" or s.lower == "shorts":
        d.rectangle([cx - hw * 1.02, hip_y - 0.03 * p, cx + hw * 1.02, hip_y + 0.04 * p], fill=LOWER)

    # Torso.
    d.polygon([(cx - sw, shoulder_y), (cx + sw, shoulder_y), (cx + hw * 1.05, hip_y + 0.01 * p),
               (cx - hw * 1.05, hip_y + 0.01 * p)], fill=UPPER)
    # Arms: sleeve (upper garment) and hand (skin); short sleeves show the forearm.
    arm_len = 0.34 * p
    arm_sides = [f] if side else [-1, 1]
    for a in arm_sides:
        sx0 = cx if side else cx + a * (sw - arm_w * 0.3)
        sy0 = shoulder_y + arm_w * 0.4
        ang = pose.arm * (f if side else 0.25 * a)
        ex = sx0 + (np.sin(ang) * arm_len if side else a * (arm_w * 0.6 + np.sin(abs(ang)) * arm_len * 0.3))
        ey = sy0 + np.cos(ang) * arm_len
        if s.long_sleeves:
            _limb(d, sx0, sy0, ex, ey, arm_w * 1.1, arm_w * 0.9, UPPER)
        else:
            _limb(d, sx0, sy0, ex, ey, arm_w, arm_w * 0.85, SKIN)
            _limb(d, sx0, sy0, (sx0 + ex) / 2, (sy0 + ey) / 2, arm_w * 1.2, arm_w * 1.1, UPPER)
        hr = arm_w * 0.55
        d.ellipse([ex - hr, ey - hr * 0.6, ex + hr, ey + hr * 1.4], fill=SKIN)
    # Neck and head.
    d.rectangle([cx - head_w * 0.25, top + head_h * 0.8, cx + head_w * 0.25, shoulder_y + 0.01 * p], fill=SKIN)
    hx0, hx1, hy0, hy1 = cx - head_w / 2, cx + head_w / 2, top, top + head_h
    if back:
        d.ellipse([hx0, hy0, hx1, hy1], fill=HAIR)
        if hair_down:
            d.rectangle([hx0 - head_w * 0.05, hy0 + head_h * 0.45, hx1 + head_w * 0.05, shoulder_y + hair_down],
                        fill=HAIR)
    else:
        d.ellipse([hx0 - head_w * 0.04, hy0 - head_h * 0.04, hx1 + head_w * 0.04, hy1], fill=HAIR)
        cap = (0.42 if s.hair_length else 0.32) * head_h
        if side:
            fx0 = cx - head_w * 0.2 + f * head_w * 0.15
            d.ellipse([fx0 - head_w * 0.35, hy0 + cap * 0.8, fx0 + head_w * 0.45, hy1], fill=SKIN)
        else:
            d.ellipse([hx0 + head_w * 0.08, hy0 + cap, hx1 - head_w * 0.08, hy1], fill=SKIN)
    if s.hat:
        d.rectangle([hx0 - head_w * 0.06, hy0 - head_h * 0.1, hx1 + head_w * 0.06, hy0 + head_h * 0.35], fill=HAT)
        if not back:
            bx = cx + (f * head_w * 0.6 if side else 0.0)
            d.rectangle([bx - head_w * 0.6, hy0 + head_h * 0.28, bx + head_w * 0.6, hy0 + head_h * 0.4], fill=HAT)
    # Bags: a backpack is a big box from behind and straps from the front; a shoulder bag hangs at the hip.
    strap = max(1.0, 0.022 * p)
    if s.bag == "backpack" and not side:
        bw = sw * 0.85 * s.bag_size
        if back:
            d.rectangle([cx - bw, shoulder_y + 0.02 * p, cx + bw, shoulder_y + 0.25 * p * s.bag_size], fill=BAG)
        else:
            for a in (-1, 1):
                x = cx + a * sw * 0.55
                d.rectangle([x - strap / 2 - 0.5, shoulder_y, x + strap / 2 + 0.5, shoulder_y + 0.15 * p], fill=BAG)
    if s.bag == "shoulder":
        side_x = s.bag_side * (1 if back else -1) * f
        bw, bh = 0.065 * p * s.bag_size, 0.11 * p * s.bag_size
        bx = cx + (f * 0.2 * hw if side else side_x * (hw + bw * 0.9))
        by = hip_y - 0.02 * p
        if not side:
            sx = cx - side_x * sw * 0.8
            d.line([(sx, shoulder_y), (bx, by)], fill=BAG, width=max(1, int(round(strap))))
        d.rectangle([bx - bw, by, bx + bw, by + bh], fill=BAG)
    return np.asarray(img).copy(), _Frame(cx=cx, shoulder_y=shoulder_y, hip_y=hip_y, torso_half=sw)


def apply_pattern(labels: np.ndarray, ident: Identity, pose: Pose, frame: _Frame) -> None:
    """Paint the upper garment's stripes, checks or logo (label PATTERN) into ``labels``, in place.

    Pattern coordinates follow the body, so the frequency is the identity's whatever the scale;
    a logo is printed on the chest and shows only from the front.
    """
    s = ident.shape
    if s.pattern == "plain" or (s.pattern == "logo" and pose.view != "front"):
        return
    rows = np.nonzero((labels == UPPER).any(axis=1))[0]
    if rows.size == 0:
        return
    y0, y1 = rows[0], rows[-1] + 1
    sub = labels[y0:y1]
    upper = sub == UPPER
    th = max(frame.hip_y - frame.shoulder_y, 1.0)
    v = ((np.arange(y0, y1, dtype=np.float32) + 0.5 - frame.shoulder_y) / th)[:, None]
    squash = 0.6 if pose.view == "side" else 1.0
    u = ((np.arange(labels.shape[1], dtype=np.float32) + 0.5 - frame.cx) / (th * squash))[None, :]
    w = 2 * np.pi * s.pattern_freq
    if s.pattern == "hstripes":
        mark = np.broadcast_to(np.sin(w * v + s.pattern_phase) > 0.0, upper.shape)
    elif s.pattern == "vstripes":
        mark = np.broadcast_to(np.sin(w * u + s.pattern_phase) > 0.0, upper.shape)
    elif s.pattern == "checks":
        mark = (np.sin(w * v + s.pattern_phase) > 0.0) ^ (np.sin(w * u) > 0.0)
    else:
        half = s.logo_size * frame.torso_half / th
        dv, du = v - s.logo_y, u
        mark = (dv**2 + du**2 < half**2) if s.logo_round else ((np.abs(dv) < half) & (np.abs(du) < half))
    sub[upper & mark] = PATTERN


def draw_occluder(labels: np.ndarray, pose: Pose) -> None:
    """Cover part of the image with an occluder (label OCCLUDER), in place."""
    if pose.occluder is None:
        return
    kind, pos, extent = pose.occluder
    h, w = labels.shape
    if kind == "low":  # a bench, a bin or a car bonnet in front of the legs
        labels[int(h * (1 - extent * 1.3)):, :] = OCCLUDER
    elif kind == "side":  # a wall, a door frame or a passer-by at one side
        n = int(round(w * extent * 1.2))
        if pos < 0.5:
            labels[:, :n] = OCCLUDER
        else:
            labels[:, w - n:] = OCCLUDER
    else:  # a pole
        n = max(2, int(round(w * extent * 0.5)))
        x = int(pos * (w - n))
        labels[:, x:x + n] = OCCLUDER


def _body_shading(height: int, width: int, frame: _Frame, strength: float) -> np.ndarray:
    """Cylinder-like shading across the body and a top-down light gradient, (height, width) float32."""
    x = (np.arange(width, dtype=np.float32) + 0.5 - frame.cx) / max(frame.torso_half * 1.4, 1.0)
    y = np.linspace(1.05, 0.9, height, dtype=np.float32)
    return (1.0 - strength * np.minimum(x * x, 1.0))[None, :] * y[:, None]


def _noise(camera: Camera, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A window of the camera's noise pool at a random offset (cheaper than fresh normal draws)."""
    y = int(rng.integers(0, camera.noise_pool.shape[0] - height + 1))
    x = int(rng.integers(0, camera.noise_pool.shape[1] - width + 1))
    return camera.noise_pool[y:y + height, x:x + width]


def render(ident: Identity, camera: Camera, pose: Pose, rng: np.random.Generator, nuisance: float,
           height: int, width: int) -> np.ndarray:
    """One image of ``ident`` seen by ``camera`` in ``pose``: uint8 (height, width, 3).

    Infrared images carry one intensity channel, replicated to three channels.
    """
    labels, frame = draw_labels(ident, pose, height, width)
    apply_pattern(labels, ident, pose, frame)
    draw_occluder(labels, pose)
    bg = camera.background[pose.bg_y:pose.bg_y + height, pose.bg_x:pose.bg_x + width]
    is_bg = (labels == BG).astype(np.float32)
    scale = height / 128.0
    noise_sd = camera.noise * 255.0 * (0.5 + 0.5 * nuisance)
    if camera.spec.infrared:
        t = ident.thermal
        ambient = 0.04 * nuisance * rng.standard_normal()
        table = np.array([0.0, t.skin, t.hair, t.upper, t.lower, t.shoes, t.bag, t.hat,
                          rng.uniform(0.1, 0.5), t.pattern], dtype=np.float32)
        table[1:8] += ambient
        table[9] += ambient
        grey = np.take(table, labels) * _body_shading(height, width, frame, 0.12) + bg * is_bg
        mean = float(grey.mean())
        grey = (mean + camera.contrast * (grey - mean) + 0.05 * nuisance * rng.standard_normal()) * 255.0 + 0.5
        img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
        radius = camera.blur * scale * (1.0 + 0.3 * nuisance * rng.random())
        out = np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
        out += _noise(camera, rng, height, width) * noise_sd + 0.5
        grey8 = np.clip(out, 0, 255).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)

    c = ident.colours
    table = np.array([(0, 0, 0), c.skin, c.hair, c.upper, c.lower, c.shoes, c.bag, c.hat,
                      rng.uniform(0.1, 0.9, 3), c.pattern], dtype=np.float32)
    table[1:8] *= np.exp(0.03 * nuisance * rng.standard_normal(3)).astype(np.float32)
    light = camera.gain * np.exp(0.1 * nuisance * rng.standard_normal()) * np.exp(
        0.03 * nuisance * rng.standard_normal(3))
    shade = _body_shading(height, width, frame, 0.3)[:, :, None]
    rgb = np.take(table, labels, axis=0) * shade + bg * is_bg[:, :, None]
    rgb *= (light * 255.0).astype(np.float32)
    img = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")
    radius = camera.blur * scale * (1.0 + 0.6 * nuisance * rng.random())
    out = np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
    out += _noise(camera, rng, height, width) * noise_sd + 0.5
    return np.clip(out, 0, 255).astype(np.uint8)
