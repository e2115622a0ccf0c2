"""MovieLens 100K end to end: load and verify, split, train the default model, evaluate."""

from __future__ import annotations

import pytest

import dotrec
from dotrec import DataError, DatasetNotFoundError

pytestmark = [pytest.mark.slow, pytest.mark.data]


@pytest.fixture(scope="module")
def ml100k(data_root):
    return dotrec.load_dataset("ml-100k", root=data_root, download=False)


@pytest.fixture(scope="module")
def fitted(ml100k):
    """The one full default training on ml-100k in the suite (about 10 s)."""
    train, test = dotrec.random_split(ml100k.interactions, test_fraction=0.2, seed=0)
    model = dotrec.MatrixFactorization().fit(train)
    return model, train, test


def test_load_dataset_reads_the_official_files(ml100k):
    data = ml100k.interactions
    assert (len(data), data.n_users, data.n_items) == (100_000, 943, 1682)
    assert data.rating is not None and data.timestamp is not None
    assert ml100k.items.loc["1", "title"] == "Toy Story (1995)"


def test_load_dataset_verifies_checksums(data_root, tmp_path):
    # a copy with one rating changed no longer matches the official file
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    text = (data_root / "ml-100k" / "u.data").read_text()
    first, rest = text.split("\n", 1)
    user, item, rating, stamp = first.split("\t")
    changed = "\t".join([user, item, "1" if rating != "1" else "2", stamp])
    (folder / "u.data").write_text(changed + "\n" + rest)
    with pytest.raises(DataError, match="checksum .* does not match the official file"):
        dotrec.load_dataset("ml-100k", root=tmp_path, download=False)


def test_load_dataset_counts_rows_and_reports_absence(tmp_path, monkeypatch):
    # ml-1m has no checksum on file here, so a short ratings.dat is caught by
    # its row count
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    with pytest.raises(DataError, match="2 rating rows where ml-1m has 1000209"):
        dotrec.load_dataset("ml-1m", root=tmp_path, download=False)
    monkeypatch.setenv("DOTREC_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match="ml-latest-small is not in the data directory"):
        dotrec.load_dataset("ml-latest-small", root=tmp_path)


def test_split_sizes(fitted):
    _, train, test = fitted
    assert len(train) + len(test) == 100_000
    assert len(test) == 20_000


def test_default_model_ndcg(fitted):
    model, train, test = fitted
    result = dotrec.evaluate(model, test, k=10)
    # 0.435 when this test was written; below 0.40 means training got worse
    assert result.metrics["ndcg@10"] >= 0.40, result.metrics
    assert result.metrics["precision@10"] > 0.3
    assert result.n_users == 943
    assert result.notes["overlap_with_train"] == 0
