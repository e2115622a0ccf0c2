"""Vocabulary: the two-way map between raw IDs and 0-based indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from dotrec.exceptions import UnknownIDError

__all__ = ["Vocabulary", "ids_to_text"]


def ids_to_text(values: Iterable[object] | np.ndarray | pd.Series) -> np.ndarray:
    """Convert raw IDs to their text form, the one form dotrec compares.

    Strings stay as they are (``"007"`` stays ``"007"``); integers become their
    decimal text (``10**12`` becomes ``"1000000000000"``); floats are accepted
    only when integral, since ``1.0`` and ``1`` would otherwise be two users.

    Returns:
        A 1-D object array of ``str``.

    Raises:
        ValueError: for missing values or non-integral floats.
    """
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.dtype.kind in "iu":
        return arr.astype(str).astype(object)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(
                "IDs must be text or integers; got non-integral or missing float values. "
                "Read the ID columns as text (dtype=str)."
            )
        return arr.astype(np.int64).astype(str).astype(object)
    out = np.empty(len(arr), dtype=object)
    for pos, value in enumerate(arr):
        out[pos] = _one_id_to_text(value)
    return out


def _one_id_to_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"IDs must be text or integers, got the boolean {value!r}")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and value == int(value):
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise ValueError(f"IDs must be text or integers, got {value!r} ({type(value).__name__})")


class Vocabulary:
    """Raw IDs (text) in a fixed order; index ``i`` stands for ``ids[i]``.

    Raw IDs are opaque text: ``"007"`` and ``"7"`` are two different IDs.
    Integers given at lookup are converted to their decimal text first.

    Args:
        ids: distinct raw IDs in index order.

    Example:
        >>> vocab = Vocabulary(["007", "7", "NA"])
        >>> vocab.index(["NA", "007"]).tolist()
        [2, 0]
        >>> vocab.ids[1]
        '7'
    """

    def __init__(self, ids: Sequence[object] | np.ndarray):
        text = ids_to_text(ids)
        self._index = pd.Index(text, dtype=object)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise ValueError(f"vocabulary IDs must be distinct; {dup!r} appears more than once")

    @classmethod
    def from_values(cls, values: np.ndarray) -> tuple[Vocabulary, np.ndarray]:
        """Build a vocabulary from raw ID text in order of first appearance.

        Returns:
            The vocabulary and the int64 index of every value.
        """
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
        return cls(np.asarray(uniques, dtype=object)), codes.astype(np.int64)

    @property
    def ids(self) -> np.ndarray:
        """The raw IDs as a 1-D object array of ``str``, in index order."""
        return self._index.to_numpy()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw_id: object) -> bool:
        try:
            return _one_id_to_text(raw_id) in self._index
        except ValueError:
            return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids)"

    def lookup(self, raw_ids: Iterable[object] | np.ndarray) -> np.ndarray:
        """Indices of ``raw_ids``, with -1 for IDs not in the vocabulary."""
        text = ids_to_text(raw_ids)
        return self._index.get_indexer(text).astype(np.int64)

    def index(self, raw_ids: Iterable[object] | np.ndarray, kind: str = "id") -> np.ndarray:
        """Indices of ``raw_ids``.

        Raises:
            UnknownIDError: naming every ID not in the vocabulary.
        """
        text = ids_to_text(raw_ids)
        idx = self._index.get_indexer(text).astype(np.int64)
        if (idx < 0).any():
            raise UnknownIDError(kind, list(dict.fromkeys(text[idx < 0])))
        return idx

    def to_list(self) -> list[str]:
        """The raw IDs as a plain list, for JSON."""
        return self._index.tolist()
