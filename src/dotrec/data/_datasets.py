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

import numpy as np
import pandas as pd

from dotrec.data._interactions import Interactions
from dotrec.data._items import read_items, read_users
from dotrec.data._lightgcn import user_item_lists
from dotrec.data._readers import read_interactions
from dotrec.exceptions import DataError, DatasetNotFoundError

__all__ = [
    "Dataset",
    "DatasetSpec",
    "DATASETS",
    "SplitSpec",
    "data_dir",
    "find_dataset",
    "load_dataset",
    "load_split",
]

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
    users: str | None = None
    """User metadata file inside the folder, if any."""


@dataclass(frozen=True)
class SplitSpec:
    """A dataset published as a fixed train/test split in the LightGCN text format.

    dotrec does not download these; when missing, the message says where to
    put the archive.
    """

    name: str
    archive: str
    """Zip archive holding ``FOLDER/train.txt`` and ``FOLDER/test.txt``; read without
    extracting."""
    folder: str
    """Folder of the two files inside the archive, and the name of an extracted copy."""
    places: tuple[str, ...]
    """Folders under the data directory searched in order ("" is the data directory)."""
    users: int
    """Expected distinct users over train and test."""
    items: int
    """Expected distinct items over train and test."""
    train_rows: int
    test_rows: int
    source: str
    """Where to get the archive, for messages."""
    sha256: dict[str, str] = field(default_factory=dict)
    """Checksums of the uncompressed ``train.txt`` and ``test.txt``."""


DATASETS: dict[str, DatasetSpec | SplitSpec] = {
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
                "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            },
            users="u.user",
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
        SplitSpec(
            "gowalla",
            "light_gcn_gowalla.zip",
            "light_gcn_gowalla",
            ("gowalla-lightgcn", "", "gowalla"),
            users=29_858,
            items=40_981,
            train_rows=810_128,
            test_rows=217_242,
            source="https://github.com/maenzhier/grecx_datasets (gowalla/light_gcn_gowalla.zip); "
            "the same train.txt and test.txt are in https://github.com/gusye1234/LightGCN-PyTorch "
            "(data/gowalla)",
            sha256={
                "train.txt": "7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62",
                "test.txt": "099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3",
            },
        ),
    ]
}


@dataclass
class Dataset:
    """Interactions plus, when known, item and user metadata indexed by raw ID."""

    name: str
    interactions: Interactions
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    """User metadata (ml-100k: age, gender, occupation, zip_code), or None."""


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
    fetches the archive (with a progress bar) into ``ROOT``. A published split
    (``gowalla``) is never downloaded: its verified archive (or extracted
    folder) is returned, see :func:`load_split`.

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
    if isinstance(spec, SplitSpec):
        return _read_split(spec, root)[0]
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

    Every rating is a positive unless ``min_rating`` is given. For a published
    split (``gowalla``) the interactions are train and test together; use
    :func:`load_split` for the split itself.
    """
    if isinstance(DATASETS.get(name), SplitSpec):
        if min_rating is not None:
            raise DataError(f"{name} has no ratings, so min_rating={min_rating} cannot apply.")
        parts = _read_split(DATASETS[name], data_dir() if root is None else Path(root))[1]
        users, items = (np.concatenate([pairs[k] for pairs in parts.values()]) for k in (0, 1))
        _log.info("loaded %s: train and test of its published split together", name)
        return Dataset(name, Interactions.from_ids(users, items, source=f"{name} train + test"))
    folder = find_dataset(name, root, download)
    spec = DATASETS[name]
    interactions = read_interactions(folder / spec.ratings, min_rating=min_rating)
    items = (
        read_items(folder / spec.items) if spec.items and (folder / spec.items).exists() else None
    )
    users = (
        read_users(folder / spec.users) if spec.users and (folder / spec.users).exists() else None
    )
    _log.info("loaded %s: %r", name, interactions)
    return Dataset(name, interactions, items, users)


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
    part: Path | None = None
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        response = _open_url(spec.url, timeout)
        total = int(response.headers.get("Content-Length") or 0) or None
        with tempfile.NamedTemporaryFile(dir=archive.parent, delete=False, suffix=".part") as tmp:
            part = Path(tmp.name)
            with tqdm(total=total, unit="B", unit_scale=True, desc=spec.name) as bar:
                while chunk := response.read(1 << 16):
                    tmp.write(chunk)
                    bar.update(len(chunk))
        shutil.move(tmp.name, archive)
    except OSError as err:
        raise DatasetNotFoundError(
            _where_to_put(spec, archive.parent, f"downloading it failed ({err})")
        ) from err
    finally:
        if part is not None:  # a download cut short leaves no partial file behind
            part.unlink(missing_ok=True)


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


# --- published splits (LightGCN text format) -------------------------------------


def load_split(name: str, root: Path | None = None) -> tuple[Interactions, Interactions]:
    """The published train/test split of a dataset, as given (``gowalla``).

    Gowalla is the NGCF/LightGCN split (29,858 users, 40,981 items, 810,128
    training and 217,242 test interactions), read from ``light_gcn_gowalla.zip``
    without extracting it; an extracted folder holding ``train.txt`` and
    ``test.txt`` works too. IDs stay text (``"0"`` .. ``"29857"``). Every pair
    is a positive. The files are verified by checksum and counts.

    Returns:
        ``(train, test)``, each with its own vocabularies (evaluation matches
        them by raw ID).

    Raises:
        ValueError: an unknown name, or a dataset without a published split.
        DatasetNotFoundError: the archive is not in the data directory; the
            message says where to put it (it is never downloaded).
        DataError: the archive is damaged, lacks a file, or fails verification.
    """
    spec = DATASETS.get(name)
    if not isinstance(spec, SplitSpec):
        splits = [n for n, s in DATASETS.items() if isinstance(s, SplitSpec)]
        raise ValueError(
            f"{name!r} has no published split dotrec knows (those with one: {', '.join(splits)}); "
            "load it with load_dataset() and split it with random_split() or temporal_split()."
        )
    parts = _read_split(spec, data_dir() if root is None else Path(root))[1]
    sides = [
        Interactions.from_ids(users, items, source=f"{name} {part}", lines=lines)
        for part, (users, items, lines) in parts.items()
    ]
    _log.info("loaded %s: train %r, test %r", name, sides[0], sides[1])
    return sides[0], sides[1]


_Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Raw user IDs, raw item IDs and line numbers of the pairs of one file."""


