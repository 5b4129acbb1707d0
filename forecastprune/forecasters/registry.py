"""The forecaster registry: names → classes, prefix families, lookups.

Three ways in, one table:

* ``@register_forecaster("name")`` on a :class:`Forecaster` subclass (built-ins, user code);
* installed distributions exposing an entry point in the group ``forecastprune.forecasters``
  (``name = module:Class``), discovered lazily on the first lookup;
* ``.py`` files (or a folder of them) loaded with ``load_plugins``.

The last two live in :mod:`.plugin_loading`; a plugin that fails to load is listed by
:func:`broken_plugins` and the other forecasters keep working. Families of forecasters that
live in another library (``sktime:NaiveForecaster``) are resolved by a *prefix factory* added
with :func:`register_prefix`, so the registry never has to enumerate a foreign catalogue.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._util import closest
from ..errors import ForecasterError, UnknownForecasterError
from .base import Forecaster
from .spec import parse_spec

#: Builds a forecaster of a prefix family from the name after the prefix and the parameters.
PrefixFactory = Callable[[str, dict[str, Any]], Forecaster]

F = TypeVar("F", bound=type[Forecaster])


@dataclass(frozen=True)
class ForecasterInfo:
    """One row of :func:`list_forecasters`.

    Attributes:
        name: the registered name (``prefix:<Name>`` for a prefix family).
        params: ``__init__`` parameters and defaults (``inspect.Parameter.empty`` = required).
        description: one line.
        source: ``"built-in"``, ``"entry point: <dist>"``, ``"file: <path>"`` or
            ``"module: <module>"`` (registered by user code at import time).
        supports_interval: whether ``predict_interval`` works.
        examples: for a prefix family, specs that resolve to a cheap member (used by the
            conformance tests); empty for plain forecasters.
        error: why a broken plugin failed to load; ``None`` for a working entry.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "built-in"
    supports_interval: bool = False
    examples: tuple[str, ...] = ()
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def is_prefix(self) -> bool:
        return self.name.endswith(":<Name>")


@dataclass
class _Prefix:
    factory: PrefixFactory
    description: str
    examples: tuple[str, ...]
    source: str


@dataclass
class _State:
    """Everything the registry knows; one object so tests can snapshot and restore it."""

    classes: dict[str, type[Forecaster]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, _Prefix] = field(default_factory=dict)
    broken: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (source, error)
    loaded_files: dict[str, list[str]] = field(default_factory=dict)  # path -> names it added
    entry_points_done: bool = False

    def copy(self) -> _State:
        return _State(
            dict(self.classes),
            dict(self.sources),
            dict(self.prefixes),
            dict(self.broken),
            {k: list(v) for k, v in self.loaded_files.items()},
            self.entry_points_done,
        )


_STATE = _State()
#: the source recorded for registrations made while a plugin is being imported
_LOADING: ContextVar[str | None] = ContextVar("forecastprune_plugin_source", default=None)


# -------------------------------------------------------------------- registering
def register_forecaster(name: str, *, override: bool = False) -> Callable[[F], F]:
    """Class decorator that registers a :class:`Forecaster` subclass under ``name``.

    Args:
        name: lower-case identifier used in specs (``[A-Za-z_][A-Za-z0-9_]*``).
        override: replace an existing registration instead of raising.

    Returns:
        The decorator; it returns the class unchanged.

    Raises:
        ForecasterError: on a malformed name, a non-Forecaster class, or a duplicate name
            without ``override=True``.
    """
    _check_name(name)

    def decorator(cls: F) -> F:
        if not (inspect.isclass(cls) and issubclass(cls, Forecaster)):
            raise ForecasterError(
                f"register_forecaster({name!r}) decorates Forecaster subclasses; got {cls!r}"
            )
        existing = _STATE.classes.get(name)
        if existing is not None and existing is not cls and not override:
            raise ForecasterError(
                f"a forecaster named {name!r} is already registered "
                f"({_qualname(existing)}, {_STATE.sources[name]}); pick another name or pass "
                "override=True to replace it"
            )
        _STATE.classes[name] = cls
        _STATE.sources[name] = _source_of(cls)
        _STATE.broken.pop(name, None)
        return cls

    return decorator


