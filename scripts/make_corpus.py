"""Make the trajectory corpus into a folder: a thin wrapper over :mod:`forecastprune.corpus`.

Every setting is in :mod:`forecastprune.corpus.table`; ``forecastprune benchmark --corpus``
makes the same runs into the user's cache. This script adds what the project needs besides:
refreshing the part shipped in the wheel (``--ship``) and marking every family of a folder as
held out (``--all-held-out``, for a folder of families no model was fitted or tuned on).

Usage::

    python scripts/make_corpus.py --out DIR [--jobs 2] [--limit 8] [--corpus all|GROUP|FAMILY,...]
    python scripts/make_corpus.py --out DIR --ship     # refresh the shipped part from DIR
    python scripts/make_corpus.py --out DIR --summary  # size and generation time
    python scripts/make_corpus.py --list
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecastprune.corpus import (  # noqa: E402
    HELD_OUT,
    SHIPPED,
    build_corpus,
    corpus_runs,
    families,
    read_manifest,
    select_families,
)
from forecastprune.corpus.build import write_manifests  # noqa: E402

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "forecastprune" / "data" / "corpus"


def ship(out: Path, dest: Path = SHIPPED_DIR) -> None:
    """Copy the :data:`SHIPPED` runs of a made corpus into ``dest`` with their manifests.

    Raises:
        SystemExit: naming the shipped runs the corpus lacks.
    """
    manifest = read_manifest(out)
    missing = [n for n in SHIPPED if n not in manifest["runs"]]
    if missing:
        raise SystemExit(f"make these runs first (--corpus ...): {', '.join(missing)}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in SHIPPED:
        shutil.copytree(out / f"{name}.fpstore", dest / f"{name}.fpstore")
    write_manifests(dest, {"runs": {n: manifest["runs"][n] for n in SHIPPED}}, HELD_OUT)


def summary(manifest: dict) -> str:
    """Markdown: runs, families, size and generation time per group and in all, and each
    family's accuracy range (the docs' figures)."""
    by_group: dict[str, list[dict]] = {}
    for entry in manifest["runs"].values():
        by_group.setdefault(entry.get("group", "zoo-digits"), []).append(entry)
    lines = [
        "| group | runs | families | size | seconds (sum / median / max a run) |",
        "|---|---|---|---|---|",
    ]
    for group, entries in [*by_group.items(), ("all", list(manifest["runs"].values()))]:
        seconds = sorted(e["seconds"] for e in entries)
        lines.append(
            f"| {group} | {len(entries)} | {len({e['family'] for e in entries})} | "
            f"{sum(e['bytes'] for e in entries) / 1e6:.1f} MB | {sum(seconds):.0f} / "
            f"{seconds[len(seconds) // 2]:.1f} / {seconds[-1]:.1f} |"
        )
    lines += ["", "| family | runs | snapshots x channels | metric (min-max) |"]
    lines.append("|---|---|---|---|")
    fams: dict[str, list[dict]] = {}
    for entry in manifest["runs"].values():
        fams.setdefault(entry["family"], []).append(entry)
    for fam, entries in fams.items():
        acc = [e["accuracy"] for e in entries]
        lines.append(
            f"| {fam} | {len(entries)} | {entries[0]['snapshots']} x {entries[0]['channels']} | "
            f"{entries[0].get('metric', 'test accuracy')} {min(acc):.3f}-{max(acc):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the corpus folder (created)")
    parser.add_argument("--jobs", type=int, default=1, help="runs recorded at once")
    parser.add_argument("--limit", type=int, default=None, help="make at most this many runs")
    parser.add_argument(
        "--corpus", default="all", help="all, a group, families or patterns (comma-separated)"
    )
    parser.add_argument(
        "--all-held-out",
        action="store_true",
        help="mark every chosen family as held out (a folder no model was tuned on)",
    )
    parser.add_argument("--list", action="store_true", help="list the table and exit")
    parser.add_argument(
        "--summary", action="store_true", help="print the made corpus's size and time and exit"
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help="copy the shipped part of a made corpus into the package and exit",
    )
    args = parser.parse_args()
    if args.list:
        for run in corpus_runs():
            print(f"{run.group:12s} {run.family:40s} {run.name}")
        print(f"{len(corpus_runs())} runs in {len(families())} families; held out: {HELD_OUT}")
        return
    if args.out is None or args.jobs < 1:
        parser.error("--out DIR is required and --jobs must be at least 1")
    if args.ship:
        ship(args.out)
        return
    if args.summary:
        print(summary(read_manifest(args.out)))
        return
    chosen = select_families(args.corpus)
    report = build_corpus(
        args.out,
        chosen,
        jobs=args.jobs,
        limit=args.limit,
        held_out=chosen if args.all_held_out else HELD_OUT,
        progress=False,
    )
    manifest = read_manifest(args.out)
    for name in report.made:
        entry = manifest["runs"][name]
        print(
            f"{name}: {entry['seconds']:.1f} s, {entry['metric']} {entry['accuracy']:.3f}, "
            f"{entry['snapshots']} x {entry['channels']}",
            flush=True,
        )
    todo = len([r for r in corpus_runs() if r.family in chosen]) - len(report.available)
    print(f"{len(report.available)} chosen runs made; {todo} to go")


if __name__ == "__main__":
    main()
