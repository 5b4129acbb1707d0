"""Forecaster tags: the one place a forecaster declares what it can do and what it needs.

Tags follow sktime: a class declares ``_tags`` (merged along the MRO, the subclass winning) and
an instance may override them in ``__init__`` with ``self.set_tags(...)`` when a capability
depends on a hyper-parameter (``sma(window=w)`` reads only the last ``w`` snapshots). Callers
read them with ``forecaster.get_tag(name)``; nothing else describes a capability.

=====================  ============  ====================================================
tag                    type          meaning
=====================  ============  ====================================================
``needs_clock``        bool          ``fit`` must get a clock (steps → time); true exactly
                                     when the forecaster extrapolates over cumulative LR
``uses_clock``         bool          ``fit`` uses a clock when the run has one and works
                                     without (``auto``: backtest horizons in LR time)
``time_axis_param``    bool          the forecaster has a ``time_axis`` hyper-parameter
``vectorized``         bool          fit/predict are batched over channels (no Python loop
                                     per channel), so 100,000 channels are cheap
``supports_interval``  bool          ``predict_interval`` works
``min_history``        int ≥ 1       the fewest snapshots ``fit`` accepts
``history_window``     int or None   ``fit`` reads only the last N snapshots (N ≥
                                     ``min_history``); None: it reads the whole history
``history_grid``       int or None   a long history may be resampled evenly (in the
                                     forecaster's time coordinate) to at most N snapshots
                                     before ``fit``; None: every snapshot is needed
``uses_layout``        bool          the forecaster reads which BN layer each channel
                                     belongs to; callers that know the run's layout hand it
                                     over with :func:`forecastprune.predict.attach_layout`
=====================  ============  ====================================================

``history_window`` and ``history_grid`` let the prediction path read a long store without
loading it: ``naive`` reads one row, ``sma(window=w)`` w rows, and ARIMA a bounded grid.
"""

from __future__ import annotations

from typing import Any

from ..errors import ForecasterError

#: tag name → (accepted types, one-line meaning); the defaults live on ``Forecaster._tags``
TAGS: dict[str, tuple[tuple[type, ...], str]] = {
    "needs_clock": ((bool,), "fit must get a clock mapping steps to time (time_axis='lr')"),
    "uses_clock": ((bool,), "fit uses a clock when one exists and works without"),
    "time_axis_param": ((bool,), "the forecaster has a time_axis hyper-parameter"),
    "vectorized": ((bool,), "fit/predict are batched over channels"),
    "supports_interval": ((bool,), "predict_interval works"),
    "min_history": ((int,), "the fewest snapshots fit accepts (>= 1)"),
    "history_window": ((int, type(None)), "fit reads only the last N snapshots; None: all"),
    "history_grid": ((int, type(None)), "a long history may be resampled evenly to N rows"),
    "uses_layout": ((bool,), "the forecaster reads each channel's BN layer (attach_layout)"),
}


def check_tag_names(names: Any, owner: str) -> None:
    """Raise for any name that is not a known tag.

    Raises:
        ForecasterError: naming the unknown tags and listing the valid ones.
    """
    unknown = sorted(set(names) - set(TAGS))
    if unknown:
        raise ForecasterError(
            f"{owner}: unknown forecaster tag(s) {unknown}; valid tags: {sorted(TAGS)}"
        )


def tag_problems(tags: dict[str, Any]) -> list[str]:
    """What is wrong with a complete set of tags (empty when they are valid)."""
    problems = [f"unknown tag {name!r}" for name in sorted(set(tags) - set(TAGS))]
    for name, (types, meaning) in TAGS.items():
        if name not in tags:
            problems.append(f"tag {name!r} is missing ({meaning})")
            continue
        value = tags[name]
        # bool is an int: accept it only where bool is meant.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            problems.append(f"tag {name!r} must be {expected}; got {value!r}")
    if problems:
        return problems
    if tags["min_history"] < 1:
        problems.append(f"tag 'min_history' must be >= 1; got {tags['min_history']}")
    grid = tags["history_grid"]
    if grid is not None and grid < max(2, tags["min_history"]):
        problems.append(
            f"tag 'history_grid' ({grid}) must leave at least 2 and min_history "
            f"({tags['min_history']}) snapshots"
        )
    window = tags["history_window"]
    if window is not None and window < tags["min_history"]:
        problems.append(
            f"tag 'history_window' ({window}) is below 'min_history' ({tags['min_history']}): "
            "a forecaster cannot read fewer snapshots than it needs"
        )
    return problems