def register_prefix(
    prefix: str,
    factory: PrefixFactory,
    *,
    description: str = "",
    examples: Sequence[str] = (),
    override: bool = False,
) -> None:
    """Route every ``prefix:<Name>(...)`` spec to ``factory(Name, params)``.

    Args:
        prefix: e.g. ``"sktime"``.
        factory: returns a ready :class:`Forecaster` for a member name and its parameters;
            raises :class:`ForecasterError` (ideally :class:`UnknownForecasterError`) for names
            it does not know.
        description: one line for ``forecastprune list``.
        examples: full specs of cheap members, e.g. ``("sktime:NaiveForecaster",)``; the
            conformance tests run these.
        override: replace an existing prefix instead of raising.

    Raises:
        ForecasterError: on a malformed or duplicate prefix.
    """
    _check_name(prefix)
    if prefix in _STATE.prefixes and not override:
        raise ForecasterError(
            f"the prefix {prefix!r} is already registered; pass override=True to replace it"
        )
    source = _LOADING.get() or "built-in"
    _STATE.prefixes[prefix] = _Prefix(factory, description, tuple(examples), source)


# -------------------------------------------------------------------- looking up
def get_forecaster(spec: str, **params: Any) -> Forecaster:
    """Build a forecaster from a name or spec string plus keyword parameters.

    Args:
        spec: ``"sma"``, ``"arima(p=2,d=1,q=1)"``, ``"sktime:NaiveForecaster"``, ...
        **params: more parameters; a parameter may not be given both here and in the spec.

    Returns:
        A new, unfitted forecaster.

    Raises:
        UnknownForecasterError: the name is not registered (lists valid names + closest).
        ForecasterError: bad spec syntax, unknown or missing parameters, invalid values.
    """
    name, spec_params = parse_spec(spec)
    clash = sorted(set(spec_params) & set(params))
    if clash:
        raise ForecasterError(
            f"parameters {clash} are given both in the spec {spec!r} and as keyword arguments; "
            "give each once"
        )
    merged = {**spec_params, **params}
    if ":" in name:
        return _build_prefixed(name, merged)
    return _instantiate(name, get_forecaster_class(name), merged)


def get_forecaster_class(name: str) -> type[Forecaster]:
    """The class registered under ``name`` (no prefix families).

    Raises:
        UnknownForecasterError: listing the valid names and the closest match.
    """
    _discover_entry_points()
    cls = _STATE.classes.get(name)
    if cls is None:
        raise _unknown(name)
    return cls


def list_forecasters(
    pattern: str | None = None, *, include_broken: bool = True
) -> list[ForecasterInfo]:
    """Every registered forecaster, prefix family and (by default) broken plugin, by name.

    Args:
        pattern: keep only names containing this substring (case-insensitive).
        include_broken: also list plugins that failed to load (their ``error`` is set).

    Returns:
        :class:`ForecasterInfo` rows sorted by name.
    """
    _discover_entry_points()
    rows = [_info(name, cls) for name, cls in _STATE.classes.items()]
    rows += [
        ForecasterInfo(
            f"{prefix}:<Name>", {}, entry.description, entry.source, False, entry.examples
        )
        for prefix, entry in _STATE.prefixes.items()
    ]
    if include_broken:
        rows += [
            ForecasterInfo(name, {}, "failed to load", source, False, (), error)
            for name, (source, error) in _STATE.broken.items()
        ]
    if pattern:
        rows = [row for row in rows if pattern.lower() in row.name.lower()]
    return sorted(rows, key=lambda row: row.name)


def broken_plugins() -> dict[str, str]:
    """Plugins that failed to load: name (entry-point name or file path) → error message."""
    _discover_entry_points()
    return {name: error for name, (_, error) in _STATE.broken.items()}


# -------------------------------------------------------------------- helpers
@contextlib.contextmanager
def loading(source: str) -> Iterator[None]:
    """Record ``source`` for every registration made inside the block (a plugin importing)."""
    token = _LOADING.set(source)
    try:
        yield
    finally:
        _LOADING.reset(token)


def _source_of(cls: type) -> str:
    loading = _LOADING.get()
    if loading is not None:
        return loading
    module = cls.__module__
    if module == "forecastprune" or module.startswith("forecastprune."):
        return "built-in"
    return f"module: {module}"


