"""A tiny detection dataset made on the spot: coloured shapes on noise, in YOLO format.

Real detection data without a download, for tests and examples of the ultralytics
integration: each image holds a few filled shapes (one class per shape *and* colour, so a
small model learns them in a few epochs) on a noisy background, and each label line is
``class cx cy w h`` with coordinates normalised to the image size, which is what ultralytics
reads::

    data_yaml = make_shapes_dataset("data/shapes", n_train=64, n_val=16, imgsz=64)
    YOLO("yolov8n.yaml").train(data=str(data_yaml), imgsz=64, ...)

Layout on disk (ultralytics finds ``labels/`` by replacing ``images`` in the image paths)::

    root/data.yaml
    root/images/{train,val}/000000.png
    root/labels/{train,val}/000000.txt
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ...errors import ConfigError

#: class name -> RGB fill; the order gives the class ids.
CLASSES: dict[str, tuple[int, int, int]] = {
    "square": (230, 40, 40),
    "disc": (40, 200, 60),
    "triangle": (50, 90, 240),
}


@dataclass(frozen=True)
class _Box:
    cls: int
    x0: int
    y0: int
    x1: int
    y1: int


def make_shapes_dataset(
    root: str | Path,
    *,
    n_train: int = 64,
    n_val: int = 16,
    imgsz: int = 64,
    max_objects: int = 3,
    seed: int = 0,
) -> Path:
    """Write the dataset under ``root`` and return the path of its ``data.yaml``.

    Args:
        root: an empty or missing directory.
        n_train: training images.
        n_val: validation images.
        imgsz: side of the square images in pixels (at least 32).
        max_objects: most shapes per image (each image has 1..max_objects).
        seed: the random seed; the same arguments always write the same files.

    Returns:
        The ``data.yaml`` path, for ``YOLO(...).train(data=...)``.

    Raises:
        ConfigError: on a non-empty ``root`` or out-of-range sizes.
    """
    if min(n_train, n_val, max_objects) < 1 or imgsz < 32:
        raise ConfigError(
            f"expected n_train, n_val, max_objects >= 1 and imgsz >= 32; got n_train={n_train}, "
            f"n_val={n_val}, max_objects={max_objects}, imgsz={imgsz}"
        )
    rng = np.random.default_rng(seed)
    return write_dataset(
        root,
        "make_shapes_dataset",
        (n_train, n_val),
        lambda: _draw_image(rng, imgsz, max_objects),
        CLASSES,
        imgsz,
    )


def write_dataset(
    root: str | Path,
    maker: str,
    counts: tuple[int, int],
    draw: Callable[[], tuple[Any, list[_Box]]],
    classes: tuple[str, ...],
    imgsz: int,
) -> Path:
    """Write ``counts`` (train, val) images drawn by ``draw`` and their YOLO labels under
    ``root`` in ultralytics' layout, and return the ``data.yaml`` path.

    Raises:
        ConfigError: on a non-empty ``root`` (``maker`` names the caller in the message).
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(
            f"{maker} needs an empty or missing directory; {root} "
            "is not empty (choose another root or delete it)"
        )
    for split, count in zip(("train", "val"), counts):
        images, labels = root / "images" / split, root / "labels" / split
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for index in range(count):
            image, boxes = draw()
            image.save(images / f"{index:06d}.png")
            (labels / f"{index:06d}.txt").write_text(_label_text(boxes, imgsz))
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(classes)),
    }
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


def _draw_image(rng: np.random.Generator, imgsz: int, max_objects: int):
    """One noisy image with 1..max_objects non-overlapping shapes, and their boxes."""
    from PIL import Image, ImageDraw  # pillow comes with matplotlib

    noise = rng.integers(0, 90, size=(imgsz, imgsz, 3), dtype=np.uint8)
    image = Image.fromarray(noise, "RGB")
    draw = ImageDraw.Draw(image)
    boxes: list[_Box] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        box = _place(rng, imgsz, boxes)
        if box is None:
            break
        _draw_shape(draw, box)
        boxes.append(box)
    return image, boxes


def _place(rng: np.random.Generator, imgsz: int, taken: list[_Box]) -> _Box | None:
    """A random box of side imgsz/5..imgsz/2.5 that overlaps none taken (None after 20 tries)."""
    for _ in range(20):
        side = int(rng.integers(imgsz // 5, int(imgsz / 2.5) + 1))
        x0, y0 = (int(v) for v in rng.integers(0, imgsz - side, size=2))
        box = _Box(int(rng.integers(len(CLASSES))), x0, y0, x0 + side, y0 + side)
        if all(box.x1 <= b.x0 or b.x1 <= box.x0 or box.y1 <= b.y0 or b.y1 <= box.y0 for b in taken):
            return box
    return None


def _draw_shape(draw, box: _Box) -> None:
    name = list(CLASSES)[box.cls]
    fill = CLASSES[name]
    corners = [box.x0, box.y0, box.x1 - 1, box.y1 - 1]
    if name == "square":
        draw.rectangle(corners, fill=fill)
    elif name == "disc":
        draw.ellipse(corners, fill=fill)
    else:
        draw.polygon(
            [((box.x0 + box.x1) / 2, box.y0), (box.x0, box.y1 - 1), (box.x1 - 1, box.y1 - 1)],
            fill=fill,
        )


def _label_text(boxes: list[_Box], imgsz: int) -> str:
    """YOLO label lines: ``class cx cy w h``, normalised to the image size."""
    lines = []
    for b in boxes:
        cx, cy = (b.x0 + b.x1) / 2 / imgsz, (b.y0 + b.y1) / 2 / imgsz
        w, h = (b.x1 - b.x0) / imgsz, (b.y1 - b.y0) / imgsz
        lines.append(f"{b.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + "\n"
