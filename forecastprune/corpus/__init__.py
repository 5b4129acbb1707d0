"""The trajectory corpus: real sparse-training runs as diverse as users' training.

The suite (``forecastprune/data/suite``) is one recipe; forecasters fitted or tuned on it
fail on others. The corpus varies what users vary — optimizer, LR schedule, γ init, L1
strength, width, architecture (the zoo, torchvision's nets, ultralytics' detectors) and task
(digits, generated shapes, generated detection) — in **families** (architecture × recipe), so
forecasters can be judged on families they never saw.

* :mod:`.table` — every setting, in one table; the families and groups;
* :mod:`.build` — :func:`build_corpus` makes the missing runs of a corpus folder (resumable,
  atomic, several at once) — what ``forecastprune benchmark --corpus`` runs;
* :mod:`.make` — one run, installed atomically;
* :mod:`.detection` — the ultralytics runs (the torchvision nets are the zoo's
  ``tv-*`` models, :mod:`forecastprune.zoo.torchvision_small`).

``scripts/make_corpus.py`` is the command-line wrapper used to make the corpus for the docs.
"""

from __future__ import annotations

from .build import BuildReport, build_corpus, default_cache, read_manifest
from .table import GROUPS, HELD_OUT, SHIPPED, CorpusRun, corpus_runs, families, select_families

__all__ = [
    "GROUPS",
    "HELD_OUT",
    "SHIPPED",
    "BuildReport",
    "CorpusRun",
    "build_corpus",
    "corpus_runs",
    "default_cache",
    "families",
    "read_manifest",
    "select_families",
]
