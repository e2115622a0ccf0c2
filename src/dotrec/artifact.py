"""The model folder: weights in safetensors, everything else in JSON.

A folder holds ``model.json`` (format version, dotrec version, model name,
config, training record, checksums of the other files and of its own
content), ``vocab.json`` (raw user and item IDs in
index order) and ``weights.safetensors`` (learned tensors, each user's seen
items, item counts), and may hold more files, such as the ``run.toml`` that
``dotrec train`` records and the ``calibration.json`` of a calibrated model
(:mod:`dotrec.calibration`), each listed with its checksum in ``model.json``.
A model with approximate indexes (:mod:`dotrec.ann`) adds ``ann.json``
(listed like the others) and one faiss file per index, such as
``ann-recommend.faiss``: binary payloads, whose checksums ``ann.json`` holds
so that loading need not read them until an index is used.
It is written to a temporary sibling folder and swapped
into place, so a killed write leaves the previous model intact. Loading reads
no pickle and runs no code from the folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dotrec._version import __version__
from dotrec.exceptions import ModelFileError, TrainingDivergedError

if TYPE_CHECKING:
    from dotrec.models.base import Recommender

__all__ = [
    "ANN_FILE",
    "CALIBRATION_FILE",
    "FORMAT_VERSION",
    "ModelFileError",
    "load_model",
    "register",
    "replace_files",
    "save_model",
]

FORMAT_VERSION = 1
_REGISTRY: dict[str, type] = {}
_FILES = ("model.json", "vocab.json", "weights.safetensors")
CALIBRATION_FILE = "calibration.json"
"""The calibrator of a calibrated model, as JSON (see :mod:`dotrec.calibration`)."""
ANN_FILE = "ann.json"
"""The approximate indexes of a model, described as JSON (see :mod:`dotrec.ann`)."""


def register(cls: type) -> type:
    """Class decorator: make a model class loadable by its ``name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_json(path: Path, payload: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())


