"""Every numeric setting of every model refuses values out of its range, by name.

The cases come from the config dataclasses' annotations, so a new int or
float setting is tried as soon as it exists: -1, 0, NaN and (for floats)
infinity. A value that a setting does accept is listed below with what it
means there; every other one must raise a ValueError that names the setting
and shows the value.
"""

from __future__ import annotations

import math
import typing

import pytest

from dotrec.models import MODELS

ACCEPTED = {
    # (model or "*" for every model, setting, value): what the value means there
    ("*", "seed", 0): "the default seed",
    ("mf", "n_negatives", 0): "BCE against the observed negatives (rows labelled 0) alone",
    ("mf", "l2", 0.0): "no L2 penalty",
    ("bpr", "l2", 0.0): "no L2 penalty",
    ("mf", "weight_decay", 0.0): "no weight decay (the default)",
    ("bpr", "weight_decay", 0.0): "no weight decay (the default)",
    ("mf", "popularity_alpha", 0.0): "popularity sampling that draws uniformly",
    ("bpr", "popularity_alpha", 0.0): "popularity sampling that draws uniformly",
    ("als", "regularization", 0.0): "no L2 penalty",
    ("als", "regularization_exponent", 0.0): "one penalty for every vector (the default)",
    ("als", "alpha", 0.0): "every observed pair with confidence 1",
    ("gf-cf", "alpha", 0.0): "no ideal low-pass filter",
    ("gf-cf", "sharpen", 0.0): "no sharpening step",
    ("gf-cf", "popularity_exponent", 0.0): "no popularity weighting",
    ("gf-cf", "popularity_exponent", -1.0): "in [-1, 1]: below 0 favours rare items",
    ("gf-cf", "oversample", 0): "no extra directions in the randomized SVD",
    ("itemknn", "shrinkage", 0.0): "plain cosine similarity",
    ("lightgcn", "n_layers", 0): "no propagation: matrix factorization trained with BPR",
    ("lightgcn", "l2", 0.0): "no L2 penalty",
    ("two-tower", "l2", 0.0): "no L2 penalty",
    ("two-tower", "weight_decay", 0.0): "no weight decay (the default)",
    ("two-tower", "id_dropout", 0.0): "ID embeddings always used",
}


def _kind(hint) -> str | None:
    """``"int"``, ``"float"`` or ``"ints"`` (a tuple of ints) for a numeric annotation."""
    if typing.get_origin(hint) is tuple:
        return "ints" if typing.get_args(hint)[0] is int else None
    options = typing.get_args(hint) or (hint,)  # X | None, X | Literal["auto"]
    if float in options:
        return "float"
    return "int" if int in options else None


def _cases() -> list:
    values = {
        "int": [-1, 0, math.nan],
        "float": [-1.0, 0.0, math.nan, math.inf],
        "ints": [(-1,), (0,)],
    }
    cases = []
    for name, model in sorted(MODELS.items()):
        for setting, hint in typing.get_type_hints(model.config_class).items():
            for value in values.get(_kind(hint), []):
                accepted = ACCEPTED.get((name, setting, value)) or ACCEPTED.get(
                    ("*", setting, value)
                )
                cases.append(
                    pytest.param(name, setting, value, accepted, id=f"{name}-{setting}-{value}")
                )
    return cases


@pytest.mark.parametrize("name, setting, value, accepted", _cases())
def test_numeric_settings_refuse_values_out_of_range_by_name(name, setting, value, accepted):
    if accepted:  # a listed exception must really be accepted
        assert getattr(MODELS[name](**{setting: value}).config, setting) == value
        return
    with pytest.raises(ValueError) as info:
        MODELS[name](**{setting: value})
    message = str(info.value)
    assert setting in message, message
    if not isinstance(value, tuple):
        assert repr(value) in message, message
