"""The safe parser for forecaster spec strings such as ``arima(p=2, d=1, q=1)``.

Specs come from the command line and from YAML configs, so they are untrusted text: this module
tokenizes them with one regular expression and reads them with a four-rule grammar. Nothing is
ever evaluated (no ``eval``, no ``ast.literal_eval``), so ``__import__('os')`` is just a name
followed by a positional argument, which the grammar rejects.

Grammar::

    spec   := name [ "(" [ param ("," param)* [","] ] ")" ]
    name   := IDENT [ ":" IDENT ]          # e.g. sma, sktime:NaiveForecaster
    param  := IDENT "=" value
    value  := INT | FLOAT | True | False | None | 'quoted' | "quoted" | bare-word
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ForecasterError

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_\d]))
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
  | (?P<punct>[(),=:])
    """,
    re.VERBOSE,
)

#: bare words that mean a Python constant (YAML spellings accepted too)
_CONSTANTS: dict[str, Any] = {
    "True": True,
    "true": True,
    "False": False,
    "false": False,
    "None": None,
    "none": None,
    "null": None,
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_SYNTAX_HELP = (
    "expected NAME or NAME(key=value, ...), e.g. 'sma(window=20)' or 'arima(p=2,d=1,q=1)'"
)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a spec string into a forecaster name and its parameters.

    Args:
        spec: e.g. ``"linear(window=8, damped=0.9, time_axis=lr)"`` or
            ``"sktime:NaiveForecaster(strategy='mean')"``.

    Returns:
        ``(name, params)``; the name keeps its ``prefix:`` if it has one.

    Raises:
        ForecasterError: on anything outside the grammar, naming the offending position.
    """
    if not isinstance(spec, str):
        raise ForecasterError(f"a forecaster spec must be a string; got {type(spec).__name__}")
    tokens = _tokenize(spec)
    parser = _Parser(spec, tokens)
    return parser.spec()


def format_spec(name: str, params: dict[str, Any]) -> str:
    """Inverse of :func:`parse_spec` for values the grammar can express."""
    if not params:
        return name
    args = ", ".join(f"{key}={_format_value(value)}" for key, value in params.items())
    return f"{name}({args})"


def _format_value(value: Any) -> str:
    if isinstance(value, str):  # the two escapes _unquote undoes, nothing else
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def _tokenize(spec: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(spec):
        match = _TOKEN.match(spec, position)
        if match is None:
            raise _syntax_error(spec, position, f"unexpected character {spec[position]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group(), position))
        position = match.end()
    return tokens


#: characters of a spec shown on each side of a syntax error (a long spec is cut around it)
_CONTEXT = 30


def _syntax_error(spec: str, position: int, problem: str) -> ForecasterError:
    start = max(0, position - _CONTEXT)
    excerpt = spec[start : position + _CONTEXT]
    head = "…" if start else ""
    excerpt = head + excerpt + ("…" if position + _CONTEXT < len(spec) else "")
    pointer = " " * (position - start + len(head)) + "^"
    shown = repr(spec) if len(spec) <= 2 * _CONTEXT else f"of {len(spec)} characters"
    return ForecasterError(
        f"cannot parse forecaster spec {shown}: {problem} at position {position}\n"
        f"  {excerpt}\n  {pointer}\n{_SYNTAX_HELP}"
    )


class _Parser:
    """A recursive-descent reader over the token list (one method per grammar rule)."""

    def __init__(self, spec: str, tokens: list[tuple[str, str, int]]) -> None:
        self.text = spec
        self.tokens = tokens
        self.index = 0

    def spec(self) -> tuple[str, dict[str, Any]]:
        name = self.name()
        params: dict[str, Any] = {}
        if self.accept("("):
            params = self.params()
            self.expect(")")
        if self.index < len(self.tokens):
            self.fail("unexpected text after the spec")
        return name, params

    def name(self) -> str:
        first = self.identifier("a forecaster name")
        if self.accept(":"):
            return f"{first}:{self.identifier('a name after the prefix')}"
        return first

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        while not self.peek(")"):
            key = self.identifier("a parameter name (parameters must be passed as key=value)")
            if key in params:
                self.fail(f"parameter {key!r} given twice", back=1)
            self.expect("=")
            params[key] = self.value()
            if not self.accept(","):
                break
        return params

    def value(self) -> Any:
        kind, text, _ = self.current("a value")
        self.index += 1
        if kind == "number":
            return self.number(text)
        if kind == "string":
            return _unquote(text)
        if kind == "word":
            return _CONSTANTS.get(text, text)
        self.fail(f"expected a value, found {text!r}", back=1)
        raise AssertionError("unreachable")  # fail() always raises

    def number(self, text: str) -> int | float:
        if any(c in text for c in ".eE"):
            return float(text)
        try:
            return int(text)
        except ValueError:  # Python refuses to convert integers of more than 4,300 digits
            self.fail(
                f"the number {text[:12]}… has {len(text)} digits, too many to be a parameter value",
                back=1,
            )
            raise AssertionError("unreachable") from None

    def identifier(self, what: str) -> str:
        kind, text, _ = self.current(what)
        if kind != "word" or not _NAME.fullmatch(text):
            self.fail(f"expected {what}, found {text!r}")
        self.index += 1
        return text

    # ------------------------------------------------------------ token helpers
    def current(self, what: str) -> tuple[str, str, int]:
        if self.index >= len(self.tokens):
            raise _syntax_error(self.text, len(self.text), f"expected {what}, found the end")
        return self.tokens[self.index]

    def peek(self, punct: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index][:2] == ("punct", punct)

    def accept(self, punct: str) -> bool:
        if self.peek(punct):
            self.index += 1
            return True
        return False

    def expect(self, punct: str) -> None:
        if not self.accept(punct):
            found = self.tokens[self.index][1] if self.index < len(self.tokens) else "the end"
            self.fail(f"expected {punct!r}, found {found!r}")

    def fail(self, problem: str, back: int = 0) -> None:
        index = min(self.index - back, len(self.tokens))
        position = self.tokens[index][2] if index < len(self.tokens) else len(self.text)
        raise _syntax_error(self.text, position, problem)


def _unquote(text: str) -> str:
    # Only the quote character and the backslash itself are escapable: no \n, \x, \u decoding,
    # so a spec cannot smuggle in characters it does not show.
    return re.sub(r"\\(.)", r"\1", text[1:-1])
