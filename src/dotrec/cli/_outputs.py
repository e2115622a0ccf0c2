"""Output paths: checked before the work starts, with errors naming the option.

A command that trains for minutes should not then fail on ``--out``, and
"[Errno 21] Is a directory" does not say which option was wrong or what to
give instead. Commands check their inputs first (a bad data file is the
error to report), then their outputs, then do the work. Nothing is created
here; the commands create folders when they write.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["check_model_dir", "check_output_dir", "check_output_file"]


def check_output_file(path: Path, option: str, example: str) -> None:
    """Raise ValueError unless ``path`` (given as ``option``) can be written as a file.

    ``example`` is a file name to suggest inside ``path`` when it is a folder.
    """
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name, such as {path / example}")
    _check_creatable(path.parent, path, option)


def check_output_dir(path: Path, option: str) -> None:
    """Raise ValueError unless ``path`` (given as ``option``) is or can become a folder."""
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"{option} {path} is a file, not a folder; give a folder (it is created when "
            "missing), or move the file away"
        )
    _check_creatable(path, path, option)


def check_model_dir(path: Path, option: str) -> None:
    """Raise ValueError unless a model folder can be written at ``path``.

    An existing model folder is replaced; an empty folder is used; any other
    folder or file is left alone, as ``save_model`` does.
    """
    check_output_dir(path, option)
    if path.is_dir() and not (path / "model.json").exists() and any(path.iterdir()):
        raise ValueError(
            f"{option} {path} holds other files and is not a dotrec model folder; not "
            "overwriting it. Give a new or empty folder, or an existing model folder to replace"
        )


def _check_creatable(folder: Path, path: Path, option: str) -> None:
    """``folder`` exists, or its nearest existing parent is a writable folder."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ValueError(
            f"{option} {path}: {existing} is a file, so no folder can be made there; "
            "choose another path"
        )
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: {existing} is not writable; choose another place")
