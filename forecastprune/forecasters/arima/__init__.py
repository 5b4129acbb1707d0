"""Per-channel ARIMA: the registered forecaster and its two fitting backends.

- :mod:`.forecaster` — :class:`ArimaForecaster` (``arima``), the registry entry;
- :mod:`.hannan_rissanen` — the default backend: Hannan–Rissanen over all channels at once in
  numpy, polished by :mod:`.css_refine` (Levenberg–Marquardt on the conditional sum of squares)
  with roots kept admissible by :mod:`.roots`; :mod:`.companion` forecasts the fit;
- :mod:`.statsmodels_backend` — statsmodels' exact-likelihood fits, one channel at a time (the
  reference the batched backend is benchmarked against).
"""

from __future__ import annotations

from .forecaster import ArimaForecaster

__all__ = ["ArimaForecaster"]