def _read_split(spec: SplitSpec, root: Path) -> tuple[Path, dict[str, _Pairs]]:
    """The archive (or folder) found, and the verified pairs of train.txt and test.txt."""
    location = _find_split(spec, root)
    parts = {}
    for part in ("train.txt", "test.txt"):
        data = _read_split_file(location, spec, part)
        digest = hashlib.sha256(data).hexdigest()
        expected = spec.sha256.get(part)
        if expected and digest != expected:
            raise DataError(
                f"{location}: {part} has checksum {digest[:12]}... where the published "
                f"{spec.name} split has {expected[:12]}...; the copy is modified or incomplete. "
                f"Replace it with {spec.archive} from {spec.source}."
            )
        text = data.decode("utf-8", errors="replace")
        parts[part] = user_item_lists(text, f"{location}: {part}")
    _check_split_counts(spec, location, parts)
    return location, parts


def _find_split(spec: SplitSpec, root: Path) -> Path:
    """The first archive or extracted folder of ``spec`` under ``root``."""
    for place in spec.places:
        folder = root / place
        candidates = [folder / spec.archive, folder / spec.folder]
        if place:  # ROOT/gowalla/train.txt, as in the LightGCN repository
            candidates.append(folder)
        for candidate in candidates:
            if candidate.is_file() or (candidate / "train.txt").is_file():
                return candidate
    places = [str(root / place / spec.archive) for place in spec.places]
    raise DatasetNotFoundError(
        f"dataset {spec.name} (the published LightGCN split) is not in the data directory "
        f"{root}, and dotrec does not download it. Put {spec.archive} (from {spec.source}) at "
        f"{places[0]} (also looked for: {', '.join(places[1:])}, and for an extracted "
        f"{spec.folder}/ folder holding train.txt and test.txt), or point DOTREC_DATA at the "
        "folder that holds it."
    )


def _read_split_file(location: Path, spec: SplitSpec, part: str) -> bytes:
    if location.is_dir():
        path = location / part
        if not path.is_file():
            raise DataError(f"{location}: no {part} beside train.txt; the copy is incomplete.")
        return path.read_bytes()
    member = f"{spec.folder}/{part}"
    try:
        with zipfile.ZipFile(location) as zf:
            if member not in zf.namelist():
                raise DataError(
                    f"{location}: the archive has no {member} (it holds "
                    f"{', '.join(zf.namelist()[:6])}); replace it with {spec.archive} from "
                    f"{spec.source}."
                )
            return zf.read(member)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(
            f"{location}: not a readable zip archive ({err}); replace it with {spec.archive} "
            f"from {spec.source}."
        ) from err


def _check_split_counts(spec: SplitSpec, location: Path, pairs: dict[str, _Pairs]) -> None:
    found = {
        "training interactions": len(pairs["train.txt"][0]),
        "test interactions": len(pairs["test.txt"][0]),
        "users": len(set(pairs["train.txt"][0]) | set(pairs["test.txt"][0])),
        "items": len(set(pairs["train.txt"][1]) | set(pairs["test.txt"][1])),
    }
    expected = {
        "training interactions": spec.train_rows,
        "test interactions": spec.test_rows,
        "users": spec.users,
        "items": spec.items,
    }
    wrong = [
        f"{found[k]:,} {k} (expected {expected[k]:,})" for k in found if found[k] != expected[k]
    ]
    if wrong:
        raise DataError(
            f"{location}: {'; '.join(wrong)} in the {spec.name} split; the copy is modified or "
            f"incomplete. Replace it with {spec.archive} from {spec.source}."
        )