def _description_checksum(meta: dict[str, Any]) -> str:
    """Checksum of ``model.json``'s content as JSON reads it back, its own checksum left out."""
    plain = {k: v for k, v in meta.items() if k != "description_sha256"}
    text = json.dumps(plain, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Write ``model.json`` with the checksum of its own content, so edits are caught on load."""
    plain = json.loads(json.dumps(meta))  # as it will read back (tuples, keys)
    _write_json(path, {**plain, "description_sha256": _description_checksum(plain)})


def save_model(
    model: Recommender, path: str | Path, extra_files: dict[str, str] | None = None
) -> Path:
    """Write ``model`` to the folder ``path``, replacing it atomically.

    Args:
        model: a fitted model.
        path: the model folder.
        extra_files: more text files to write into the folder, by file name
            (such as ``{"run.toml": ...}``); their checksums are kept and
            verified on load like those of the weights.

    Raises:
        ModelFileError: ``path`` exists and is not a dotrec model folder.
        TrainingDivergedError: a learned tensor holds NaN or infinite values
            (nothing is written).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and (
        not target.is_dir() or (not (target / "model.json").exists() and any(target.iterdir()))
    ):
        raise ModelFileError(
            f"{target} exists and is not a dotrec model folder; not overwriting it. Choose "
            "another path for the model folder (--out)."
        )
    for name, tensor in model._tensors().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise TrainingDivergedError(
                f"not saving to {target}: parameter {name!r} holds NaN or infinite values. "
                "Retrain with a lower learning rate, or scale or clip the ratings."
            )
    extra_files = dict(extra_files or {})
    for name in extra_files:
        if name in (*_FILES, CALIBRATION_FILE, ANN_FILE) or not _plain_name(name):
            raise ValueError(f"extra_files: {name!r} is not a free plain file name")
    payloads = {}
    if getattr(model, "ann_indexes", None):
        from dotrec.ann import folder_files

        text, payloads = folder_files(model.ann_indexes, model._index_vectors, len(model.items))
        extra_files.update(text)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        seen = model.seen
        tensors = {f"param.{k}": v.detach().cpu().contiguous() for k, v in model._tensors().items()}
        tensors["seen.indptr"] = torch.from_numpy(seen.indptr.astype(np.int64))
        tensors["seen.indices"] = torch.from_numpy(seen.indices.astype(np.int64))
        tensors["item_counts"] = torch.from_numpy(model.item_counts.astype(np.int64))
        save_file(tensors, str(tmp / "weights.safetensors"))
        _write_json(
            tmp / "vocab.json", {"users": model.users.to_list(), "items": model.items.to_list()}
        )
        if getattr(model, "calibrator", None) is not None:
            extra_files[CALIBRATION_FILE] = json.dumps(model.calibrator.to_dict())
        for name, text in extra_files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        for name, data in payloads.items():
            if data is not None:
                (tmp / name).write_bytes(data)
        meta = {
            "format_version": FORMAT_VERSION,
            "dotrec_version": __version__,
            "model": model.name,
            "config": dataclasses.asdict(model.config),
            "score_kind": model.score_kind,
            "n_users": len(model.users),
            "n_items": len(model.items),
            "fit": model.fit_info,
            "sha256": {
                name: _sha256(tmp / name)
                for name in ("vocab.json", "weights.safetensors", *extra_files)
            },
        }
        _write_metadata(tmp / "model.json", meta)
        for file in tmp.iterdir():
            os.chmod(file, 0o666 & ~_umask())
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def replace_files(
    path: str | Path,
    files: dict[str, str | None],
    payloads: dict[str, bytes | None] | None = None,
) -> Path:
    """Write (or, for None, remove) extra files of a model folder, atomically.

    The folder is copied beside itself, changed there, its ``model.json``
    checksums updated, and swapped into place, so a killed write leaves the
    previous folder intact; the weights and the other files stay byte for byte.

    Args:
        path: an existing model folder.
        files: file name -> new text, or None to remove the file; their
            checksums are kept in ``model.json``.
        payloads: file name -> new bytes, or None to remove the file; binary
            files whose checksums the caller keeps in one of ``files`` (as
            ``ann.json`` does for the faiss indexes).

    Raises:
        ModelFileError: ``path`` is not a complete model folder.
        ValueError: a name is not a free plain file name (the weights,
            vocabularies and ``model.json`` cannot be replaced this way).
    """
    target = Path(path)
    meta = read_metadata(target)
    payloads = dict(payloads or {})
    for name in (*files, *payloads):
        if name in _FILES or not _plain_name(name):
            raise ValueError(f"replace_files: {name!r} is not a free plain file name")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.rmdir()
        shutil.copytree(target, tmp)
        checksums = dict(meta.get("sha256") or {})
        for name, text in files.items():
            checksums.pop(name, None)
            (tmp / name).unlink(missing_ok=True)
            if text is not None:
                (tmp / name).write_text(text, encoding="utf-8")
                os.chmod(tmp / name, 0o666 & ~_umask())
                checksums[name] = _sha256(tmp / name)
        for name, data in payloads.items():
            checksums.pop(name, None)
            (tmp / name).unlink(missing_ok=True)
            if data is not None:
                (tmp / name).write_bytes(data)
                os.chmod(tmp / name, 0o666 & ~_umask())
        _write_metadata(tmp / "model.json", {**meta, "sha256": checksums})
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _plain_name(name: str) -> bool:
    return name == Path(name).name and not name.startswith(".")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The parsed ``model.json`` of a model folder, checked for format version."""
    folder = Path(path)
    if folder.is_file():
        raise ModelFileError(
            f"{folder} is a file, not a model folder; give the folder `dotrec train --out` wrote"
        )
    if not folder.is_dir():
        raise ModelFileError(
            f"{folder}: no such model folder (expected a folder from `dotrec train`)"
        )
    missing = [name for name in _FILES if not (folder / name).exists()]
    if missing:
        raise ModelFileError(f"{folder}: not a complete dotrec model folder; missing {missing}")
    try:
        meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{folder / 'model.json'} is truncated or corrupt ({err})") from err
    if not isinstance(meta, dict):
        raise ModelFileError(f"{folder / 'model.json'} is not a dotrec model description")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{folder}: model format version {version!r}, but this dotrec ({__version__}) reads "
            f"version {FORMAT_VERSION}. Retrain the model with this version, or load it with "
            f"the dotrec version that wrote it ({meta.get('dotrec_version', 'unknown')})."
        )
    return meta


def load_model(path: str | Path, device: str = "auto") -> Recommender:
    """Load any dotrec model folder; the class comes from its metadata.

    Raises:
        ModelFileError: the folder is missing, truncated, changed after saving,
            or from an incompatible format version.
    """
    import dotrec.models  # noqa: F401 - registers the model classes
    from dotrec.data import Vocabulary

    folder = Path(path)
    meta = read_metadata(folder)
    checksums = meta.get("sha256")
    if not isinstance(checksums, dict) or not {"vocab.json", "weights.safetensors"} <= set(
        checksums
    ):
        raise ModelFileError(
            f"{folder / 'model.json'} lacks the checksums of its files, so they cannot be "
            "verified. Save the model again."
        )
    for name, digest in checksums.items():
        if name != Path(name).name or not (folder / name).is_file():
            raise ModelFileError(
                f"{folder}: model.json lists {name!r}, which is not a file in the folder. "
                "Save the model again."
            )
        if _sha256(folder / name) != digest:
            raise ModelFileError(
                f"{folder / name} does not match the checksum in model.json: the file is "
                "truncated or was changed after saving. Save the model again."
            )
    cls = _REGISTRY.get(meta.get("model"))
    if cls is None:
        raise ModelFileError(f"{folder}: unknown model type {meta.get('model')!r}")
    try:
        tensors = load_file(str(folder / "weights.safetensors"), device="cpu")
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{folder}: cannot read the weights or vocabularies ({err})") from err

    try:
        config = meta["config"]
        model = cls(**{**config, "device": device} if "device" in config else config)
        model.users, model.items = Vocabulary(vocab["users"]), Vocabulary(vocab["items"])
        if (len(model.users), len(model.items)) != (meta["n_users"], meta["n_items"]):
            raise ModelFileError(f"{folder}: vocabularies do not match the sizes in model.json")
        indptr, indices = tensors.pop("seen.indptr").numpy(), tensors.pop("seen.indices").numpy()
        model.seen = sp.csr_array(
            (np.ones(len(indices), dtype=np.float32), indices, indptr),
            shape=(len(model.users), len(model.items)),
        )
        model.item_counts = tensors.pop("item_counts").numpy()
        model.fit_info = meta.get("fit", {})
        params = {k.removeprefix("param."): v for k, v in tensors.items() if k.startswith("param.")}
        for name, tensor in params.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ModelFileError(f"{folder}: parameter {name!r} holds NaN or infinite values")
        model._load_tensors(params)
        model.calibrator = _read_calibrator(folder) if CALIBRATION_FILE in checksums else None
        if ANN_FILE in checksums:
            from dotrec.ann import read_indexes

            model.ann_indexes = read_indexes(folder)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"{folder}: the model folder is incomplete or from an incompatible version "
            f"({type(err).__name__}: {err}). Save the model again with this dotrec version."
        ) from err
    recorded = meta.get("description_sha256")  # absent in folders written before it existed
    if recorded is not None and recorded != _description_checksum(meta):
        raise ModelFileError(
            f"{folder / 'model.json'} was changed after saving: its content no longer matches "
            "the checksum it records, so its settings may not describe the weights. Save the "
            "model again (or undo the edit)."
        )
    return model


def _read_calibrator(folder: Path):
    from dotrec.calibration import calibrator_from_dict

    path = folder / CALIBRATION_FILE
    try:
        return calibrator_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise ModelFileError(
            f"{path} is not a readable calibrator ({err}). Fit it again with `dotrec calibrate`."
        ) from err
