"""What the commands share: data arguments, loading, printing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dotrec.data import DATASETS, Dataset, Interactions, load_dataset, read_interactions, read_items

__all__ = ["add_data_options", "load_data", "load_titles", "echo", "warn"]


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
    group.add_argument("--encoding", default="utf-8", help="text encoding (default: utf-8)")
    group.add_argument(
        "--drop-invalid",
        action="store_true",
        help="skip rows with too few fields or non-finite numbers, with a warning",
    )


def load_data(spec: str, args: argparse.Namespace) -> Dataset:
    """Read DATA: an existing file, or a dataset name (ml-100k, ml-1m, ml-latest-small)."""
    path = Path(spec)
    if not path.exists() and spec in DATASETS:
        return load_dataset(spec, min_rating=getattr(args, "min_rating", None))
    if not path.exists():
        raise FileNotFoundError(
            f"{spec}: no such file, and not a dataset name ({', '.join(DATASETS)})."
        )
    interactions = read_interactions(
        path,
        sep=separator(getattr(args, "sep", None)),
        header=getattr(args, "header", None),
        user_col=getattr(args, "user_col", None),
        item_col=getattr(args, "item_col", None),
        rating_col=getattr(args, "rating_col", None),
        timestamp_col=getattr(args, "timestamp_col", None),
        label_col=getattr(args, "label_col", None),
        min_rating=getattr(args, "min_rating", None),
        encoding=getattr(args, "encoding", "utf-8"),
        on_invalid="drop" if getattr(args, "drop_invalid", False) else "raise",
    )
    return Dataset(path.name, interactions, None)


def separator(text: str | None) -> str | None:
    """The --sep value as meant: the two characters ``\\t`` (or the word ``tab``) are a tab."""
    return {"\\t": "\t", "tab": "\t"}.get(text, text) if text is not None else None


def load_titles(path: str | None) -> dict[str, str]:
    """Item titles from a metadata file, or an empty dict."""
    if not path:
        return {}
    return read_items(path)["title"].to_dict()


def interactions_to_csv(data: Interactions, path: Path) -> None:
    """Write interactions with raw IDs and every known column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_frame().to_csv(path, index=False)
