"""One corpus view over several corpus folders, for ``benchmarks/family_out.py`` and
``benchmarks/auto_gate.py`` (which read one folder).

The view links every run's store from its folder and writes one ``corpus.json`` whose
held-out families are the table's (:data:`forecastprune.corpus.table.HELD_OUT`) unless named.
With ``--cache OUT --from-cache DIR ...`` it also starts a family-out cache from those folders'
caches, keeping only the cells of the forecasters that fit nothing across runs (``naive``,
``arima``, ``global_ridge``) and every run's cached training examples: every cell of a model or
gate fitted on other runs is dropped, since the folds change when the tuning families do.

Usage::

    python scripts/merge_corpora.py --out VIEW CORPUS1 CORPUS2 \
        [--cache CACHE --from-cache CACHE1 CACHE2]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from forecastprune.corpus.table import HELD_OUT

#: forecasters whose cells stay valid whatever the folds (they fit nothing across runs)
FIT_FREE = ("naive", "arima", "global_ridge")


def merge_view(out: Path, corpora: list[Path], held_out: tuple[str, ...]) -> int:
    """Link every store of ``corpora`` into ``out`` and write the merged index; run count."""
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    for corpus in corpora:
        manifest = json.loads((corpus / "corpus.json").read_text())
        for name, run in manifest["runs"].items():
            if name in runs:
                raise SystemExit(f"run {name} is in two corpus folders; merge distinct corpora")
            link = out / f"{name}.fpstore"
            if not link.exists():
                link.symlink_to((corpus / f"{name}.fpstore").resolve())
            runs[name] = run
    families = {run["family"] for run in runs.values()}
    index = {
        "runs": runs,
        "held_out_families": [f for f in held_out if f in families],
        "about": "merged view of " + ", ".join(str(c) for c in corpora),
    }
    (out / "corpus.json").write_text(json.dumps(index, indent=1) + "\n")
    return len(runs)


def merge_caches(out: Path, caches: list[Path]) -> int:
    """Copy the fit-free cells and the training examples of ``caches`` into ``out``."""
    (out / "examples").mkdir(parents=True, exist_ok=True)
    count = 0
    for cache in caches:
        for path in sorted(cache.glob("*.json")):
            data = json.loads(path.read_text())
            data["cells"] = {
                k: v for k, v in data["cells"].items() if k.split("|", 1)[0] in FIT_FREE
            }
            (out / path.name).write_text(json.dumps(data) + "\n")
            count += 1
        for npz in sorted((cache / "examples").glob("*.npz")):
            shutil.copy2(npz, out / "examples" / npz.name)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--held-out", nargs="*", default=list(HELD_OUT))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--from-cache", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    n = merge_view(args.out, args.corpora, tuple(args.held_out))
    print(f"{args.out}: {n} runs")
    if args.cache is not None:
        print(f"{args.cache}: {merge_caches(args.cache, args.from_cache)} runs' cached cells")


if __name__ == "__main__":
    main()
