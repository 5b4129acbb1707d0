"""``arima(..., backend="statsmodels")``: every channel fitted by statsmodels' exact ARIMA.

This is the reference the batched backend is measured against: exact Gaussian maximum
likelihood through the Kalman filter, one channel at a time (≈ 50–170 ms per series, so minutes
for a YOLOv3-sized layout; a progress bar shows on a terminal).

statsmodels is noisy and fragile on γ histories: it warns about convergence and
non-stationary starting values on many channels, can raise on an exactly constant series (some
versions divide by zero), and returns NaN parameters on extreme magnitudes. So every warning is
captured and counted by category; exactly constant channels are not sent to statsmodels at all;
every channel whose fit raises or comes back non-finite falls back to its last value (naive)
and is counted by reason; and the totals go to :attr:`StatsmodelsArimaFit.report` and into one
:class:`StatsmodelsFitWarning`.

Each channel is fitted at unit scale — divided by the RMS of its increments, the forecast
multiplied back. ARIMA is scale-equivariant (φ and θ unchanged, σ² scaled), but statsmodels'
optimizer is not: on raw γ increments (variance ≈ 1e-8) it stopped short of the likelihood
maximum on most channels (11 of 100 ARIMA(2,1,1) fits within 0.01 of the best log-likelihood
found, against 92 of 100 at unit scale).

Only the fitted parameters and the series are kept, not statsmodels' result objects (≈ 0.5 MB
each): forecasting rebuilds a channel's model and runs one Kalman filter pass with the stored
parameters, which reproduces statsmodels' own forecast exactly.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm


class StatsmodelsFitWarning(UserWarning):
    """Summary of what statsmodels warned about, and which channels fell back to naive."""


@dataclass(frozen=True)
class StatsmodelsArimaFit:
    """Per-channel statsmodels parameters and the series they were fitted on.

    Attributes:
        y: (n, C) evenly spaced series, as given.
        scale: (C,) what each channel was divided by for fitting (the RMS of its increments).
        params: (C, k) statsmodels parameter vectors; NaN rows for channels that failed.
        order: (p, d, q).
        trend: statsmodels trend argument (``"n"`` or a polynomial list).
        report: ``{"channels", "constant", "failed", "failures": {reason: n},
            "warnings": {category: n}}``; constant and failed channels forecast their last value.
    """

    y: np.ndarray
    scale: np.ndarray
    params: np.ndarray
    order: tuple[int, int, int]
    trend: Any
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def fitted(self) -> np.ndarray:
        """(C,) channels statsmodels fitted (the others forecast their last value)."""
        return (
            ~np.isnan(self.params).any(axis=1)
            if self.params.shape[1]
            else np.zeros(self.params.shape[0], dtype=bool)
        )

    def forecast(self, horizons: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance at each whole horizon, each (len(horizons), C).

        Constant channels, channels that failed to fit and channels whose forecast is not
        finite repeat their last value with zero variance.
        """
        steps = max(max(horizons), 1)
        rows = np.asarray(horizons, dtype=np.int64) - 1
        means = np.repeat(self.y[-1][None, :], len(horizons), axis=0)
        variances = np.zeros_like(means)
        positive = rows >= 0
        fitted = np.flatnonzero(self.fitted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already summarized at fit time
            for channel in tqdm(
                fitted, desc="statsmodels ARIMA forecast", leave=False, disable=None
            ):
                result = self._model(channel).filter(self.params[channel])
                prediction = result.get_forecast(steps=steps)
                scale = self.scale[channel]
                mean = prediction.predicted_mean[rows[positive]] * scale
                variance = prediction.var_pred_mean[rows[positive]] * scale**2
                if np.all(np.isfinite(mean)) and np.all(np.isfinite(variance)):
                    means[positive, channel] = mean
                    variances[positive, channel] = variance
        return means, variances

    def _model(self, channel: int) -> Any:
        from statsmodels.tsa.arima.model import ARIMA

        column = self.y[:, channel] / self.scale[channel]
        return ARIMA(column, order=self.order, trend=self.trend)


def statsmodels_trend(d: int, constant: bool) -> Any:
    """The statsmodels ``trend`` matching an intercept in the d-times differenced series.

    statsmodels puts trends in levels: a drift in the first differences is a linear time trend
    (``[0, 1]``), in second differences a quadratic one; with d = 0 it is the plain ``"c"``.
    """
    return [0] * d + [1] if constant else "n"


def fit_statsmodels(y: np.ndarray, p: int, d: int, q: int, constant: bool) -> StatsmodelsArimaFit:
    """Fit statsmodels' ARIMA(p, d, q) to every column of ``y``, one by one.

    Args:
        y: (n, C) evenly spaced values.
        p: AR order.
        d: differencing order.
        q: MA order.
        constant: include an intercept in the differenced series (a drift when d >= 1).

    Returns:
        The fit, with its report. Emits one :class:`StatsmodelsFitWarning` when statsmodels
        warned or a channel fell back to naive.
    """
    y = np.asarray(y, dtype=np.float64)
    scale = unit_scale(y)
    order, trend = (p, d, q), statsmodels_trend(d, constant)
    fitted: list[np.ndarray | None] = []
    failures: Counter[str] = Counter()
    constant_channels = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for channel in tqdm(
            range(y.shape[1]), desc="statsmodels ARIMA fit", leave=False, disable=None
        ):
            column = y[:, channel]
            if np.ptp(column) == 0.0:  # nothing to fit; statsmodels may divide by zero
                constant_channels += 1
                fitted.append(None)
                continue
            params, failure = _fit_one(column / scale[channel], order, trend)
            if failure is not None:
                failures[failure] += 1
            fitted.append(params)
    report = {
        "channels": int(y.shape[1]),
        "constant": constant_channels,
        "failed": int(sum(failures.values())),
        "failures": dict(failures),
        "warnings": dict(Counter(w.category.__name__ for w in caught)),
    }
    _announce(report, order)
    return StatsmodelsArimaFit(
        y=y, scale=scale, params=_stack(fitted), order=order, trend=trend, report=report
    )


def unit_scale(y: np.ndarray) -> np.ndarray:
    """(C,) RMS of each column's increments; 1 where it is zero or overflows.

    Computed relative to the largest increment so huge but finite series do not overflow.
    """
    if y.shape[0] < 2:
        return np.ones(y.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        diffs = np.diff(y, axis=0)
        peak = np.max(np.abs(diffs), axis=0)
        relative = diffs / np.where(peak > 0, peak, 1.0)
        scale = peak * np.sqrt(np.mean(relative**2, axis=0))
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def _fit_one(
    column: np.ndarray, order: tuple[int, int, int], trend: Any
) -> tuple[np.ndarray | None, str | None]:
    """statsmodels parameters of one channel, or None and why it failed."""
    from statsmodels.tsa.arima.model import ARIMA

    try:
        params = np.asarray(
            ARIMA(column, order=order, trend=trend).fit(cov_type="none").params, dtype=np.float64
        )
    # statsmodels fails in many ways on degenerate series (ZeroDivisionError, LinAlgError,
    # ValueError, ...): any of them means "fall back to naive".
    except Exception as exc:  # noqa: BLE001
        return None, type(exc).__name__
    # On extreme magnitudes statsmodels returns NaN instead of raising.
    if not np.all(np.isfinite(params)):
        return None, "non-finite parameters"
    return params, None


def _stack(fitted: list[np.ndarray | None]) -> np.ndarray:
    width = max((len(row) for row in fitted if row is not None), default=0)
    params = np.full((len(fitted), width), np.nan)
    for channel, row in enumerate(fitted):
        if row is not None:
            params[channel] = row
    return params


def _announce(report: dict[str, Any], order: tuple[int, int, int]) -> None:
    if not report["failed"] and not report["warnings"]:
        return
    warned = ", ".join(f"{n} {name}" for name, n in sorted(report["warnings"].items()))
    failed = ", ".join(f"{n} {name}" for name, n in sorted(report["failures"].items()))
    warnings.warn(
        f"statsmodels ARIMA{order} on {report['channels']} channels: "
        f"{report['failed']} failed and fell back to the last value"
        + (f" (as did {report['constant']} constant ones)" if report["constant"] else "")
        + (f" ({failed})" if failed else "")
        + (f"; warnings: {warned}" if warned else "; no warnings")
        + ". The counts are in fit_report_",
        StatsmodelsFitWarning,
        stacklevel=4,
    )
