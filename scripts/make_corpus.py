"""Generate the trajectory corpus: real sparse-training runs in families unlike the suite's.

The suite (``scripts/make_suite.py``) is one recipe: zoo nets on digits, SGD momentum 0.9,
lr 0.05, γ initialised at 0.5. Users train otherwise — torchvision, timm and ultralytics start γ
at 1.0; ultralytics trains short runs with AdamW, a warm-up and linear decay; OneCycle, Nesterov
and warm-up + cosine are common — and a forecaster fitted on one recipe fails on the others. The
corpus varies what users vary. A **family** is architecture × recipe: a forecaster is judged on
a family none of whose runs it was fitted on (``benchmarks/family_out.py``).

Everything that makes a run is in one table, :data:`RECIPES` × :data:`ARCHITECTURES` ×
:data:`VARIANTS`; :data:`HELD_OUT` names the families kept out of all tuning (chosen before any
corpus run was looked at), :data:`NOT_MADE_HERE` the families this script cannot make yet and
why. Each run is recorded with :func:`forecastprune.pipeline.recording.record_run` (what
``forecastprune record`` runs) on one CPU thread, γ in float16.

The output folder is a suite folder (``forecastprune benchmark --suite DIR`` reads it): one
``NAME.fpstore`` per run, ``suite.json`` naming the held-out runs, and ``corpus.json`` with each
run's family, settings, accuracy, size and generation time. Generation is resumable: a run whose
store and ``corpus.json`` entry exist is skipped, so it can be made in chunks (``--limit``).

A small part (:data:`SHIPPED`, one run per recipe) ships in the wheel as
``forecastprune/data/corpus`` (``forecastprune benchmark --suite`` reads it); the rest is made
here.

Usage::

    python scripts/make_corpus.py --out DIR [--jobs 2] [--limit 8] [--family FAMILY ...]
    python scripts/make_corpus.py --out DIR --ship     # refresh the shipped part from DIR
    python scripts/make_corpus.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "corpus.json"
SUITE_MANIFEST = "suite.json"
#: every run: recorded every 3 updates, γ in float16, one segment
COMMON: dict[str, Any] = {"every": 3, "dtype": "float16", "flush_every": 1000, "progress": False}

#: recipe -> the recording settings it fixes (what differs from ``RecordSettings``' defaults)
RECIPES: dict[str, dict[str, Any]] = {
    # the suite's own recipe, so the corpus also holds runs like the ones models were fitted on
    "sgd-step-g05": {
        "optimizer": "sgd",
        "lr": 0.05,
        "lr_scheduler": "step",
        "gamma_init": 0.5,
        "epochs": 30,
    },
    # torchvision-style: γ at 1.0, SGD + cosine
    "sgd-cos-g1": {
        "optimizer": "sgd",
        "lr": 0.05,
        "lr_scheduler": "cosine",
        "gamma_init": 1.0,
        "epochs": 30,
    },
    "nesterov-warm-cos-g1": {
        "optimizer": "nesterov",
        "lr": 0.05,
        "lr_scheduler": "cosine",
        "warmup": 0.05,
        "gamma_init": 1.0,
        "epochs": 30,
    },
    # timm-style
    "adamw-warm-cos-g1": {
        "optimizer": "adamw",
        "lr": 0.003,
        "lr_scheduler": "cosine",
        "warmup": 0.05,
        "gamma_init": 1.0,
        "weight_decay": 0.05,
        "epochs": 30,
    },
    # ultralytics' defaults for short runs: AdamW, β₁ 0.937, warm-up, linear decay to 1 %
    "adamw-linear-g1": {
        "optimizer": "adamw",
        "lr": 0.002,
        "momentum": 0.937,
        "lr_scheduler": "linear",
        "warmup": 0.1,
        "gamma_init": 1.0,
        "weight_decay": 5e-4,
        "epochs": 30,
    },
    # few images, many epochs, OneCycle
    "onecycle-hard-g1": {
        "optimizer": "sgd",
        "lr": 0.1,
        "lr_scheduler": "onecycle",
        "gamma_init": 1.0,
        "task": "digits-hard",
        "batch_size": 32,
        "epochs": 60,
    },
}
#: architecture -> its zoo name and settings
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "vgg": {"model_name": "vgg"},
    "resnet": {"model_name": "resnet"},
    "darknet": {"model_name": "darknet", "widths": (16, 32, 64, 32)},
    "mobilenet": {"model_name": "mobilenet"},
}
#: the runs inside every family: L1 strength s, width multiplier, seed
VARIANTS: tuple[dict[str, Any], ...] = (
    {"sparsity": 5e-3, "width": 1.0, "seed": 0},
    {"sparsity": 1e-3, "width": 0.5, "seed": 1},
    {"sparsity": 2e-3, "width": 1.0, "seed": 2},
    {"sparsity": 1e-4, "width": 1.0, "seed": 3},
)
#: families kept out of all tuning and scored once; fixed before any corpus run was looked at
HELD_OUT = ("resnet/adamw-linear-g1", "vgg/onecycle-hard-g1")
#: the part of the corpus shipped in the wheel (``forecastprune/data/corpus``, about 1 MB): one
#: run of each recipe, the architectures rotated. The bundled learned models were fitted on the
#: four from tuning families; only the two from the held-out families are honest tests of them
SHIPPED = (
    "vgg-sgd-step-g05-s0.005-w1-r0",
    "resnet-sgd-cos-g1-s0.005-w1-r0",
    "darknet-nesterov-warm-cos-g1-s0.005-w1-r0",
    "mobilenet-adamw-warm-cos-g1-s0.005-w1-r0",
    "resnet-adamw-linear-g1-s0.005-w1-r0",
    "vgg-onecycle-hard-g1-s0.005-w1-r0",
)
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "forecastprune" / "data" / "corpus"
#: families the issue asks for that this script cannot make yet, and why
NOT_MADE_HERE: dict[str, str] = {
    "torchvision ResNet/MobileNet/VGG": "needs a small-input adaptation of torchvision's "
    "builders registered in the zoo; 11M-parameter ResNet-18 runs take minutes each on the "
    "shared 2-core machine this corpus was generated on",
    "ultralytics YOLOv8n/YOLO11n on generated detection data": "records through "
    "forecastprune/integrations/ultralytics, being reworked in parallel (issue 19)",
    "generated shapes classification": "no generated shapes task in forecastprune.zoo.data yet",
}


@dataclass(frozen=True)
class CorpusRun:
    """One run of the corpus: its name, family and ``RecordSettings`` keyword arguments."""

    name: str
    family: str
    settings: dict[str, Any]


def corpus_runs() -> list[CorpusRun]:
    """Every run of the table: the first variant of every family, then the second, ... (so a
    corpus made in part still spans every family)."""
    runs = []
    for variant in VARIANTS:
        for arch, arch_settings in ARCHITECTURES.items():
            for recipe, recipe_settings in RECIPES.items():
                name = (
                    f"{arch}-{recipe}-s{variant['sparsity']:g}-w{variant['width']:g}"
                    f"-r{variant['seed']}"
                )
                settings = {**COMMON, **recipe_settings, **arch_settings, **variant}
                runs.append(CorpusRun(name, f"{arch}/{recipe}", settings))
    return runs


def make_run(run: CorpusRun, out: Path) -> dict[str, Any]:
    """Record one run on one thread and install its store as ``out/NAME.fpstore``."""
    import torch

    from forecastprune.pipeline.recording import RecordSettings, record_run

    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = record_run(RecordSettings(out=Path(work) / run.name, **run.settings))
        (result.store_path / ".lock").unlink(missing_ok=True)  # the writer lock is not data
        dest = out / f"{run.name}.fpstore"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(result.store_path, dest)
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    return {
        "family": run.family,
        "settings": _jsonable(run.settings),
        "accuracy": result.accuracy,
        "snapshots": result.shape[0],
        "channels": result.shape[1],
        "bytes": size,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def read_manifest(out: Path) -> dict[str, Any]:
    """The corpus manifest (an empty one before the first run)."""
    path = out / MANIFEST
    if path.exists():
        return json.loads(path.read_text())
    return {"runs": {}}


def write_manifests(out: Path, manifest: dict[str, Any]) -> None:
    """``corpus.json`` and the suite folder's ``suite.json`` (held-out runs), atomically."""
    manifest.update(
        held_out_families=list(HELD_OUT),
        not_made_here=NOT_MADE_HERE,
        about="Generated by scripts/make_corpus.py; families are architecture x "
        "recipe; held-out families take no part in any tuning",
    )
    held = sorted(n for n, r in manifest["runs"].items() if r["family"] in HELD_OUT)
    suite = {
        "held_out": held,
        "about": f"corpus runs of the held-out families {', '.join(HELD_OUT)}",
    }
    for name, data in ((MANIFEST, manifest), (SUITE_MANIFEST, suite)):
        tmp = out / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, out / name)


