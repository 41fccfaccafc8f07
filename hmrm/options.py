"""Checking option values: one rule per field, the same whether a value comes from a flag or a file.

A configuration dataclass (:class:`hmrm.train.loso.LOSOConfig`, :class:`hmrm.model.HMRMConfig`) lists
its fields with type annotations; :func:`check_fields` checks every field against its annotation
(``int``, ``float``, ``bool``, ``str``, ``tuple[int, ...]``, ``X | None``) and against an optional
:class:`Rule` (a range or a list of accepted values). A value that fails raises
:class:`OptionError`, which knows the field's name, so that each front end can say where the value
came from: ``--lr`` on the command line, ``lr:`` in a YAML config, ``--set d_model=...``.

Numbers are not guessed from text: ``epochs: "ten"`` or ``--set d_model=abc`` is an error naming the
key and the accepted values, never a silent default or a failure deep inside training.
"""
from __future__ import annotations

import collections.abc
import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Any


class OptionError(ValueError):
    """A value that an option does not accept. ``key`` is the option's name (a dataclass field, or
    ``model_overrides.d_model`` for a model option); ``problem`` says what is accepted."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")

    def renamed(self, key: str) -> "OptionError":
        """The same error under the name the user typed (``--lr``, ``LR`` ...)."""
        return OptionError(key, self.problem)


@dataclass(frozen=True)
class Rule:
    """Accepted values beyond the type: ``low`` / ``high`` bounds (``low_open`` / ``high_open``
    exclude the bound itself) or ``choices``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None

    def accepts(self, value) -> bool:
        if self.choices is not None:
            return value in self.choices
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "any value"


def at_least(low: float) -> Rule:
    return Rule(low=low)


def positive() -> Rule:
    return Rule(low=0, low_open=True)


def between(low: float, high: float, high_open: bool = False) -> Rule:
    return Rule(low=low, high=high, high_open=high_open)


def one_of(*choices) -> Rule:
    return Rule(choices=tuple(choices))


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "text", dict: "a mapping"}


def _describe_type(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(_describe_type(a) for a in inner)
        return text + (" (or None)" if type(None) in args else "")
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return f"a list of {len(args)} values"
    if origin in (tuple, list, collections.abc.Sequence):
        return f"a list of {_describe_type(args[0]).replace('an integer', 'integers').replace('a number', 'numbers')}"
    if origin is dict:
        return "a mapping"
    return _KIND_NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def _coerce(value, hint) -> tuple[bool, Any]:
    """(ok, value in its canonical form) for ``value`` against a type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return type(None) in args, None
        for a in args:
            if a is type(None):
                continue
            ok, out = _coerce(value, a)
            if ok:
                return True, out
        return False, value
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False, value
        fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(value) != len(args):
            return False, value
        out = []
        for i, v in enumerate(value):
            ok, c = _coerce(v, args[i] if fixed else args[0])
            if not ok:
                return False, value
            out.append(c)
        return True, tuple(out)
    if origin is dict or hint is dict:
        return isinstance(value, dict), dict(value) if isinstance(value, dict) else value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, int(value)
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return math.isfinite(value), float(value)
    if hint is str:
        return isinstance(value, str), value
    if hint is Any:
        return True, value
    return isinstance(value, origin or hint), value


def check_value(key: str, value, hint, rule: Rule | None = None):
    """``value`` in its canonical form (``5`` -> ``5.0`` for a float, a list -> a tuple), or
    :class:`OptionError` naming ``key``, the accepted values and what was given."""
    ok, out = _coerce(value, hint)
    if ok and rule is not None and out is not None:
        ok = all(rule.accepts(v) for v in (out if isinstance(out, tuple) else (out,)))
    if not ok:
        raise OptionError(key, f"must be {accepted(hint, rule)}, got {value!r}"
                               + ("" if _coerce(value, hint)[0] else f" ({type(value).__name__})"))
    return out


def accepted(hint, rule: Rule | None = None) -> str:
    """What a field accepts, in words: "an integer >= 1 (or None)", "one of constant, cosine"."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    inner = [a for a in args if a is not type(None)] if optional else [hint]
    if rule is not None and rule.choices is not None:
        text = rule.describe() if typing.get_origin(inner[0]) is None else f"a list, each {rule.describe()}"
    else:
        text = " or ".join(_describe_type(a) for a in inner) + (f" {rule.describe()}" if rule else "")
    return text + (" (or None)" if optional else "")


def check_fields(obj, rules: dict[str, Rule] | None = None) -> None:
    """Check (and canonicalise, in place) every field of the dataclass instance ``obj`` against its
    type annotation and ``rules``; the first bad one raises :class:`OptionError`."""
    hints = typing.get_type_hints(type(obj))
    rules = rules or {}
    for f in fields(obj):
        value = check_value(f.name, getattr(obj, f.name), hints[f.name], rules.get(f.name))
        object.__setattr__(obj, f.name, value)


def check_kwargs(func, kwargs: dict, rules: dict[str, Rule] | None = None, prefix: str = "") -> dict:
    """The keyword arguments of ``func`` checked against its annotations and ``rules`` (an unknown
    name raises :class:`OptionError` listing the known ones)."""
    import inspect

    params = {n: p for n, p in inspect.signature(func).parameters.items() if n != "self"}
    hints = typing.get_type_hints(func)
    rules = rules or {}
    out = {}
    for key, value in kwargs.items():
        if key not in params:
            raise OptionError(prefix + key, f"unknown option; known: {', '.join(params)}")
        out[key] = check_value(prefix + key, value, hints.get(key, Any), rules.get(key))
    return out
