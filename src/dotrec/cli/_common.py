"""What the commands share: data arguments, loading, printing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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
    "refuse_unused_flags",
    "echo",
    "finite_float",
    "thread_count",
    "warn",
]

_ROLES = ("user", "item", "rating", "timestamp", "label")


def echo(text: str = "") -> None:
    """Print a line of output to standard output."""
    print(text, flush=True)


def warn(text: str) -> None:
    """Print a notice to standard error."""
    print(f"dotrec: {text}", file=sys.stderr, flush=True)


def thread_count(text: str) -> int:
    """An argparse type for ``--threads``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 thread, got {value}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number; "nan" and "inf" are refused when parsing.

    Python's ``float`` takes them, and they pass every comparison check
    later (``nan < 0`` is false) until something fails far from the option.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


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
        type=finite_float,
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
        settings[key.strip()] = _setting_value(item, value)
    return settings


_NOT_APPLICABLE = {
    "num_threads": "it has no thread setting, as its fit does not run on Torch threads",
    "device": "it has no device setting, as it runs on the CPU",
}
"""Why a model may lack the setting behind a flag, by setting name."""


def refuse_unused_flags(model: str, config_class: type, flags: dict[str, str]) -> None:
    """Raise ValueError naming the first flag whose setting the model does not have.

    Args:
        model: the model name, for the message.
        config_class: the model's settings dataclass.
        flags: the flag typed (``"--threads"``) by setting name (``"num_threads"``),
            for the flags given on the command line.
    """
    names = {f.name for f in dataclasses.fields(config_class)}
    known = f"its settings are {', '.join(sorted(names)) or 'none'}"
    for name, flag in flags.items():
        if name not in names:
            why = _NOT_APPLICABLE.get(name, known)
            raise ValueError(f"{flag} does not apply to the {model} model: {why}")


def _setting_value(item: str, text: str) -> object:
    """``text`` read as JSON when it parses, else as it is; NaN and infinity are refused."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        return text
    except ValueError as err:  # NaN or Infinity
        raise ValueError(f"--set {item}: {err}") from None
    numbers = value if isinstance(value, list) else [value]
    if any(isinstance(n, float) and not math.isfinite(n) for n in numbers):  # e.g. 1e999
        raise ValueError(f"--set {item}: expected a finite number, got {text!r}")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"expected a finite number, got {name!r}")


def interactions_to_csv(data: Interactions, path: Path) -> None:
    """Write interactions with raw IDs and every known column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_frame().to_csv(path, index=False)
