"""Readers: every kind of bad input names the file, the place and the value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from dotrec import DataError, DataWarning, EmptyDataError, Interactions, read_interactions

HEADER = "user_id,item_id,rating,timestamp\n"


def _write(tmp_path, text: str, name: str = "log.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _fails(path, error=DataError, **kwargs) -> str:
    with pytest.raises(error) as info:
        read_interactions(path, **kwargs)
    message = str(info.value)
    assert str(path) in message, message
    return message


# --- bad input ------------------------------------------------------------------


def test_missing_file(tmp_path):
    message = _fails(tmp_path / "nope.csv", FileNotFoundError)
    assert "no such file" in message


def test_empty_file(tmp_path):
    message = _fails(_write(tmp_path, ""), EmptyDataError)
    assert "empty" in message
    message = _fails(_write(tmp_path, "\n  \n", "blank.csv"), EmptyDataError)
    assert "only blank lines" in message


def test_header_only(tmp_path):
    message = _fails(_write(tmp_path, HEADER), EmptyDataError)
    assert "only a header line" in message


def test_missing_named_column(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,4,1\n")
    message = _fails(path, rating_col="stars")
    assert "'stars'" in message
    assert "user_id" in message and "timestamp" in message  # lists the columns that exist


@pytest.mark.parametrize(
    ("header", "rows", "missing", "taken"),
    [
        ("user_id,rating", "u1,4\nu2,5\n", "item", "'rating'"),  # not the ratings as items
        ("time,user,product", "1,u1,i1\n2,u2,i2\n", "item", "'user'"),  # nor the users
        ("rating,item_id", "4,i1\n5,i2\n", "user", "'rating'"),
    ],
)
def test_missing_id_column_is_not_taken_from_another_role(tmp_path, header, rows, missing, taken):
    message = _fails(_write(tmp_path, f"{header}\n{rows}"))
    assert f"no {missing} column" in message and taken in message
    assert f"{missing}_col" in message and f"--{missing}-col" in message  # the fix


def test_one_column_for_two_roles_is_refused(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,4,1\n")
    message = _fails(path, user_col="user_id", item_col="user_id")
    assert "'user_id'" in message and "user" in message and "item" in message


@pytest.mark.parametrize("header", [True, False])
def test_column_position_out_of_range(tmp_path, header):
    text = (HEADER if header else "") + "u1,i1,4,1\nu2,i2,5,2\n"
    message = _fails(_write(tmp_path, text), header=header, user_col=9)
    assert "user_col" in message and "9" in message and "4 columns" in message


def test_column_name_without_header(tmp_path):
    path = _write(tmp_path, "u1,i1,4,1\nu2,i2,5,2\n")
    message = _fails(path, header=False, user_col="userId")
    assert "'userId'" in message and "no header" in message


@pytest.mark.parametrize("value", ["abc", "NaN", "inf", "-inf", "1e400", ""])
def test_non_finite_rating(tmp_path, value):
    path = _write(tmp_path, HEADER + "u1,i1,4,1\nu2,i2,5,2\n" + f"u3,i3,{value},3\n")
    message = _fails(path)
    assert "line 4" in message
    assert "'rating'" in message  # the column
    assert repr(value) in message  # the value seen
    assert "on_invalid='drop'" in message  # the fix


def test_non_numeric_timestamp(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,4,1\nu2,i2,5,yesterday\n")
    message = _fails(path)
    assert "timestamp" in message and "line 3" in message and "'yesterday'" in message


@pytest.mark.parametrize("sep", [None, ","])
def test_too_few_fields(tmp_path, sep):
    path = _write(tmp_path, HEADER + "u1,i1,4,1\nu2,i2,5\nu3,i3,3,3\n")
    message = _fails(path, sep=sep)
    assert "line 3" in message
    assert "u2,i2" in message


def test_too_few_fields_after_the_sniffed_lines(tmp_path):
    # the separator is sniffed from the first 50 lines; line 62 comes later
    body = "".join(f"u{k},i{k},4,{k}\n" for k in range(60)) + "u60,i60,4\n"
    message = _fails(_write(tmp_path, HEADER + body))
    assert "too few fields" in message
    assert "line 62" in message and "'u60,i60,4'" in message


def test_too_few_fields_without_header(tmp_path):
    message = _fails(_write(tmp_path, "u1,i1,4\nu2,i2,5\nu3\n"), sep=",")
    assert "too few fields at line 3" in message and "'u3'" in message


@pytest.mark.parametrize("sep", [None, ","])
def test_too_many_fields(tmp_path, sep):
    body = "".join(f"u{k},i{k},4,{k}\n" for k in range(5)) + "u9,i9,4,9,extra\n"
    message = _fails(_write(tmp_path, HEADER + body), sep=sep)
    assert "line 7" in message


def test_drop_invalid_skips_and_warns(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,4,1\nu2,i2,NaN,2\nu3,i3\nu4,i4,2,4\n")
    with pytest.warns(DataWarning, match="dropped 2 invalid rows at lines 3, 4"):
        data = read_interactions(path, sep=",", on_invalid="drop")
    assert data.to_frame()["user_id"].tolist() == ["u1", "u4"]


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"user_id,item_id\nu1,caf\xe9\n")
    message = _fails(path)
    assert "line 2" in message and "encoding" in message
    assert read_interactions(path, encoding="latin-1").items.ids.tolist() == ["caf\u00e9"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("encoding", "utf-99"), ("on_invalid", "skip"), ("duplicates", "first"), ("format", "xml")],
)
def test_unknown_reading_option_is_refused(tmp_path, option, value):
    # Refused whatever the file holds: this one has neither bad rows nor repeats.
    path = _write(tmp_path, HEADER + "u1,i1,4,1\n")
    with pytest.raises(ValueError) as info:
        read_interactions(path, **{option: value})
    assert option in str(info.value) and repr(value) in str(info.value)


def test_unknown_duplicates_policy_is_refused_in_memory():
    with pytest.raises(ValueError, match="duplicates"):
        Interactions.from_ids(["u1"], ["i1"], duplicates="sum")


# --- what is read ---------------------------------------------------------------


def test_every_row_is_a_positive_by_default(tmp_path):
    data = read_interactions(_write(tmp_path, HEADER + "u1,i1,1,10\nu1,i2,5,11\nu2,i1,2,12\n"))
    assert data.positive.all() and data.label is None
    assert data.rating.tolist() == [1.0, 5.0, 2.0]
    assert data.timestamp.tolist() == [10, 11, 12]


def test_min_rating(tmp_path):
    path = _write(tmp_path, HEADER + "u1,i1,1,10\nu1,i2,4,11\nu2,i1,5,12\nu2,i3,3.5,13\n")
    data = read_interactions(path, min_rating=4)
    frame = data.to_frame()
    assert sorted(zip(frame["user_id"], frame["item_id"], strict=True)) == [
        ("u1", "i2"),
        ("u2", "i1"),
    ]
    with pytest.raises(EmptyDataError, match="0 interactions remain after keeping ratings >= 6"):
        read_interactions(path, min_rating=6)
    no_rating = _write(tmp_path, "user_id,item_id\nu,i\n", "plain.csv")
    with pytest.raises(DataError, match="needs a rating column"):
        read_interactions(no_rating, min_rating=4)


def test_label_zero_rows_are_observed_negatives(tmp_path):
    path = _write(tmp_path, "user_id,item_id,label\nu1,i1,1\nu1,i2,0\nu2,i1,1\nu2,i3,0\n")
    data = read_interactions(path)
    assert len(data) == 4
    assert data.label.tolist() == [1, 0, 1, 0]
    assert data.positive.tolist() == [True, False, True, False]
    assert data.user_items().nnz == 2  # only positives in the positive matrix
    assert data.user_items(positives_only=False).nnz == 4
    bad = _write(tmp_path, "user_id,item_id,label\nu1,i1,2\n", "bad.csv")
    with pytest.raises(DataError, match="label must be 0 or 1"):
        read_interactions(bad)


def test_label_other_than_0_or_1_names_the_line_and_can_be_dropped(tmp_path):
    path = _write(tmp_path, "user_id,item_id,label\nu1,i1,1\nu1,i2,2\nu2,i1,0\n")
    message = _fails(path)
    assert "0 or 1" in message and "line 3" in message and "'label'" in message
    assert "'2'" in message and "--drop-invalid" in message
    with pytest.warns(DataWarning, match="dropped 1 invalid rows at line 3"):
        data = read_interactions(path, on_invalid="drop")
    assert data.label.tolist() == [1, 0]


def test_dates_as_timestamps_only_the_bad_one_is_named(tmp_path):
    text = "user_id,item_id,when\nu1,i1,2024-01-01\nu1,i2,2024-01-02T10:00:00\nu2,i1,yesterday\n"
    path = _write(tmp_path, text)
    message = _fails(path, timestamp_col="when")
    assert "1 row" in message and "line 4" in message and "'yesterday'" in message
    with pytest.warns(DataWarning, match="dropped 1 invalid rows at line 4"):
        data = read_interactions(path, timestamp_col="when", on_invalid="drop")
    assert data.timestamp.tolist() == [1704067200, 1704189600]  # Unix seconds
    # Words that pandas would read as the current time are not dates in a log.
    now = _write(tmp_path, "user_id,item_id,when\nu1,i1,2024-01-01\nu2,i2,now\n", "now.csv")
    assert "'now'" in _fails(now, timestamp_col="when")


def test_duplicates_merged_with_a_warning(tmp_path):
    # (u1, i1) three times: the latest timestamp (30, rating 2) is kept
    path = _write(tmp_path, HEADER + "u1,i1,5,10\nu1,i1,2,30\nu2,i1,3,5\nu1,i1,4,20\n")
    with pytest.warns(DataWarning, match=r"merged 2 duplicate rows \(1 repeated"):
        data = read_interactions(path)
    frame = data.to_frame().set_index(["user_id", "item_id"])
    assert len(frame) == 2
    assert frame.loc[("u1", "i1"), "rating"] == 2.0
    assert frame.loc[("u1", "i1"), "timestamp"] == 30
    with pytest.raises(DataError, match="repeat a"):
        read_interactions(path, duplicates="error")


def test_duplicates_without_timestamps_keep_the_last(tmp_path):
    path = _write(tmp_path, "user_id,item_id,rating\nu1,i1,5\nu1,i1,2\n")
    with pytest.warns(DataWarning, match="in file order"):
        data = read_interactions(path)
    assert data.rating.tolist() == [2.0]


def test_headerless_tab_separated_movielens(tmp_path):
    path = _write(tmp_path, "196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data")
    data = read_interactions(path)
    assert data.to_frame()["user_id"].tolist() == ["196", "186"]
    assert data.timestamp.tolist() == [881250949, 891717742]


def test_double_colon_separator(tmp_path):
    path = _write(tmp_path, "1::1193::5::978300760\n1::661::3::978302109\n", "ratings.dat")
    data = read_interactions(path)
    assert data.items.ids.tolist() == ["1193", "661"]
    assert data.rating.tolist() == [5.0, 3.0]


# --- Parquet, DataFrame, sparse -------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["007", "7", "NA"],
            "item_id": [10**12, 2, 3],
            "rating": [4.0, 2.5, 5.0],
            "timestamp": [100, 200, 300],
        }
    )


def test_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    _frame().to_parquet(path)
    data = read_interactions(path)
    assert data.users.ids.tolist() == ["007", "7", "NA"]
    assert data.items.ids.tolist() == ["1000000000000", "2", "3"]
    assert data.rating.tolist() == [4.0, 2.5, 5.0]
    assert data.timestamp.tolist() == [100, 200, 300]
    assert read_interactions(path, min_rating=4).users.ids.tolist() == ["007", "NA"]


def test_parquet_bad_rating_names_row(tmp_path):
    path = tmp_path / "bad.parquet"
    _frame().assign(rating=[4.0, np.inf, 5.0]).to_parquet(path)
    message = _fails(path)
    assert "row 2" in message and "'rating'" in message and "inf" in message


def test_from_frame():
    data = Interactions.from_frame(_frame())
    assert data.users.ids.tolist() == ["007", "7", "NA"]
    assert data.items.ids.tolist() == ["1000000000000", "2", "3"]
    assert data.rating is not None and data.timestamp.tolist() == [100, 200, 300]
    with pytest.raises(DataError, match="no column 'uid' \\(user_col\\)"):
        Interactions.from_frame(_frame(), user_col="uid")
    with pytest.raises(DataError, match="row 3"):
        Interactions.from_frame(_frame().assign(rating=[1.0, 2.0, np.nan]))


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_datetime_timestamps_become_unix_seconds(tmp_path, tz):
    # 2024-01-01 00:00 UTC is 1704067200 (in Paris, local midnight is an hour earlier).
    when = pd.to_datetime(["2024-01-01", "2024-01-02"])
    when = when if tz is None else when.tz_localize(tz)
    expected = [1704067200, 1704153600]
    if tz == "Europe/Paris":
        expected = [t - 3600 for t in expected]
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "timestamp": when})
    assert Interactions.from_frame(frame).timestamp.tolist() == expected
    frame.to_parquet(tmp_path / "log.parquet")
    assert read_interactions(tmp_path / "log.parquet").timestamp.tolist() == expected
    missing = frame.assign(timestamp=[when[0], pd.NaT])
    with pytest.raises(DataError, match="row 2"):
        Interactions.from_frame(missing)


@pytest.mark.parametrize("column", ["rating", "timestamp", "label"])
def test_from_ids_columns_must_match_the_ids(column):
    with pytest.raises(ValueError, match=f"{column} has 1 value.* 2 rows"):
        Interactions.from_ids(["u1", "u2"], ["i1", "i2"], **{column: [1]})


def test_from_sparse():
    # [[0, 3, 0], [1, 0, 2]]: 3 stored entries, one explicit zero dropped
    matrix = sp.csr_array(
        (np.array([3.0, 0.0, 1.0, 2.0]), np.array([1, 2, 0, 2]), np.array([0, 2, 4])), shape=(2, 3)
    )
    data = Interactions.from_sparse(matrix, ["a", "b"], ["x", "y", "z"], ratings=True)
    frame = data.to_frame()
    assert sorted(zip(frame["user_id"], frame["item_id"], frame["rating"], strict=True)) == [
        ("a", "y", 3.0),
        ("b", "x", 1.0),
        ("b", "z", 2.0),
    ]
    default = Interactions.from_sparse(matrix)
    assert default.users.ids.tolist() == ["0", "1"] and default.rating is None


def test_from_sparse_merges_duplicate_coordinates():
    coo = sp.coo_matrix(
        (np.array([1.0, 1.0, 1.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 2)
    )
    with pytest.warns(DataWarning, match="merged 1 duplicate"):
        data = Interactions.from_sparse(coo, ratings=True)
    assert len(data) == 2
    assert data.rating.tolist() == [1.0, 1.0]  # merged, not summed to 2


def test_from_sparse_refuses_non_finite_and_bad_shapes():
    with pytest.raises(DataError, match="not a finite number"):
        Interactions.from_sparse(sp.csr_array(np.array([[np.nan, 1.0]])))
    with pytest.raises(ValueError, match="user IDs"):
        Interactions.from_sparse(sp.csr_array(np.eye(2)), user_ids=["a"])


def test_spaces_around_ids_are_kept_and_named(tmp_path):
    path = tmp_path / "spaced.csv"
    path.write_text("user,item\nu1, i1\nu2,i1\nu2, i2\n")
    with pytest.warns(DataWarning, match=r"2 item IDs with spaces.*line[s]? 2.*' i1'.*sep=', '"):
        data = read_interactions(path)
    assert sorted(data.items.ids) == [" i1", " i2", "i1"]


def test_separator_with_its_space_reads_clean_ids(tmp_path, recwarn):
    path = tmp_path / "spaced.csv"
    path.write_text("user, item\nu1, i1\nu2, i1\n")
    data = read_interactions(path, sep=", ")
    assert sorted(data.items.ids) == ["i1"]
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


@pytest.mark.parametrize("min_rating", [float("nan"), float("inf"), "4", True])
def test_min_rating_must_be_a_finite_number(tmp_path, min_rating):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,rating\nu1,i1,4\n")
    with pytest.raises(ValueError, match="min_rating must be a finite number"):
        read_interactions(path, min_rating=min_rating)
