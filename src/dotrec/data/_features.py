"""Side features: a table of user or item attributes as a dense float matrix."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["FeatureEncoder", "FeatureKind"]

FeatureKind = Literal["categorical", "multi_hot", "numeric"]
_KINDS = ("categorical", "multi_hot", "numeric")


@dataclass
class _Column:
    name: str
    kind: FeatureKind
    values: list[str] = field(default_factory=list)
    """Known categories or tokens (categorical, multi_hot), one output column each."""
    mean: float = 0.0
    std: float = 1.0

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.values)


class FeatureEncoder:
    """Encodes a table of side features as a dense float32 matrix, one row per entity.

    Each column becomes one block of the output:

    - ``categorical``: one-hot over the values seen in :meth:`fit`;
    - ``multi_hot``: one 0/1 column per token of ``sep``-joined text such as
      MovieLens genres (``"Action|Comedy"``);
    - ``numeric``: standardised, ``(x - mean) / std`` with the mean and
      standard deviation of :meth:`fit`.

    A missing value (NaN, None, empty text) or a category not seen in
    :meth:`fit` encodes as all zeros (the mean, for a numeric column), so
    rows for new entities can always be encoded. The encoder holds only plain
    values and converts to and from a dict for JSON (:meth:`to_dict`).

    Example:
        >>> frame = pd.DataFrame({"age": [20, 40], "genres": ["Action|Drama", "Drama"]})
        >>> encoder = FeatureEncoder.fit(frame)
        >>> encoder.feature_names
        ['age', 'genres=Action', 'genres=Drama']
        >>> encoder.transform(frame).tolist()
        [[-1.0, 1.0, 1.0], [1.0, 0.0, 1.0]]
    """

    def __init__(self, columns: list[_Column], sep: str = "|"):
        self.columns = columns
        self.sep = sep

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        kinds: dict[str, FeatureKind] | None = None,
        *,
        sep: str = "|",
        max_categories: int = 1000,
    ) -> FeatureEncoder:
        """Learn the categories and scales of every column of ``frame``.

        Args:
            frame: one row per entity; the index is not used.
            kinds: the kind of some or all columns. Otherwise numbers and
                booleans are ``numeric``, text holding ``sep`` in any row is
                ``multi_hot`` and other text is ``categorical``.
            sep: separator of ``multi_hot`` tokens.
            max_categories: per column, keep the most frequent values (ties
                by name); rarer ones encode as zeros.

        Raises:
            TypeError: ``frame`` is not a DataFrame.
            ValueError: an unknown kind or column in ``kinds``, or a column
                (for example dates) that is neither text nor numbers.
        """
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"features must be a pandas DataFrame, got {type(frame).__name__}")
        kinds = dict(kinds or {})
        unknown = sorted(set(kinds) - set(frame.columns))
        if unknown:
            raise ValueError(f"kinds names columns {unknown} that the features do not have")
        columns = []
        for name in frame.columns:
            kind = kinds.get(name) or _infer_kind(frame[name], sep)
            if kind not in _KINDS:
                raise ValueError(f"feature {name!r}: kind must be one of {_KINDS}, got {kind!r}")
            columns.append(_fit_column(str(name), kind, frame[name], sep, max_categories))
        return cls(columns, sep)

    @property
    def width(self) -> int:
        """Number of output columns."""
        return sum(col.width for col in self.columns)

    @property
    def feature_names(self) -> list[str]:
        """Name of each output column: ``age``, ``occupation=writer``, ``genres=Drama``."""
        names = []
        for col in self.columns:
            names += (
                [col.name] if col.kind == "numeric" else [f"{col.name}={v}" for v in col.values]
            )
        return names

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` (rows in order) as a float32 array (len(frame), width).

        Raises:
            ValueError: ``frame`` lacks a column the encoder was fitted on.
        """
        missing = [col.name for col in self.columns if col.name not in frame.columns]
        if missing:
            raise ValueError(
                f"the features lack the columns {missing} that the model was trained with; "
                f"give columns {[col.name for col in self.columns]}"
            )
        blocks = [self._encode(col, frame[col.name]) for col in self.columns]
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)

    def _encode(self, col: _Column, series: pd.Series) -> np.ndarray:
        if col.kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
            scaled = (values - col.mean) / col.std
            return np.nan_to_num(scaled, nan=0.0).reshape(-1, 1)
        position = {value: j for j, value in enumerate(col.values)}
        out = np.zeros((len(series), len(col.values)), dtype=np.float32)
        for row, value in enumerate(series.tolist()):
            for token in _tokens(value, col.kind, self.sep):
                j = position.get(token)
                if j is not None:
                    out[row, j] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        """The encoder as plain values (for JSON)."""
        return {
            "sep": self.sep,
            "columns": [
                {"name": c.name, "kind": c.kind, "values": c.values, "mean": c.mean, "std": c.std}
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureEncoder:
        """The encoder that :meth:`to_dict` described."""
        return cls([_Column(**col) for col in values["columns"]], values["sep"])

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name}: {c.kind} ({c.width})" for c in self.columns)
        return f"FeatureEncoder({kinds})"


def _infer_kind(series: pd.Series, sep: str) -> FeatureKind:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    if not (
        pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    ):
        raise ValueError(
            f"feature {series.name!r} has dtype {series.dtype}, neither text nor numbers; "
            "convert it (e.g. a date to its year) or drop the column"
        )
    text = series.dropna().astype(str)
    return "multi_hot" if text.str.contains(sep, regex=False).any() else "categorical"


def _fit_column(
    name: str, kind: FeatureKind, series: pd.Series, sep: str, max_categories: int
) -> _Column:
    if kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if len(finite) else 0.0
        std = float(finite.std()) if len(finite) else 0.0
        return _Column(name, kind, mean=mean, std=std if std > 0 else 1.0)
    counts = Counter(token for value in series.tolist() for token in _tokens(value, kind, sep))
    ranked = sorted(counts, key=lambda token: (-counts[token], token))[:max_categories]
    return _Column(name, kind, values=sorted(ranked))


def _tokens(value: object, kind: FeatureKind, sep: str) -> list[str]:
    """The categories of one cell: none when missing, several for multi-hot text."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return []
    text = str(value)
    if kind == "multi_hot":
        return [token for token in text.split(sep) if token]
    return [text] if text else []
