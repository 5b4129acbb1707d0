"""A standardized ridge regression that saves as plain JSON (never pickle).

Loading a model file must not run code, so the learned forecaster's model is a handful of
numbers: feature names, their means and standard deviations, the coefficients and the
intercept, plus free-form provenance (``trained_on``, cutoffs). Loading checks every field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ForecasterError
from .validate import check_model_header

FORMAT = "forecastprune-ridge"
VERSION = 1
#: a feature whose spread is below this share of its magnitude (at least 1) counts as constant
RELATIVE_SPREAD = 1e-9


@dataclass(frozen=True)
class RidgeModel:
    """``y ≈ intercept + Σ coef_j · (x_j − mean_j) / std_j``.

    Attributes:
        features: the feature names, in column order.
        mean, std: per-feature standardization.
        coef: per-feature coefficients (standardized units).
        intercept: the mean target.
        alpha: the ridge penalty it was fitted with.
        info: provenance (JSON-serializable), e.g. the runs it was trained on.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    intercept: float
    alpha: float
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        features: tuple[str, ...],
        alpha: float = 1.0,
        info: dict[str, Any] | None = None,
    ) -> RidgeModel:
        """Fit on (N, F) features and (N,) targets; the penalty is ``alpha`` × N (so it does
        not fade as runs are added)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or x.shape != (len(y), len(features)) or len(y) == 0:
            raise ForecasterError(
                f"ridge needs (N, {len(features)}) features and (N,) targets with N > 0; got "
                f"{x.shape} and {y.shape}"
            )
        mean, std = x.mean(axis=0), x.std(axis=0)
        # a feature constant up to rounding (global_ridge's horizon_ratio: the backtests match
        # the real ratio, so its spread is ~1e-15) would be blown up by ~1e15 and swamp every
        # prediction; below RELATIVE_SPREAD of its size it is constant and takes no part
        varying = std > RELATIVE_SPREAD * np.maximum(np.abs(mean), 1.0)
        std = np.where(varying, std, 1.0)
        z = np.where(varying, (x - mean) / std, 0.0)
        gram = z.T @ z + alpha * len(y) * np.eye(z.shape[1])
        # least squares, not solve: with alpha = 0 a constant feature makes the system singular
        coef = np.linalg.lstsq(gram, z.T @ (y - y.mean()), rcond=None)[0]
        coef = np.where(varying, coef, 0.0)  # a constant feature says nothing: no weight at all
        return cls(tuple(features), mean, std, coef, float(y.mean()), float(alpha), info or {})

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N,) predictions for (N, F) features."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ForecasterError(
                f"this model takes {len(self.features)} features {list(self.features)}; got an "
                f"array of shape {x.shape}"
            )
        return self.intercept + ((x - self.mean) / self.std) @ self.coef

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "alpha": self.alpha,
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (atomically)."""
        from .._util import atomic_write_bytes

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())
        return path

    @classmethod
    def load(cls, path: str | Path, expected: tuple[str, ...] | None = None) -> RidgeModel:
        """Read a model written by :meth:`save`.

        Args:
            path: the JSON file.
            expected: the feature names the caller computes; a model with others is refused.

        Raises:
            ForecasterError: when the file is missing, not such a model, or inconsistent.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
            raise ForecasterError(
                f"cannot read a forecaster model from {path}: {type(exc).__name__}: {exc}; "
                "write one with "
                "`forecastprune fit-forecaster --stores ... --out MODEL.json`"
            ) from None
        return cls.from_json(data, str(path), expected)

    @classmethod
    def from_json(
        cls, data: Any, source: str = "model", expected: tuple[str, ...] | None = None
    ) -> RidgeModel:
        check_model_header(data, source, FORMAT, VERSION)
        features = tuple(str(f) for f in data.get("features", []))
        arrays = [_vector(data, key, len(features), source) for key in ("mean", "std", "coef")]
        if expected is not None and features != tuple(expected):
            raise ForecasterError(
                f"{source} was fitted on features {list(features)}; this release computes "
                f"{list(expected)}. Refit it with `forecastprune fit-forecaster`"
            )
        scalars = [data.get("intercept"), data.get("alpha")]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in scalars):
            raise ForecasterError(f"{source}: intercept and alpha must be finite numbers")
        if np.any(arrays[1] <= 0):
            raise ForecasterError(f"{source}: std entries must be positive")
        return cls(
            features, *arrays, float(scalars[0]), float(scalars[1]), dict(data.get("info") or {})
        )


def _vector(data: dict[str, Any], key: str, size: int, source: str) -> np.ndarray:
    values = data.get(key)
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    ):
        raise ForecasterError(f"{source}: {key!r} must be a list of {size} numbers")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ForecasterError(f"{source}: {key!r} holds NaN or infinite values")
    return array
