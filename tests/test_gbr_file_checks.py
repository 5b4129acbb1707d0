"""``learned_gbr`` model files that would crash, hang or mislead scikit-learn are refused.

The crafted files are made the way an attacker would: load the bundled model, change the node
arrays of its trees, save it again with skops.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import skops.io as sio
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.errors import ForecasterError
from forecastprune.forecasters.boosted import FORMAT, VERSION, BoostedModel
from forecastprune.forecasters.learned import (
    BUNDLED_GBR_MODEL,
    LAYERED,
    bundled_model_path,
)


def _bundled_payload() -> dict:
    raw = bundled_model_path(BUNDLED_GBR_MODEL).read_bytes()
    return sio.loads(raw, trusted=sio.get_untrusted_types(data=raw))


def _crafted(tmp_path, change) -> str:
    payload = _bundled_payload()
    for (tree,) in payload["estimator"]._predictors:
        nodes = tree.nodes.copy()
        change(nodes)
        tree.nodes = nodes
    path = tmp_path / "crafted.skops"
    path.write_bytes(sio.dumps(payload))
    return str(path)


def _out_of_range_children(nodes):
    nodes["left"][:] = 2**30
    nodes["right"][:] = 2**30
    nodes["feature_idx"][:] = 2**30
    nodes["is_leaf"][:] = 0


def _out_of_range_feature(nodes):
    nodes["feature_idx"][~nodes["is_leaf"].astype(bool)] = len(LAYERED) + 3


def _cycle(nodes):
    split = np.flatnonzero(~nodes["is_leaf"].astype(bool))
    nodes["left"][split[-1]] = 0  # back to the root: the walk would never end


def _shared_child(nodes):
    nodes["right"][0] = nodes["left"][0]  # two parents for one node, another node orphaned


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_out_of_range_children, "outside its"),
        (_out_of_range_feature, f"splits on feature {len(LAYERED) + 3} of {len(LAYERED)}"),
        (_cycle, "is not a tree"),
        (_shared_child, "is not a tree"),
    ],
)
def test_crafted_trees_are_refused_before_use(tmp_path, change, message):
    with pytest.raises(ForecasterError, match=message):
        BoostedModel.load(_crafted(tmp_path, change), LAYERED)


@pytest.mark.slow
def test_cli_refuses_an_out_of_range_tree_with_one_line_instead_of_crashing(tmp_path):
    """In a subprocess: before the checks this was a segmentation fault (exit -11)."""
    path = _crafted(tmp_path, _out_of_range_children)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from forecastprune.cli import main; main()",
            "forecast",
            "--forecaster",
            f"learned_gbr(model={path!r})",
            "--cutoff",
            "0.2",
            "--out",
            str(tmp_path / "o.npz"),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "outside its" in lines[-1]
    assert not any("Traceback" in line for line in lines)


def test_unfitted_estimator_and_empty_file_get_clear_messages(tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    path = tmp_path / "unfitted.skops"
    path.write_bytes(
        sio.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "features": list(LAYERED),
                "info": {},
                "estimator": HistGradientBoostingRegressor(),
            }
        )
    )
    with pytest.raises(ForecasterError, match="unfitted regressor"):
        BoostedModel.load(path, LAYERED)
    empty = tmp_path / "empty.skops"
    empty.write_bytes(b"")
    result = CliRunner().invoke(
        cli,
        [
            "forecast",
            "--forecaster",
            f"learned_gbr(model={str(empty)!r})",
            "--cutoff",
            "0.2",
            "--out",
            str(tmp_path / "o.npz"),
        ],
    )
    assert result.exit_code == 2
    assert "the file is empty" in result.stderr and "Exactly one" not in result.stderr


def test_the_bundled_model_passes_the_checks():
    model = BoostedModel.load(bundled_model_path(BUNDLED_GBR_MODEL), LAYERED)
    assert model.predict(np.zeros((4, len(LAYERED)))).shape == (4,)
