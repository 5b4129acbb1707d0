"""A gradient-boosted ranking model over channel and layer features, saved with skops.

The ``learned_gbr`` forecaster's model: scikit-learn's histogram gradient boosting, fitted on
recorded runs to predict each channel's final percentile (:func:`.features.rank_target`) from
:func:`.features.ranking_features`. Trees do what the ridge cannot: a volatile channel means
"rises" below the cut and "falls" above it, and a layer's standing matters more late than early.

Persistence never unpickles: the file is written with ``skops.io``, and loading trusts exactly
the types a fitted regressor contains (:data:`TRUSTED_TYPES`) — a file that asks for any other
type is refused before anything in it is built. The one such type, scikit-learn's tree, is
walked without bounds checks, so every tree is proven safe (:mod:`.tree_checks`) before use.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write_bytes
from ..errors import ForecasterError
from .features import RANK_TARGETS
from .tree_checks import check_estimator
from .validate import check_model_header

FORMAT = "forecastprune-gbr"
VERSION = 1
#: the only non-default types a saved model may contain (the fitted trees)
TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)
#: fixed before the suite's held-out runs were scored (docs/suite.md); deterministic fits
DEFAULT_PARAMS: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "early_stopping": False,
    "random_state": 0,
}


@dataclass(frozen=True)
class BoostedModel:
    """A fitted regressor plus the feature names it expects and where it came from.

    Attributes:
        estimator: the fitted ``HistGradientBoostingRegressor``.
        features: the feature names, in column order.
        info: provenance (JSON-like), e.g. the runs it was trained on.
    """

    estimator: Any
    features: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        features: tuple[str, ...],
        info: dict[str, Any] | None = None,
        sample_weight: np.ndarray | None = None,
        **params: Any,
    ) -> BoostedModel:
        """Fit on (N, F) features and (N,) targets, each example weighed by ``sample_weight``
        (default: alike); ``params`` override :data:`DEFAULT_PARAMS`."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or x.shape != (len(y), len(features)) or len(y) == 0:
            raise ForecasterError(
                f"gradient boosting needs (N, {len(features)}) features and (N,) targets with "
                f"N > 0; got {x.shape} and {y.shape}"
            )
        if sample_weight is not None and np.shape(sample_weight) != (len(y),):
            raise ForecasterError(
                f"gradient boosting needs one weight per example ({len(y)}); got "
                f"{np.shape(sample_weight)}"
            )
        estimator = HistGradientBoostingRegressor(**{**DEFAULT_PARAMS, **params})
        estimator.fit(x, y, sample_weight=sample_weight)
        return cls(estimator, tuple(features), dict(info or {}))

    @property
    def target(self) -> str:
        """What the model predicts (one of :data:`.features.RANK_TARGETS`); models saved
        before the target was recorded predict the final percentile."""
        return str(self.info.get("target", RANK_TARGETS[0]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N,) predictions for (N, F) features, on one thread: the trees' OpenMP threads cost
        seconds of spin-up on a busy machine (measured: 2.4 s vs 0.03 s for 448 channels while
        training ran beside it) and buy nothing at a few thousand rows."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return np.asarray(self.estimator.predict(np.asarray(x, dtype=np.float64)))

    def save(self, path: str | Path) -> Path:
        """Write the model atomically as a skops file (creating its folder, as ridge models)."""
        import skops.io as sio

        payload = {
            "format": FORMAT,
            "version": VERSION,
            "features": list(self.features),
            "info": self.info,
            "estimator": self.estimator,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, sio.dumps(payload))
        return path

    @classmethod
    def load(cls, path: str | Path, expected: tuple[str, ...]) -> BoostedModel:
        """Read a model written by :meth:`save`, refusing files that are not one.

        Raises:
            ForecasterError: on a missing or unreadable file, a type outside
                :data:`TRUSTED_TYPES`, another format or version, or features other than
                ``expected``.
        """
        import skops.io as sio

        path = Path(path)
        try:
            data = path.read_bytes()
            if not data:  # skops would say "Exactly one of data or file should be passed"
                raise ValueError("the file is empty")
            untrusted = sio.get_untrusted_types(data=data)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:  # not a skops file
            raise ForecasterError(f"cannot read gradient-boosting model {path}: {exc}") from exc
        refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if refused:
            raise ForecasterError(
                f"{path} asks to build types a gradient-boosting model does not contain "
                f"({', '.join(refused)}); refusing to load it. Refit it with "
                "`forecastprune fit-forecaster --kind gbr`"
            )
        try:
            payload = sio.loads(data, trusted=list(untrusted))
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise ForecasterError(
                f"cannot read gradient-boosting model {path}: {type(exc).__name__}: {exc}"
            ) from exc
        return cls._checked(payload, path, expected)

    @classmethod
    def _checked(cls, payload: Any, path: Path, expected: tuple[str, ...]) -> BoostedModel:
        check_model_header(payload, str(path), FORMAT, VERSION)
        features = tuple(payload.get("features", ()))
        if features != tuple(expected):
            raise ForecasterError(
                f"{path} was fitted on features {list(features)}; this forecastprune computes "
                f"{list(expected)}. Refit it with `forecastprune fit-forecaster --kind gbr`"
            )
        estimator = payload.get("estimator")
        check_estimator(estimator, len(features), str(path))
        model = cls(estimator, features, dict(payload.get("info") or {}))
        if model.target not in RANK_TARGETS:
            raise ForecasterError(
                f"{path} says it predicts {model.target!r}; this forecastprune reads models "
                f"of {list(RANK_TARGETS)}. Refit it with `forecastprune fit-forecaster --kind gbr`"
            )
        return model
