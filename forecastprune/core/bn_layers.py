"""Which BatchNorm layers are recorded and sparsified.

:class:`~forecastprune.record.recorder.GammaRecorder` and
:class:`~forecastprune.record.sparsity.BNSparsity`
must agree on the layer set, and both must name layers the way the plain model does: a model
wrapped in ``DistributedDataParallel`` or ``DataParallel`` names its layers ``module.xxx``, but a
store recorded under DDP has to line up with the same model loaded alone for pruning. Both
therefore go through :func:`select_bn_layers`, which unwraps such wrappers first.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Sequence

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import LayoutError
from .layout import ChannelLayout

#: A layer selection: one name or fnmatch pattern, or several.
Selection = str | Sequence[str] | None


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip ``DistributedDataParallel`` / ``DataParallel`` wrappers (any depth).

    Args:
        model: a module, possibly wrapped.

    Returns:
        The innermost wrapped module, whose ``named_modules()`` names are the plain model's.
    """
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def is_prunable_bn(module: nn.Module) -> bool:
    """True for an affine BatchNorm (1d/2d/3d, SyncBatchNorm): one that has a γ to record."""
    return isinstance(module, _BatchNorm) and bool(module.affine)


def select_bn_layers(
    model: nn.Module, layers: Selection = None, exclude: Selection = None
) -> list[tuple[str, _BatchNorm]]:
    """The selected BN layers as ``(plain name, module)`` pairs, in model order.

    Args:
        model: the model, possibly wrapped in DDP/DataParallel.
        layers: ``None`` for every affine BatchNorm; otherwise names or fnmatch patterns
            (``"backbone.*"``), each of which must match at least one affine BatchNorm.
        exclude: names or fnmatch patterns removed from the selection; each must match one of
            the model's affine BatchNorms (a typo must not silently keep a layer in).

    Returns:
        The selected layers in ``named_modules()`` order, so the layout is the model's order
        whatever order the patterns were given in.

    Raises:
        LayoutError: when a pattern matches nothing, or the selection ends up empty.
    """
    candidates = [(n, m) for n, m in unwrap_model(model).named_modules() if is_prunable_bn(m)]
    names = [n for n, _ in candidates]
    include = _patterns(layers, "layers")
    excluded = _patterns(exclude, "exclude")
    chosen = _matching(names, include, "layers") if include is not None else set(names)
    if excluded:
        chosen -= _matching(names, excluded, "exclude")
    selected = [(n, m) for n, m in candidates if n in chosen]
    if not selected:
        raise LayoutError(
            f"no affine BatchNorm layer selected (model has {len(names)}: {names[:8]}"
            f"{'...' if len(names) > 8 else ''}; layers={layers!r}, exclude={exclude!r}); "
            "select at least one BatchNorm with affine=True"
        )
    return selected


def layout_of(selected: Iterable[tuple[str, _BatchNorm]]) -> ChannelLayout:
    """The channel layout of a selection: one entry per BN with its ``num_features``."""
    return ChannelLayout.from_pairs((name, bn.num_features) for name, bn in selected)


def model_fingerprint(model: nn.Module, layers: Selection = None, exclude: Selection = None) -> str:
    """A sha256 identifying the model's structure and its selected BN layers.

    Two models share a fingerprint when they have the same module types at the same names, the
    same parameter shapes and the same selected BN layers; weights do not count, so a resumed
    run matches the run that started the store.

    Args:
        model: the model, possibly wrapped in DDP/DataParallel.
        layers: the BN selection, as for :func:`select_bn_layers`.
        exclude: the exclusions, as for :func:`select_bn_layers`.

    Returns:
        ``"sha256:<hex digest>"``.
    """
    plain = unwrap_model(model)
    digest = hashlib.sha256()
    for name, bn in select_bn_layers(plain, layers, exclude):
        digest.update(f"bn {name} {bn.num_features}\n".encode())
    for name, module in plain.named_modules():
        digest.update(f"module {name} {type(module).__qualname__}\n".encode())
    for name, param in plain.named_parameters():
        digest.update(f"param {name} {tuple(param.shape)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _patterns(value: Selection, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise LayoutError(f"{what} must be a layer name/pattern or a list of them; got {value!r}")
    return items


def _matching(names: list[str], patterns: list[str], what: str) -> set[str]:
    matched: set[str] = set()
    for pattern in patterns:
        # fnmatchcase: layer names are case-sensitive on every platform
        hits = {name for name in names if fnmatch.fnmatchcase(name, pattern)}
        if not hits:
            raise LayoutError(
                f"{what} entry {pattern!r} matches no affine BatchNorm layer; the model's are "
                f"{names[:12]}{'...' if len(names) > 12 else ''}. Use plain module names "
                "(without a 'module.' prefix) or fnmatch patterns such as 'layer1.*'"
            )
        matched |= hits
    return matched
