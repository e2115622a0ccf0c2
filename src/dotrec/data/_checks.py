"""Shared checks for values entering dotrec, with messages that name the place."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dotrec.exceptions import DataError

__all__ = [
    "check_finite",
    "check_labels",
    "datetimes_as_seconds",
    "describe_rows",
    "not_storable",
    "RANGE_NOTE",
]

RANGE_NOTE = {"rating": " (within the float32 range)", "timestamp": " (within the int64 range)"}
"""How each stored column limits its values, for messages."""


def datetimes_as_seconds(values: object) -> object:
    """Unix seconds (float64, NaN where missing) of date-time values; anything else as it is.

    Naive date-times are taken as UTC. Seconds come from the difference to the
    epoch, so the resolution pandas or NumPy stores them in does not matter.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        if series.dtype != object or pd.api.types.infer_dtype(series, skipna=True) not in (
            "datetime",
            "datetime64",
        ):
            return values
        series = pd.to_datetime(series, utc=True)
    seconds = epoch_seconds(series.dt)
    return np.floor(seconds.to_numpy(dtype=np.float64, na_value=np.nan))


def epoch_seconds(stamps):
    """Seconds since the Unix epoch of a pandas ``Timestamp`` or a Series' ``.dt``.

    Naive times are taken as UTC. The difference to the epoch, not the stored
    integer, so the resolution pandas keeps them in does not matter.
    """
    utc = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
    return (utc - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def not_storable(parsed: np.ndarray, column: str) -> np.ndarray:
    """Mask of values that are not finite or do not fit where dotrec keeps them.

    Ratings are stored as float32, so ``1e39`` would become infinite; timestamps
    as int64 seconds, so ``1e20`` would wrap around.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(parsed)
        if column == "rating":
            bad |= ~np.isfinite(parsed.astype(np.float32))
        elif column == "timestamp":
            bad |= ~(np.abs(parsed) < 2.0**63)
    return bad


def describe_rows(positions: np.ndarray, lines: np.ndarray | None, where: str = "line") -> str:
    """'line 3' or 'lines 3, 4, 6 and 2 more', from 0-based row positions."""
    numbers = positions + 1 if lines is None else lines[positions]
    shown = ", ".join(str(int(n)) for n in numbers[:10])
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return f"{where}{'s' if len(numbers) > 1 else ''} {shown}{more}"


def check_finite(
    values: object, column: str, source: str, lines: np.ndarray | None, where: str = "line"
) -> np.ndarray:
    """Parse ``values`` as finite numbers.

    Text such as ``"4.5"`` is parsed; empty fields, ``NaN``, ``inf``, values
    that overflow a double (``1e400``) and values that do not fit where the
    column is stored (see :func:`not_storable`) are refused.

    Returns:
        The values as float64.

    Raises:
        DataError: naming the column, how many rows are bad, their line
            numbers, the first value seen, and how to drop such rows.
    """
    raw = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if raw.dtype.kind in "iufb":
        parsed = raw.astype(np.float64)
    else:
        parsed = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(np.float64)
    bad = not_storable(parsed, column)
    if bad.any():
        positions = np.flatnonzero(bad)
        first = raw[positions[0]]
        raise DataError(
            f"{source}: {len(positions)} row{'s' if len(positions) > 1 else ''} with a "
            f"{column} that is not a finite number{RANGE_NOTE.get(column, '')}, at "
            f"{describe_rows(positions, lines, where)} "
            f"(first value seen: {str(first)!r}). Each {column} must be a finite number: fix "
            "those rows, or drop them with on_invalid='drop' (command line: --drop-invalid)."
        )
    return parsed


def check_labels(values: np.ndarray, source: str, lines: np.ndarray | None, where: str = "line"):
    """Parse 0/1 labels; anything else is a :class:`DataError`."""
    parsed = check_finite(values, "label", source, lines, where)
    bad = (parsed != 0) & (parsed != 1)
    if bad.any():
        positions = np.flatnonzero(bad)
        raise DataError(
            f"{source}: label must be 0 or 1, got {float(parsed[positions[0]]):g} at "
            f"{describe_rows(positions, lines, where)}."
        )
    return parsed.astype(np.int8)
