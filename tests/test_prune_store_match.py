"""``prune`` refuses a store that does not describe the model: layers out of order (a swapped
layout) or another architecture's fingerprint — widths alone cannot tell those apart."""

from __future__ import annotations

import json
import shutil

import _models  # noqa: F401  (one intra-op thread for the tests)
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.core.bn_layers import model_fingerprint
from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.coupling import check_layout
from forecastprune.errors import LayoutError
from forecastprune.store import GammaTrajectoryStore, bundled_store_path
from forecastprune.zoo import build_model


def _edited_copy(tmp_path, edit):
    path = tmp_path / "edited.fpstore"
    shutil.copytree(bundled_store_path(), path)
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _swap_equal_widths(manifest):
    layout = manifest["layout"]
    i = next(
        i for i in range(len(layout) - 1) if layout[i]["channels"] == layout[i + 1]["channels"]
    )
    layout[i], layout[i + 1] = layout[i + 1], layout[i]


def _prune(store, tmp_path):
    return CliRunner().invoke(
        cli,
        [
            "prune",
            "--store",
            str(store),
            "--random-init",
            "--forecaster",
            "naive",
            "--out",
            str(tmp_path / "p.pt"),
        ],
    )


def test_a_swapped_layout_is_refused_before_cutting(tmp_path):
    result = _prune(_edited_copy(tmp_path, _swap_equal_widths), tmp_path)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the other way round" in lines[0]
    assert not (tmp_path / "p.pt").exists()


def test_another_architectures_fingerprint_is_refused(tmp_path):
    def other(manifest):
        manifest["fingerprint"] = "sha256:" + "0" * 64

    result = _prune(_edited_copy(tmp_path, other), tmp_path)
    assert result.exit_code == 2, result.output
    assert "recorded on a model with fingerprint sha256:0000" in result.stderr


def test_the_bundled_store_matches_its_model_and_foreign_fingerprints_are_not_compared():
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        model = build_model("darknet", **store.metadata["model_kwargs"])
        assert len(check_layout(model, store.layout, store.fingerprint)) == len(store.layout)
        # a fingerprint a user typed at import (not a recorder's sha256) cannot be recomputed
        assert check_layout(model, store.layout, "my-run-7")
        reordered = ChannelLayout(tuple(reversed(store.layout.layers)))
        check_layout(model, reordered, None)  # an imported store may list layers in any order
        with pytest.raises(LayoutError, match="other way round"):
            check_layout(model, reordered, store.fingerprint)
    assert model_fingerprint(model) == store.fingerprint
