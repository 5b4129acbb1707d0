"""benchmarks/yolo_report.py names the grid it was asked for: the command and missing cells."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from yolo_report import command_of, missing  # noqa: E402

SUBSET = ["normal", "slimming", "forecast naive @0.3"]


def meta_of(epochs: int, variants: list[str] | None, results: list[dict]) -> dict:
    meta = {
        "budget": {"epochs": epochs},
        "quick": False,
        "grids": [{"task": "yolov8n", "ratios": [0.5], "policies": ["grouped"]}],
        "seeds": [0, 1],
        "results": results,
    }
    if variants is not None:
        meta["variants"] = variants
    return meta


def run(variant: str, seed: int, ratio: float | None = 0.5) -> dict:
    return {"task": "yolov8n", "variant": variant, "seed": seed, "ratio": ratio}


def test_the_command_names_only_what_differs_from_the_full_grid():
    meta = meta_of(30, SUBSET, [])
    assert command_of(meta) == (
        "python benchmarks/yolo_table.py --detectors yolov8n --ratios 0.5 --epochs 30 "
        "--variants 'normal,slimming,forecast naive @0.3' --seeds 0,1"
    )


def test_missing_cells_are_those_of_the_asked_grid_only():
    done = [run("normal", s, None) for s in (0, 1)] + [run("slimming", s) for s in (0, 1)]
    meta = meta_of(30, SUBSET, [*done, run("forecast naive @0.3", 0)])
    assert missing(meta) == ["- yolov8n, seed 1: 1 runs missing"]
    meta["results"].append(run("forecast naive @0.3", 1))
    assert missing(meta) == ["- none: every cell of the grid has its runs."]
    # records saved before the methods were: every method was asked for
    assert missing(meta_of(10, None, meta["results"]))[0] == "- yolov8n, seed 0: 6 runs missing"
