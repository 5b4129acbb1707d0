"""Block decisions on the one prediction path: what ``compare`` scores is what ``prune`` cuts.

The bundled store was recorded on the zoo's Darknet (three removable residual blocks).
"""

from __future__ import annotations

from pathlib import Path

import torch
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.blocks import store_block_plan
from forecastprune.compare.replay import ReplaySettings, replay
from forecastprune.compare.report import dumps_json, format_table
from forecastprune.engine.block_rule import BlockSpec, block_iou, select_blocks
from forecastprune.engine.persist import load_pruned
from forecastprune.engine.surgery import surgery_record
from forecastprune.predict import cutoff_step, predict_store
from forecastprune.store import GammaTrajectoryStore, bundled_store_path
from forecastprune.store.timeline import run_length

SPEC = BlockSpec(count=1, reduction="mean")


def test_compare_reports_block_iou_from_the_prediction_path():
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        settings = ReplaySettings(cutoffs=(0.05, 0.5), blocks=SPEC, isolation="thread")
        result = replay(store, ["sma", "linear"], settings)
        plan = store_block_plan(store)
        final = abs(store.view()[-1].astype("float64"))
        oracle = select_blocks(plan, final, store.layout, SPEC).removed
        assert result.block_oracle == oracle and len(oracle) == 1
        for row in result.rows:
            prediction = predict_store(store, row.forecaster, f"step:{row.cutoff.step}")
            removed = select_blocks(plan, prediction.scores, store.layout, SPEC).removed
            assert row.block_iou == block_iou(removed, oracle)
        assert cutoff_step(0.5, run_length(store)) in {r.cutoff.step for r in result.rows}
    assert "bIoU" in format_table(result)
    assert '"block_iou"' in dumps_json(result) and '"block_oracle"' in dumps_json(result)


def test_compare_without_blocks_has_no_block_column():
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        result = replay(store, ["sma"], ReplaySettings(cutoffs=(0.3,), isolation="thread"))
    assert result.block_oracle is None and "bIoU" not in format_table(result)


def test_prune_blocks_from_a_recorded_store(tmp_path: Path):
    out = tmp_path / "shallow.pt"
    result = CliRunner().invoke(
        cli,
        [
            "prune",
            "--forecaster",
            "sma",
            "--cutoff",
            "0.3",
            "--ratio",
            "0",
            "--blocks",
            "2",
            "--random-init",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "removed 2 of 3 removable residual blocks" in result.output
    loaded = load_pruned(out)
    record = surgery_record(loaded)
    assert len(record.blocks) == 2
    names = {n for n, _ in loaded.named_modules()}
    assert not set(record.blocks) & names
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        prediction = predict_store(store, "sma", 0.3)
        expected = select_blocks(
            store_block_plan(store), prediction.scores, store.layout, BlockSpec(count=2)
        )
    assert set(record.blocks) == set(expected.removed)
    loaded.eval()(torch.zeros(1, 1, 8, 8))


def test_prune_block_options_are_checked():
    runner = CliRunner()
    both = runner.invoke(
        cli, ["prune", "--random-init", "--blocks", "1", "--block-ratio", "0.5", "--out", "x.pt"]
    )
    assert both.exit_code == 2 and "not both" in both.output
    many = runner.invoke(cli, ["prune", "--random-init", "--blocks", "7", "--out", "x.pt"])
    assert many.exit_code == 2 and "only 3 removable" in many.output
    assert "Traceback" not in many.output


def test_compare_cli_takes_block_flags():
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--forecasters",
            "sma",
            "--cutoffs",
            "0.3",
            "--block-ratio",
            "0.34",
            "--block-reduce",
            "max",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "bIoU" in result.output and "blocks (max |γ|" in result.output
