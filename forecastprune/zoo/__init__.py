"""Demo model zoo and the digits data.

Models are built by name, timm-style: ``build_model("darknet", width=0.5, gamma_init=0.5)``.
The registry maps each name to ``"module:builder"`` inside this package and imports the module
only when that model is built, so listing models never imports torch-heavy code. Extra builders
can be added with :func:`register_model`; names are unique and an unknown name is answered with
the valid ones and the closest match.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from .._util import closest
from ..errors import ConfigError
from .data import DigitsSplit, load_digits_split, make_loaders

Builder = Callable[..., nn.Module]

#: model name -> "module:builder" (relative to this package) or a registered callable
_MODELS: dict[str, str | Builder] = {
    "vgg": "vgg:build_vgg",
    "resnet": "resnet:build_resnet",
    "darknet": "darknet:build_darknet",
    "yolov3": "yolov3:build_yolov3",
    "mobilenet": "mobilenet:build_mobilenet",
    "cnn1d": "cnn1d:build_cnn1d",
    # torchvision's nets adapted to small inputs (the corpus trains them; needs torchvision)
    "tv-resnet18": "torchvision_small:build_tv_resnet18",
    "tv-mobilenet-v2": "torchvision_small:build_tv_mobilenet_v2",
    "tv-vgg11": "torchvision_small:build_tv_vgg11",
}

__all__ = [
    "DigitsSplit",
    "build_model",
    "get_builder",
    "list_models",
    "load_digits_split",
    "make_loaders",
    "register_model",
]


def register_model(name: str, builder: Builder | None = None, *, override: bool = False) -> Any:
    """Register a model builder under ``name``; usable as a decorator.

    Args:
        name: the model name used by :func:`build_model` and ``forecastprune record --model``.
        builder: a callable returning an ``nn.Module``; omit it to use this as a decorator.
        override: allow replacing an existing entry.

    Returns:
        The builder (or, without one, a decorator that registers and returns it).

    Raises:
        ConfigError: if the name is taken and ``override`` is false.
    """

    def register(fn: Builder) -> Builder:
        if name in _MODELS and not override:
            raise ConfigError(
                f"a model named {name!r} is already registered; pick another name or pass "
                "override=True"
            )
        _MODELS[name] = fn
        return fn

    return register if builder is None else register(builder)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by a shell-style ``pattern``."""
    names = sorted(_MODELS)
    return names if pattern is None else fnmatch.filter(names, pattern)


def get_builder(name: str) -> Builder:
    """The builder function registered under ``name``.

    Raises:
        ConfigError: on an unknown name, listing the valid names and the closest match.
    """
    target = _MODELS.get(name)
    if target is None:
        raise ConfigError(
            f"unknown model {name!r}.{closest(name, _MODELS)} Valid names: {list_models()}"
        )
    if callable(target):
        return target
    module_name, attribute = target.split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, attribute)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        **kwargs: the builder's keyword arguments (e.g. ``widths``, ``width``, ``gamma_init``).

    Returns:
        A freshly initialised model.

    Raises:
        ConfigError: on an unknown name or keyword arguments the builder does not take.
    """
    builder = get_builder(name)
    try:
        inspect.signature(builder).bind(**kwargs)
    except TypeError as exc:
        accepted = list(inspect.signature(builder).parameters)
        raise ConfigError(
            f"model {name!r} does not accept {sorted(kwargs)}: {exc}; its options are {accepted}"
        ) from None
    return builder(**kwargs)
