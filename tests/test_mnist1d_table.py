"""The MNIST-1D evidence table's smoke run: real training runs, saved records, resume, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mnist1d", reason="the MNIST-1D generator is the mnist1d extra")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import mnist1d_table  # noqa: E402


@pytest.mark.slow
def test_quick_grid_trains_saves_resumes_and_renders(tmp_path) -> None:
    threads = torch.get_num_threads()  # each run pins one thread; restored after
    out = tmp_path / "results-q.md"
    try:
        assert mnist1d_table.main(["--quick", "--out", str(out)]) == 0
        raw = out.with_name("results-q-runs.json")
        records = json.loads(raw.read_text())["results"]
        # 2 seeds × (normal + 8 pruning variants at one ratio)
        assert len(records) == 18
        by = {(r["variant"], r["seed"]): r for r in records}
        dense = by[("normal", 0)]
        for (variant, _), r in by.items():
            assert 0.0 <= r["accuracy"] <= 1.0 and r["task"] == "mnist1d"
            if variant != "normal" and r["prune_step"] is not None:
                assert r["macs"] < dense["macs"] and r["params"] < dense["params"]
        assert by[("forecast naive @0.1", 1)]["prune_step"] < by[("slimming", 1)]["prune_step"]
        text = out.read_text()
        for needle in ("MNIST-1D authors' CNN", "arXiv:2011.14439", "`auto` beats `naive`"):
            assert needle in text
        assert (tmp_path / "results-q-compute.png").stat().st_size > 1000
        # resume: nothing left to run, the records stay as they were
        before = raw.read_bytes()
        assert mnist1d_table.main(["--quick", "--resume", "--out", str(out)]) == 0
        assert json.loads(raw.read_bytes())["results"] == json.loads(before)["results"]
    finally:
        torch.set_num_threads(threads)
