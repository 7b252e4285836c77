"""The demo dataset's renderer: procedural composites with exact ground truth (no download).

Each sample is a composite ``I = alpha * F + (1 - alpha) * B`` (computed with the stored 8-bit
alpha, so image and alpha agree exactly up to the image's 8-bit rounding) of:

- a body: a wobbly ellipse textured with a crop of a real photograph shipped with scikit-image
  (``skimage.data``: chelsea, coffee, astronaut, immunohistochemistry, and tinted brick),
  anti-aliased edge;
- fur: along part of the body's outline, short radial tufts whose opacity fades outwards;
- hair: 20-60 thin curved strands (0.3-1.3 px wide, tapered) growing out of the outline,
  rendered at 4x and area-averaged, so their alpha has sub-pixel coverage;
- a semi-transparent region (a "veil" with opacity between 0.25 and 0.75);

over a crop of another photograph (rocket, motorcycle, hubble_deep_field, and tinted grass and
gravel). The two pools are disjoint, as objects and scenery are in real photos: what is
foreground can be learnt from appearance in minutes, which the README's few-minute CPU run
needs (with shared pools only the shape tells them apart). Fur and hair take a colour far from
the background's mean colour, so they are visible and a model must recover them from the image.
Everything is drawn from a generator seeded by the dataset seed and the sample name
(:func:`render_demo_record`).

Sizes: height and width drawn independently in ``SIZE_RANGE`` px. Trimaps:

- training: labels as in the paper, kernel sizes drawn in ``TRAIN_KERNEL_SIZE_RANGE`` at the
  ``REFERENCE_SIZE`` px reference resolution (:mod:`alphafree_d2.data.trimap`), i.e. about
  1-18 px at these sizes, so the unknown band varies from the soft pixels only to a wide band, as
  Sec. 4.1 intends;
- evaluation: a fixed kernel of ``VAL_KERNEL_SIZE`` at the reference resolution (about 8-12 px
  here): a moderate band like the benchmarks' hand-drawn trimaps, the same for every run.

The on-disk store (folder layout, manifest, atomic generation) is :mod:`.demo`.
"""

from functools import lru_cache

import cv2
import numpy as np

from ..trimap import alpha_to_trimap, rng_for

__all__ = [
    "REFERENCE_SIZE",
    "SIZE_RANGE",
    "TRAIN_KERNEL_SIZE_RANGE",
    "VAL_KERNEL_SIZE",
    "render_demo_record",
    "render_demo_sample",
]

SIZE_RANGE = (256, 384)
TRAIN_KERNEL_SIZE_RANGE = (1, 30)
VAL_KERNEL_SIZE = 20
REFERENCE_SIZE = 640

# Disjoint pools (see the module docstring).
_FOREGROUND_PHOTOS = ("chelsea", "coffee", "astronaut", "immunohistochemistry", "brick")
_BACKGROUND_PHOTOS = ("rocket", "motorcycle", "hubble_deep_field", "grass", "gravel")
_HAIR_COLOURS = np.array(
    [[25, 20, 18], [95, 60, 35], [225, 195, 125], [245, 243, 235], [175, 75, 35], [150, 150, 155]],
    dtype=np.float32,
)


@lru_cache(maxsize=None)
def _photo(name):
    """A photograph from skimage.data as float32 RGB (H, W, 3) in [0, 255]; gray ones stay 2-D."""
    from skimage import data

    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return image.astype(np.float32)


def _photo_crop(rng, name, height, width):
    """A random crop of a photo, resized to (height, width), randomly flipped; float32 RGB."""
    photo = _photo(name)
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.5, 1.0) * min(ph / height, pw / width)
    ch, cw = max(8, int(height * scale)), max(8, int(width * scale))
    y0, x0 = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    crop = cv2.resize(
        photo[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_AREA
    )
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if crop.ndim == 2:  # tint gray textures
        tint = rng.uniform(0.4, 1.2, size=3).astype(np.float32)
        crop = crop[:, :, None] * tint
    return np.clip(crop, 0, 255)


_LUT_THETA = np.linspace(-np.pi, np.pi, 8193)


def _angular_table(rng, freqs, amplitude):
    """Random periodic function of the angle: a sum of cosines at integer ``freqs`` with random
    phases and weights, tabulated on ``_LUT_THETA`` (evaluate with ``np.interp``)."""
    table = np.zeros_like(_LUT_THETA)
    for f in freqs:
        table += np.cos(f * _LUT_THETA + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.5, 1.0)
    return table * (amplitude / max(1, len(freqs)) ** 0.5)


class _Body:
    """A wobbly ellipse: centre (cx, cy), radii (rx, ry) in pixels, rotated by ``tilt``; its
    outline is at radius factor ``1 + wobble(theta)`` in the ellipse's normalised polar frame."""

    def __init__(self, rng, height, width):
        self.rx = min(height, width) * rng.uniform(0.2, 0.3)
        self.ry = self.rx * rng.uniform(0.75, 1.3)
        self.cx, self.cy = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.45, 0.65)
        self.tilt = rng.uniform(0, np.pi)
        self.wobble = _angular_table(rng, range(2, 6), 0.09)

    def polar(self, x, y):
        """Signed distance to the outline (approximate, pixels; < 0 inside) and polar angle."""
        dx, dy = x - self.cx, y - self.cy
        c, s = np.cos(self.tilt), np.sin(self.tilt)
        u, v = (dx * c + dy * s) / self.rx, (-dx * s + dy * c) / self.ry
        theta = np.arctan2(v, u)
        outline = 1.0 + np.interp(theta, _LUT_THETA, self.wobble)
        return (np.sqrt(u * u + v * v) - outline) * np.sqrt(self.rx * self.ry), theta

    def outline_point(self, theta, inset=0.0):
        """Image coordinates of the outline point at angle ``theta``, ``inset`` pixels inside."""
        r = 1.0 + np.interp(theta, _LUT_THETA, self.wobble) - inset / np.sqrt(self.rx * self.ry)
        lx, ly = r * np.cos(theta) * self.rx, r * np.sin(theta) * self.ry
        c, s = np.cos(self.tilt), np.sin(self.tilt)
        return self.cx + lx * c - ly * s, self.cy + lx * s + ly * c


