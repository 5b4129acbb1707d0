"""The pure-torch stand-in for torchvision's compiled NMS."""

from __future__ import annotations

import pytest
import torch

from forecastprune.integrations._torchvision_ops import ensure_torchvision_ops, nms_reference

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
