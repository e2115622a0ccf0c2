"""Reader for the LightGCN text format: one line per user, ``user item item ...``.

The NGCF and LightGCN papers published their splits (Gowalla, Yelp2018,
Amazon-book) as ``train.txt`` and ``test.txt`` in this format: fields
separated by spaces, the first field a user ID, the rest the IDs of the items
that user interacted with, in no particular order. There are no ratings and
no timestamps: every pair is a positive.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dotrec.data._interactions import Duplicates, Interactions
from dotrec.exceptions import EmptyDataError

__all__ = [
    "lightgcn_hint",
    "looks_like_lightgcn",
    "parse_lightgcn",
    "read_lightgcn",
    "user_item_lists",
]

_SAMPLE_LINES = 50


def read_lightgcn(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", duplicates: Duplicates = "last"
) -> Interactions:
    """Read a file in the LightGCN format (``user item item ...`` per line).

    IDs stay text, as everywhere in dotrec: ``007`` is not ``7``. A line with
    a user and no items adds nothing. Repeated (user, item) pairs, on one line
    or on two lines of the same user, are merged as :meth:`Interactions.from_ids`
    says (``duplicates``).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.txt"
        >>> _ = path.write_text("0 5 3\\n1 3\\n")
        >>> data = read_lightgcn(path)
        >>> (len(data), data.users.ids.tolist(), data.items.ids.tolist())
        (3, ['0', '1'], ['5', '3'])

    Raises:
        FileNotFoundError: the file does not exist.
        EmptyDataError: no line holds an item (the message says when the file
            looks delimited by commas or semicolons instead).
        DataError: the file does not decode.
    """
    from dotrec.data._readers import read_text  # _readers dispatches here: import late

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Check the path.")
    return parse_lightgcn(read_text(path, encoding), str(path), duplicates)


def parse_lightgcn(text: str, source: str, duplicates: Duplicates = "last") -> Interactions:
    """Interactions from the text of a LightGCN-format file; see :func:`read_lightgcn`."""
    user_ids, item_ids, lines = user_item_lists(text, source)
    return Interactions.from_ids(
        user_ids, item_ids, source=source, lines=lines, duplicates=duplicates
    )


def looks_like_lightgcn(text: str) -> bool:
    """Whether the first lines of ``text`` look like the LightGCN format.

    They do when every field, split at whitespace, is a whole number and
    the lines hold different numbers of them (users with more or fewer
    items), some at least three: no delimited file of fixed columns does.
    """
    lines = [line.split() for line in text.splitlines()[: _SAMPLE_LINES * 2] if line.strip()]
    lines = lines[:_SAMPLE_LINES]
    if not lines or max(len(fields) for fields in lines) < 3:
        return False
    whole = all(f.isascii() and f.isdigit() for fields in lines for f in fields)
    return whole and len({len(fields) for fields in lines}) > 1


def lightgcn_hint(text: str) -> str:
    """A sentence saying to read ``text`` as LightGCN lines when it looks like them, else ``""``."""
    if not looks_like_lightgcn(text):
        return ""
    return (
        " The lines hold varying numbers of whole numbers separated by whitespace, as in the "
        "LightGCN format (one line per user: user item item ...); read it with "
        "format='lightgcn' (command line: --data-format lightgcn)."
    )


def user_item_lists(text: str, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (user ID, item ID) pairs of a LightGCN-format text, as text, in file order.

    Returns:
        Object arrays of user IDs and item IDs, and the int64 line number of
        each pair (for messages).

    Raises:
        EmptyDataError: no line holds an item.
    """
    users, counts, items = [], [], []
    for line in text.splitlines():
        fields = line.split()
        users.append(fields[0] if fields else "")
        counts.append(max(len(fields) - 1, 0))
        items.extend(fields[1:])
    if not items:
        first = next((line for line in text.splitlines() if line.strip()), "")
        detail = f" (first line: {first[:80]!r})" if first else " (the file is empty)"
        hint = (
            " The lines hold commas or semicolons: for a delimited file use "
            "dotrec.read_interactions(path)."
            if "," in first or ";" in first
            else ""
        )
        raise EmptyDataError(
            f"{source}: no line holds a user followed by items{detail}. The LightGCN format is "
            "one line per user: the user ID, then the item IDs, separated by spaces." + hint
        )
    counts_array = np.asarray(counts, dtype=np.int64)
    line_numbers = np.repeat(np.arange(1, len(counts) + 1), counts_array)
    user_ids = np.repeat(np.asarray(users, dtype=object), counts_array)
    return user_ids, np.asarray(items, dtype=object), line_numbers
