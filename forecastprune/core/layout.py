"""The channel layout: ordered BatchNorm layers mapped onto one global channel axis.

Every per-channel array in forecastprune — a γ snapshot, a forecast, a score vector, a prune
mask — has shape ``(..., C)`` where ``C`` is the sum of the channel counts of the recorded BN
layers, concatenated in layout order. The layout is the single source of truth for that mapping,
so the store, the forecasters' consumers and the engine never disagree about which column is
which channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..errors import LayoutError


@dataclass(frozen=True)
class ChannelLayout:
    """Ordered ``(layer_name, channel_count)`` pairs.

    Args:
        layers: the BN layers in order, each as ``(module name, number of channels)``.

    Raises:
        LayoutError: on duplicate names, empty names or non-positive channel counts.
    """

    layers: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        normalized = tuple((str(name), int(size)) for name, size in self.layers)
        object.__setattr__(self, "layers", normalized)
        if not normalized:
            raise LayoutError("a channel layout needs at least one BN layer; got none")
        names = [name for name, _ in normalized]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LayoutError(f"layer names must be unique; duplicated: {duplicates}")
        bad = [(n, s) for n, s in normalized if not n or s <= 0]
        if bad:
            raise LayoutError(
                f"every layer needs a non-empty name and a positive channel count; got {bad}"
            )

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> ChannelLayout:
        """Build a layout from any iterable of ``(name, size)`` pairs."""
        return cls(tuple(pairs))

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> ChannelLayout:
        """Inverse of :meth:`to_json`: a list of ``{"name": ..., "channels": ...}`` objects."""
        try:
            return cls(tuple((item["name"], item["channels"]) for item in data))
        except (TypeError, KeyError) as exc:
            raise LayoutError(
                f"a layout must be a list of {{'name', 'channels'}} objects; got {data!r:.200}"
            ) from exc

    def to_json(self) -> list[dict[str, Any]]:
        """A JSON-ready list of ``{"name": ..., "channels": ...}`` objects."""
        return [{"name": name, "channels": size} for name, size in self.layers]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.layers)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(size for _, size in self.layers)

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start index of each layer on the global channel axis (length L + 1)."""
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.sizes)]))

    @property
    def total(self) -> int:
        """Total channel count C."""
        return self.offsets[-1]

    def __len__(self) -> int:
        return len(self.layers)

    def index(self, name: str) -> int:
        """Position of a layer in the layout."""
        try:
            return self.names.index(name)
        except ValueError:
            raise LayoutError(
                f"no BN layer named {name!r} in this layout; it has {list(self.names)}"
            ) from None

    def slice(self, name: str) -> slice:
        """The global-axis slice of one layer."""
        i = self.index(name)
        return slice(self.offsets[i], self.offsets[i + 1])

    def columns(self, names: Iterable[str]) -> np.ndarray:
        """Global column indices of the given layers, in the order given."""
        parts = [np.arange(self.slice(n).start, self.slice(n).stop) for n in names]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def subset(self, names: Iterable[str]) -> ChannelLayout:
        """A layout of only the given layers, in the order given."""
        return ChannelLayout(tuple((n, self.layers[self.index(n)][1]) for n in names))

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Split an array ``(..., C)`` into one ``(..., n_layer)`` view per layer."""
        self.check_width(values, what="array")
        return {n: values[..., self.slice(n)] for n in self.names}

    def join(self, per_layer: Mapping[str, np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`split`: concatenate per-layer arrays in layout order."""
        missing = [n for n in self.names if n not in per_layer]
        if missing:
            raise LayoutError(f"per-layer arrays are missing layers {missing}")
        parts = [np.asarray(per_layer[n]) for n in self.names]
        for (name, size), part in zip(self.layers, parts):
            if part.shape[-1] != size:
                raise LayoutError(
                    f"layer {name!r} has {size} channels but its array has {part.shape[-1]}"
                )
        return np.concatenate(parts, axis=-1)

    def check_width(self, values: np.ndarray, what: str = "array") -> None:
        """Raise unless the last axis of ``values`` has exactly C entries."""
        width = np.shape(values)[-1] if np.ndim(values) else None
        if width != self.total:
            raise LayoutError(
                f"{what} has {width} channels on its last axis but the layout has {self.total} "
                f"({len(self)} BN layers); pass values recorded for this layout"
            )

    def check_same(self, other: ChannelLayout, what: str = "the other layout") -> None:
        """Raise a readable error naming the first difference between two layouts."""
        if self == other:
            return
        for i, (mine, theirs) in enumerate(zip(self.layers, other.layers)):
            if mine != theirs:
                raise LayoutError(
                    f"layout mismatch at layer {i}: expected {mine[0]!r} with {mine[1]} "
                    f"channels, {what} has {theirs[0]!r} with {theirs[1]}"
                )
        raise LayoutError(
            f"layout mismatch: expected {len(self)} BN layers, {what} has {len(other)}"
        )
