"""The model a store was recorded from, rebuilt from the store's metadata.

``compare`` needs the model's structure to plan which channels may be pruned; ``prune`` needs
the model itself, with its trained weights. Both read the same metadata keys (``model``,
``model_kwargs``, ``input_shape``, ``upscale``) here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError
from . import build_model, list_models

#: the weights ``forecastprune record`` writes beside its store
RUN_MODEL_NAME = "model.pt"


def model_spec(metadata: dict[str, Any], name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The zoo name and builder kwargs: ``name`` if given, else the store's recorded model.

    The recorded ``model_kwargs`` apply only to the recorded model.

    Raises:
        ConfigError: when neither names a model, or the name is not in the zoo.
    """
    recorded = metadata.get("model")
    chosen = name or recorded
    if not chosen:
        raise ConfigError(
            "the store's metadata names no model; pass the model's name (one of "
            f"{', '.join(list_models())}), or record the store with `forecastprune record`"
        )
    if chosen not in list_models():
        raise ConfigError(
            f"model {chosen!r} is not in the zoo ({', '.join(list_models())}); record from a zoo "
            "model, or use policy 'none' where the model's structure is not needed"
        )
    kwargs = dict(metadata.get("model_kwargs") or {}) if chosen == recorded else {}
    return str(chosen), kwargs


def model_from_metadata(metadata: dict[str, Any], name: str | None = None) -> nn.Module:
    """A freshly initialised instance of the store's model (structure only)."""
    chosen, kwargs = model_spec(metadata, name)
    return build_model(chosen, **kwargs)


def example_input_shape(metadata: dict[str, Any]) -> tuple[int, ...]:
    """The example input for tracing: metadata ``input_shape``, else one 8×8 digits image."""
    if metadata.get("input_shape"):
        return tuple(int(n) for n in metadata["input_shape"])
    side = 8 * int(metadata.get("upscale") or 1)
    return (1, int((metadata.get("model_kwargs") or {}).get("in_channels", 1)), side, side)


def run_checkpoint(store_path: Path) -> Path | None:
    """The ``model.pt`` that ``forecastprune record`` left beside the store, if any."""
    candidate = Path(store_path).parent / RUN_MODEL_NAME
    return candidate if candidate.is_file() else None


def load_weights(model: nn.Module, checkpoint: Path) -> nn.Module:
    """Load a state-dict checkpoint into ``model`` (``weights_only``), strictly.

    Raises:
        StoreError: when the file is unsafe or not a state dict.
        ConfigError: when it does not fit the model, naming the missing and unexpected keys
            and the first size mismatch.
    """
    from ..store.checkpoints import load_checkpoint

    state, _ = load_checkpoint(Path(checkpoint))
    problem = _mismatch(model, state)
    if problem:
        raise ConfigError(
            f"checkpoint {checkpoint} does not fit {type(model).__name__}: {problem}; pass the "
            "model (and store) it was trained as"
        )
    model.load_state_dict(state, strict=True)
    return model


def _mismatch(model: nn.Module, state: Any) -> str:
    """What keeps ``state`` from loading into ``model`` ("" when it fits)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    resized = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if resized:
        parts.append(f"{len(resized)} size mismatches (first: {resized[0]})")
    return "; ".join(parts)


def _few(keys: list[str], shown: int = 3) -> str:
    more = f", … {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
