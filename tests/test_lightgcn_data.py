"""The LightGCN text format and the published Gowalla split."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import zipfile
from pathlib import Path

import pytest

from dotrec import DataError, DatasetNotFoundError, DataWarning, EmptyDataError, read_interactions
from dotrec.data import DATASETS, find_dataset, load_dataset, load_split, read_lightgcn
from dotrec.exceptions import ArchiveError

TRAIN = "0 10 11 12\n1 11\n007 12 10\n"
TEST = "0 13\n1 10 12\n007 11\n"


def _write(tmp_path: Path, text: str, name: str = "train.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reader_keeps_ids_as_text_in_file_order(tmp_path):
    data = read_lightgcn(_write(tmp_path, TRAIN))
    assert data.users.ids.tolist() == ["0", "1", "007"]
    assert data.items.ids.tolist() == ["10", "11", "12"]
    pairs = set(zip(data.to_frame().user_id, data.to_frame().item_id, strict=True))
    assert pairs == {
        ("0", "10"),
        ("0", "11"),
        ("0", "12"),
        ("1", "11"),
        ("007", "12"),
        ("007", "10"),
    }
    assert data.rating is None and data.timestamp is None and data.positive.all()


def test_reader_through_read_interactions(tmp_path):
    data = read_interactions(_write(tmp_path, TRAIN), format="lightgcn")
    assert (len(data), data.n_users, data.n_items) == (6, 3, 3)
    with pytest.raises(DataError, match="no ratings"):
        read_interactions(_write(tmp_path, TRAIN), format="lightgcn", min_rating=4)


@pytest.mark.parametrize("sep", [None, " "])
def test_field_errors_on_lightgcn_lines_name_the_format(tmp_path, sep):
    # Issue: Gowalla's train.txt read as a delimited file sent users to --sep, a dead end.
    path = _write(tmp_path, "0 10\n1 11 12 13\n007 12 10\n")
    with pytest.raises(DataError) as info:
        read_interactions(path, sep=sep)
    message = str(info.value)
    assert ("too many fields" if sep else "could not tell the column separator") in message
    assert "format='lightgcn' (command line: --data-format lightgcn)" in message


@pytest.mark.parametrize(
    "text, lightgcn",
    [
        ("0 10\n1 11 12 13\n", True),
        ("0 1\n1\n", False),  # never three fields
        ("0 1 5\n1 2 4\n", False),  # fixed columns: user item rating
        ("u1 i1 i2\nu2 i3\n", False),  # not whole numbers
        ("0,1,2\n1,2\n", False),
        ("", False),
    ],
)
def test_looks_like_lightgcn(text, lightgcn):
    from dotrec.data._lightgcn import looks_like_lightgcn

    assert looks_like_lightgcn(text) is lightgcn


def test_lightgcn_format_refuses_options_it_cannot_apply(tmp_path):
    path = _write(tmp_path, TRAIN)
    with pytest.raises(DataError, match="has no header or columns to choose; drop sep, user_col"):
        read_interactions(path, format="lightgcn", sep=" ", user_col=0)


def test_zip_archive_names_the_member_to_extract_and_its_format(tmp_path):
    archive = tmp_path / "light_gcn_tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tiny/item_list.txt", "org_id remap_id\n10 0\n")
        zf.writestr("tiny/train.txt", TRAIN)
        zf.writestr("tiny/test.txt", TEST)
    with pytest.raises(ArchiveError) as info:
        read_interactions(archive)
    assert (info.value.member, info.value.format) == ("tiny/train.txt", "lightgcn")
    assert f"unzip {archive} tiny/train.txt" in str(info.value)
    assert "--data-format lightgcn" in str(info.value)

    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ratings.csv", "user_id,item_id\nu1,i1\n")
    with pytest.raises(ArchiveError) as info:
        read_interactions(archive)
    assert (info.value.member, info.value.format) == ("ratings.csv", None)
    assert "lightgcn" not in str(info.value)


def test_user_without_items_adds_nothing_and_whitespace_is_tolerated(tmp_path):
    data = read_lightgcn(_write(tmp_path, "0 1  2 \n5\n\n3\t1\n"))
    assert data.users.ids.tolist() == ["0", "3"]
    assert len(data) == 3


def test_repeated_pairs_are_merged_with_a_warning(tmp_path):
    path = _write(tmp_path, "0 1 1 2\n0 2\n")
    with pytest.warns(DataWarning, match="merged 2 duplicate rows"):
        data = read_lightgcn(path)
    assert len(data) == 2
    with pytest.raises(DataError, match="lines 1, 1"):
        read_lightgcn(path, duplicates="error")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("0\n1\n", "no line holds a user followed by items"),
        ("0,1\n1,2\n", "commas or semicolons"),
    ],
)
def test_reader_refuses_files_without_pairs(tmp_path, text, message):
    with pytest.raises(EmptyDataError, match=message):
        read_lightgcn(_write(tmp_path, text))


def test_reader_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_lightgcn(tmp_path / "absent.txt")


# --- the named dataset, on a tiny archive built here -------------------------------


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def tiny_spec(monkeypatch):
    """DATASETS["gowalla"] with the counts and checksums of TRAIN and TEST."""
    spec = dataclasses.replace(
        DATASETS["gowalla"],
        users=3,
        items=4,
        train_rows=6,
        test_rows=4,
        sha256={"train.txt": _sha(TRAIN), "test.txt": _sha(TEST)},
    )
    monkeypatch.setitem(DATASETS, "gowalla", spec)
    monkeypatch.delenv("DOTREC_DATA", raising=False)
    return spec


def _zip(path: Path, train: str = TRAIN, test: str = TEST, folder="light_gcn_gowalla") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/", "")
        zf.writestr(f"{folder}/train.txt", train)
        zf.writestr(f"{folder}/test.txt", test)
    return path


def test_load_split_reads_the_archive_without_extracting(tiny_spec, tmp_path):
    archive = _zip(tmp_path / "gowalla-lightgcn" / "light_gcn_gowalla.zip")
    train, test = load_split("gowalla", root=tmp_path)
    assert (len(train), len(test)) == (6, 4)
    assert train.users.ids.tolist() == ["0", "1", "007"]
    assert sorted(test.items.ids.tolist()) == ["10", "11", "12", "13"]
    assert sorted(p.name for p in archive.parent.iterdir()) == ["light_gcn_gowalla.zip"]
    assert find_dataset("gowalla", root=tmp_path) == archive


def test_load_split_finds_an_extracted_folder(tiny_spec, tmp_path):
    folder = tmp_path / "gowalla"
    folder.mkdir()
    _write(folder, TRAIN, "train.txt")
    _write(folder, TEST, "test.txt")
    train, test = load_split("gowalla", root=tmp_path)
    assert (len(train), len(test)) == (6, 4)


def test_load_dataset_joins_train_and_test(tiny_spec, tmp_path):
    _zip(tmp_path / "light_gcn_gowalla.zip")
    data = load_dataset("gowalla", root=tmp_path).interactions
    assert (len(data), data.n_users, data.n_items) == (10, 3, 4)
    with pytest.raises(DataError, match="no ratings"):
        load_dataset("gowalla", root=tmp_path, min_rating=4)


def test_absent_split_says_where_to_put_it_without_downloading(tiny_spec, tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the Gowalla split must never be downloaded")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as caught:
        load_split("gowalla", root=tmp_path)
    assert time.perf_counter() - start < 5
    message = str(caught.value)
    assert str(tmp_path / "gowalla-lightgcn" / "light_gcn_gowalla.zip") in message
    assert "does not download" in message and "DOTREC_DATA" in message


def test_damaged_archive_missing_member_and_bad_checksum(tiny_spec, tmp_path):
    archive = tmp_path / "light_gcn_gowalla.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable zip archive"):
        load_split("gowalla", root=tmp_path)
    _zip(archive, folder="elsewhere")
    with pytest.raises(DataError, match="has no light_gcn_gowalla/train.txt"):
        load_split("gowalla", root=tmp_path)
    _zip(archive, train=TRAIN + "1 13\n")
    with pytest.raises(DataError, match="train.txt has checksum .* modified or incomplete"):
        load_split("gowalla", root=tmp_path)


def test_counts_are_checked(tiny_spec, monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "gowalla", dataclasses.replace(tiny_spec, items=5))
    _zip(tmp_path / "light_gcn_gowalla.zip")
    with pytest.raises(DataError, match=r"4 items \(expected 5\)"):
        load_split("gowalla", root=tmp_path)


def test_load_split_refuses_datasets_without_a_published_split():
    with pytest.raises(ValueError, match="random_split"):
        load_split("ml-100k")


# --- the real file -----------------------------------------------------------------


@pytest.mark.data
def test_real_gowalla_split():
    root = Path(os.environ.get("DOTREC_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
    if not (root / "gowalla-lightgcn" / "light_gcn_gowalla.zip").exists():
        pytest.skip(f"gowalla-lightgcn/light_gcn_gowalla.zip not found under {root}")
    train, test = load_split("gowalla", root=root)
    assert (len(train), len(test)) == (810_128, 217_242)
    assert (train.n_users, train.n_items, test.n_users) == (29_858, 40_981, 29_858)
    # the IDs are the published 0-based ones, as text; no test pair is a training pair
    assert train.users.ids[0] == "0" and set(test.items.ids) <= set(train.items.ids)
    test_in_train, _ = test.reindex(train.users, train.items)
    seen = train.user_items()
    assert seen[test_in_train.user_idx, test_in_train.item_idx].sum() == 0
