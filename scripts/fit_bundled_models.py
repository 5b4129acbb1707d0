"""Refit the bundled ``learned`` and ``learned_gbr`` models on the corpus's tuning families.

The held-out families named in the corpus's ``corpus.json`` never take part. How these fits
fare on families they did not see is measured by ``benchmarks/family_out.py --refit`` (the
same fit, once per family left out; docs/corpus.md).

Usage: ``python scripts/fit_bundled_models.py --corpus DIR`` (make DIR with
``scripts/make_corpus.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from forecastprune.forecasters.learned import (
    BUNDLED_GBR_MODEL,
    BUNDLED_MODEL,
    bundled_model_path,
)
from forecastprune.forecasters.training import fit_learned, fit_learned_gbr


def tuning_stores(corpus: Path) -> list[Path]:
    """The stores of every corpus run outside the held-out families, sorted by name."""
    manifest = json.loads((corpus / "corpus.json").read_text())
    held = set(manifest["held_out_families"])
    return [
        corpus / f"{name}.fpstore"
        for name, run in sorted(manifest["runs"].items())
        if run["family"] not in held
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    stores = tuning_stores(parser.parse_args().corpus)
    fit_learned(stores).save(bundled_model_path(BUNDLED_MODEL))
    fit_learned_gbr(stores).save(bundled_model_path(BUNDLED_GBR_MODEL))
    print(f"fitted both bundled models on {len(stores)} runs")


if __name__ == "__main__":
    main()
