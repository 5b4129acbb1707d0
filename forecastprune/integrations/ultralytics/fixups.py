"""What an ultralytics model needs after the engine has cut it.

The engine changes tensors; two things around them are ultralytics' own business:

* **cached split widths** — C2f, C3k2, C2fAttn, RepNCSPELAN4, PSA and C2PSA remember half of
  ``cv1``'s output width in ``self.c`` and split by it (``forward_split``, which export
  switches to, and PSA's ``forward``). The engine keeps the two halves of such a split equal,
  so the new width is half of the pruned ``cv1``'s output.
* **the surgery record** — it holds weak references (for
  :func:`~forecastprune.engine.rebuild_optimizer`), and ultralytics saves checkpoints by
  pickling the module, which cannot carry them.
"""

from __future__ import annotations

from torch import nn

from ...errors import PruningError


def sync_split_widths(original: nn.Module, pruned: nn.Module) -> nn.Module:
    """Set the cached split width ``c`` of each CSP block of ``pruned``, in place.

    Args:
        original: the model before the cut (read only).
        pruned: the engine's pruned copy of it.

    Returns:
        ``pruned``.

    Raises:
        PruningError: if a halved ``cv1`` output has become odd (the halves would differ).
    """
    for name, module in original.named_modules():
        if _halves_cv1(module):
            cut = pruned.get_submodule(name)
            width = cut.cv1.conv.out_channels
            if width % 2:
                raise PruningError(
                    f"{name}.cv1 has {width} output channels after the cut; {type(cut).__name__} "
                    "splits it into two equal halves, so the two halves must be pruned alike"
                )
            cut.c = width // 2
    return pruned


def saveable(original: nn.Module, pruned: nn.Module) -> nn.Module:
    """:func:`sync_split_widths`, then drop the surgery record: ready for a checkpoint."""
    return strip_surgery_record(sync_split_widths(original, pruned))


def strip_surgery_record(model: nn.Module) -> nn.Module:
    """Drop the engine's surgery record from a pruned model, in place, and return the model."""
    from ...engine.surgery import RECORD_ATTR

    vars(model).pop(RECORD_ATTR, None)
    return model


def _halves_cv1(module: nn.Module) -> bool:
    """Whether ``module.c`` is half of ``module.cv1``'s output width (ultralytics' CSP blocks)."""
    width = getattr(module, "c", None)
    conv = getattr(getattr(module, "cv1", None), "conv", None)
    return isinstance(width, int) and isinstance(conv, nn.Conv2d) and conv.out_channels == 2 * width
