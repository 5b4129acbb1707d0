"""benchmarks/yolo_table.py end to end at a tiny size: real ultralytics training through
``attach``, records saved, the report and its plots rendered, pruned models smaller."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ultralytics") is None,
        reason='needs the ultralytics extra (pip install "forecastprune[ultralytics]")',
    ),
]

VARIANTS = "normal,slimming,forecast naive @0.3"


def test_quick_grid_saves_runs_renders_and_prunes(tmp_path: Path) -> None:
    import yolo_table

    out = tmp_path / "results-yolo.md"
    common = ["--quick", "--seeds", "0", "--out", str(out), "--data-cache", str(tmp_path)]
    tiny = [*common, "--n-train", "32", "--epochs", "2", "--variants", VARIANTS]
    assert yolo_table.main(tiny) == 0

    meta = json.loads(out.with_name("results-yolo-runs.json").read_text())
    runs = {r["variant"]: r for r in meta["results"]}
    assert sorted(runs) == ["forecast naive @0.3", "normal", "slimming"]
    dense, slim, early = runs["normal"], runs["slimming"], runs["forecast naive @0.3"]
    for pruned in (slim, early):
        assert pruned["ratio"] == 0.5 and pruned["policy"] == "grouped"
        assert pruned["params"] < dense["params"] and pruned["macs"] < dense["macs"]
        assert pruned["macs_640"] < dense["macs_640"]
        assert 0.0 <= pruned["accuracy"] <= pruned["map50"] <= 1.0
    # 32 images / batch 16 = 2 batches per epoch, 2 epochs; 30 % of 4 updates rounds to 1
    assert dense["total_steps"] == 4 and dense["prune_step"] is None
    assert early["prune_step"] == 1 and early["total_steps"] == 4
    # the early prune trains 3 of 4 batches at the smaller size; slimming adds a fine-tune
    assert early["train_macs"] < dense["train_macs"] < slim["train_macs"]
    assert slim["prune_step"] == 4 and slim["total_steps"] == 4 + 2  # 1 fine-tune epoch

    text = out.read_text(encoding="utf-8")
    assert "| yolov8n | 0.5 |" in text and "### yolov8n, ratio 0.5, grouped policy" in text
    assert "| forecast naive @0.3 | **" in text  # the claim-1 cell
    for kind in ("compute", "prune"):
        assert (tmp_path / f"results-yolo-yolov8n-{kind}.png").read_bytes()[:4] == b"\x89PNG"

    # --resume keeps the saved runs and trains nothing more; --render-only re-renders
    assert yolo_table.main([*tiny, "--resume"]) == 0
    again = json.loads(out.with_name("results-yolo-runs.json").read_text())
    assert again["results"] == meta["results"]
    out.unlink()
    assert yolo_table.main(["--render-only", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == text
