"""The γ trajectory store: record, persist, read and exchange per-channel BN γ over training.

The store keeps the raw **signed** γ; consumers take ``|γ|``. See :mod:`.store` for the API,
:mod:`.format` for the crash-safe on-disk format, :mod:`.npz` and :mod:`.checkpoints` for
importing and exporting trajectories.
"""

from __future__ import annotations

from .bundled import BUNDLED_STORE_NAME, bundled_store_path
from .checkpoints import store_from_checkpoints
from .format import FORMAT_VERSION
from .npz import export_npz, import_npz
from .store import GammaTrajectoryStore

__all__ = [
    "BUNDLED_STORE_NAME",
    "FORMAT_VERSION",
    "GammaTrajectoryStore",
    "bundled_store_path",
    "export_npz",
    "import_npz",
    "store_from_checkpoints",
]
