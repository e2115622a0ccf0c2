"""Zip archives given as data files: which file inside to extract, and how to read it.

dotrec reads the files inside an archive, not the archive (the named datasets
are extracted once into the data directory). When a user gives an archive
anyway, the error says which member to extract, with the command, and
whether it is in the LightGCN format.
"""

from __future__ import annotations

import io
import shlex
import zipfile
from pathlib import Path

from dotrec.data._lightgcn import looks_like_lightgcn
from dotrec.exceptions import ArchiveError, DataError

__all__ = ["archive_error"]

_RATINGS_NAMES = ("train.txt", "u.data", "ratings.dat", "ratings.csv", "ratings.parquet")
"""Member names that hold interactions, in order of preference."""

_DATA_SUFFIXES = (".txt", ".csv", ".tsv", ".dat", ".data", ".parquet")

_SAMPLE_BYTES = 1 << 16


def archive_error(path: Path, data: bytes) -> DataError:
    """The error for a data file ``path`` (bytes ``data``) that is a zip archive.

    Returns:
        An :class:`ArchiveError` naming the member to extract, the command
        that extracts it and the format to read it in; a plain
        :class:`DataError` when the archive cannot be opened or holds no file.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            files = [info.filename for info in zf.infolist() if not info.is_dir()]
            member = _data_member(files)
            sample = b"" if member is None else _head(zf, member)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return DataError(f"{path} is a damaged zip archive ({err}); dotrec reads no archives.")
    if member is None:
        return DataError(f"{path} is a zip archive with no files in it.")

    text = sample.decode("utf-8", errors="replace").rsplit("\n", 1)[0]
    fmt = "lightgcn" if looks_like_lightgcn(text) else None
    shown = ", ".join(files[:6]) + (f" and {len(files) - 6} more" if len(files) > 6 else "")
    how = (
        " in the LightGCN format (format='lightgcn', command line: --data-format lightgcn)"
        if fmt
        else ""
    )
    return ArchiveError(
        f"{path} is a zip archive (holding {shown}); dotrec reads the files inside, not "
        f"archives. Extract {member} with `unzip {shlex.quote(str(path))} {shlex.quote(member)}` "
        f"and read that file{how}.",
        path,
        member,
        fmt,
    )


def _data_member(files: list[str]) -> str | None:
    """The member most likely to hold interactions, or None for an empty archive."""
    by_name = {Path(name).name.lower(): name for name in reversed(files)}
    for name in _RATINGS_NAMES:
        if name in by_name:
            return by_name[name]
    data = [name for name in files if name.lower().endswith(_DATA_SUFFIXES)]
    return (data or files or [None])[0]


def _head(zf: zipfile.ZipFile, member: str) -> bytes:
    """The first bytes of ``member``, enough to tell its format."""
    with zf.open(member) as fh:
        return fh.read(_SAMPLE_BYTES)
