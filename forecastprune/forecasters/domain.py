"""Where a learned model's features were seen: the check that lets it say "I do not know".

A regression fitted on some runs extrapolates freely on a run whose features lie elsewhere —
e.g. a model fitted on SGD runs with γ initialised at 0.5, applied to an AdamW run at γ 1.0,
reversed the ranking of the final |γ| instead of sharpening it. So a fitted model keeps its
**domain**: per feature, the low and high quantiles (:data:`QUANTILE`) of its training rows.
Before predicting, the learned forecasters measure the share of the run's channels with any
feature outside that box (widened by :data:`MARGIN` of each feature's range); past
:data:`LIMIT` they forecast ``naive`` instead and say so in their note (``compare`` shows it).

The domain travels inside the model file's ``info`` (plain lists of numbers under ``"domain"``:
a ridge model's JSON, a gradient-boosting model's skops payload), so a model file stays one
file and loading it never runs code. A model saved without one is applied unchecked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ForecasterError

#: the domain is the box between these quantiles of the training rows (and 1 − it)
QUANTILE = 0.005
#: the box is widened by this share of each feature's range on both sides
MARGIN = 0.1
#: past this share of channels outside, a learned forecaster falls back to naive
LIMIT = 0.3
#: the key in a model's ``info``
KEY = "domain"


@dataclass(frozen=True)
class Domain:
    """The box of feature values a model was fitted on.

    Attributes:
        features: the feature names, in column order.
        low, high: (F,) the box's corners, margin included.
    """

    features: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, features: tuple[str, ...], whole: tuple[str, ...] = ()) -> Domain:
        """The domain of (N, F) training rows; the features in ``whole`` span their full
        training range instead of the quantile box: a run-level feature is one value repeated
        over a run's channels, so the quantiles of the rows would cut off every run with
        fewer than 0.5 % of the rows, and a small run like them would be called unknown."""
        x = np.asarray(x, dtype=np.float64)
        low, high = np.quantile(x, [QUANTILE, 1.0 - QUANTILE], axis=0)
        full = [features.index(name) for name in whole]
        low[full], high[full] = x[:, full].min(axis=0), x[:, full].max(axis=0)
        # a feature constant in training (global_ridge's horizon ratio) still matches itself
        # after rounding
        pad = MARGIN * (high - low) + 1e-9 * np.maximum(np.abs(high), 1.0)
        return cls(tuple(features), low - pad, high + pad)

    def outside(self, x: np.ndarray) -> np.ndarray:
        """(N,) True for rows with any feature outside the box."""
        x = np.asarray(x, dtype=np.float64)
        return np.any((x < self.low) | (x > self.high), axis=1)

    def check(self, x: np.ndarray, limit: float = LIMIT) -> Verdict:
        """How much of a run's (C, F) channel features lies outside, and which feature most."""
        out = (x < self.low) | (x > self.high)
        share = float(np.any(out, axis=1).mean()) if len(x) else 0.0
        worst = self.features[int(np.argmax(out.mean(axis=0)))] if out.any() else ""
        return Verdict(share, limit, worst)

    def to_info(self) -> dict[str, Any]:
        """The JSON-able form stored under ``info["domain"]``."""
        return {
            "features": list(self.features),
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "quantile": QUANTILE,
            "margin": MARGIN,
        }

    @classmethod
    def from_info(
        cls, info: dict[str, Any], source: str, features: tuple[str, ...]
    ) -> Domain | None:
        """The domain a model's ``info`` carries (None when it carries none).

        Raises:
            ForecasterError: when the entry is malformed or names other features.
        """
        data = info.get(KEY)
        if data is None:
            return None
        if not isinstance(data, dict) or tuple(data.get("features", ())) != tuple(features):
            raise ForecasterError(
                f"{source}: info['domain'] must name the model's features {list(features)}; "
                "refit the model with `forecastprune fit-forecaster`"
            )
        bounds = [data.get("low"), data.get("high")]
        if not all(
            isinstance(b, list)
            and len(b) == len(features)
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in b)
            for b in bounds
        ):
            raise ForecasterError(
                f"{source}: info['domain'] low/high must be {len(features)} finite numbers each"
            )
        return cls(tuple(features), np.asarray(bounds[0], float), np.asarray(bounds[1], float))


@dataclass(frozen=True)
class Verdict:
    """The outcome of a domain check.

    Attributes:
        share: the share of channels with a feature outside the domain.
        limit: the share past which the model is not used.
        worst: the feature most often outside ("" when none is).
    """

    share: float
    limit: float
    worst: str

    @property
    def inside(self) -> bool:
        return self.share <= self.limit

    def describe(self, name: str) -> str:
        """A note for ``compare``, e.g. ``naive: 64% of channels lie outside the features
        learned was fitted on (most often trend_lr_all; limit 30%)``."""
        if self.inside:
            return (
                f"{name}: {self.share:.0%} of channels outside the features it was fitted "
                f"on (limit {self.limit:.0%})"
            )
        return (
            f"naive: {self.share:.0%} of channels lie outside the features {name} was "
            f"fitted on (most often {self.worst}; limit {self.limit:.0%}), so it does not "
            "forecast this run"
        )
