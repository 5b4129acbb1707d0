"""Every setting of the trajectory corpus, in one table.

A **family** is architecture × recipe; a forecaster is judged on families none of whose runs
it was fitted on. The table is a list of :class:`Group`\\ s, each every architecture × every
recipe × every variant of its own:

* ``zoo-digits`` — the zoo's vgg/resnet/darknet/mobilenet on digits under six recipes (the
  suite's, torchvision's, timm's, ultralytics' and OneCycle on digits-hard);
* ``torchvision`` — torchvision's ResNet-18, MobileNetV2 and VGG-11 (BN) adapted to 8×8 inputs
  (:mod:`forecastprune.zoo.torchvision_small`) under torchvision's reference recipe (SGD, step
  decay), timm's (AdamW, warm-up + cosine), Nesterov with warm-up + cosine and ultralytics'
  AdamW + linear;
* ``shapes`` — zoo nets on the generated 10-class RGB shapes task with Nesterov SGD, warm-up
  and cosine;
* ``ultralytics`` — YOLOv8n and YOLO11n trained by ultralytics itself with every default of a
  short run (``optimizer=auto``: AdamW, 3 warm-up epochs, linear decay to 1 %, γ init 1.0), and
  with the SGD that ``optimizer=auto`` picks for long runs, on generated detection data, γ
  recorded by :func:`forecastprune.integrations.ultralytics.attach` (never pruning). Needs
  the ``ultralytics`` extra;
* ``smoke`` — one tiny real run (a few updates) that checks the machinery in seconds; not part
  of ``all``.

:data:`HELD_OUT` names the families kept out of all tuning (fixed before any of their runs was
looked at), :data:`SHIPPED` the runs that ship in the wheel as ``forecastprune/data/corpus``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from .._util import closest
from ..errors import ConfigError

#: every classification run: γ in float16, one segment, no progress bar of its own
COMMON: dict[str, Any] = {"every": 3, "dtype": "float16", "flush_every": 1000, "progress": False}

#: the zoo-digits recipes: recipe -> the ``RecordSettings`` it fixes
DIGITS_RECIPES: dict[str, dict[str, Any]] = {
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
#: the zoo architectures: name -> zoo settings
ZOO_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "vgg": {"model_name": "vgg"},
    "resnet": {"model_name": "resnet"},
    "darknet": {"model_name": "darknet", "widths": (16, 32, 64, 32)},
    "mobilenet": {"model_name": "mobilenet"},
}
#: the runs inside every zoo family: L1 strength s, width multiplier, seed
ZOO_VARIANTS: tuple[dict[str, Any], ...] = (
    {"sparsity": 5e-3, "width": 1.0, "seed": 0},
    {"sparsity": 1e-3, "width": 0.5, "seed": 1},
    {"sparsity": 2e-3, "width": 1.0, "seed": 2},
    {"sparsity": 1e-4, "width": 1.0, "seed": 3},
)

#: torchvision nets take 3-9x a zoo net's time per update: 15 epochs, recorded every 2 updates
TORCHVISION_RECIPES: dict[str, dict[str, Any]] = {
    # torchvision's reference classification recipe, shortened: SGD 0.9, step ×0.1, wd 1e-4
    "tv-sgd-step-g1": {
        "optimizer": "sgd",
        "lr": 0.05,
        "lr_scheduler": "step",
        "gamma_init": 1.0,
        "epochs": 15,
        "every": 2,
    },
    # timm's: AdamW, wd 0.05, warm-up + cosine
    "adamw-warm-cos-g1": {
        "optimizer": "adamw",
        "lr": 0.001,
        "lr_scheduler": "cosine",
        "warmup": 0.05,
        "gamma_init": 1.0,
        "weight_decay": 0.05,
        "epochs": 15,
        "every": 2,
    },
    # the digits recipes users also train large nets with, shortened as the two above: Nesterov
    # with warm-up + cosine, and ultralytics' AdamW with linear decay
    "nesterov-warm-cos-g1": {**DIGITS_RECIPES["nesterov-warm-cos-g1"], "epochs": 15, "every": 2},
    "adamw-linear-g1": {**DIGITS_RECIPES["adamw-linear-g1"], "epochs": 15, "every": 2},
}
TORCHVISION_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "tv-resnet18": {"model_name": "tv-resnet18"},
    "tv-mobilenet-v2": {"model_name": "tv-mobilenet-v2"},
    "tv-vgg11": {"model_name": "tv-vgg11"},
}
#: torchvision fixes ResNet-18's widths, so these vary L1 strength and seed only
TORCHVISION_VARIANTS: tuple[dict[str, Any], ...] = (
    {"sparsity": 5e-3, "width": 1.0, "seed": 0},
    {"sparsity": 1e-3, "width": 1.0, "seed": 1},
    {"sparsity": 2e-3, "width": 1.0, "seed": 2},
)

SHAPES_RECIPES: dict[str, dict[str, Any]] = {
    "shapes-nesterov-warm-cos-g1": {
        "task": "shapes",
        "optimizer": "nesterov",
        "lr": 0.05,
        "lr_scheduler": "cosine",
        "warmup": 0.05,
        "gamma_init": 1.0,
        "epochs": 30,
    },
}

#: ultralytics' trainer with its defaults (optimizer=auto, warmup_epochs=3, lrf=0.01, linear);
#: nbs = batch so every batch is one update (ultralytics' nbs=64 would leave 4 updates an epoch
#: on these small sets); 64² images of make_shapes_dataset
ULTRALYTICS_SHORT_RUN: dict[str, Any] = {
    "epochs": 15,
    "imgsz": 64,
    "batch": 16,
    "nbs": 16,
    "n_val": 64,
    "every": 2,
}
ULTRALYTICS_RECIPES: dict[str, dict[str, Any]] = {
    "ultralytics-default": ULTRALYTICS_SHORT_RUN,
    # what optimizer=auto picks for long runs (over 10,000 updates): SGD, lr0 0.01, momentum
    # 0.937 (Nesterov), with the same warm-up and linear decay
    "ultralytics-sgd": {
        **ULTRALYTICS_SHORT_RUN,
        "optimizer": "SGD",
        "lr0": 0.01,
        "momentum": 0.937,
    },
}
ULTRALYTICS_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "yolov8n": {"model": "yolov8n.yaml"},
    "yolo11n": {"model": "yolo11n.yaml"},
}
ULTRALYTICS_VARIANTS: tuple[dict[str, Any], ...] = (
    {"sparsity": 1e-3, "n_train": 256, "seed": 0},
    {"sparsity": 5e-3, "n_train": 256, "seed": 1},
    {"sparsity": 1e-3, "n_train": 512, "seed": 2},
)


@dataclass(frozen=True)
class Group:
    """Families made alike: every architecture × every recipe, each run once per variant.

    Attributes:
        name: the group's name (``forecastprune benchmark --corpus GROUP`` picks all of it).
        kind: ``record`` (:func:`~forecastprune.pipeline.recording.record_run`) or
            ``ultralytics`` (ultralytics' trainer with ``attach``).
        architectures: architecture -> the settings it fixes.
        recipes: recipe -> the settings it fixes.
        variants: the runs of every family.
        common: settings every run of the group shares.
        in_all: whether ``all`` includes the group.
        needs: an optional package the group's runs import, and how to install it (None:
            the core dependencies suffice).
    """

    name: str
    kind: str
    architectures: dict[str, dict[str, Any]]
    recipes: dict[str, dict[str, Any]]
    variants: tuple[dict[str, Any], ...]
    common: dict[str, Any] = field(default_factory=dict)
    in_all: bool = True
    needs: tuple[str, str] | None = None


GROUPS: tuple[Group, ...] = (
    Group("zoo-digits", "record", ZOO_ARCHITECTURES, DIGITS_RECIPES, ZOO_VARIANTS, COMMON),
    Group(
        "torchvision",
        "record",
        TORCHVISION_ARCHITECTURES,
        TORCHVISION_RECIPES,
        TORCHVISION_VARIANTS,
        COMMON,
        needs=("torchvision", "pip install torchvision"),
    ),
    Group(
        "shapes",
        "record",
        {k: ZOO_ARCHITECTURES[k] for k in ("vgg", "resnet", "darknet")},
        SHAPES_RECIPES,
        ZOO_VARIANTS,
        COMMON,
    ),
    Group(
        "ultralytics",
        "ultralytics",
        ULTRALYTICS_ARCHITECTURES,
        ULTRALYTICS_RECIPES,
        ULTRALYTICS_VARIANTS,
        needs=("ultralytics", 'pip install "forecastprune[ultralytics]"'),
    ),
    Group(
        "smoke",
        "record",
        {"darknet": {"model_name": "darknet", "widths": (8, 8, 8, 8)}},
        {"smoke": {"epochs": 1, "limit_batches": 12, "every": 1, "augment": False}},
        ({"sparsity": 5e-3, "width": 1.0, "seed": 0},),
        COMMON,
        in_all=False,
    ),
)

#: families kept out of all tuning and scored once; the first two were fixed before any corpus
#: run was looked at, the rest when their groups were added (before any of their runs was made)
HELD_OUT = (
    "resnet/adamw-linear-g1",
    "vgg/onecycle-hard-g1",
    "tv-resnet18/adamw-warm-cos-g1",
    "tv-mobilenet-v2/tv-sgd-step-g1",
    "vgg/shapes-nesterov-warm-cos-g1",
    "yolo11n/ultralytics-default",
    # a fresh set at the size users prune (2,752-17,056 channels), fixed when these recipes were
    # added, before any of their runs was made: the six above had been looked at four times
    "tv-resnet18/adamw-linear-g1",
    "tv-vgg11/nesterov-warm-cos-g1",
    "tv-mobilenet-v2/nesterov-warm-cos-g1",
    "yolo11n/ultralytics-sgd",
)
#: the part of the corpus shipped in the wheel (``forecastprune/data/corpus``, about 1 MB): one
#: run of each digits recipe, the architectures rotated
SHIPPED = (
    "vgg-sgd-step-g05-s0.005-w1-r0",
    "resnet-sgd-cos-g1-s0.005-w1-r0",
    "darknet-nesterov-warm-cos-g1-s0.005-w1-r0",
    "mobilenet-adamw-warm-cos-g1-s0.005-w1-r0",
    "resnet-adamw-linear-g1-s0.005-w1-r0",
    "vgg-onecycle-hard-g1-s0.005-w1-r0",
)


@dataclass(frozen=True)
class CorpusRun:
    """One run of the corpus: its name, family, group, kind and settings."""

    name: str
    family: str
    group: str
    kind: str
    settings: dict[str, Any]


def run_name(arch: str, recipe: str, variant: dict[str, Any]) -> str:
    """``ARCH-RECIPE-sS-wW-rSEED`` (``-nIMAGES`` instead of the width for detectors)."""
    size = f"n{variant['n_train']}" if "n_train" in variant else f"w{variant['width']:g}"
    return f"{arch}-{recipe}-s{variant['sparsity']:g}-{size}-r{variant['seed']}"


def corpus_runs() -> list[CorpusRun]:
    """Every run of the table, group by group; inside a group the first variant of every
    family, then the second, ... (so a corpus made in part still spans every family)."""
    runs = []
    for group in GROUPS:
        for variant in group.variants:
            for arch, arch_settings in group.architectures.items():
                for recipe, recipe_settings in group.recipes.items():
                    settings = {**group.common, **recipe_settings, **arch_settings, **variant}
                    runs.append(
                        CorpusRun(
                            run_name(arch, recipe, variant),
                            f"{arch}/{recipe}",
                            group.name,
                            group.kind,
                            settings,
                        )
                    )
    return runs


def families(runs: list[CorpusRun] | None = None) -> dict[str, str]:
    """Every family of the table -> its group, in table order."""
    return {r.family: r.group for r in runs or corpus_runs()}


def select_families(text: str) -> list[str]:
    """The families a ``--corpus`` value names, in table order.

    Args:
        text: comma-separated items, each ``all`` (every group but ``smoke``), a group name,
            a family (``tv-resnet18/adamw-warm-cos-g1``) or a shell pattern over families
            (``tv-*/*``).

    Raises:
        ConfigError: on an item that names nothing, with the valid names.
    """
    table = families()
    groups = {g.name: g for g in GROUPS}
    chosen: set[str] = set()
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"--corpus got {text!r}, which names no family; try 'all'")
    for item in items:
        if item == "all":
            found = [f for f, g in table.items() if groups[g].in_all]
        elif item in groups:
            found = [f for f, g in table.items() if g == item]
        else:
            found = fnmatch.filter(table, item)
        if not found:
            raise ConfigError(
                f"--corpus: {item!r} names no family.{closest(item, [*table, *groups])} "
                f"Expected 'all', a group ({', '.join(groups)}), a family such as "
                f"{next(iter(table))!r} or a pattern such as 'tv-*/*'"
            )
        chosen.update(found)
    return [f for f in table if f in chosen]
