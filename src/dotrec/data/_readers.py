"""Readers for interaction logs: delimited text, Parquet and the MovieLens layouts."""

from __future__ import annotations

import codecs
import gzip
import io
import logging
import os
import re
import typing
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from dotrec.data._archives import archive_error
from dotrec.data._checks import RANGE_NOTE, datetimes_as_seconds, describe_rows, not_storable
from dotrec.data._interactions import Duplicates, Interactions
from dotrec.data._lightgcn import lightgcn_hint, read_lightgcn
from dotrec.exceptions import DataError, DataWarning, EmptyDataError

__all__ = ["read_interactions", "read_text", "FileFormat"]

_log = logging.getLogger(__name__)

FileFormat = Literal["auto", "csv", "parquet", "ml-100k", "ml-1m", "ml-latest-small", "lightgcn"]

# Layouts of the MovieLens rating files: separator, header, column roles.
_LAYOUTS = {
    "ml-100k": ("\t", False),
    "ml-1m": ("::", False),
    "ml-latest-small": (",", True),
}
_SEPARATORS = ["::", "\t", ",", ";", "|"]
_ROLES = ("user", "item", "rating", "timestamp", "label")
_ALIASES = {
    "user": {"userid", "user", "uid", "users", "customerid", "visitorid", "username"},
    "item": {
        "itemid",
        "item",
        "iid",
        "items",
        "movieid",
        "movie",
        "artistid",
        "productid",
        "asin",
        "bookid",
        "isbn",
        "trackid",
        "songid",
    },
    "rating": {"rating", "ratings", "score", "stars", "weight", "value", "preference", "count"},
    "timestamp": {"timestamp", "time", "ts", "datetime", "date", "unixtime", "unixreviewtime"},
    "label": {"label", "target", "clicked", "y", "interacted"},
}


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Read a whole text file, with a clear error when it does not decode.

    Gzip-compressed files are decompressed on the way.

    Raises:
        DataError: naming the file, the byte offset and line of the first bad
            byte, and the ``encoding`` option; or a damaged file.
        ArchiveError: the file is a zip archive; the message says which file
            inside to extract.
    """
    check_encoding(encoding)
    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip: read through it
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: the gzip stream is damaged or cut short ({err}).") from err
    elif data[:4] == b"PK\x03\x04":
        raise archive_error(Path(path), data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: the text is not valid {encoding}: byte 0x{data[err.start]:02X} at byte "
            f"offset {err.start} (line {line}) cannot be decoded. If the file is Latin-1 (as "
            "MovieLens 100K's u.item is), pass encoding='latin-1' (command line: "
            "--encoding latin-1)."
        ) from err
    return text.lstrip("\ufeff")


def check_encoding(encoding: str) -> None:
    """Raise ValueError unless Python knows the text encoding ``encoding``."""
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError) as err:
        raise ValueError(
            f"encoding={encoding!r} is not a text encoding Python knows; use e.g. 'utf-8' or "
            "'latin-1' (command line: --encoding latin-1)."
        ) from err


def _check_min_rating(min_rating: object) -> None:
    """``min_rating`` is None or a finite number (NaN would keep no row, silently)."""
    if min_rating is None:
        return
    number = isinstance(min_rating, (int, float, np.integer, np.floating))
    if isinstance(min_rating, bool) or not number or not np.isfinite(min_rating):
        raise ValueError(
            f"min_rating must be a finite number, got {min_rating!r} (command line: --min-rating)"
        )


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(
            f"{name}={value!r} is not an option; choose one of {', '.join(map(repr, choices))}"
        )


def read_interactions(
    path: str | os.PathLike[str],
    *,
    format: FileFormat = "auto",
    sep: str | None = None,
    header: bool | None = None,
    user_col: str | int | None = None,
    item_col: str | int | None = None,
    rating_col: str | int | None = None,
    timestamp_col: str | int | None = None,
    label_col: str | int | None = None,
    min_rating: float | None = None,
    encoding: str = "utf-8",
    on_invalid: Literal["raise", "drop"] = "raise",
    duplicates: Duplicates = "last",
) -> Interactions:
    """Read an interaction log from a file.

    Every ID is read as text: ``007`` stays ``007`` and ``NA`` is a user, not a
    missing value. By default every row is a positive (implicit feedback),
    whatever other columns it has; a ``label`` column of 0/1 marks observed
    negatives; ``min_rating`` keeps only rows rated at least that much.

    Args:
        path: a CSV/TSV/``.dat`` file or a ``.parquet`` file.
        format: ``"auto"`` picks by name (``u.data``, ``*.base``/``*.test``:
            MovieLens 100K, tab separated; ``ratings.dat``: MovieLens 1M, ``::``;
            ``.parquet``) and otherwise reads delimited text. ``"lightgcn"``
            reads one line per user, ``user item item ...`` (see
            :func:`~dotrec.data.read_lightgcn`); only ``encoding`` and
            ``duplicates`` apply to it.
        sep: the separator; sniffed from the first lines when None.
        header: whether the first line names the columns; when None, it is a
            header if it names a known column (``user_id``, ``userId``, ``item``,
            ``rating``, ...) or if its rating field is not a number.
        user_col, item_col, rating_col, timestamp_col, label_col: a column name
            (or 0-based position) for each role. Known names are recognised;
            without a header the columns are user, item, rating, timestamp.
        min_rating: keep rows with a rating of at least this, as positives.
        encoding: text encoding of the file.
        on_invalid: ``"drop"`` skips rows with too few fields or a non-finite
            rating or timestamp (with a warning naming their lines) instead of
            raising.
        duplicates: policy for repeated (user, item) rows, see
            :meth:`Interactions.from_ids`.

    Raises:
        FileNotFoundError: the file does not exist.
        EmptyDataError: no interactions in the file, or none left after
            ``min_rating``.
        DataError: a malformed line or value; the message names the file,
            line, column and value, and the fix.
        ValueError: ``format``, ``encoding``, ``on_invalid`` or ``duplicates``
            is not one of its options, or ``min_rating`` is not a finite number.
    """
    _check_choice("format", format, typing.get_args(FileFormat))
    _check_choice("on_invalid", on_invalid, ("raise", "drop"))
    _check_choice("duplicates", duplicates, typing.get_args(Duplicates))
    check_encoding(encoding)
    _check_min_rating(min_rating)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"read_interactions() takes a file path, got {type(path).__name__}; for a DataFrame "
            "use Interactions.from_frame(), for a sparse matrix Interactions.from_sparse()."
        )
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Check the path.")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the ratings file inside it, or a dataset name.")
    format = _detect_format(path) if format == "auto" else format
    names = {
        "user": user_col,
        "item": item_col,
        "rating": rating_col,
        "timestamp": timestamp_col,
        "label": label_col,
    }
    if format == "lightgcn":
        _check_lightgcn_options(path, min_rating, sep, header, names)
        return read_lightgcn(path, encoding=encoding, duplicates=duplicates)

    if format == "parquet":
        frame = pd.read_parquet(path)
        lines = np.arange(len(frame)) + 1
        roles = _roles_from_header([str(c) for c in frame.columns], names, str(path))
        return _build(frame, lines, roles, str(path), "row", min_rating, on_invalid, duplicates)

    layout_sep, layout_header = _LAYOUTS.get(format, (None, None))
    text = read_text(path, encoding)
    try:
        frame, lines, roles = _parse_delimited(
            text,
            str(path),
            sep or layout_sep,
            layout_header if header is None else header,
            names,
            on_invalid,
        )
        return _build(frame, lines, roles, str(path), "line", min_rating, on_invalid, duplicates)
    except DataError as err:
        # A separator or field-count error on LightGCN lines: say which format they are in.
        hint = lightgcn_hint(text)
        if not hint or isinstance(err, EmptyDataError):
            raise
        raise type(err)(f"{err}{hint}") from err


def _check_lightgcn_options(path: Path, min_rating, sep, header, names: dict) -> None:
    """Refuse reading options that the LightGCN format has nothing to apply to."""
    if min_rating is not None:
        raise DataError(f"{path}: the LightGCN format has no ratings; drop min_rating.")
    given = [name for name, value in (("sep", sep), ("header", header)) if value is not None]
    given += [f"{role}_col" for role, value in names.items() if value is not None]
    if given:
        raise DataError(
            f"{path}: the LightGCN format (one line per user: user item item ..., separated by "
            f"whitespace) has no header or columns to choose; drop {', '.join(given)}."
        )


def _detect_format(path: Path) -> FileFormat:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name == "u.data" or re.fullmatch(r"u[a-z0-9]*\.(base|test)", name):
        return "ml-100k"
    if name == "ratings.dat":
        return "ml-1m"
    return "csv"


def _sniff_separator(sample: list[tuple[int, str]], source: str) -> str:
    """The separator found the same number of times on most sampled lines.

    Lines that disagree are left for the parser, which names them as having
    too few or too many fields.
    """
    best, best_agree = None, 0
    for sep in _SEPARATORS:
        counts = [line.count(sep) for _, line in sample]
        typical = max(set(counts), key=counts.count)
        agree = counts.count(typical)
        if typical >= 1 and agree > best_agree:
            best, best_agree = sep, agree
    if best is not None and best_agree * 2 > len(sample):
        return best
    raise DataError(
        f"{source}: could not tell the column separator from the first lines "
        f"(first line: {sample[0][1][:80]!r}). Pass sep= (command line: --sep), e.g. sep=',' "
        "or sep='\\t'."
    )


def _without_long_lines(
    text: str, lines: list[str], n_fields: np.ndarray, expected: int, source: str, on_invalid: str
) -> tuple[str, list[str]]:
    """Refuse (or blank out, keeping line numbers) lines with too many fields.

    Lines holding a quote character are left to the CSV parser, since a quoted
    field may contain the separator.
    """
    long = np.flatnonzero(n_fields > expected)
    long = np.array([n for n in long if '"' not in lines[n]], dtype=np.int64)
    if len(long) == 0:
        return text, lines
    where = describe_rows(long, np.arange(1, len(lines) + 1))
    if on_invalid == "raise":
        raise DataError(
            f"{source}: too many fields at {where} (expected {expected} like the first line; "
            f"line {long[0] + 1} is {lines[long[0]][:80]!r}). Check the separator (sep=), or "
            "drop such rows with on_invalid='drop' (command line: --drop-invalid)."
        )
    warnings.warn(
        f"{source}: dropped rows with too many fields at {where}", DataWarning, stacklevel=5
    )
    lines = list(lines)
    for n in long:
        lines[n] = ""
    return "\n".join(lines) + "\n", lines


def _parse_delimited(
    text: str,
    source: str,
    sep: str | None,
    header: bool | None,
    names: dict,
    on_invalid: str = "raise",
) -> tuple[pd.DataFrame, np.ndarray, dict[str, int | None]]:
    raw_lines = text.splitlines()
    nonblank = [n for n, line in enumerate(raw_lines) if line.strip()]
    if not nonblank:
        what = "only blank lines" if text.strip("\ufeff") else "the file is empty"
        raise EmptyDataError(f"{source}: the input contains no interactions ({what}).")
    sample = [(n + 1, raw_lines[n]) for n in nonblank[:50]]
    sep = sep or _sniff_separator(sample, source)
    first = sample[0][1].split(sep)
    if header is None:
        header = _looks_like_header(first, sample[1][1] if len(sample) > 1 else None, sep)
    # pandas pads a short line with empty strings; count fields to tell them apart.
    n_fields = np.array([line.count(sep) + 1 for line in raw_lines])
    text, raw_lines = _without_long_lines(text, raw_lines, n_fields, len(first), source, on_invalid)

    if len(sep) > 1:  # the C parser wants a one-character separator
        text = text.replace(sep, "\x1f")
        sep = "\x1f"
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as err:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        detail = (
            f"line {found.group(2)} has {found.group(3)} fields where earlier lines have "
            f"{found.group(1)}"
            if found
            else str(err)
        )
        raise DataError(f"{source}: {detail}. Check the separator (sep=) and that line.") from err
    except pd.errors.EmptyDataError as err:
        raise EmptyDataError(f"{source}: the input contains no interactions.") from err
    if len(n_fields) == len(frame):  # else quoted newlines: leave the padding as it is
        missing = np.arange(frame.shape[1])[None, :] >= n_fields[:, None]
        if missing.any():
            frame = frame.mask(missing)

    lines = np.arange(1, len(frame) + 1)
    columns = [str(c).strip() for c in first] if header else [str(i) for i in range(frame.shape[1])]
    if header:
        frame, lines = frame.iloc[1:], lines[1:]
    blank = (frame.fillna("").astype(str).apply(lambda c: c.str.strip()) == "").all(axis=1)
    frame, lines = frame[~blank.to_numpy()], lines[~blank.to_numpy()]
    if len(frame) == 0:
        what = "only a header line" if header else "only blank lines"
        raise EmptyDataError(f"{source}: the input contains no interactions ({what}).")
    frame.columns = columns[: frame.shape[1]] + [
        str(i) for i in range(len(columns), frame.shape[1])
    ]
    roles = (
        _roles_from_header(columns, names, source)
        if header
        else _roles_by_position(columns, names, source)
    )
    return frame.reset_index(drop=True), lines, roles


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _looks_like_header(first: list[str], second: str | None, sep: str) -> bool:
    known = set().union(*_ALIASES.values())
    if any(_normalise(f) in known for f in first):
        return True
    # A rating or timestamp field that is text on line 1 but a number on line 2.
    if second is not None and len(first) >= 3:
        later = second.split(sep)
        return any(
            not _is_number(first[k]) and k < len(later) and _is_number(later[k])
            for k in range(2, len(first))
        )
    return False


def _roles_from_header(columns: list[str], names: dict, source: str) -> dict[str, int | None]:
    roles: dict[str, int | None] = {}
    normal = [_normalise(c) for c in columns]
    for role in _ROLES:
        given = names[role]
        if isinstance(given, (int, np.integer)) and not isinstance(given, bool):
            roles[role] = _position(given, role, len(columns), source)
        elif given is not None:
            if given not in columns:
                raise DataError(
                    f"{source}: no column {given!r} for {role}_col; the columns are {columns}."
                )
            roles[role] = columns.index(given)
        else:
            hits = [k for k, n in enumerate(normal) if n in _ALIASES[role]]
            roles[role] = hits[0] if hits else None
    for role, default in (("user", 0), ("item", 1)):
        if roles[role] is None:
            if len(columns) < 2:
                raise DataError(f"{source}: found one column {columns}; need a user and an item.")
            owner = next((r for r, k in roles.items() if k == default), None)
            if owner is not None:
                raise DataError(
                    f"{source}: no {role} column: none of the columns {columns} is named as "
                    f"one (such as {role}_id), and column {default} ({columns[default]!r}) is "
                    f"the {owner} column. Name the {role} column with {role}_col= (command "
                    f"line: --{role}-col)."
                )
            _log.info("%s: no %s column by name; using column %r", source, role, columns[default])
            roles[role] = default
    _check_distinct(roles, columns, source)
    return roles


def _roles_by_position(columns: list[str], names: dict, source: str) -> dict[str, int | None]:
    defaults = {"user": 0, "item": 1, "rating": 2, "timestamp": 3, "label": None}
    roles: dict[str, int | None] = {}
    for role in _ROLES:
        given = names[role]
        if given is None:
            position = defaults[role]
            roles[role] = position if position is not None and position < len(columns) else None
            continue
        if isinstance(given, str):
            if not given.strip().isdigit():
                raise DataError(
                    f"{source}: {role}_col={given!r} is a column name, but the file is read with "
                    "no header line, so its columns have no names. Give a 0-based position "
                    f"({role}_col=0), or pass header=True (command line: --header) if the first "
                    "line names the columns."
                )
            given = int(given)
        roles[role] = _position(given, role, len(columns), source)
    _check_distinct(roles, columns, source)
    return roles


def _position(given: int, role: str, n_columns: int, source: str) -> int:
    """A 0-based column position given for ``role``, checked against the file."""
    if not 0 <= given < n_columns:
        raise DataError(
            f"{source}: no column {given} for {role}_col; the file has {n_columns} columns "
            f"(positions 0 to {n_columns - 1})."
        )
    return int(given)


def _check_distinct(roles: dict[str, int | None], columns: list[str], source: str) -> None:
    """Each column plays at most one role (user, item, rating, timestamp, label)."""
    owners: dict[int, str] = {}
    for role, k in roles.items():
        if k is None:
            continue
        if k in owners:
            raise DataError(
                f"{source}: column {columns[k]!r} is given as both the {owners[k]} and the "
                f"{role} column; each column can play one role. Check {owners[k]}_col= and "
                f"{role}_col= (command line: --{owners[k]}-col, --{role}-col)."
            )
        owners[k] = role


def _build(
    frame: pd.DataFrame,
    lines: np.ndarray,
    roles: dict[str, int | None],
    source: str,
    where: str,
    min_rating: float | None,
    on_invalid: str,
    duplicates: Duplicates,
) -> Interactions:
    if frame.shape[1] < 2:
        raise DataError(
            f"{source}: each line has a single field (first: {str(frame.iloc[0, 0])[:60]!r}); "
            "the separator is probably wrong. Pass sep= (command line: --sep)."
        )
    needed = max(k for k in roles.values() if k is not None)
    short = frame.iloc[:, needed].isna().to_numpy().copy()
    empty_id = np.zeros(len(frame), dtype=bool)
    for role in ("user", "item"):
        ids = frame.iloc[:, roles[role]]
        empty = (ids.notna() & (ids.astype(str).str.strip() == "")).to_numpy() & ~short
        if empty.any() and on_invalid == "raise":
            positions = np.flatnonzero(empty)
            raise DataError(
                f"{source}: empty {role} ID at {describe_rows(positions, lines, where)} "
                f"(first: {_row_text(frame, positions[0])!r}). Every row needs a {role} ID: "
                "fix those rows, or drop them with on_invalid='drop' (command line: "
                "--drop-invalid)."
            )
        empty_id |= empty
        _warn_padded_ids(ids, empty | short, role, lines, source, where)
    short |= empty_id
    column = lambda role: None if roles[role] is None else frame.iloc[:, roles[role]]  # noqa: E731
    bad = short.copy()
    parsed = {}
    for role in ("rating", "timestamp", "label"):
        values = column(role)
        if values is None:
            continue
        parsed[role] = _parse_numbers(values, role)
        bad_values = not_storable(parsed[role], role) & ~short
        must_be, note = "a finite number", RANGE_NOTE.get(role, "")
        if role == "label":  # checked here too, so that it names the line and can be dropped
            bad_values |= ~np.isin(parsed[role], (0.0, 1.0)) & ~short
            must_be, note = "0 or 1", ""
        elif role == "timestamp":
            must_be = "a finite number or an ISO 8601 date"
        if bad_values.any() and on_invalid == "raise":
            positions = np.flatnonzero(bad_values)
            first = values.iloc[positions[0]]
            raise DataError(
                f"{source}: {len(positions)} row{'s' if len(positions) > 1 else ''} with a "
                f"{role} that is not {must_be}{note}, at "
                f"{describe_rows(positions, lines, where)} "
                f"(column {str(frame.columns[roles[role]])!r}, first value seen: {first!r}). "
                f"Each {role} must be {must_be}: fix those rows, or drop them with "
                "on_invalid='drop' (command line: --drop-invalid)."
            )
        bad |= bad_values
    if short.any() and on_invalid == "raise":
        positions = np.flatnonzero(short & ~empty_id)
        raise DataError(
            f"{source}: too few fields at {describe_rows(positions, lines, where)} (expected "
            f"{needed + 1}, first bad line: {_row_text(frame, positions[0])!r}). Check the "
            "separator (sep=), or drop such rows with on_invalid='drop' (--drop-invalid)."
        )
    if bad.any():
        msg = f"{source}: dropped {int(bad.sum())} invalid rows at " + describe_rows(
            np.flatnonzero(bad), lines, where
        )
        warnings.warn(msg, DataWarning, stacklevel=3)
        keep = ~bad
        frame, lines = frame[keep], lines[keep]
        parsed = {role: values[keep] for role, values in parsed.items()}
    return _to_interactions(frame, lines, roles, parsed, source, min_rating, duplicates)


def _warn_padded_ids(ids, skip, role, lines, source, where) -> None:
    """Warn when IDs have spaces around them: they are kept as written, so ' i1' is not 'i1'."""
    text = ids.astype(str)
    padded = ((text != text.str.strip()) & ids.notna()).to_numpy() & ~skip
    if not padded.any():
        return
    positions = np.flatnonzero(padded)
    warnings.warn(
        f"{source}: {len(positions)} {role} ID{'s' if len(positions) > 1 else ''} with spaces "
        f"around {'them' if len(positions) > 1 else 'it'}, at "
        f"{describe_rows(positions, lines, where)} (first: {text.iloc[positions[0]]!r}). IDs "
        f"are kept exactly as written, so {text.iloc[positions[0]]!r} and "
        f"{text.iloc[positions[0]].strip()!r} are different {role}s. If a space follows each "
        "separator, pass it as part of the separator (sep=', ', command line: --sep ', '), "
        "or remove the spaces from the file.",
        DataWarning,
        stacklevel=4,
    )


def _to_interactions(frame, lines, roles, parsed, source, min_rating, duplicates) -> Interactions:
    rating = parsed.get("rating")
    if min_rating is not None:
        if rating is None:
            raise DataError(f"{source}: min_rating={min_rating} needs a rating column; none found.")
        keep = rating >= min_rating
        if not keep.any():
            raise EmptyDataError(
                f"{source}: 0 interactions remain after keeping ratings >= {min_rating} "
                f"(the file has {len(rating)} rows, rated {rating.min():g} to {rating.max():g}). "
                "Lower the threshold (--min-rating)."
            )
        _log.info(
            "%s: kept %d of %d rows with rating >= %g", source, keep.sum(), len(keep), min_rating
        )
        frame, lines = frame[keep], lines[keep]
        parsed = {role: values[keep] for role, values in parsed.items()}
    return Interactions.from_ids(
        frame.iloc[:, roles["user"]].to_numpy(dtype=object),
        frame.iloc[:, roles["item"]].to_numpy(dtype=object),
        rating=parsed.get("rating"),
        timestamp=parsed.get("timestamp"),
        label=parsed.get("label"),
        source=source,
        lines=lines,
        duplicates=duplicates,
    )


def _parse_numbers(values: pd.Series, role: str) -> np.ndarray:
    if values.dtype.kind in "iufb":
        return values.to_numpy(dtype=np.float64)
    if role == "timestamp" and pd.api.types.is_datetime64_any_dtype(values.dtype):
        return datetimes_as_seconds(values)  # a Parquet date-time column
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if role == "timestamp" and np.isnan(numbers).all():
        seconds = _iso_seconds(values)  # dates written as text, e.g. 2024-05-01T12:00:00
        if not np.isnan(seconds).all():
            return seconds
    return numbers


def _iso_seconds(values: pd.Series) -> np.ndarray:
    """Unix seconds of ISO 8601 dates and times (UTC unless they say otherwise).

    Each value on its own: one that is not a date is NaN (a bad row), not a
    reason to refuse the others.
    """
    text = values.astype(str).str.strip()
    stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    stamps[text.str.lower().isin(["now", "today"])] = pd.NaT  # words pandas reads as dates
    return datetimes_as_seconds(stamps)


def _row_text(frame: pd.DataFrame, position: int) -> str:
    values = frame.iloc[position].fillna("").astype(str).tolist()
    return ",".join(values).rstrip(",")
