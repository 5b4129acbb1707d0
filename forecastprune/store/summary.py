"""A JSON-ready summary of a store, shared by :meth:`GammaTrajectoryStore.info` and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .store import GammaTrajectoryStore

#: percentiles of |γ| at the final step reported by ``info()``
PERCENTILES = (5, 25, 50, 75, 95)


def store_info(store: GammaTrajectoryStore) -> dict[str, Any]:
    """Summarize a store without reading more than its last snapshot.

    Args:
        store: an open store.

    Returns:
        A dict with the path, format, layout, snapshot count and step range, size on disk,
        fingerprint, metadata and the percentiles of |γ| at the final step (None when empty).
    """
    steps, lrs = store.steps, store.lrs
    info: dict[str, Any] = {
        "path": str(store.path),
        "format_version": store.format_version,
        "dtype": store.dtype,
        "flush_every": store.flush_every,
        "layers": len(store.layout),
        "channels": store.layout.total,
        "layout": store.layout.to_json(),
        "snapshots": len(store),
        "first_step": int(steps[0]) if len(steps) else None,
        "last_step": int(steps[-1]) if len(steps) else None,
        "lr_recorded": int(np.isfinite(lrs).sum()),
        "size_bytes": directory_size(store.path),
        "fingerprint": store.fingerprint,
        "metadata": store.metadata,
        "final_abs_gamma_percentiles": None,
    }
    if len(store):
        magnitudes = np.abs(store.final()[1])
        values = np.percentile(magnitudes, PERCENTILES)
        info["final_abs_gamma_percentiles"] = {
            f"p{p}": float(v) for p, v in zip(PERCENTILES, values)
        }
    return info


def directory_size(root: Path) -> int:
    """Total bytes of the regular files directly inside ``root``."""
    return sum(entry.stat().st_size for entry in Path(root).iterdir() if entry.is_file())
