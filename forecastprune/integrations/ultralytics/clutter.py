"""A harder generated detection dataset: six shape classes at several scales, in clutter.

:func:`~.shapes.make_shapes_dataset` draws three shapes, one colour per class, apart on plain
noise — a small model learns it in a few epochs, and every pruned variant scores the same on it.
This set is drawn on the spot too (nothing is downloaded), in the same YOLO layout, but asks
more of a detector:

* **six classes told apart by shape only** — square, disc, triangle, diamond, cross, ring — each
  object in a random colour, so colour carries no label;
* **several scales** — object sides drawn log-uniformly from ``min_scale`` to ``max_scale`` of
  the image side (by default 1/8 to 1/2: small, medium and large objects in one image);
* **occlusion** — objects may overlap (pairwise IoU up to ``max_overlap``); later objects are
  drawn over earlier ones, and every box keeps its full extent, as in hand-labelled data;
* **clutter** — a brightness gradient under the noise, random line segments and unlabelled
  distractors (outlined rectangles and small blobs) that no class describes.

::

    data_yaml = make_clutter_dataset("data/clutter", n_train=1024, n_val=256, imgsz=64)

The same arguments always write the same files (``seed``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...errors import ConfigError
from .shapes import _Box, write_dataset

#: the class names; the order gives the class ids
CLUTTER_CLASSES: tuple[str, ...] = ("square", "disc", "triangle", "diamond", "cross", "ring")


def make_clutter_dataset(
    root: str | Path,
    *,
    n_train: int = 1024,
    n_val: int = 256,
    imgsz: int = 64,
    max_objects: int = 6,
    min_scale: float = 0.125,
    max_scale: float = 0.5,
    max_overlap: float = 0.3,
    distractors: int = 4,
    seed: int = 0,
) -> Path:
    """Write the dataset under ``root`` and return the path of its ``data.yaml``.

    Args:
        root: an empty or missing directory.
        n_train: training images.
        n_val: validation images.
        imgsz: side of the square images in pixels (at least 32).
        max_objects: most labelled objects per image (each image has 1..max_objects).
        min_scale: smallest object side as a fraction of ``imgsz``.
        max_scale: largest object side as a fraction of ``imgsz``.
        max_overlap: the largest IoU allowed between two labelled boxes (0: no overlap).
        distractors: most unlabelled clutter items per image (0..distractors, plus as many
            line segments).
        seed: the random seed.

    Returns:
        The ``data.yaml`` path, for ``YOLO(...).train(data=...)``.

    Raises:
        ConfigError: on a non-empty ``root`` or out-of-range settings.
    """
    _check(n_train, n_val, imgsz, max_objects, min_scale, max_scale, max_overlap, distractors)
    rng = np.random.default_rng(seed)
    return write_dataset(
        root,
        "make_clutter_dataset",
        (n_train, n_val),
        lambda: _draw_image(
            rng, imgsz, max_objects, (min_scale, max_scale), max_overlap, distractors
        ),
        CLUTTER_CLASSES,
        imgsz,
    )


def _check(
    n_train: int,
    n_val: int,
    imgsz: int,
    max_objects: int,
    min_scale: float,
    max_scale: float,
    max_overlap: float,
    distractors: int,
) -> None:
    if min(n_train, n_val, max_objects) < 1 or imgsz < 32 or distractors < 0:
        raise ConfigError(
            f"expected n_train, n_val, max_objects >= 1, distractors >= 0 and imgsz >= 32; got "
            f"n_train={n_train}, n_val={n_val}, max_objects={max_objects}, "
            f"distractors={distractors}, imgsz={imgsz}"
        )
    if not 0.0 < min_scale <= max_scale <= 1.0 or min_scale * imgsz < 4:
        raise ConfigError(
            f"expected 0 < min_scale <= max_scale <= 1 and objects of at least 4 pixels; got "
            f"min_scale={min_scale}, max_scale={max_scale} at imgsz={imgsz}"
        )
    if not 0.0 <= max_overlap < 1.0:
        raise ConfigError(f"max_overlap is an IoU in [0, 1); got {max_overlap}")


def _draw_image(
    rng: np.random.Generator,
    imgsz: int,
    max_objects: int,
    scales: tuple[float, float],
    max_overlap: float,
    distractors: int,
):
    """One cluttered image with 1..max_objects labelled shapes, and their boxes."""
    from PIL import Image, ImageDraw  # pillow comes with matplotlib

    image = Image.fromarray(_background(rng, imgsz), "RGB")
    draw = ImageDraw.Draw(image)
    _clutter(draw, rng, imgsz, distractors)
    boxes: list[_Box] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        box = _place(rng, imgsz, scales, max_overlap, boxes)
        if box is None:
            break
        _draw_shape(draw, box, _colour(rng))
        boxes.append(box)
    return image, boxes


def _background(rng: np.random.Generator, imgsz: int) -> np.ndarray:
    """Noise on a random linear brightness gradient."""
    ramp = np.linspace(0.0, 1.0, imgsz)
    angle = rng.uniform(0, 2 * math.pi)
    gradient = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    base = 20 + 60 * (gradient - gradient.min()) / max(np.ptp(gradient), 1e-9)
    noise = rng.integers(0, 70, size=(imgsz, imgsz, 3))
    return np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random colour bright enough to stand out of the background in at least one channel."""
    rgb = rng.integers(40, 256, size=3)
    rgb[int(rng.integers(3))] = int(rng.integers(170, 256))
    return tuple(int(v) for v in rgb)  # type: ignore[return-value]


