"""Registry behaviours: registration, lookup, spec parsing, prefix families, file plugins."""

from __future__ import annotations

import inspect
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.errors import ForecasterError, UnknownForecasterError
from forecastprune.forecasters import (
    Forecaster,
    PluginWarning,
    broken_plugins,
    format_spec,
    get_forecaster,
    get_forecaster_class,
    list_forecasters,
    load_plugins,
    parse_spec,
    register_forecaster,
    register_prefix,
)
from forecastprune.forecasters.linear import LinearForecaster
from forecastprune.forecasters.sma import SMAForecaster
from forecastprune.testing import isolated_registry

BUILT_INS = {"naive", "sma", "ema", "linear"}


class _Const(Forecaster):
    description = "always predicts `value`"

    def __init__(self, value: float = 1.0) -> None:
        self.value = value

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.width_ = values.shape[1]

    def _predict(self, target_t: float) -> np.ndarray:
        return np.full(self.width_, float(self.value))


class _Required(Forecaster):
    description = "has a parameter without default"

    def __init__(self, order: int) -> None:
        self.order = order


# ------------------------------------------------------------------ registering
def test_duplicate_name_raises_and_override_replaces() -> None:
    with isolated_registry():
        register_forecaster("const")(_Const)
        register_forecaster("const")(_Const)  # same class again: harmless
        other = type("Other", (_Const,), {})
        with pytest.raises(ForecasterError, match="already registered.*override=True"):
            register_forecaster("const")(other)
        register_forecaster("const", override=True)(other)
        assert get_forecaster_class("const") is other
    assert "const" not in {info.name for info in list_forecasters()}


def test_builtin_name_cannot_be_taken_silently() -> None:
    with isolated_registry(), pytest.raises(ForecasterError, match="'sma' is already"):
        register_forecaster("sma")(_Const)
    assert get_forecaster_class("sma") is SMAForecaster


@pytest.mark.parametrize("name", ["", "two words", "a:b", "1abc", None])
def test_malformed_names_rejected(name: object) -> None:
    with isolated_registry(), pytest.raises(ForecasterError, match="identifiers"):
        register_forecaster(name)(_Const)  # type: ignore[arg-type]


def test_only_forecaster_subclasses_register() -> None:
    with isolated_registry(), pytest.raises(ForecasterError, match="Forecaster subclasses"):
        register_forecaster("dict")(dict)  # type: ignore[arg-type]


def test_user_registration_source_names_the_module() -> None:
    with isolated_registry():
        register_forecaster("const")(_Const)
        (info,) = list_forecasters("const")
        assert info.source == f"module: {__name__}"
        assert info.params == {"value": 1.0}
        assert info.description == "always predicts `value`"


# ------------------------------------------------------------------ lookup
def test_get_forecaster_by_spec_and_keywords() -> None:
    by_spec = get_forecaster("linear(window=7, damped=0.5, time_axis=lr)")
    assert isinstance(by_spec, LinearForecaster)
    assert by_spec.get_params() == {
        "window": 7,
        "clip_at_zero": True,
        "damped": 0.5,
        "time_axis": "lr",
    }
    by_kwargs = get_forecaster("linear", window=7, damped=0.5, time_axis="lr")
    assert by_kwargs.get_params() == by_spec.get_params()


def test_spec_and_keyword_clash_is_an_error() -> None:
    with pytest.raises(ForecasterError, match=r"\['window'\].*both"):
        get_forecaster("sma(window=3)", window=4)


def test_unknown_name_lists_valid_names_and_closest_match() -> None:
    with pytest.raises(UnknownForecasterError) as info:
        get_forecaster("lineer")
    message = str(info.value)
    assert "Did you mean 'linear'?" in message
    assert all(f"'{name}'" in message for name in BUILT_INS)
    assert isinstance(info.value, KeyError)  # catchable as a lookup error too


def test_unknown_parameter_lists_valid_parameters() -> None:
    with pytest.raises(ForecasterError, match="no parameter.*'windw'.*window=10.*damped=None"):
        get_forecaster("linear(windw=3)")


