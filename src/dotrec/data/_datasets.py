"""Named datasets: find them in the data directory, verify them, download them."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dotrec.data._interactions import Interactions
from dotrec.data._items import read_items
from dotrec.data._readers import read_interactions
from dotrec.exceptions import DataError, DatasetNotFoundError

__all__ = ["Dataset", "DatasetSpec", "DATASETS", "data_dir", "find_dataset", "load_dataset"]

_log = logging.getLogger(__name__)

_GROUPLENS = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named dataset lives and what it must look like."""

    name: str
    ratings: str
    """Ratings file name inside the dataset folder."""
    items: str | None
    """Item metadata file inside the folder, if any."""
    rows: int
    """Expected number of rating rows."""
    url: str
    sha256: dict[str, str] = field(default_factory=dict)
    """Known checksums of files in the folder."""


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            "ml-100k",
            "u.data",
            "u.item",
            100_000,
            _GROUPLENS + "ml-100k.zip",
            {
                "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
                "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            },
        ),
        DatasetSpec("ml-1m", "ratings.dat", "movies.dat", 1_000_209, _GROUPLENS + "ml-1m.zip"),
        DatasetSpec(
            "ml-latest-small",
            "ratings.csv",
            "movies.csv",
            100_836,
            _GROUPLENS + "ml-latest-small.zip",
            {
                "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
                "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
            },
        ),
    ]
}


@dataclass
class Dataset:
    """Interactions plus, when known, item metadata indexed by raw item ID."""

    name: str
    interactions: Interactions
    items: pd.DataFrame | None = None


def data_dir() -> Path:
    """The data directory: ``$DOTREC_DATA``, else ``$XDG_CACHE_HOME/dotrec``
    (``~/.cache/dotrec``)."""
    if os.environ.get("DOTREC_DATA"):
        return Path(os.environ["DOTREC_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dotrec"


def find_dataset(name: str, root: Path | None = None, download: bool = True) -> Path:
    """The verified folder of a named dataset, extracting or downloading it.

    Looks for ``ROOT/NAME/`` holding the ratings file, then for the official
    archive ``ROOT/NAME.zip``; when neither is there and ``download`` is true,
    fetches the archive (with a progress bar) into ``ROOT``.

    Raises:
        ValueError: an unknown dataset name.
        DatasetNotFoundError: not present and not downloadable; the message
            says where to put the files.
        DataError: the files are present but fail verification.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    root = data_dir() if root is None else Path(root)
    folder = root / name
    archive = root / f"{name}.zip"
    if not (folder / spec.ratings).exists() and archive.exists():
        _extract(archive, root, spec)
    if not (folder / spec.ratings).exists():
        if not download or os.environ.get("DOTREC_OFFLINE"):
            raise DatasetNotFoundError(_where_to_put(spec, root, "downloading is off"))
        _download(spec, archive)
        _extract(archive, root, spec)
    _verify(folder, spec)
    return folder


def load_dataset(
    name: str, root: Path | None = None, download: bool = True, min_rating: float | None = None
) -> Dataset:
    """Load a named dataset (``ml-100k``, ``ml-1m``, ``ml-latest-small``).

    Every rating is a positive unless ``min_rating`` is given.
    """
    folder = find_dataset(name, root, download)
    spec = DATASETS[name]
    interactions = read_interactions(folder / spec.ratings, min_rating=min_rating)
    items = (
        read_items(folder / spec.items) if spec.items and (folder / spec.items).exists() else None
    )
    _log.info("loaded %s: %r", name, interactions)
    return Dataset(name, interactions, items)


def _where_to_put(spec: DatasetSpec, root: Path, reason: str) -> str:
    where = (
        f"the folder {root / spec.name} has no {spec.ratings}"
        if (root / spec.name).is_dir()
        else f"dataset {spec.name} is not in the data directory {root}"
    )
    return (
        f"{where} and {reason}. Put the "
        f"extracted folder at {root / spec.name} (holding {spec.ratings}) or the official "
        f"archive at {root / (spec.name + '.zip')} (from {spec.url}), or point DOTREC_DATA "
        "at the folder that holds it."
    )


def _extract(archive: Path, root: Path, spec: DatasetSpec) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(spec.name + "/")]
            if not members:
                raise DataError(f"{archive}: no folder {spec.name}/ inside the archive.")
            zf.extractall(root, members)
    except zipfile.BadZipFile as err:
        raise DataError(
            f"{archive}: not a valid zip archive ({err}); delete it and retry."
        ) from err


def _open_url(url: str, timeout: float):
    """urlopen in a daemon thread, so that a stalled name lookup cannot hang us."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["response"] = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310
        except Exception as err:  # noqa: BLE001 - reported to the caller below
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if "response" in result:
        return result["response"]
    raise OSError(result.get("error") or f"no answer within {timeout:g} s")


def _download(spec: DatasetSpec, archive: Path) -> None:
    from tqdm.auto import tqdm

    timeout = float(os.environ.get("DOTREC_DOWNLOAD_TIMEOUT", "15"))
    _log.info("downloading %s from %s", spec.name, spec.url)
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        response = _open_url(spec.url, timeout)
        total = int(response.headers.get("Content-Length") or 0) or None
        with tempfile.NamedTemporaryFile(dir=archive.parent, delete=False, suffix=".part") as tmp:
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.name) as bar:
                while chunk := response.read(1 << 16):
                    tmp.write(chunk)
                    bar.update(len(chunk))
        shutil.move(tmp.name, archive)
    except OSError as err:
        raise DatasetNotFoundError(
            _where_to_put(spec, archive.parent, f"downloading it failed ({err})")
        ) from err


def _verify(folder: Path, spec: DatasetSpec) -> None:
    for file_name, expected in spec.sha256.items():
        path = folder / file_name
        if not path.exists():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise DataError(
                f"{path}: checksum {digest[:12]}... does not match the official file "
                f"({expected[:12]}...); the copy is modified or incomplete. Replace it with "
                f"the file from {spec.url}."
            )
    with open(folder / spec.ratings, "rb") as fh:
        rows = sum(1 for line in fh if line.strip()) - (1 if spec.ratings.endswith(".csv") else 0)
    if rows != spec.rows:
        raise DataError(
            f"{folder / spec.ratings}: {rows} rating rows where {spec.name} has {spec.rows}; "
            f"the copy is incomplete. Replace it with the file from {spec.url}."
        )
