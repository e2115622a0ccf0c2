"""The kinds of approximate index and their settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Kind = Literal["hnsw", "ivf"]
Metric = Literal["inner_product", "cosine"]
KINDS = ("hnsw", "ivf")
DEFAULT_MIN_ITEMS = 100_000
"""Catalogue size from which ``recommend`` uses an index unless told otherwise:
below it exact scoring takes a few milliseconds per user anyway."""


@dataclass
class HNSWSettings:
    """Settings of a hierarchical navigable small world graph (Malkov and Yashunin, 2018)."""

    m: int = 32
    """Links per item in the graph: more links, better recall, more memory."""
    ef_construction: int = 80
    """Candidates kept while linking each item: build time against graph quality."""
    ef_search: int = 1024
    """Candidates kept while searching (at least the number fetched): query
    time against recall; may be changed on a built index. On the million
    items of ``benchmarks/ann.py`` 256 finds 0.85 of the exact top-10, 1024
    finds 0.97."""

    def __post_init__(self) -> None:
        _check_positive(self, ("m", "ef_construction", "ef_search"))


@dataclass
class IVFSettings:
    """Settings of an inverted file: k-means lists, a few searched per query."""

    nlist: int | None = None
    """Number of k-means lists; None: 4 sqrt(n_items), at most n_items / 39 (so
    that every centroid is trained on at least 39 items)."""
    nprobe: int = 64
    """Lists searched per query: query time against recall; may be changed
    on a built index. On the million items of ``benchmarks/ann.py`` (4,000
    lists) 32 finds 0.97 of the exact top-10, 64 finds 0.99."""
    train_per_list: int = 64
    """Items per list sampled to train the k-means centroids."""
    seed: int = 0
    """Seed of the training sample and of k-means."""

    def __post_init__(self) -> None:
        _check_positive(self, ("nprobe", "train_per_list"))
        if self.nlist is not None:
            _check_positive(self, ("nlist",))

    def lists_for(self, n_items: int) -> int:
        """The number of lists used for ``n_items`` items."""
        if self.nlist is not None:
            if self.nlist > n_items:
                raise ValueError(f"nlist ({self.nlist}) exceeds the number of items ({n_items})")
            return self.nlist
        return max(1, min(round(4 * math.sqrt(n_items)), n_items // 39))


_SETTINGS = {"hnsw": HNSWSettings, "ivf": IVFSettings}


def _check_positive(settings: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
