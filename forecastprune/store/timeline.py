"""A store's timeline: how long the recorded run was planned to be.

Every cutoff and prune point that is a fraction of the run (:class:`~forecastprune.runpoint.
RunPoint`) is a fraction of this length, whoever reads the store — ``compare``, ``forecast``,
``prune`` or the learned forecasters' training examples.
"""

from __future__ import annotations

import warnings
from typing import Any


def run_length(store: Any) -> int:
    """The run's length in steps: metadata ``total_steps`` if valid, else the last snapshot.

    A ``total_steps`` below the last recorded step cannot be the run's plan (the recording went
    further); the last snapshot is used instead, with a warning.
    """
    total = store.metadata.get("total_steps")
    last = int(store.steps[-1]) if len(store.steps) else 0
    if isinstance(total, int) and not isinstance(total, bool) and total > 0:
        if total < last:
            warnings.warn(
                f"store {store.path}: metadata total_steps {total} is smaller than the last "
                f"recorded step {last}; using {last} as the run's length. Fix the metadata "
                "(`store import --metadata total_steps=N` on an export) to silence this",
                UserWarning,
                stacklevel=2,
            )
            return last
        return total
    return last
