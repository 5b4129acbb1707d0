"""A generated 10-class RGB shapes classification set: real images, drawn on the spot.

Digits is grey and tiny; users classify colour images. This set is made locally (no
download) and is fully determined by its seed. Each image holds one shape on a noisy
background; the class is the shape (square, disc, triangle, cross, ring) times its style
(filled or outlined), so colour says nothing and the net must learn form. Colour, size and
position are random, which keeps the task from saturating in a few epochs.

The pixels come back as uint8 RGB; :class:`~forecastprune.zoo.data.ShapesTask` standardises
them into a split like the digits one.
"""

from __future__ import annotations

import numpy as np

#: the shapes, in class order; class = 2 × shape index + (0 filled, 1 outlined)
SHAPES = ("square", "disc", "triangle", "cross", "ring")
NUM_CLASSES = 2 * len(SHAPES)
#: background noise runs from 0 to this value (out of 255)
BACKGROUND_MAX = 80


def draw_shapes(count: int, side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images of ``side`` × ``side`` pixels, classes balanced and shuffled.

    Args:
        count: images to draw.
        side: image side in pixels (at least 12, so an outline is still a shape).
        seed: the random seed; the same arguments always give the same images.

    Returns:
        ``(images, labels)``: uint8 ``(count, side, side, 3)`` and int64 ``(count,)``.

    Raises:
        ValueError: on a count below 1 or a side below 12.
    """
    if count < 1 or side < 12:
        raise ValueError(f"expected count >= 1 and side >= 12; got count={count}, side={side}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % NUM_CLASSES).astype(np.int64)
    images = rng.integers(0, BACKGROUND_MAX, size=(count, side, side, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    for image, label in zip(images, labels):
        size = rng.uniform(0.45, 0.8) * side
        cx, cy = (rng.uniform(size / 2, side - size / 2) for _ in range(2))
        mask = _mask(SHAPES[label // 2], (xx - cx) / (size / 2), (yy - cy) / (size / 2))
        if label % 2:  # outlined: the shape less its own shrunk copy
            inner = _mask(SHAPES[label // 2], (xx - cx) / (size / 3), (yy - cy) / (size / 3))
            mask &= ~inner
        image[mask] = _bright_colour(rng)
    return images, labels


def _mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The pixels inside ``shape`` in coordinates scaled to its half-size (the shape spans
    [-1, 1] on both axes)."""
    if shape == "square":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "triangle":  # apex up: the width grows linearly from top to bottom
        return (v >= -1.0) & (v <= 1.0) & (np.abs(u) <= (v + 1.0) / 2)
    if shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    radius = u * u + v * v  # ring: an annulus, so its outlined style is two thin circles
    return (radius <= 1.0) & (radius >= 0.35)


def _bright_colour(rng: np.random.Generator) -> np.ndarray:
    """A random colour well above the background: one channel high, the others anywhere."""
    colour = rng.integers(0, 256, size=3)
    colour[rng.integers(3)] = rng.integers(190, 256)
    return colour.astype(np.uint8)
