"""Storing approximate indexes in the model folder: ``ann.json`` and the index files."""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dotrec.ann._faiss import _faiss
from dotrec.ann._index import ANNIndex
from dotrec.artifact import ANN_FILE
from dotrec.exceptions import ModelFileError

_FORMAT = 1


@dataclass
class _LazyFile:
    """An index file opened at load time and read on first use.

    Holding the file open keeps the version that was loaded readable even if
    the folder is replaced meanwhile (``dotrec index`` rebuilding it).
    """

    path: Path
    sha256: str
    handle: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.handle = open(self.path, "rb")  # noqa: SIM115 - closed by read() or at collection
        weakref.finalize(self, self.handle.close)

    def read(self, keep: bool = False) -> bytes:
        self.handle.seek(0)
        data = self.handle.read()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ModelFileError(
                f"{self.path} does not match the checksum in {ANN_FILE}: the index file is "
                "truncated or was changed after saving. Rebuild it: dotrec index MODEL_DIR."
            )
        if not keep:
            self.handle.close()
        return data


def folder_files(
    indexes: dict[str, ANNIndex], vectors: Callable[[str], torch.Tensor], n_items: int
) -> tuple[dict[str, str | None], dict[str, bytes | None]]:
    """The text and binary files that store ``indexes`` in a model folder.

    Returns ``({ANN_FILE: json}, {file name: serialized index})``; with no
    index, the same names mapped to None (to remove them).

    Raises:
        StaleIndexError: an index no longer matches the model's vectors.
    """
    payloads: dict[str, bytes | None] = {index_file(p): None for p in ("recommend", "similar")}
    if not indexes:
        return {ANN_FILE: None}, payloads
    records = {}
    for purpose, index in indexes.items():
        index._checked = False  # compare the fingerprint in full before writing
        index.check(lambda purpose=purpose: vectors(purpose), n_items)
        data = index.to_bytes()
        name = index_file(purpose)
        payloads[name] = data
        records[purpose] = index.to_dict() | {
            "file": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
    meta = {"format": _FORMAT, "faiss_version": _faiss().__version__, "indexes": records}
    return {ANN_FILE: json.dumps(meta, indent=1)}, payloads


def index_file(purpose: str) -> str:
    """The file name of the index for ``purpose`` (``"recommend"`` or ``"similar"``)."""
    return f"ann-{purpose}.faiss"


def read_indexes(folder: Path) -> dict[str, ANNIndex]:
    """The indexes described by ``folder/ann.json``, their files read on first use.

    Raises:
        ModelFileError: the description is unreadable or a file is missing.
    """
    path = folder / ANN_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {_FORMAT}")
        indexes = {}
        for purpose, record in meta["indexes"].items():
            if purpose not in ("recommend", "similar") or record["file"] != index_file(purpose):
                raise ValueError(f"unexpected index {purpose!r} in file {record.get('file')!r}")
            index = ANNIndex.from_dict(record)
            index._payload = _LazyFile(folder / record["file"], str(record["sha256"]))
            indexes[purpose] = index
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelFileError(
            f"{path}: cannot read the approximate index ({type(err).__name__}: {err}). "
            "Rebuild it with `dotrec index MODEL_DIR`, or remove it with `dotrec index "
            "MODEL_DIR --remove`."
        ) from err
    return indexes
