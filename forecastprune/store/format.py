"""On-disk format of a γ trajectory store: a directory of ``.npy`` segments plus a JSON manifest.

Layout of a store directory::

    manifest.json               format version, layout, dtype, fingerprint, metadata, segments
    seg-000000-steps.npy        (n,) int64   steps of the first flush
    seg-000000-lrs.npy          (n,) float64 learning rates (NaN where unknown)
    seg-000000-values.npy       (n, C)       raw signed γ (float32, or float16 if chosen)
    seg-000001-...              one triple per flush
    .lock                       held (flock) while a writer has the store open

Why this format rather than zarr or HDF5:

* **No extra dependency.** zarr v3 needs Python >= 3.11 while forecastprune supports 3.10, and
  the format is simple enough that plain numpy covers it.
* **Crash safety by construction.** Segment files are immutable once written. A segment becomes
  part of the store only when the manifest naming it is atomically replaced (write a temp file,
  fsync, ``os.replace``, fsync the directory). A process killed at any instant therefore leaves
  either the old or the new manifest, never a half-written one; a segment written but not yet
  named is an orphan that readers ignore and the next writer deletes.
* **Memory-mapped reads.** ``np.load(..., mmap_mode="r")`` lets a reader touch only the
  segments (rows) and columns it needs, so reading never requires the whole store in RAM.

The format version is an integer; a reader refuses a store written by a newer version.
"""

from __future__ import annotations

import json
import os
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write_bytes
from ..core.layout import ChannelLayout
from ..errors import ForecastPruneError, StoreError

#: Bumped whenever a change would make older readers misread a store.
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
FORMAT_TAG = "forecastprune.gamma-store"
#: value dtypes a store may hold; reads always return float32.
VALUE_DTYPES = ("float32", "float16")
SEGMENT_ARRAYS = ("steps", "lrs", "values")
_SEGMENT_FILE = re.compile(r"^seg-(\d{6})-(steps|lrs|values)\.npy$")
_REQUIRED_KEYS = ("format", "version", "layout", "dtype", "flush_every", "segments")


@dataclass(frozen=True)
class Segment:
    """One committed flush: ``rows`` snapshots covering ``first_step..last_step``."""

    index: int
    rows: int
    first_step: int
    last_step: int

    def file(self, root: Path, array: str) -> Path:
        """Path of one of the segment's arrays (``steps``, ``lrs`` or ``values``)."""
        return root / segment_file_name(self.index, array)

    def to_json(self) -> dict[str, int]:
        return {
            "index": self.index,
            "rows": self.rows,
            "first_step": self.first_step,
            "last_step": self.last_step,
        }


#: snapshots buffered before a segment is committed, unless the writer chooses: each commit costs
#: five fsyncs, so per-row appends at YOLOv3's width run at ~3,700/s with 50-row segments and
#: ~5,400/s with 256 (benchmarks/bench_store.py); a SIGKILL loses at most one segment's worth,
#: SIGTERM/SIGINT in the recorders none
DEFAULT_FLUSH_EVERY = 256


@dataclass
class Manifest:
    """Everything a reader needs to interpret the segment files of a store."""

    layout: ChannelLayout
    dtype: str = "float32"
    flush_every: int = DEFAULT_FLUSH_EVERY
    fingerprint: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    version: int = FORMAT_VERSION

    @property
    def rows(self) -> int:
        """Committed snapshot count."""
        return sum(s.rows for s in self.segments)

    @property
    def next_index(self) -> int:
        """Index for the next segment (one past the highest committed)."""
        return self.segments[-1].index + 1 if self.segments else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_TAG,
            "version": self.version,
            "layout": self.layout.to_json(),
            "dtype": self.dtype,
            "flush_every": self.flush_every,
            "fingerprint": self.fingerprint,
            "metadata": self.metadata,
            "segments": [s.to_json() for s in self.segments],
        }


def segment_file_name(index: int, array: str) -> str:
    """File name of one array of segment ``index``."""
    return f"seg-{index:06d}-{array}.npy"