def _grid(height, width):
    """Pixel-centre coordinates (x (1, W), y (H, 1)), float32."""
    return (
        np.arange(width, dtype=np.float32)[None, :] + 0.5,
        np.arange(height, dtype=np.float32)[:, None] + 0.5,
    )


def _body_and_fur(rng, body, height, width, factor=3):
    """Alpha of the body (anti-aliased 1 px ramp) and of its fur, float32 (H, W) each.

    Fur: radial tufts on a sector of the outline whose length varies slowly and whose density
    varies fast with the angle, fading outwards; evaluated at ``factor`` x ``factor`` sub-pixel
    positions inside the fur band and averaged.
    """
    x, y = _grid(height, width)
    dist, _ = body.polar(x, y)
    alpha_body = np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)

    centre, half_width = rng.uniform(-np.pi, np.pi), rng.uniform(0.6, 1.8)
    max_length = rng.uniform(6.0, 16.0)
    length_table = max_length * (1.0 + 0.5 * _angular_table(rng, range(5, 12), 1.0))
    density_table = (
        np.clip(0.5 + 0.5 * _angular_table(rng, rng.integers(90, 260, size=6), 1.6), 0.0, 1.0)
        ** 1.5
    )

    alpha_fur = np.zeros((height, width), dtype=np.float32)
    band_y, band_x = np.nonzero((dist > -2.0) & (dist < 2.0 * max_length + 2.0))
    offsets = (np.arange(factor, dtype=np.float32) + 0.5) / factor - 0.5
    sub_x = (band_x[:, None, None] + 0.5 + offsets[None, None, :]).astype(np.float32)
    sub_y = (band_y[:, None, None] + 0.5 + offsets[None, :, None]).astype(np.float32)
    d, theta = body.polar(sub_x, sub_y)
    window = np.clip((half_width - np.abs(np.angle(np.exp(1j * (theta - centre))))) / 0.3, 0.0, 1.0)
    length = np.interp(theta, _LUT_THETA, length_table) * window
    reach = np.clip(1.0 - np.maximum(d, 0.0) / np.maximum(length, 1e-3), 0.0, 1.0)
    fur = np.where(
        (d > -1.0) & (length > 0.5), np.interp(theta, _LUT_THETA, density_table) * reach**1.5, 0.0
    )
    alpha_fur[band_y, band_x] = fur.reshape(len(band_y), -1).mean(axis=1)
    return alpha_body, alpha_fur


def _hair(rng, body, height, width, factor=4, shift=3):
    """Alpha of thin hair strands, float32 (H, W), drawn anti-aliased at ``factor`` x and
    area-averaged (sub-pixel coverage)."""
    canvas = np.zeros((height * factor, width * factor), dtype=np.uint8)
    centre, spread = rng.uniform(-np.pi, np.pi), rng.uniform(0.5, 1.6)
    unit = factor * (1 << shift)
    for _ in range(int(rng.integers(20, 61))):
        x, y = body.outline_point(centre + rng.uniform(-spread, spread), inset=1.5)
        heading = np.arctan2(y - body.cy, x - body.cx) + rng.uniform(-0.5, 0.5)
        bend = rng.uniform(-0.04, 0.04)
        steps = int(rng.uniform(20, 80) / 1.5)
        headings = heading + np.cumsum(bend + rng.normal(0.0, 0.05, size=steps))
        xs = np.concatenate([[x], x + np.cumsum(1.5 * np.cos(headings))])
        ys = np.concatenate([[y], y + np.cumsum(1.5 * np.sin(headings))])
        points = np.round(np.stack([xs, ys], axis=1) * unit).astype(np.int32)
        width_px, value = rng.uniform(0.3, 1.3), int(255 * rng.uniform(0.65, 1.0))
        for part, taper in zip(np.array_split(points, 3), (1.0, 0.75, 0.5)):
            thickness = max(1, int(round(width_px * taper * factor)))
            cv2.polylines(canvas, [part], False, value, thickness, cv2.LINE_AA, shift)
    return (
        cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    )


