"""The ``train`` configuration: one flat, typed set of keys per run.

A config file (``configs/<method>.yaml``) names the method and overrides any of the defaults
below. Loading goes through :mod:`forecastprune.config` (``yaml.safe_load``, typed conversion,
unknown keys rejected with the valid ones listed), so a typo never silently falls back to a
default; the ranges and choices are checked here, before any training starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import from_mapping, read_yaml
from ..engine.spec import PruneKeys, PruneSpec
from ..errors import ConfigError, ForecastPruneError
from ..runpoint import RunPoint
from ..zoo.data import TASKS
from .methods import METHODS, MethodSpec

SCHEDULES = ("cosine", "constant")
#: model keys passed on to the zoo builder when set
MODEL_KEYS = ("widths", "blocks", "width", "gamma_init")

#: the largest digits upscaling accepted (1,797 images of 128×128 float32: ~120 MB)
MAX_UPSCALE = 16


@dataclass(frozen=True)
class TrainConfig(PruneKeys):
    """Every setting of one ``forecastprune train`` run.

    Attributes:
        method: ``normal``, ``slimming``, ``early-bird`` or ``forecast`` (required in files).
        model: zoo model name (``darknet``, ``vgg``, ``resnet``).
        widths: the model's base widths (None: the builder's default).
        blocks: residual units per stage (darknet/resnet; None: the builder's default).
        width: multiplier on every width.
        gamma_init: initial BN γ (None: the builder's default).
        epochs: the training budget, equal across methods.
        batch_size: training batch size (per process under DDP).
        lr: initial SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        schedule: ``cosine`` (annealed to 0 over the budget, per iteration) or ``constant``.
        seed: seeds the model init, the shuffling and the augmentation (the split is fixed).
        augment: random shifts + Gaussian noise on training batches.
        task: ``digits`` (1,437 training / 360 test images), ``digits-hard`` (359 training /
            1,438 test images, stronger shifts and noise; see :mod:`forecastprune.zoo.data`) or
            ``mnist1d`` (20,000 / 5,000 generated 1-D signals, for ``cnn1d``; see
            :mod:`forecastprune.zoo.mnist1d`).
        upscale: digits upscaling factor (1 keeps 8×8).
        train_subset: train on the first N training images only (quick runs and tests).
        eval_every: epochs between test evaluations (the last epoch is always evaluated).
        forecaster: ``forecast``'s forecaster spec.
        ratio, threshold, policy, min_keep, min_fraction, round_to, group_reduce,
            uncertainty, coverage: how channels are chosen — the keys of
            :class:`~forecastprune.engine.spec.PruneKeys`, with the spec's defaults.
        prune_at: ``forecast``'s prune point (a :class:`~forecastprune.runpoint.RunPoint`):
            a fraction (``0.3``), a step (``step:120``) or a timing rule (``stability``,
            ``confidence``).
        sparsity: L1 strength on γ while sparse-training.
        sparse_fraction: ``slimming``'s share of the budget spent sparse-training.
        record_every: γ snapshot interval in steps.
        check_every: steps between timing-rule checks (None: one epoch).
        auto_window: the timing rules: previous forecast masks the newest must agree with.
        auto_tolerance: the timing rules: largest normalized Hamming distance to each of them.
        auto_max_ambiguous: the timing rules: largest share of channels whose forecast
            interval may straddle the cut (forecasters with intervals only; None: ignore).
        auto_min_fraction: the timing rules: never fire before this fraction of the run.
        auto_deadline: the timing rules: fire at this fraction of the run whatever the masks
            say.
        auto_min_confidence: ``prune_at: confidence``: the backtested IoU to reach (the
            forecaster's in-history backtest of its pruned set at the real ratio and horizon).
        plugins: forecaster plugin files or folders to load before the run (so ``forecaster``
            may name a plugin).
    """

    method: str = "normal"
    model: str = "darknet"
    widths: tuple[int, ...] | None = None
    blocks: tuple[int, ...] | None = None
    width: float = 1.0
    gamma_init: float | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    seed: int = 0
    augment: bool = True
    task: str = "digits"
    upscale: int = 1
    train_subset: int | None = None
    eval_every: int = 1
    forecaster: str = "auto"
    prune_at: str = "0.3"
    sparsity: float = 5e-3
    sparse_fraction: float = 0.75
    record_every: int = 1
    check_every: int | None = None
    auto_window: int = 3
    auto_tolerance: float = 0.1
    auto_max_ambiguous: float | None = None
    auto_min_fraction: float = 0.05
    auto_deadline: float = 0.6
    auto_min_confidence: float = 0.9
    plugins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read and validate a YAML config file.

        Raises:
            ConfigError: if the file is unreadable, has unknown keys, lacks ``method`` or
                holds values of the wrong type or range.
        """
        data = read_yaml(path)
        if "method" not in data:
            raise ConfigError(
                f"config file {path} needs a 'method' key: one of {', '.join(METHODS)}"
            )
        return from_mapping(data, cls, source=f"config file {path}")

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with the changes that are not None applied."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate(self) -> None:
        """Check choices and ranges (types were checked on loading).

        Raises:
            ConfigError: naming the key, the value received and what is expected.
        """
        _choice(self.method, METHODS, "method")
        _choice(self.schedule, SCHEDULES, "schedule")
        _choice(self.task, tuple(TASKS), "task")
        self.prune_spec()
        for key in (
            "epochs",
            "batch_size",
            "upscale",
            "record_every",
            "auto_window",
            "train_subset",
            "check_every",
            "eval_every",
        ):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be >= 1; got {value}")
        if self.upscale > MAX_UPSCALE:  # the digits set is held in memory, upscale² times
            raise ConfigError(
                f"upscale must be at most {MAX_UPSCALE} (8×8 digits become "
                f"{8 * MAX_UPSCALE}×{8 * MAX_UPSCALE}); got {self.upscale}"
            )
        for key in ("lr", "momentum", "weight_decay", "sparsity", "seed", "width"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0; got {getattr(self, key)}")
        for key in ("sparse_fraction", "auto_deadline"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ConfigError(
                    f"{key} must lie strictly between 0 and 1; got {getattr(self, key)}"
                )
        for key in (
            "auto_tolerance",
            "auto_max_ambiguous",
            "auto_min_fraction",
            "auto_min_confidence",
        ):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key} must lie in [0, 1]; got {value}")
        self.prune_point()

    def prune_point(self) -> RunPoint:
        """``prune_at`` as a :class:`RunPoint`.

        Raises:
            ConfigError: saying which forms are accepted.
        """
        return RunPoint.parse(self.prune_at, what="prune_at")

    def prune_spec(self) -> PruneSpec:
        """How channels are chosen: the config's :class:`PruneSpec` keys, validated.

        Raises:
            ConfigError: naming the key out of range (or policy ``none``, which cannot cut).
        """
        try:
            spec = super().prune_spec()
            spec.coupling_policy()
        except ForecastPruneError as exc:
            raise ConfigError(str(exc)) from None
        return spec

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the zoo builder: the model keys that are set."""
        return {key: getattr(self, key) for key in MODEL_KEYS if getattr(self, key) is not None}

    def method_spec(
        self, store_path: str | Path | None = None, overwrite: bool = False
    ) -> MethodSpec:
        """The :class:`~forecastprune.pipeline.methods.MethodSpec` of this config."""
        return MethodSpec(
            method=self.method,
            forecaster=self.forecaster,
            spec=self.prune_spec(),
            prune_at=self.prune_point(),
            sparsity=self.sparsity,
            sparse_fraction=self.sparse_fraction,
            record_every=self.record_every,
            check_every=self.check_every,
            auto={
                "window": self.auto_window,
                "tolerance": self.auto_tolerance,
                "max_ambiguous": self.auto_max_ambiguous,
                "min_step": self.auto_min_fraction or None,
                "deadline": self.auto_deadline,
                "min_confidence": self.auto_min_confidence,
            },
            store_path=store_path,
            overwrite=overwrite,
        )

    def to_json(self) -> dict[str, Any]:
        """All keys, JSON-ready."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _choice(value: Any, choices: tuple[str, ...], key: str) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")
