"""Exceptions and warning categories raised by dotrec.

Plain mistakes use the built-in types (``ValueError``, ``TypeError``); the
classes here mark failures that a caller may want to catch as a group. Every
dotrec error derives from :class:`DotrecError`, and the data errors also derive
from ``ValueError`` so that code written against the built-in type keeps
working.
"""

from __future__ import annotations

__all__ = [
    "DotrecError",
    "DataError",
    "EmptyDataError",
    "ArchiveError",
    "UnknownIDError",
    "DatasetNotFoundError",
    "ModelFileError",
    "TrainingDivergedError",
    "MissingDependencyError",
    "StaleIndexError",
    "DotrecWarning",
    "DataWarning",
]


class DotrecError(Exception):
    """Base class of every error dotrec raises on purpose."""


class DataError(DotrecError, ValueError):
    """Input data is malformed: a bad file, line, column or value.

    The message names the source (file and line, or column) and the fix.
    """


class EmptyDataError(DataError):
    """The input holds no interactions, or none survive filtering."""


class ArchiveError(DataError):
    """A data file is a zip archive, which dotrec does not read: extract the file inside.

    Attributes:
        path: the archive.
        member: the file inside that most likely holds the interactions, as
            extracting it into the current folder names it (``folder/train.txt``).
        format: the ``format`` to read ``member`` with (``"lightgcn"``), or
            None when the default detection fits.
    """

    def __init__(self, message: str, path=None, member: str = "", format: str | None = None):
        # defaults, so that the error pickles (it is rebuilt from the message alone)
        super().__init__(message)
        self.path, self.member, self.format = path, member, format


class UnknownIDError(DotrecError, KeyError):
    """A user or item ID that the model did not see in training.

    Attributes:
        kind: ``"user"`` or ``"item"``.
        ids: the unknown raw IDs, in the order they were asked for.
    """

    def __init__(self, kind: str, ids: list[str], hint: str = ""):
        """``hint``: what the caller can do about it, added to the message when given."""
        self.kind = kind
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:10])
        more = f" and {len(self.ids) - 10} more" if len(self.ids) > 10 else ""
        super().__init__(
            f"unknown {kind} ID{'s' if len(self.ids) > 1 else ''} {shown}{more}: "
            f"not in the training data.{' ' + hint if hint else ''}"
        )

    def __str__(self) -> str:
        # KeyError quotes its message; show it plainly.
        return str(self.args[0])


class DatasetNotFoundError(DotrecError, FileNotFoundError):
    """A named dataset is neither in the data directory nor downloadable."""


class ModelFileError(DotrecError, OSError):
    """A model folder is missing, truncated, or from an incompatible version."""


class TrainingDivergedError(DotrecError, ArithmeticError):
    """The loss or the parameters became NaN or infinite during training."""


class MissingDependencyError(DotrecError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class StaleIndexError(DotrecError):
    """An approximate index was built for other item vectors than the model's."""


class DotrecWarning(UserWarning):
    """Base category of dotrec's warnings."""


class DataWarning(DotrecWarning):
    """A data problem dotrec worked around (duplicates merged, rows dropped)."""
