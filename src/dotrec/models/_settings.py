"""Model settings: the base of each config dataclass, and checks of types and ranges."""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any, Literal

import numpy as np

SEED_MAX = 2**63 - 1
"""The largest seed: the TOML of run.toml allows 64-bit signed integers (Torch's
generators would take up to 2**64 - 1)."""


class ModelConfig:
    """Base of every model's settings dataclass: conversion to and from a plain dict."""

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (JSON- and TOML-ready)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Settings from a plain dict; unknown keys are an error that lists the known ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings {unknown}; known: {sorted(names)}")
        return cls(**values)


def check_range(
    config: Any,
    *names: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    or_none: bool = False,
) -> None:
    """Raise ValueError unless each named setting of ``config`` lies in a range.

    The range runs from ``low`` to ``high``, both included unless
    ``low_open`` or ``high_open`` (an end left as None is unbounded). NaN and
    infinite values never pass; None passes when ``or_none``. The message
    names the setting, the value seen and the range::

        lr must be positive, got -1

    Raises:
        ValueError: the first setting out of its range.
    """
    for name in names:
        value = getattr(config, name)
        if value is None and or_none:
            continue
        if _within(value, low, high, low_open, high_open):
            continue
        text = _range_text(low, high, low_open, high_open)
        if high is None and isinstance(value, float) and not math.isfinite(value):
            text += " and finite"
        if or_none:
            text += " or None"
        raise ValueError(f"{name} must be {text}, got {value!r}")


def _within(value: Any, low, high, low_open: bool, high_open: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if not math.isfinite(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or (value < high if high_open else value <= high)


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        if not (low_open or high_open):
            return f"between {low} and {high}"
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        if low == 0:
            return "positive" if low_open else "non-negative"
        return f"greater than {low}" if low_open else f"at least {low}"
    return f"less than {high}" if high_open else f"at most {high}"


def _checked_settings(config_class: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with NumPy scalars made plain; a value of the wrong type is a ValueError.

    Checked against the annotations of ``config_class`` before its own range
    checks run, so that ``epochs="3"`` or ``seed=1.5`` is named as such rather
    than failing later inside training.
    """
    hints = typing.get_type_hints(config_class)
    checked = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if key in hints and not _fits(value, hints[key]):
            raise ValueError(
                f"setting {key} = {value!r} has the wrong type; expected {_described(hints[key])}"
            )
        checked[key] = value
    return checked


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is Literal:  # text that is not an option: the config's own check names them
        return isinstance(value, str) or value in args
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # NaN is a float: the config's range check refuses it by name
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _described(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_described(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin is tuple:
        return f"a list of {_described(args[0]).removeprefix('an ').removeprefix('a ')}s"
    names = {
        type(None): "None",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "text",
    }
    return names.get(hint, getattr(hint, "__name__", str(hint)))
