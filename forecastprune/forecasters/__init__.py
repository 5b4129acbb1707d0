"""Forecasters: a γ history in, each channel's predicted γ at a target step out.

Importing this package registers the built-ins. Look forecasters up by name or spec string::

    from forecastprune.forecasters import get_forecaster
    forecaster = get_forecaster("linear(window=8, damped=0.9)")
    predicted = forecaster.fit(steps, np.abs(values)).predict(target_step)
"""

from __future__ import annotations

from .base import Forecaster, TimeMap
from .plugin_loading import PluginWarning, load_plugins
from .registry import (
    ForecasterInfo,
    broken_plugins,
    get_forecaster,
    get_forecaster_class,
    list_forecasters,
    register_forecaster,
    register_prefix,
)
from .spec import format_spec, parse_spec

# Imported for their registrations.
from . import adapters, arima, ema, linear, naive, sma  # noqa: F401  isort: skip

__all__ = [
    "Forecaster",
    "ForecasterInfo",
    "PluginWarning",
    "TimeMap",
    "broken_plugins",
    "format_spec",
    "get_forecaster",
    "get_forecaster_class",
    "list_forecasters",
    "load_plugins",
    "parse_spec",
    "register_forecaster",
    "register_prefix",
]
