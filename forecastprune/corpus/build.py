"""A corpus folder: made in part or whole, resumable, readable as a suite folder.

The folder holds one ``NAME.fpstore`` per made run, ``corpus.json`` (each run's family,
settings, accuracy, size and generation time, plus the held-out families) and ``suite.json``
(the held-out runs), so ``forecastprune benchmark --suite DIR`` and
``benchmarks/family_out.py --corpus DIR`` read it. A run counts as made when its store and its
``corpus.json`` entry both exist; :func:`build_corpus` makes the others and rewrites the
manifests atomically after each run, so a stopped build loses at most the runs in flight.
One build at a time per folder (a lock on the folder says so).

The default folder is the user's cache: ``$FORECASTPRUNE_CACHE/corpus``, else
``$XDG_CACHE_HOME/forecastprune/corpus``, else ``~/.cache/forecastprune/corpus``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, StoreError
from .make import STAGING, make_run
from .table import GROUPS, HELD_OUT, CorpusRun, Group, corpus_runs

MANIFEST = "corpus.json"
SUITE_MANIFEST = "suite.json"
#: the environment variable naming the cache root
CACHE_ENV = "FORECASTPRUNE_CACHE"


def default_cache() -> Path:
    """Where ``forecastprune benchmark --corpus`` keeps the corpus unless told otherwise."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "corpus"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "forecastprune" / "corpus"


@dataclass
class BuildReport:
    """What :func:`build_corpus` did: runs made now, found made, and skipped (with why)."""

    made: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def available(self) -> list[str]:
        """The chosen runs the folder now holds."""
        return sorted(self.made + self.cached)


def read_manifest(out: Path) -> dict[str, Any]:
    """The folder's ``corpus.json`` (an empty one before the first run)."""
    path = out / MANIFEST
    if not path.exists():
        return {"runs": {}}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path} is unreadable ({exc}); delete it to rebuild the corpus manifest"
        ) from None


def write_manifests(out: Path, manifest: dict[str, Any], held_out: Sequence[str]) -> None:
    """``corpus.json`` and ``suite.json`` (the held-out runs), each written atomically."""
    manifest["held_out_families"] = list(held_out)
    manifest["about"] = (
        "forecastprune's trajectory corpus (forecastprune.corpus); families are architecture "
        "x recipe; held-out families take no part in any tuning"
    )
    held = sorted(n for n, r in manifest["runs"].items() if r["family"] in held_out)
    suite = {"held_out": held, "about": f"runs of the held-out families {', '.join(held_out)}"}
    for name, data in ((MANIFEST, manifest), (SUITE_MANIFEST, suite)):
        tmp = out / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, out / name)


def chosen_runs(families: Sequence[str] | None) -> list[CorpusRun]:
    """The table's runs of ``families`` (all when None), in table order.

    Raises:
        ConfigError: on a name that is not a family of the table.
    """
    runs = corpus_runs()
    unknown = sorted(set(families or ()) - {r.family for r in runs})
    if unknown:
        raise ConfigError(
            f"not families of the corpus table: {unknown}; name families such as "
            f"{runs[0].family!r}, or pass groups and patterns through select_families()"
        )
    return [r for r in runs if families is None or r.family in families]


def build_corpus(
    out: str | Path,
    families: Sequence[str] | None = None,
    *,
    jobs: int = 1,
    limit: int | None = None,
    held_out: Sequence[str] = HELD_OUT,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> BuildReport:
    """Make the runs of ``families`` that ``out`` does not hold yet.

    Args:
        out: the corpus folder (created).
        families: families of the table (:func:`~forecastprune.corpus.table.select_families`);
            None: every one.
        jobs: runs made at once, each in its own process on one thread.
        limit: make at most this many runs now (the rest on a later call).
        held_out: the families the manifests mark as held out.
        progress: show a progress bar over the runs.
        echo: where one-line notes go (skipped families, each run made).

    Returns:
        The runs made now, found made, and skipped.

    Raises:
        ConfigError: on ``jobs`` below 1, or when another build holds the folder.
    """
    from tqdm.auto import tqdm

    from ..store.lock import WriterLock

    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1; got {jobs}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        lock = WriterLock.acquire(out)
    except StoreError:
        raise ConfigError(
            f"another process is building the corpus in {out}; wait for it or pass another folder"
        ) from None
    try:
        shutil.rmtree(out / STAGING, ignore_errors=True)  # work folders of stopped builds
        manifest = read_manifest(out)
        report = BuildReport()
        todo = _pending(out, manifest, chosen_runs(families), report, echo)[:limit]
        bar = tqdm(total=len(todo), disable=not progress, desc="corpus", unit="run")
        try:
            for run, entry in _made(todo, out, jobs):
                manifest["runs"][run.name] = entry
                write_manifests(out, manifest, held_out)  # a stop loses nothing made
                report.made.append(run.name)
                bar.update(1)
                bar.set_postfix_str(f"{run.name} {entry['seconds']:.0f} s")
        finally:
            bar.close()
        if not (out / MANIFEST).exists():
            write_manifests(out, manifest, held_out)
        shutil.rmtree(out / STAGING, ignore_errors=True)
        return report
    finally:
        lock.release()


def _pending(
    out: Path,
    manifest: dict[str, Any],
    runs: list[CorpusRun],
    report: BuildReport,
    echo: Callable[[str], None],
) -> list[CorpusRun]:
    """The runs still to make; fills ``report.cached`` and ``report.skipped``."""
    todo = []
    why_not = {group.name: why_not_here(group) for group in GROUPS}
    skipped: dict[str, set[str]] = {}  # reason -> families
    for run in runs:
        if run.name in manifest["runs"] and (out / f"{run.name}.fpstore").is_dir():
            report.cached.append(run.name)
        elif why_not[run.group]:
            report.skipped[run.name] = why_not[run.group]
            skipped.setdefault(why_not[run.group], set()).add(run.family)
        else:
            todo.append(run)
    for reason, fams in skipped.items():
        echo(f"skipping {', '.join(sorted(fams))}: {reason}")
    return todo


def why_not_here(group: Group) -> str | None:
    """Why ``group``'s runs cannot be made here: a missing optional package (None: they can)."""
    if group.needs is None or importlib.util.find_spec(group.needs[0]) is not None:
        return None
    return f"{group.needs[0]} is not installed ({group.needs[1]})"


def _made(todo: list[CorpusRun], out: Path, jobs: int):
    """(run, manifest entry) for each run as it is made; in this process when ``jobs`` is 1."""
    if jobs == 1 or len(todo) <= 1:
        for run in todo:
            yield run, make_run(run, out)
        return
    with ProcessPoolExecutor(min(jobs, len(todo))) as pool:
        yield from zip(todo, pool.map(make_run, todo, [out] * len(todo)))