def json_ready(value: Any, what: str = "metadata") -> Any:
    """Convert numpy scalars/arrays inside ``value`` to plain JSON types, or raise.

    Args:
        value: a mapping / list / scalar to be stored in the manifest.
        what: how to name the value in an error message.

    Returns:
        A structure ``json.dumps`` accepts.

    Raises:
        StoreError: if something in ``value`` has no JSON form.
    """

    def convert(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    try:
        return json.loads(json.dumps(value, default=convert, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{what} must be JSON-serializable (str, numbers, bools, None, lists, dicts); "
            f"{exc}; convert such values to plain types first"
        ) from exc


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Atomically replace the manifest of the store at ``root``."""
    text = json.dumps(manifest.to_json(), indent=1, allow_nan=True)
    atomic_write_bytes(root / MANIFEST_NAME, text.encode("utf-8"))


def read_manifest(root: Path) -> Manifest:
    """Read and validate the manifest of the store at ``root``.

    Raises:
        StoreError: naming the path and the problem if the directory is not a store, the JSON is
            malformed or incomplete, or the store was written by a newer format version.
    """
    path = Path(root) / MANIFEST_NAME
    if not Path(root).exists():
        raise StoreError(f"no γ trajectory store at {root}: the path does not exist")
    if not path.is_file():
        raise StoreError(
            f"{root} is not a γ trajectory store: it has no {MANIFEST_NAME}; "
            "create one with GammaTrajectoryStore.create or `forecastprune record`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"corrupted store manifest {path}: {exc}") from exc
    return _parse_manifest(data, path)


def _parse_manifest(data: Any, path: Path) -> Manifest:
    if not isinstance(data, dict):
        raise StoreError(f"corrupted store manifest {path}: expected a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        raise StoreError(f"corrupted store manifest {path}: missing keys {missing}")
    if data["format"] != FORMAT_TAG:
        raise StoreError(
            f"{path} is not a γ trajectory store manifest: format is {data['format']!r}, "
            f"expected {FORMAT_TAG!r}"
        )
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(f"corrupted store manifest {path}: bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"store {path.parent} has format version {version}, but this forecastprune reads "
            f"versions up to {FORMAT_VERSION}; upgrade forecastprune to read it"
        )
    try:
        layout = ChannelLayout.from_json(data["layout"])
        segments = [_parse_segment(item) for item in data["segments"]]
        manifest = Manifest(
            layout=layout,
            dtype=str(data["dtype"]),
            flush_every=_flush_every(data["flush_every"]),
            fingerprint=None if data.get("fingerprint") is None else str(data["fingerprint"]),
            metadata=dict(data.get("metadata") or {}),
            segments=segments,
            version=version,
        )
    except (ForecastPruneError, TypeError, ValueError, KeyError) as exc:
        raise StoreError(f"corrupted store manifest {path}: {exc}") from exc
    _check_consistent(manifest, path)
    return manifest


#: the largest write buffer a manifest may ask for, in snapshots: readers allocate it too, so a
#: damaged value must not become a multi-gigabyte allocation
MAX_FLUSH_EVERY = 1 << 20


def _flush_every(value: Any) -> int:
    value = _positive_int(value)
    if value > MAX_FLUSH_EVERY:
        raise ValueError(f"flush_every {value} is above the largest buffer, {MAX_FLUSH_EVERY}")
    return value


def _positive_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _parse_segment(item: Mapping[str, Any]) -> Segment:
    index, rows = int(item["index"]), _positive_int(item["rows"])
    if index < 0:
        raise ValueError(f"segment index must be >= 0, got {index}")
    return Segment(index, rows, int(item["first_step"]), int(item["last_step"]))


def _check_consistent(manifest: Manifest, path: Path) -> None:
    if manifest.dtype not in VALUE_DTYPES:
        raise StoreError(
            f"corrupted store manifest {path}: dtype {manifest.dtype!r} is not one of "
            f"{list(VALUE_DTYPES)}"
        )
    previous_index, previous_step = -1, None
    for seg in manifest.segments:
        bad_order = seg.index <= previous_index or seg.first_step > seg.last_step
        overlaps = previous_step is not None and seg.first_step <= previous_step
        if bad_order or overlaps or (seg.rows == 1) != (seg.first_step == seg.last_step):
            raise StoreError(
                f"corrupted store manifest {path}: segment {seg.to_json()} is out of order "
                "or inconsistent with its neighbours"
            )
        previous_index, previous_step = seg.index, seg.last_step


def is_segment_file(name: str) -> bool:
    """Whether ``name`` looks like a segment array file."""
    return _SEGMENT_FILE.match(name) is not None


def orphan_files(root: Path, manifest: Manifest) -> list[Path]:
    """Files a crashed writer left behind: unnamed segments and temp files of the manifest."""
    named = {
        segment_file_name(seg.index, array) for seg in manifest.segments for array in SEGMENT_ARRAYS
    }
    orphans = []
    for entry in Path(root).iterdir():
        stray_segment = is_segment_file(entry.name) and entry.name not in named
        stray_temp = entry.name.startswith(f".{MANIFEST_NAME}.") and entry.name.endswith(".tmp")
        if entry.is_file() and (stray_segment or stray_temp):
            orphans.append(entry)
    return sorted(orphans)


def write_segment(
    root: Path, index: int, steps: np.ndarray, lrs: np.ndarray, values: np.ndarray
) -> Segment:
    """Write (and fsync) the three arrays of one segment; the caller then commits the manifest.

    Args:
        root: store directory.
        index: the new segment's index.
        steps: (n,) int64 strictly increasing steps.
        lrs: (n,) float64 learning rates.
        values: (n, C) values in the store's dtype.

    Returns:
        The segment record to list in the manifest.
    """
    handles = []
    try:
        for array, data in zip(SEGMENT_ARRAYS, (steps, lrs, values)):
            handle = open(root / segment_file_name(index, array), "wb")  # noqa: SIM115
            handles.append(handle)
            np.save(handle, np.ascontiguousarray(data), allow_pickle=False)
            handle.flush()
        # All three written before any fsync: the first one commits the journal transaction
        # that holds all three files, so the others return almost at once (measured: one
        # journal commit per segment instead of three).
        for handle in handles:
            os.fsync(handle.fileno())
    finally:
        for handle in handles:
            handle.close()
    return Segment(index, len(steps), int(steps[0]), int(steps[-1]))


#: what np.load raises for a damaged .npy: a bad header goes through Python's tokenizer and
#: parser, so SyntaxError and tokenize.TokenError join the usual I/O and value errors
NPY_READ_ERRORS = (OSError, ValueError, EOFError, SyntaxError, tokenize.TokenError)


def load_segment_array(root: Path, seg: Segment, array: str, width: int, dtype: str) -> np.ndarray:
    """Memory-map one array of a segment and check it against the manifest.

    Args:
        root: store directory.
        seg: the segment record.
        array: ``steps``, ``lrs`` or ``values``.
        width: the layout's channel count C (for ``values``).
        dtype: the store's value dtype (for ``values``).

    Returns:
        A read-only memory map of the array.

    Raises:
        StoreError: naming the file if it is missing, truncated, or of the wrong shape/dtype.
    """
    path = seg.file(root, array)
    expected_shape = (seg.rows, width) if array == "values" else (seg.rows,)
    expected_dtype = {"steps": "int64", "lrs": "float64", "values": dtype}[array]
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise StoreError(
            f"store segment file {path} is missing; the store is damaged (the manifest lists "
            "it); re-record or re-import the store"
        ) from None
    except NPY_READ_ERRORS as exc:
        raise StoreError(f"store segment file {path} is unreadable or truncated: {exc}") from exc
    if data.shape != expected_shape or data.dtype != np.dtype(expected_dtype):
        raise StoreError(
            f"store segment file {path} has shape {data.shape} and dtype {data.dtype}, but the "
            f"manifest expects {expected_shape} {expected_dtype}; the store is damaged"
        )
    return data
