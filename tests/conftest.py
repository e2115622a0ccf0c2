"""Shared fixtures: the failure-case folder, the MovieLens data, seeded generators."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared() -> Path:
    return Path(os.environ.get("DOTREC_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def cases_dir() -> Path:
    """``shared/cases`` beside the repository (or $DOTREC_SHARED/cases)."""
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