def test_missing_required_parameter_is_named() -> None:
    with isolated_registry():
        register_forecaster("needs_order")(_Required)
        with pytest.raises(ForecasterError, match=r"needs the parameter\(s\) \['order'\]"):
            get_forecaster("needs_order")
        assert list_forecasters("needs_order")[0].params == {"order": inspect.Parameter.empty}


def test_invalid_value_fails_at_construction() -> None:
    with pytest.raises(ForecasterError, match="window must be an integer >= 1; got 0"):
        get_forecaster("sma(window=0)")


def test_list_forecasters_reports_builtins_with_defaults() -> None:
    infos = {info.name: info for info in list_forecasters()}
    assert set(infos) >= BUILT_INS
    assert infos["sma"].params == {"window": 5}
    assert infos["linear"].supports_interval and not infos["naive"].supports_interval
    assert all(infos[name].source == "built-in" for name in BUILT_INS)
    assert all(infos[name].description for name in BUILT_INS)
    assert [i.name for i in list_forecasters("LIN")] == ["linear"]
    assert [i.name for i in list_forecasters()] == sorted(i.name for i in list_forecasters())


# ------------------------------------------------------------------ spec parsing
def test_parse_spec_value_types() -> None:
    name, params = parse_spec(
        "x(a=1, b=-2.5, c=1e-3, d=True, e=false, f=None, g='q, (r)', h=\"it\\'s\", i=lr, j=.5,)"
    )
    assert name == "x"
    assert params == {
        "a": 1,
        "b": -2.5,
        "c": 1e-3,
        "d": True,
        "e": False,
        "f": None,
        "g": "q, (r)",
        "h": "it's",
        "i": "lr",
        "j": 0.5,
    }
    assert type(params["a"]) is int and type(params["c"]) is float


def test_parse_spec_prefix_and_bare_name() -> None:
    assert parse_spec("sktime:NaiveForecaster(strategy='mean')") == (
        "sktime:NaiveForecaster",
        {"strategy": "mean"},
    )
    assert parse_spec("  naive ") == ("naive", {})
    assert parse_spec("naive()") == ("naive", {})


MALICIOUS = [
    "__import__('os')",
    "__import__('os').system('echo hi')",
    "sma(window=__import__('os').system('x'))",
    "sma(window=(1))",
    "sma(window=[1])",
    "sma(window=1)()",
    "sma(window=1); rm -rf /",
    "eval('1')",
    "lambda: 0",
    "sma(**{'window': 1})",
    "sma(window=1, window=2)",
    "sma(window=1 + 1)",
    "sma(window=f'x')",
    "sma.__class__",
    "sma(",
    "sma(window=)",
    ":sma",
    "a:b:c",
    "",
]


@pytest.mark.parametrize("spec", MALICIOUS)
def test_malicious_or_malformed_specs_rejected(spec: str) -> None:
    with pytest.raises(ForecasterError):
        get_forecaster(spec)


def test_syntax_error_points_at_the_problem() -> None:
    with pytest.raises(ForecasterError, match="position 4") as info:
        parse_spec("sma(3)")
    assert "key=value" in str(info.value)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_parser_never_raises_anything_but_forecaster_error(text: str) -> None:
    try:
        name, params = parse_spec(text)
    except ForecasterError:
        return
    assert isinstance(name, str) and isinstance(params, dict)


_VALUES = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), _VALUES, max_size=5))
def test_format_then_parse_round_trips(params: dict[str, object]) -> None:
    name, parsed = parse_spec(format_spec("prefix:Name", params))
    assert name == "prefix:Name"
    assert parsed.keys() == params.keys()
    for key, value in params.items():
        if isinstance(value, float):
            assert isinstance(parsed[key], float) and math.isclose(parsed[key], value)
        else:
            assert parsed[key] == value and type(parsed[key]) is type(value)