def _clutter(draw, rng: np.random.Generator, imgsz: int, most: int) -> None:
    """Unlabelled line segments, outlined squares and filled bars."""
    if most == 0:
        return
    for _ in range(int(rng.integers(0, most + 1))):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, imgsz, size=4))
        draw.line([x0, y0, x1, y1], fill=_colour(rng), width=int(rng.integers(1, 3)))
    for _ in range(int(rng.integers(0, most + 1))):
        side = int(rng.integers(4, max(5, imgsz // 5)))
        x0, y0 = (int(v) for v in rng.integers(0, imgsz - side, size=2))
        if rng.random() < 0.5:
            draw.rectangle([x0, y0, x0 + side, y0 + side], outline=_colour(rng))
        else:
            # a filled bar, at least 3:1, so that it never looks like a small square
            thick = max(1, side // 4)
            bar = [x0, y0, x0 + side, y0 + thick]
            draw.rectangle(
                bar if rng.random() < 0.5 else [x0, y0, x0 + thick, y0 + side], fill=_colour(rng)
            )


def _place(
    rng: np.random.Generator,
    imgsz: int,
    scales: tuple[float, float],
    max_overlap: float,
    taken: list[_Box],
) -> _Box | None:
    """A box whose side is log-uniform in ``scales`` × imgsz and whose IoU with every taken box
    is at most ``max_overlap`` (None after 30 tries)."""
    low, high = (math.log(s * imgsz) for s in scales)
    for _ in range(30):
        side = max(4, int(round(math.exp(rng.uniform(low, high)))))
        x0, y0 = (int(v) for v in rng.integers(0, imgsz - side + 1, size=2))
        box = _Box(int(rng.integers(len(CLUTTER_CLASSES))), x0, y0, x0 + side, y0 + side)
        if all(_iou(box, other) <= max_overlap for other in taken):
            return box
    return None


def _iou(a: _Box, b: _Box) -> float:
    w = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    h = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = w * h
    union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter
    return inter / union


def _draw_shape(draw, box: _Box, fill: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box.x0, box.y0, box.x1 - 1, box.y1 - 1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    name = CLUTTER_CLASSES[box.cls]
    if name == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif name == "disc":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif name == "triangle":
        draw.polygon([(cx, y0), (x0, y1), (x1, y1)], fill=fill)
    elif name == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif name == "cross":
        arm = max(1.0, (x1 - x0) / 6)
        draw.rectangle([cx - arm, y0, cx + arm, y1], fill=fill)
        draw.rectangle([x0, cy - arm, x1, cy + arm], fill=fill)
    else:  # ring: a disc with a hole, the background showing through
        width = max(1, int(round((x1 - x0) / 5)))
        draw.ellipse([x0, y0, x1, y1], outline=fill, width=width)
