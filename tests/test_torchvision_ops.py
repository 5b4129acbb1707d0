"""The pure-torch stand-in for torchvision's compiled NMS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from forecastprune._torchvision_ops import ensure_torchvision_ops, nms_reference

FALLBACK = ensure_torchvision_ops()
torchvision = pytest.importorskip("torchvision", reason="torchvision is an optional dependency")


def _greedy_nms(boxes: list[list[float]], scores: list[float], threshold: float) -> list[int]:
    """Textbook greedy NMS in plain Python: an independent oracle."""

    def iou(a: list[float], b: list[float]) -> float:
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union

    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= threshold for k in kept):
            kept.append(i)
    return kept


def _random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    corner = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 100
    size = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 40 + 1
    return torch.cat([corner, corner + size], 1), torch.rand(n, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_nms_matches_greedy_reference(threshold: float, seed: int) -> None:
    boxes, scores = _random_boxes(300, seed)
    expected = _greedy_nms(boxes.tolist(), scores.tolist(), threshold)
    assert nms_reference(boxes, scores, threshold).tolist() == expected
    # The public torchvision entry points reach a working kernel (ours or the compiled one).
    assert torchvision.ops.nms(boxes, scores, threshold).tolist() == expected
    assert torchvision.ops.nms(boxes.float(), scores.float(), threshold).tolist() == expected


def test_batched_nms_keeps_classes_apart() -> None:
    boxes, scores = _random_boxes(200, 3)
    classes = torch.arange(200) % 3
    kept = torchvision.ops.batched_nms(boxes, scores, classes, 0.4)
    for c in range(3):
        idx = torch.nonzero(classes == c).flatten()
        want = sorted(idx[_greedy_nms(boxes[idx].tolist(), scores[idx].tolist(), 0.4)].tolist())
        assert sorted(i for i in kept.tolist() if classes[i] == c) == want


def test_empty_input_and_bad_shapes() -> None:
    empty = nms_reference(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.long and empty.numel() == 0
    with pytest.raises(ValueError, match=r"\(N, 4\).*got \(3, 5\)"):
        nms_reference(torch.zeros(3, 5), torch.zeros(3), 0.5)


@pytest.mark.skipif(not FALLBACK, reason="torchvision's compiled extension loads here")
def test_fallback_is_idempotent_and_other_ops_say_what_is_missing() -> None:
    assert ensure_torchvision_ops() is True
    with pytest.raises(NotImplementedError, match="compiled extension"):
        torch.ops.torchvision.box_iou_rotated(torch.zeros(1, 5), torch.zeros(1, 5))
    # Ops with a pure-Python path in torchvision keep using it.
    assert not torchvision.extension._has_ops()


# ------------------------------------------------------------- the decision, in fresh processes
def _fresh(code: str, path: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (the fallback acts once per process, before import)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path or ""), root) if p)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_the_installed_torchvision_imports_without_aborting() -> None:
    # torchvision 0.29 names its extension _C_stable.so; defining a schema it then registers
    # itself aborted the process (exit 134) before this was fixed.
    run = _fresh(
        "from forecastprune._torchvision_ops import ensure_torchvision_ops as e\n"
        "fallback = e()\n"
        "import torch, torchvision\n"
        "assert fallback != torchvision.extension._has_ops(), (fallback,)\n"
        "keep = torchvision.ops.nms(torch.tensor([[0., 0, 2, 2], [0, 0, 2, 2.1], [5, 5, 6, 6]]),"
        " torch.tensor([0.9, 0.8, 0.7]), 0.5)\n"
        "assert keep.tolist() == [0, 2], keep\n"
    )
    assert run.returncode == 0, run.stderr[-2000:]


def _fake_torchvision(root: Path, has_ops: bool) -> Path:
    """A package named torchvision whose import fails like a wheel built for another torch."""
    package = root / "torchvision"
    (package / "ops").mkdir(parents=True)
    (package / "extension.py").write_text(f"def _has_ops():\n    return {has_ops}\n")
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "boxes.py").write_text(
        "def _assert_has_ops():\n    raise RuntimeError('no ops')\n"
    )
    # torchvision's meta registrations: the first one needs the nms schema to exist
    (package / "__init__.py").write_text(
        "from . import extension\nimport torch\n"
        "torch.library.register_fake('torchvision::nms')(lambda d, s, t: d.new_empty(0).long())\n"
    )
    return root


@pytest.mark.slow
def test_a_missing_extension_gets_the_fallback_and_the_import_then_works(tmp_path) -> None:
    run = _fresh(
        "import warnings, torch\n"
        "from forecastprune._torchvision_ops import ensure_torchvision_ops as e\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    assert e() is True\n"
        "assert 'torchvision::nms does not exist' in str(caught[0].message), caught\n"
        "import torchvision.ops.boxes as b; b._assert_has_ops()\n"
        "box = torch.tensor([[0., 0, 1, 1], [0, 0, 1, 1]])\n"
        "assert torch.ops.torchvision.nms(box, torch.tensor([1., .5]), .5).tolist() == [0]\n",
        _fake_torchvision(tmp_path, has_ops=False),
    )
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.slow
def test_an_import_failure_with_the_extension_loaded_is_not_papered_over(tmp_path) -> None:
    run = _fresh(
        "from forecastprune._torchvision_ops import ensure_torchvision_ops as e\n"
        "try:\n    e()\nexcept RuntimeError as exc:\n    print('raised:', exc)\n"
        "import torch\n"
        "try:\n    torch.ops.torchvision.nms\nexcept AttributeError:\n    print('no schema')\n",
        _fake_torchvision(tmp_path, has_ops=True),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "raised: operator torchvision::nms does not exist" in run.stdout
    assert "no schema" in run.stdout  # nothing was registered behind torchvision's back