def _check_name(name: Any) -> None:
    # Specs ("name(key=value)") come from the command line and configs, and the spec grammar
    # reads a name as an ASCII identifier; a name it cannot parse could never be looked up.
    if not isinstance(name, str) or not (name.isascii() and name.isidentifier()):
        fixed = name.replace("-", "_") if isinstance(name, str) else ""
        hint = f"; e.g. {fixed!r}" if fixed.isascii() and fixed.isidentifier() else ""
        raise ForecasterError(
            "forecaster names must be ASCII identifiers (A-Z, a-z, digits, underscores) so "
            f"that specs can name them; got {name!r}{hint}"
        )


def _info(name: str, cls: type[Forecaster]) -> ForecasterInfo:
    return ForecasterInfo(
        name=name,
        params=cls.param_defaults(),
        description=cls.description or (inspect.getdoc(cls) or "").split("\n")[0],
        source=_STATE.sources[name],
        supports_interval=cls.get_class_tag("supports_interval"),
    )


def _instantiate(name: str, cls: type[Forecaster], params: dict[str, Any]) -> Forecaster:
    defaults = cls.param_defaults()
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ForecasterError(
            f"{name} has no parameter(s) {unknown}; valid parameters: {describe_params(defaults)}"
        )
    missing = sorted(
        k for k, v in defaults.items() if v is inspect.Parameter.empty and k not in params
    )
    if missing:
        raise ForecasterError(
            f"{name} needs the parameter(s) {missing}; e.g. {name}("
            + ", ".join(f"{k}=..." for k in missing)
            + ")"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:  # a plugin's own validation; make it a user error
        raise ForecasterError(f"cannot build {name} with {params}: {exc}") from exc


def _build_prefixed(name: str, params: dict[str, Any]) -> Forecaster:
    _discover_entry_points()
    prefix, member = name.split(":", 1)
    entry = _STATE.prefixes.get(prefix)
    if entry is None:
        known = sorted(_STATE.prefixes) or ["(none registered)"]
        raise UnknownForecasterError(
            f"unknown forecaster prefix {prefix!r} in {name!r}; known prefixes: {known}"
        )
    forecaster = entry.factory(member, dict(params))
    if not isinstance(forecaster, Forecaster):
        raise ForecasterError(
            f"the {prefix!r} prefix factory returned {forecaster!r}, not a Forecaster"
        )
    return forecaster


def describe_params(defaults: dict[str, Any]) -> str:
    """``"window=5, alpha"``-style text for parameters and defaults (no default = bare name)."""
    if not defaults:
        return "none"
    return ", ".join(
        k if v is inspect.Parameter.empty else f"{k}={v!r}" for k, v in defaults.items()
    )


def _unknown(name: str) -> UnknownForecasterError:
    valid = sorted(_STATE.classes)
    prefixes = [f"{p}:<Name>" for p in sorted(_STATE.prefixes)]
    message = (
        f"unknown forecaster {name!r}.{closest(name, valid, 0.5)} Valid names: {valid + prefixes}"
    )
    if _STATE.broken:
        message += f". Plugins that failed to load: {sorted(_STATE.broken)}"
    return UnknownForecasterError(message)


#: scans the installed plugins before the first lookup; :mod:`.plugin_loading`, which builds on
#: this module, installs it (so this module never imports that one)
_DISCOVERY: list[Callable[[], None]] = []


def set_discovery(discover: Callable[[], None]) -> None:
    """Install the function that loads the installed plugins on the first lookup."""
    _DISCOVERY[:] = [discover]


def _discover_entry_points() -> None:
    for discover in _DISCOVERY:
        discover()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@contextlib.contextmanager
def isolated_state(rediscover: bool = False) -> Iterator[None]:
    """Run a block against a copy of the registry and restore the original afterwards.

    Meant for tests (see :func:`forecastprune.testing.isolated_registry`): registrations,
    plugin loads and entry-point discovery inside the block leave no trace.

    Args:
        rediscover: scan the entry points again on the first lookup inside the block (after a
            test put a new distribution on ``sys.path``).
    """
    global _STATE
    saved = _STATE
    _STATE = saved.copy()
    if rediscover:
        _STATE.entry_points_done = False
    try:
        yield
    finally:
        _STATE = saved
