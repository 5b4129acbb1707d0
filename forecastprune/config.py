"""YAML config files for the commands: safe loading and typed validation against a dataclass.

A command describes its keys once, as a dataclass whose field names are its flag names
(``min_keep`` for ``--min-keep``). :func:`load_config` reads a YAML file with
``yaml.safe_load`` (no tags, nothing evaluated), rejects unknown keys naming the valid ones and
the closest match, and checks and converts every value by the field's type annotation; the
command then lets the flags the user actually passed win with :func:`with_overrides`.

Supported annotations: ``bool``, ``int``, ``float``, ``str``, ``tuple[T, ...]`` of those (a
YAML list, a single value, or a comma-separated string), and ``X | None``. Keys may be written
with dashes or underscores.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ._util import closest
from .errors import ConfigError

T = TypeVar("T")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping (an empty file is an empty mapping).

    Raises:
        ConfigError: if the file is missing, unreadable, not YAML, or not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} is "
            f"{exc.object[exc.start]:#04x}); pass a YAML file"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys to values; got a {type(data).__name__}"
        )
    return data


def load_config(path: str | Path, schema: type[T]) -> T:
    """Read and validate a YAML config file against a dataclass schema."""
    return from_mapping(read_yaml(path), schema, source=f"config file {path}")


def from_mapping(data: Mapping[str, Any], schema: type[T], source: str = "the config") -> T:
    """Validate a mapping against a dataclass schema.

    Args:
        data: keys (dashes or underscores) to values.
        schema: a dataclass whose fields all have defaults.
        source: where the mapping came from, for messages.

    Returns:
        An instance of ``schema``.

    Raises:
        ConfigError: on unknown keys (naming the valid ones) or values of the wrong type.
    """
    fields = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key not in fields:
            raise ConfigError(_unknown_key(str(raw_key), sorted(fields), source))
        values[key] = convert(value, hints[key], f"{source}: {key}")
    return schema(**values)


def with_overrides(config: T, **overrides: Any) -> T:
    """A copy of ``config`` with every override that is not None (or an empty tuple) applied."""
    changes = {k: v for k, v in overrides.items() if v is not None and v != ()}
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def split_list(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes: ``"arima(p=2,d=1),sma"`` → 2 items.

    Raises:
        ConfigError: on unbalanced parentheses.
    """
    items, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"unbalanced ')' in {text!r}")
        elif char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if depth or quote:
        raise ConfigError(f"unclosed parenthesis or quote in {text!r}")
    items.append("".join(current).strip())
    return [item for item in items if item]


def convert(value: Any, annotation: Any, what: str) -> Any:
    """Check and convert one value by a type annotation (see the module docstring).

    Raises:
        ConfigError: naming ``what``, the value received and the type expected.
    """
    args = typing.get_args(annotation)
    if _is_optional(annotation):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert(value, inner[0], what)
    if typing.get_origin(annotation) is tuple:
        items = split_list(value) if isinstance(value, str) else value
        items = items if isinstance(items, (list, tuple)) else [items]
        return tuple(convert(item, args[0], f"{what}[{i}]") for i, item in enumerate(items))
    return _scalar(value, annotation, what)


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    is_union = origin is typing.Union or origin is types.UnionType
    return is_union and type(None) in typing.get_args(annotation)


def _scalar(value: Any, kind: Any, what: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:  # a schema bug, not user input
        raise TypeError(f"unsupported config annotation {kind!r} for {what}")
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}[
        kind
    ]
    raise ConfigError(f"{what} must be {expected}; got {value!r}")


def _unknown_key(key: str, valid: list[str], source: str) -> str:
    hint = closest(key.replace("-", "_"), valid)
    return (
        f"{source} has an unknown key {key!r}.{hint} Expected one of the valid keys: "
        f"{', '.join(valid)}"
    )