# ------------------------------------------------------------------ prefix families
def test_prefix_factory_receives_member_and_params() -> None:
    calls: list[tuple[str, dict[str, object]]] = []

    def factory(member: str, params: dict[str, object]) -> Forecaster:
        calls.append((member, params))
        if member != "Const":
            raise UnknownForecasterError(f"no member {member!r}")
        return _Const(**params)  # type: ignore[arg-type]

    with isolated_registry():
        register_prefix("fam", factory, description="a family", examples=("fam:Const",))
        made = get_forecaster("fam:Const(value=3.0)")
        assert isinstance(made, _Const) and made.value == 3.0
        assert calls == [("Const", {"value": 3.0})]
        with pytest.raises(UnknownForecasterError, match="no member 'Other'"):
            get_forecaster("fam:Other")
        (row,) = list_forecasters("fam:")
        assert row.name == "fam:<Name>" and row.examples == ("fam:Const",) and row.is_prefix
        with pytest.raises(ForecasterError, match="already registered"):
            register_prefix("fam", factory)
    with pytest.raises(UnknownForecasterError, match="unknown forecaster prefix 'fam'"):
        get_forecaster("fam:Const")


def test_prefix_factory_must_return_a_forecaster() -> None:
    with isolated_registry():
        register_prefix("bad", lambda member, params: object())  # type: ignore[arg-type,return-value]
        with pytest.raises(ForecasterError, match="not a Forecaster"):
            get_forecaster("bad:Thing")


# ------------------------------------------------------------------ file plugins
_GOOD_PLUGIN = """
import numpy as np
from forecastprune.forecasters import Forecaster, register_forecaster

@register_forecaster("{name}")
class Plugin(Forecaster):
    description = "test plugin"
    def __init__(self):
        pass
    def _fit(self, t, values):
        self.last_ = values[-1].copy()
    def _predict(self, target_t):
        return self.last_.copy()
"""


def _write(folder: Path, filename: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(text)
    return path


def test_load_plugins_folder_reports_broken_file_and_loads_the_rest(tmp_path: Path) -> None:
    _write(tmp_path, "good.py", _GOOD_PLUGIN.format(name="good_one"))
    bad = _write(tmp_path, "bad.py", "raise RuntimeError('plugin exploded')\n")
    _write(tmp_path, "_private.py", "raise RuntimeError('never imported')\n")
    with isolated_registry():
        with pytest.warns(PluginWarning, match="plugin exploded"):
            added = load_plugins(tmp_path)
        assert added == ["good_one"]
        assert get_forecaster("good_one").fit([0, 1], [[1.0], [2.0]]).predict(5) == [2.0]
        assert broken_plugins() == {str(bad.resolve()): "RuntimeError: plugin exploded"}
        rows = {row.name: row for row in list_forecasters()}
        assert rows[str(bad.resolve())].broken
        assert rows["good_one"].source == f"file: {(tmp_path / 'good.py').resolve()}"
        assert [r.name for r in list_forecasters(include_broken=False) if r.broken] == []
        with pytest.raises(UnknownForecasterError, match="failed to load"):
            get_forecaster("missing_one")
    assert "good_one" not in {row.name for row in list_forecasters()}


def test_load_plugins_is_idempotent_and_module_names_unique(tmp_path: Path) -> None:
    first = _write(tmp_path / "a", "plugin.py", _GOOD_PLUGIN.format(name="from_a"))
    _write(tmp_path / "b", "plugin.py", _GOOD_PLUGIN.format(name="from_b"))
    with isolated_registry():
        assert load_plugins(first) == ["from_a"]
        assert load_plugins(first) == []  # same file again: no duplicate error
        assert load_plugins(tmp_path / "b") == ["from_b"]
        a, b = get_forecaster_class("from_a"), get_forecaster_class("from_b")
        assert a.__module__ != b.__module__


def test_plugin_registering_a_taken_name_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "clash.py", _GOOD_PLUGIN.format(name="sma"))
    with isolated_registry():
        with pytest.warns(PluginWarning, match="already registered"):
            assert load_plugins(path) == []
        assert get_forecaster_class("sma") is SMAForecaster


@pytest.mark.parametrize("name", ["missing.py", "notes.txt"])
def test_load_plugins_bad_path(tmp_path: Path, name: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ForecasterError, match="plugin"):
        load_plugins(tmp_path / name)


def test_no_warnings_from_builtins() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in BUILT_INS:
            get_forecaster(name)


def test_a_hyphenated_name_gets_the_underscore_spelling_as_a_hint() -> None:
    with isolated_registry(), pytest.raises(ForecasterError, match="e.g. 'last_min'"):
        register_forecaster("last-min")(_Const)