def pending(out: Path, families: list[str] | None) -> list[CorpusRun]:
    """The table's runs not yet made (store and manifest entry), of the chosen families."""
    done = read_manifest(out)["runs"]
    return [
        r
        for r in corpus_runs()
        if (families is None or r.family in families)
        and not (r.name in done and (out / f"{r.name}.fpstore").is_dir())
    ]


def ship(out: Path, dest: Path = SHIPPED_DIR) -> None:
    """Copy the :data:`SHIPPED` runs of a made corpus into ``dest`` with their manifests.

    Raises:
        SystemExit: naming the shipped runs the corpus lacks.
    """
    manifest = read_manifest(out)
    missing = [n for n in SHIPPED if n not in manifest["runs"]]
    if missing:
        raise SystemExit(f"make these runs first (--family ...): {', '.join(missing)}")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in SHIPPED:
        shutil.copytree(out / f"{name}.fpstore", dest / f"{name}.fpstore")
    write_manifests(dest, {"runs": {n: manifest["runs"][n] for n in SHIPPED}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the corpus folder (created)")
    parser.add_argument("--jobs", type=int, default=1, help="runs recorded at once")
    parser.add_argument("--limit", type=int, default=None, help="make at most this many runs")
    parser.add_argument("--family", nargs="*", help="only these families (arch/recipe)")
    parser.add_argument("--list", action="store_true", help="list the table and exit")
    parser.add_argument(
        "--ship",
        action="store_true",
        help="copy the shipped part of a made corpus into the package and exit",
    )
    args = parser.parse_args()
    if args.list:
        for run in corpus_runs():
            print(f"{run.family:32s} {run.name}")
        print(f"{len(corpus_runs())} runs; held out: {', '.join(HELD_OUT)}")
        for what, why in NOT_MADE_HERE.items():
            print(f"not made here: {what}: {why}")
        return
    if args.out is None or args.jobs < 1:
        parser.error("--out DIR is required and --jobs must be at least 1")
    if args.ship:
        ship(args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    todo = pending(args.out, args.family)[: args.limit]
    manifest = read_manifest(args.out)
    with ProcessPoolExecutor(args.jobs) as pool:
        for run, entry in zip(todo, pool.map(make_run, todo, [args.out] * len(todo))):
            manifest["runs"][run.name] = entry
            write_manifests(args.out, manifest)  # after each run: a stop loses nothing made
            print(
                f"{run.name}: {entry['seconds']:.1f} s, accuracy {entry['accuracy']:.3f}, "
                f"{entry['snapshots']} x {entry['channels']}",
                flush=True,
            )
    print(
        f"{len(manifest['runs'])} of {len(corpus_runs())} runs made; "
        f"{len(pending(args.out, None))} to go"
    )


if __name__ == "__main__":
    main()
