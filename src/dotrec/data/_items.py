"""Item and user metadata (titles, genres; age, gender, occupation): MovieLens and CSV."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from dotrec.data._readers import read_text
from dotrec.exceptions import DataError

__all__ = ["read_items", "read_users"]

_ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def read_items(path: str | os.PathLike[str], *, encoding: str | None = None) -> pd.DataFrame:
    """Read item metadata.

    Known layouts are read with their own encoding: MovieLens 100K ``u.item``
    (``|``-separated, Latin-1), MovieLens 1M ``movies.dat`` (``::``, Latin-1)
    and MovieLens ``movies.csv`` (UTF-8). Any other file is a CSV with a header
    holding an ID column (``item_id``, ``movieId`` or the first column) and
    optionally ``title`` and ``genres``, read as UTF-8 unless ``encoding`` says
    otherwise.

    Returns:
        A DataFrame indexed by raw item ID (text) with a ``title`` column, a
        ``genres`` column (``|``-joined, possibly empty) and, for ``u.item``,
        ``release_date`` (datetime, NaT when empty).

    Raises:
        DataError: the file does not decode (the message names the byte offset,
            line and the ``encoding`` option) or has no ID column.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Check the path.")
    name = path.name.lower()
    if name == "u.item":
        return _read_ml100k_items(path, encoding or "latin-1")
    if name == "movies.dat":
        text = read_text(path, encoding or "latin-1")
        frame = pd.read_csv(
            io.StringIO(text.replace("::", "\x1f")),
            sep="\x1f",
            header=None,
            names=["item_id", "title", "genres"],
            dtype=str,
            keep_default_na=False,
        )
        return frame.set_index("item_id")
    text = read_text(path, encoding or "utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    lowered = {c.lower().replace("_", ""): c for c in frame.columns}
    id_col = lowered.get("itemid") or lowered.get("movieid") or frame.columns[0]
    out = pd.DataFrame({"item_id": frame[id_col]})
    out["title"] = frame[lowered["title"]] if "title" in lowered else out["item_id"]
    out["genres"] = frame[lowered["genres"]] if "genres" in lowered else ""
    if (out["item_id"] == "").any():
        raise DataError(f"{path}: some rows have an empty item ID in column {id_col!r}.")
    return out.set_index("item_id")


def _read_ml100k_items(path: Path, encoding: str) -> pd.DataFrame:
    text = read_text(path, encoding)
    columns = ["item_id", "title", "release_date", "video_release_date", "url"] + _ML100K_GENRES
    frame = pd.read_csv(
        io.StringIO(text), sep="|", header=None, dtype=str, keep_default_na=False, quoting=3
    )
    if frame.shape[1] != len(columns):
        raise DataError(
            f"{path}: expected the MovieLens 100K item layout with {len(columns)} '|'-separated "
            f"fields, found {frame.shape[1]}."
        )
    frame.columns = columns
    flags = frame[_ML100K_GENRES].astype(int).to_numpy().astype(bool)
    genres = ["|".join(g for g, on in zip(_ML100K_GENRES, row, strict=True) if on) for row in flags]
    return pd.DataFrame(
        {
            "title": frame["title"].to_numpy(),
            "genres": genres,
            "release_date": pd.to_datetime(
                frame["release_date"], format="%d-%b-%Y", errors="coerce"
            ).to_numpy(),
        },
        index=pd.Index(frame["item_id"].to_numpy(), name="item_id"),
    )


def read_users(path: str | os.PathLike[str], *, encoding: str | None = None) -> pd.DataFrame:
    """Read user metadata: MovieLens 100K ``u.user``, or a CSV with a header.

    Returns:
        A DataFrame indexed by raw user ID (text). For ``u.user`` its columns
        are ``age`` (int), ``gender``, ``occupation`` and ``zip_code`` (text);
        a CSV keeps its own columns, with the ID column ``user_id``,
        ``userId`` or the first one, read as text.

    Raises:
        DataError: a ``u.user`` line without its five ``|``-separated fields,
            or a CSV row with an empty user ID.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Check the path.")
    if path.name.lower() == "u.user":
        text = read_text(path, encoding or "latin-1")
        names = ["user_id", "age", "gender", "occupation", "zip_code"]
        frame = pd.read_csv(
            io.StringIO(text), sep="|", header=None, dtype=str, keep_default_na=False
        )
        if frame.shape[1] != len(names):
            raise DataError(
                f"{path}: expected the MovieLens 100K user layout with {len(names)} "
                f"'|'-separated fields, found {frame.shape[1]}."
            )
        frame.columns = names
        frame["age"] = frame["age"].astype(int)
        return frame.set_index("user_id")
    frame = pd.read_csv(io.StringIO(read_text(path, encoding or "utf-8")))
    lowered = {c.lower().replace("_", ""): c for c in frame.columns}
    id_col = lowered.get("userid") or frame.columns[0]
    ids = frame.pop(id_col).astype(str)
    if (ids == "").any() or ids.isna().any():
        raise DataError(f"{path}: some rows have an empty user ID in column {id_col!r}.")
    frame.index = pd.Index(ids.to_numpy(), name="user_id")
    return frame
