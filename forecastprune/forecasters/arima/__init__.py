"""Per-channel ARIMA: the registered forecaster and its two fitting backends.

- :mod:`.forecaster` — :class:`ArimaForecaster` (``arima``), the registry entry;
- :mod:`.batched` — Hannan–Rissanen plus Levenberg–Marquardt refinement over all channels at
  once in numpy (the default backend);
- :mod:`.statsmodels_backend` — statsmodels' exact-likelihood fits, one channel at a time (the
  reference the batched backend is benchmarked against).
"""

from __future__ import annotations

from .forecaster import ArimaForecaster

__all__ = ["ArimaForecaster"]
