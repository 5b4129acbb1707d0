"""The γ trajectory store shipped with the package (a real sparse-training run on digits)."""

from __future__ import annotations

from pathlib import Path

from ..errors import StoreError
from .format import MANIFEST_NAME

BUNDLED_STORE_NAME = "darknet-digits.fpstore"


def bundled_store_path() -> Path:
    """Path of the bundled store ``forecastprune/data/darknet-digits.fpstore``.

    Returns:
        The store directory (open it with ``GammaTrajectoryStore.open``).

    Raises:
        StoreError: if the package was installed without it.
    """
    path = Path(__file__).resolve().parent.parent / "data" / BUNDLED_STORE_NAME
    if not (path / MANIFEST_NAME).is_file():
        raise StoreError(
            f"the bundled store is missing: expected {path}; regenerate it with the command in "
            "the README (`forecastprune record ...`), reinstall forecastprune, or pass a store "
            "path explicitly"
        )
    return path
