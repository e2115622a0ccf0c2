"""What the commands share: data arguments, loading, printing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import typing
from pathlib import Path

from dotrec.config import DataConfig
from dotrec.data import DATASETS, Dataset, FileFormat, Interactions
from dotrec.exceptions import ArchiveError

__all__ = [
    "add_data_options",
    "archive_next_step",
    "data_config",
    "load_data",
    "parse_settings",
    "echo",
    "warn",
]

_ROLES = ("user", "item", "rating", "timestamp", "label")


def echo(text: str = "") -> None:
    """Print a line of output to standard output."""
    print(text, flush=True)


def warn(text: str) -> None:
    """Print a notice to standard error."""
    print(f"dotrec: {text}", file=sys.stderr, flush=True)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Options that tell how to read an interaction file."""
    group = parser.add_argument_group("reading the data")
    group.add_argument(
        "--data-format",
        choices=typing.get_args(FileFormat),
        help="how to read a data file (default: auto, told from its name): csv, parquet, "
        "ml-100k, ml-1m, ml-latest-small, or lightgcn for one line per user, "
        "'user item item ...' (LightGCN's train.txt and test.txt)",
    )
    group.add_argument(
        "--sep",
        help="column separator (default: sniffed), e.g. ',', '::' or "
        "'\\t' (a tab; 'tab' works too)",
    )
    header = group.add_mutually_exclusive_group()
    header.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="the first line names the columns",
    )
    header.add_argument(
        "--no-header", dest="header", action="store_false", help="the first line is data"
    )
    group.add_argument("--user-col", help="name of the user ID column")
    group.add_argument("--item-col", help="name of the item ID column")
    group.add_argument("--rating-col", help="name of the rating column")
    group.add_argument("--timestamp-col", help="name of the timestamp column")
    group.add_argument("--label-col", help="name of a 0/1 column; 0 marks observed negatives")
    group.add_argument(
        "--min-rating",
        type=float,
        help="keep rows rated at least this as positives (default: every row)",
    )
    group.add_argument(
        "--encoding",
        help="text encoding of the files read, e.g. latin-1 (default: utf-8; MovieLens item "
        "files: latin-1)",
    )
    group.add_argument(
        "--drop-invalid",
        action="store_true",
        default=None,
        help="skip rows with too few fields or non-finite numbers, with a warning",
    )


def load_data(spec: str, args: argparse.Namespace) -> Dataset:
    """Read DATA: an existing file, or a dataset name (ml-100k, ml-1m, ml-latest-small)."""
    return data_config(args, DataConfig.from_spec(spec)).load()


def data_config(args: argparse.Namespace, base: DataConfig) -> DataConfig:
    """``base`` with the reading options given on the command line put over it."""
    given = {
        "format": getattr(args, "data_format", None),
        "sep": getattr(args, "sep", None),
        "header": getattr(args, "header", None),
        "min_rating": getattr(args, "min_rating", None),
        "encoding": getattr(args, "encoding", None),
        "drop_invalid": getattr(args, "drop_invalid", None),
    }
    columns = {role: getattr(args, f"{role}_col", None) for role in _ROLES}
    return dataclasses.replace(
        base,
        **{k: v for k, v in given.items() if v is not None},
        columns={**base.columns, **{k: v for k, v in columns.items() if v is not None}},
    )


def archive_next_step(err: ArchiveError, argv: list[str]) -> str:
    """The command to run once the file in the archive is extracted, as a sentence.

    The archive's place on the command line is taken by the extracted file,
    with ``--data-format`` when the file needs one; empty when the archive
    came from elsewhere (a run config).
    """
    tokens = [err.member if _same_path(token, err.path) else token for token in argv]
    if tokens == list(argv):
        return ""
    if err.format and "--data-format" not in tokens:
        tokens += ["--data-format", err.format]
    step = f" Then run: dotrec {shlex.join(tokens)}"
    archive = err.path.name
    names = [name for name, spec in DATASETS.items() if getattr(spec, "archive", "") == archive]
    if names:
        step += (
            f". The archive is also the published {names[0]} split: with "
            f"DOTREC_DATA={shlex.quote(str(err.path.parent))}, the dataset name {names[0]} reads "
            "its train and test files together"
        )
    return step + "."


def _same_path(token: str, path: Path) -> bool:
    return not token.startswith("-") and Path(token) == path


def parse_settings(items: list[str]) -> dict:
    """``--set KEY=VALUE`` options as a dict; a value is read as JSON when it parses."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        try:
            settings[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            settings[key.strip()] = value
    return settings


def interactions_to_csv(data: Interactions, path: Path) -> None:
    """Write interactions with raw IDs and every known column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_frame().to_csv(path, index=False)
