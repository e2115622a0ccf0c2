"""Item metadata (title, genres) for responses: where to find it for a model folder.

Unless the operator names a file (``dotrec serve --items FILE``), it is
looked for in this order, first found wins:

1. an item file inside the model folder (``items.csv``, ``u.item``,
   ``movies.csv``, ``movies.dat``);
2. the item file of the data the model was trained on, as its ``run.toml``
   records it: a named dataset's file in the data directory (never
   downloaded), or one of the names above beside the interaction file.

Every file is read as text by :func:`dotrec.read_items`; nothing in a model
folder is executed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dotrec.config import RunConfig
from dotrec.data import DATASETS, data_dir, read_items

__all__ = ["ItemInfo", "find_item_file", "read_item_info"]

_log = logging.getLogger(__name__)

ITEM_FILE_NAMES = ("items.csv", "u.item", "movies.csv", "movies.dat")
"""Item files recognised in a model folder or beside the training data."""


@dataclass(frozen=True)
class ItemInfo:
    """What a response shows of an item besides its ID."""

    title: str | None
    genres: tuple[str, ...]


def find_item_file(model_dir: Path) -> Path | None:
    """The item file in ``model_dir`` or beside its training data, or None."""
    for name in ITEM_FILE_NAMES:
        if (model_dir / name).is_file():
            return model_dir / name
    return _training_item_file(model_dir)


def _training_item_file(model_dir: Path) -> Path | None:
    """The item file of the data named in the folder's ``run.toml``, if present."""
    if not (model_dir / "run.toml").is_file():
        return None
    try:
        data = RunConfig.read(model_dir / "run.toml").data
    except (OSError, ValueError) as err:
        _log.warning("%s: cannot read run.toml for item metadata (%s)", model_dir, err)
        return None
    if data is None:
        return None
    if data.dataset is not None:
        spec = DATASETS.get(data.dataset)
        item_name = getattr(spec, "items", None)
        candidates = [data_dir() / data.dataset / item_name] if item_name else []
    else:
        candidates = [Path(data.path).parent / name for name in ITEM_FILE_NAMES]
    return next((path for path in candidates if path.is_file()), None)


def read_item_info(path: Path, encoding: str | None = None) -> dict[str, ItemInfo]:
    """Title and genres of every item in ``path``, keyed by raw item ID.

    ``encoding`` is the file's text encoding, as :func:`dotrec.read_items`
    takes it (None: its default for the layout).

    Raises:
        DataError: the file does not decode or has no ID column.
        FileNotFoundError: no such file.
    """
    frame = read_items(path, encoding=encoding)
    genres = frame["genres"] if "genres" in frame else [""] * len(frame)
    return {
        str(item_id): ItemInfo(str(title), tuple(g for g in str(joined).split("|") if g))
        for item_id, title, joined in zip(frame.index, frame["title"], genres, strict=True)
    }
