"""Keep ``import torchvision`` working when its compiled operators cannot load.

PyPI's torchvision wheel for a given torch release is built against the CUDA build of torch. Next
to a CPU-only torch its extension (``torchvision/_C.so``) fails to load (it links
``libc10_cuda.so``), and since torchvision 0.2x the import itself then dies: the meta
registrations call ``torch.library.register_fake("torchvision::nms")`` for an operator nobody
defined ("operator torchvision::nms does not exist"). ultralytics imports torchvision at import
time, so one mismatched wheel makes the whole detector stack unusable.

:func:`ensure_torchvision_ops` repairs exactly that case and nothing else. It first imports
torchvision as it is; only when that import fails *and* torchvision itself reports that its
extension did not load (``torchvision.extension._has_ops()``; the file is ``_C.so`` up to 0.28,
``_C_stable.so`` from 0.29 — torchvision knows its own name) does it define the operator schemas
torchvision needs at import time, give ``torchvision::nms`` a real pure-torch kernel (the only
compiled op ultralytics calls) and import again. A schema is never defined while the extension
could still register it: that duplicate makes the process abort in C++, past any ``except``.
Operators nobody here needs get a kernel that raises a clear ``NotImplementedError``. Every
other torchvision op with a pure-Python fallback (``roi_align`` and friends) keeps using it,
because ``torchvision.extension._has_ops()`` still says the extension is missing.

Call it before the first ``import torchvision`` / ``import ultralytics``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

import torch

__all__ = ["ensure_torchvision_ops", "nms_reference"]

# Schemas as torchvision's C++ extension declares them. ``nms`` and ``qnms`` must exist before
# torchvision's meta registrations run; ``box_iou_rotated`` is the other op guarded by the check
# that :func:`_allow_box_ops` relaxes, so it must exist too (and say clearly that it is missing).
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "box_iou_rotated": "box_iou_rotated(Tensor boxes1, Tensor boxes2) -> Tensor",
}

_library: torch.library.Library | None = None


def ensure_torchvision_ops() -> bool:
    """Make ``import torchvision`` and ``torchvision.ops.nms`` work without its extension.

    Imports torchvision. Does nothing more when it is absent, already imported, or imports.

    Returns:
        True when the pure-torch fallback is (now or already) installed, else False.

    Raises:
        Exception: torchvision's own import error when it fails for another reason than its
            compiled extension (for instance with the extension loaded), unchanged.
    """
    global _library
    if _library is not None:
        return True
    if "torchvision" in sys.modules or _operator_exists("nms"):
        return False
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision")
    except Exception as exc:  # noqa: BLE001 - decided below: ours to repair, or re-raised
        if not _extension_missing():
            raise
        failure = exc
    else:
        return False
    _forget_torchvision()
    _library = _define_operators()
    warnings.warn(
        f"torchvision's compiled operators cannot load next to torch {torch.__version__} "
        f"(import failed: {type(failure).__name__}: {failure}); using a pure-torch NMS instead "
        "and leaving the other torchvision ops on their Python fallbacks. Install a "
        "torchvision build that matches your torch to use the compiled ones.",
        RuntimeWarning,
        stacklevel=2,
    )
    importlib.import_module("torchvision")
    _allow_box_ops()
    return True


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression in pure torch, with torchvision's semantics.

    Boxes are visited by descending score; a box is dropped when its IoU with an already kept
    box is strictly greater than ``iou_threshold``. Each round costs one vectorized IoU against
    the remaining boxes, so memory stays O(N) (a full N x N IoU matrix would not fit for the
    30,000 candidates ultralytics may pass).

    Args:
        boxes: ``(N, 4)`` boxes as ``(x1, y1, x2, y2)``.
        scores: ``(N,)`` scores.
        iou_threshold: IoU above which the lower-scored box is suppressed.

    Returns:
        int64 indices of the kept boxes, by descending score.

    Raises:
        ValueError: If the shapes are not ``(N, 4)`` and ``(N,)``.
    """
    if boxes.dim() != 2 or boxes.size(1) != 4 or scores.shape != (boxes.size(0),):
        raise ValueError(
            f"nms expects boxes of shape (N, 4) and scores of shape (N,); got "
            f"{tuple(boxes.shape)} and {tuple(scores.shape)}."
        )
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = torch.argsort(scores, descending=True, stable=True)
    keep = []
    while order.numel() > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = torch.minimum(x2[best], x2[rest]) - torch.maximum(x1[best], x1[rest])
        height = torch.minimum(y2[best], y2[rest]) - torch.maximum(y1[best], y1[rest])
        inter = width.clamp(min=0) * height.clamp(min=0)
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[~(iou > iou_threshold)]  # NaN IoU (empty boxes) suppresses nothing, as in C++
    if not keep:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    return torch.stack(keep).to(torch.long)


def _operator_exists(name: str) -> bool:
    try:
        torch._C._dispatch_has_kernel_for_dispatch_key(f"torchvision::{name}", "CPU")
    except RuntimeError:  # "operator torchvision::<name> does not exist"
        return False
    return True


def _extension_missing() -> bool:
    """After a failed ``import torchvision``: did torchvision fail to load its own extension?"""
    extension = sys.modules.get("torchvision.extension")
    has_ops = getattr(extension, "_has_ops", None)
    return callable(has_ops) and not has_ops()


def _forget_torchvision() -> None:
    """Drop the half-imported torchvision so that the next import runs it from the start.

    The failed import stopped at its first fake-kernel registration (``torchvision::nms``) and
    registered nothing before it while the extension was missing, so nothing else is left over.
    """
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def _define_operators() -> torch.library.Library:
    library = torch.library.Library("torchvision", "DEF")  # noqa: TID251 - owns the namespace
    for name, schema in _SCHEMAS.items():
        library.define(schema)
        kernel = _nms_kernel if name == "nms" else _unsupported(name)
        # Pure torch runs on any device, so one kernel serves every backend.
        for key in ("CPU", "CUDA"):
            library.impl(name, kernel, key)
    return library


def _nms_kernel(dets: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    return nms_reference(dets, scores, iou_threshold)


def _unsupported(name: str):
    def kernel(*args, **kwargs):
        raise NotImplementedError(
            f"torchvision::{name} needs torchvision's compiled extension, which cannot load next "
            f"to torch {torch.__version__}; install a torchvision build that matches your torch."
        )

    return kernel


def _allow_box_ops() -> None:
    """Let ``torchvision.ops.nms`` reach the operator now defined.

    ``torchvision.ops.boxes`` refuses to call any compiled op while the extension is missing. Its
    guard is replaced by a no-op in that module only; every op it guards is defined above.
    """
    # imported here: torchvision can be imported only once the schemas exist
    import torchvision.ops.boxes as boxes

    boxes._assert_has_ops = lambda: None
