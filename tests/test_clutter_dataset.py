"""The cluttered detection set: valid YOLO labels, six classes, several scales, bounded overlap,
the same files for the same seed, and clear errors on bad settings (no ultralytics needed)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import yaml

from forecastprune.errors import ConfigError
from forecastprune.integrations.ultralytics import make_clutter_dataset
from forecastprune.integrations.ultralytics.clutter import CLUTTER_CLASSES


def labels_of(root: Path, split: str = "train") -> list[np.ndarray]:
    return [
        np.array([[float(v) for v in line.split()] for line in f.read_text().splitlines()])
        for f in sorted((root / "labels" / split).glob("*.txt"))
    ]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    (ax, ay, aw, ah), (bx, by, bw, bh) = a[1:], b[1:]
    w = max(0.0, min(ax + aw / 2, bx + bw / 2) - max(ax - aw / 2, bx - bw / 2))
    h = max(0.0, min(ay + ah / 2, by + bh / 2) - max(ay - ah / 2, by - bh / 2))
    return w * h / (aw * ah + bw * bh - w * h)


def test_six_classes_several_scales_and_bounded_overlap(tmp_path: Path) -> None:
    data = make_clutter_dataset(tmp_path / "c", n_train=120, n_val=8, imgsz=64, seed=1)
    config = yaml.safe_load(data.read_text())
    assert config["names"] == dict(enumerate(CLUTTER_CLASSES)) and len(CLUTTER_CLASSES) >= 6
    images = sorted((tmp_path / "c" / "images" / "train").glob("*.png"))
    labels = labels_of(tmp_path / "c")
    assert len(images) == len(labels) == 120
    rows = np.concatenate(labels)
    assert set(rows[:, 0].astype(int)) == set(range(len(CLUTTER_CLASSES)))
    assert ((rows[:, 1:] > 0) & (rows[:, 1:] <= 1)).all()
    sides = rows[:, 3] * 64
    assert sides.min() <= 10 and sides.max() >= 28  # small and large objects both occur
    assert max(len(lab) for lab in labels) >= 5
    overlaps = [iou(a, b) for lab in labels for a, b in itertools.combinations(lab, 2)]
    assert max(overlaps) <= 0.3 + 1e-6
    assert sum(o > 0 for o in overlaps) >= 10  # occlusion happens


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a = make_clutter_dataset(tmp_path / "a", n_train=4, n_val=2, imgsz=48, seed=5).parent
    b = make_clutter_dataset(tmp_path / "b", n_train=4, n_val=2, imgsz=48, seed=5).parent
    c = make_clutter_dataset(tmp_path / "c", n_train=4, n_val=2, imgsz=48, seed=6).parent
    for name in ("images/train/000003.png", "labels/val/000001.txt"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "images/train/000000.png").read_bytes() != (
        c / "images/train/000000.png"
    ).read_bytes()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"imgsz": 16}, "imgsz >= 32"),
        ({"min_scale": 0.6, "max_scale": 0.5}, "min_scale <= max_scale"),
        ({"min_scale": 0.01}, "at least 4 pixels"),
        ({"max_overlap": 1.0}, "max_overlap"),
        ({"distractors": -1}, "distractors >= 0"),
    ],
)
def test_bad_settings_say_what_was_wrong(tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_clutter_dataset(tmp_path / "x", n_train=2, n_val=1, **settings)


def test_refuses_a_non_empty_root(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        make_clutter_dataset(tmp_path / "x")
