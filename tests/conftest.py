"""Shared fixtures: the failure-case folder, the MovieLens data, seeded generators."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    """$DOTREC_SHARED, else ``shared`` beside the repository, else the folder above $DOTREC_DATA.

    A checkout in another place (a worktree) still finds the failure cases
    next to the data it is told about, rather than skipping them.
    """
    if "DOTREC_SHARED" in os.environ:
        return Path(os.environ["DOTREC_SHARED"])
    beside = REPO.parent / "shared"
    data = os.environ.get("DOTREC_DATA")
    if not (beside / "cases").is_dir() and data and (Path(data).parent / "cases").is_dir():
        return Path(data).parent
    return beside


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    """``cases`` in the shared folder (see :func:`_shared`)."""
    folder = _shared() / "cases"
    if not folder.is_dir():
        pytest.skip(f"failure cases not found at {folder}")
    return folder


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data directory holding MovieLens ($DOTREC_DATA)."""
    root = Path(os.environ.get("DOTREC_DATA", _shared() / "data"))
    if not (root / "ml-100k" / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found under {root}; set DOTREC_DATA")
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)