def _veil(rng, body, height, width):
    """Alpha of a semi-transparent ellipse overlapping the body, float32 (H, W): opacity ramps
    between two levels in [0.25, 0.75] from left to right, anti-aliased 1 px edge."""
    angle = rng.uniform(-np.pi, np.pi)
    cx = body.cx + np.cos(angle) * body.rx * rng.uniform(0.6, 1.0)
    cy = body.cy + np.sin(angle) * body.ry * rng.uniform(0.6, 1.0)
    ax, ay = body.rx * rng.uniform(0.4, 0.7), body.ry * rng.uniform(0.3, 0.6)
    x, y = _grid(height, width)
    rho = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    inside = np.clip((1.0 - rho) * min(ax, ay) + 0.5, 0.0, 1.0)
    low, high = sorted(rng.uniform(0.25, 0.75, size=2))
    ramp = np.clip((x - (cx - ax)) / (2 * ax), 0.0, 1.0)
    return (inside * (low + (high - low) * ramp)).astype(np.float32)


def render_demo_sample(rng, height, width):
    """One composite.

    Args:
        rng: ``np.random.Generator``.
        height, width: output size in pixels.
    Returns:
        image: uint8 (H, W, 3) RGB; alpha: uint8 (H, W), 0-255, with ``image`` equal to
        ``alpha/255 * F + (1 - alpha/255) * B`` rounded.
    """
    fg_name, bg_name = rng.choice(_FOREGROUND_PHOTOS), rng.choice(_BACKGROUND_PHOTOS)
    background = _photo_crop(rng, bg_name, height, width)
    texture = _photo_crop(rng, fg_name, height, width)

    shape = _Body(rng, height, width)
    body, fur = _body_and_fur(rng, shape, height, width)
    hair = _hair(rng, shape, height, width)
    veil = _veil(rng, shape, height, width)

    # Hair and fur colour: the palette entry farthest from the background's mean colour.
    far = np.argmax(np.linalg.norm(_HAIR_COLOURS - background.reshape(-1, 3).mean(0), axis=1))
    shade = 0.85 + 0.3 * rng.random((height // 16 + 1, width // 16 + 1)).astype(np.float32)
    shade = cv2.resize(shade, (width, height), interpolation=cv2.INTER_CUBIC)[:, :, None]
    hair_colour = np.clip(_HAIR_COLOURS[far] * shade, 0, 255)
    fur_colour = 0.4 * texture + 0.6 * hair_colour
    veil_colour = np.clip(rng.uniform(40, 255, size=3).astype(np.float32) * shade, 0, 255)

    # Back-to-front "over" compositing of the layers, premultiplied.
    premultiplied = np.zeros((height, width, 3), dtype=np.float32)
    alpha = np.zeros((height, width), dtype=np.float32)
    for a, colour in ((body, texture), (fur, fur_colour), (veil, veil_colour), (hair, hair_colour)):
        premultiplied = a[:, :, None] * colour + (1.0 - a[:, :, None]) * premultiplied
        alpha = a + (1.0 - a) * alpha
    foreground = premultiplied / np.maximum(alpha, 1e-6)[:, :, None]
    alpha8 = np.round(np.clip(alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
    a = alpha8.astype(np.float32)[:, :, None] / 255.0
    image = np.round(a * foreground + (1.0 - a) * background)
    return np.clip(image, 0, 255).astype(np.uint8), alpha8


def render_demo_record(seed, name, train):
    """The sample called ``name`` of the dataset with ``seed``: its size, composite and trimap
    are drawn from ``rng_for(seed, name)``, so each sample is reproducible on its own.

    Args:
        seed (int): dataset seed.
        name (str): sample name, e.g. ``"demo_train_000"``.
        train (bool): training trimap (random kernel per sample) or evaluation trimap (fixed).
    Returns:
        image: uint8 (H, W, 3) RGB; alpha: uint8 (H, W), 0-255; trimap: uint8 (H, W) in
        {0, 128, 255}.
    """
    rng = rng_for(seed, name)
    height, width = (
        int(v) for v in rng.integers(SIZE_RANGE[0], SIZE_RANGE[1], size=2, endpoint=True)
    )
    image, alpha = render_demo_sample(rng, height, width)
    if train:
        trimap = alpha_to_trimap(
            alpha / 255.0,
            rng=rng,
            kernel_size_range=TRAIN_KERNEL_SIZE_RANGE,
            reference_size=REFERENCE_SIZE,
        )
    else:
        trimap = alpha_to_trimap(
            alpha / 255.0, kernel_size=VAL_KERNEL_SIZE, reference_size=REFERENCE_SIZE
        )
    return image, alpha, trimap
