"""Carry an optimizer over to a pruned model, so training continues right after the cut.

torch-pruning replaces the pruned parameters with new, smaller tensors, so the old optimizer
would keep updating tensors the model no longer uses. :func:`rebuild_optimizer` builds an
optimizer of the same class over the pruned model's parameters:

* **param groups** — one new group per old group, with the same settings (lr, momentum,
  weight decay, betas, ...); a parameter lands in the group its original was in. A bias the
  surgery created for β compensation joins the group of its layer's weight.
* **state** — per-parameter state tensors with the parameter's old shape (SGD's momentum buffer,
  Adam's ``exp_avg`` / ``exp_avg_sq``, RMSprop's ``square_avg``, ...) are cut to the surviving
  channels, using the kept indices recorded by the surgery; scalar entries (Adam's ``step``) and
  non-tensor entries are copied. Anything else — a state tensor of another shape, or the state of
  a created bias — is reset (left out), so the optimizer starts it afresh.

Parameters are matched through the pruned model's
:class:`~forecastprune.engine.surgery.SurgeryRecord`, which names the original parameter
(by identity) each new one came from; so pass the optimizer that was training the very model
given to :func:`~forecastprune.engine.surgery.prune_model`.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import PruningError
from .surgery import surgery_record


def rebuild_optimizer(
    old_optimizer: torch.optim.Optimizer, new_model: nn.Module
) -> torch.optim.Optimizer:
    """An optimizer of the same class and settings over the pruned model, state remapped.

    Args:
        old_optimizer: the optimizer of the model that was pruned (not modified).
        new_model: the model returned by :func:`~forecastprune.engine.surgery.prune_model`.

    Returns:
        The new optimizer (see the module docstring for how groups and state carry over).

    Raises:
        PruningError: if ``new_model`` was not made by ``prune_model``, or the optimizer holds
            none of the parameters of the model it was pruned from.
    """
    record = surgery_record(new_model)
    if record is None:
        raise PruningError(
            "new_model is not a model returned by prune_model (it has no surgery record); "
            "prune with forecastprune.engine.prune_model and pass its result"
        )
    new_params = dict(new_model.named_parameters())
    live = {name: ref() for name, ref in record.sources.items()}
    name_of = {id(param): name for name, param in live.items() if param is not None}
    groups = [
        [name_of[id(p)] for p in g["params"] if id(p) in name_of]
        for g in old_optimizer.param_groups
    ]
    if not any(groups):
        raise PruningError(
            "none of the optimizer's parameters belong to the model this one was pruned from; "
            "pass the optimizer that was training the model given to prune_model"
        )
    _place_created(groups, [n for n in new_params if n not in record.sources])
    new_optimizer = _same_kind(
        old_optimizer,
        [
            {
                **{k: v for k, v in old.items() if k != "params"},
                "params": [new_params[n] for n in names],
            }
            for old, names in zip(old_optimizer.param_groups, groups, strict=True)
            if names
        ],
    )
    for name, old_param in live.items():
        if old_param is not None and old_param in old_optimizer.state:
            new_optimizer.state[new_params[name]] = _remap_state(
                old_optimizer.state[old_param], old_param.shape, record.kept[name]
            )
    return new_optimizer


def _place_created(groups: list[list[str]], created: list[str]) -> None:
    """Put each created bias into the group holding its layer's weight."""
    for name in created:
        sibling = name.rpartition(".")[0] + ".weight"
        for names in groups:
            if sibling in names:
                names.append(name)
                break


def _same_kind(old: torch.optim.Optimizer, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """A new optimizer of ``old``'s class; defaults limited to what its constructor takes."""
    accepted = inspect.signature(type(old).__init__).parameters
    defaults = {k: v for k, v in old.defaults.items() if k in accepted}
    return type(old)(groups, **defaults)


def _remap_state(
    state: dict[str, Any], old_shape: torch.Size, kept: tuple[np.ndarray | None, ...]
) -> dict[str, Any]:
    """Cut every parameter-shaped state tensor to the kept indices; copy scalars."""
    new: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            new[key] = value
        elif value.shape == old_shape:
            for dim, indices in enumerate(kept):
                if indices is not None:
                    value = value.index_select(dim, torch.as_tensor(indices, device=value.device))
            new[key] = value.clone()
        elif value.dim() == 0:
            new[key] = value.clone()
        # other shapes cannot be mapped onto the surviving channels: reset them
    return new
