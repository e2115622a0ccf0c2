"""IDs are text: leading zeros, "NA" and huge integers survive every trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotrec import Interactions, UnknownIDError, Vocabulary, read_interactions
from dotrec.data import ids_to_text

HUGE = [10**12, 2**63 - 1]


def test_leading_zeros_and_na_are_distinct_ids():
    vocab = Vocabulary(["007", "7", "NA", "0"])
    assert len(vocab) == 4
    assert vocab.lookup(["7", "007", "NA", "nan", "00"]).tolist() == [1, 0, 2, -1, -1]
    # an integer is looked up by its decimal text: 7 is "7", never "007"
    assert vocab.lookup([7, 0]).tolist() == [1, 3]
    assert "007" in vocab and 7 in vocab and "07" not in vocab


def test_huge_integer_ids_become_exact_text():
    assert ids_to_text(HUGE).tolist() == ["1000000000000", "9223372036854775807"]
    assert ids_to_text(np.array(HUGE, dtype=np.int64)).tolist() == [
        "1000000000000",
        "9223372036854775807",
    ]
    assert ids_to_text(pd.Series(HUGE)).tolist() == ["1000000000000", "9223372036854775807"]
    vocab = Vocabulary(HUGE)
    assert vocab.ids.tolist() == ["1000000000000", "9223372036854775807"]
    assert vocab.lookup(["9223372036854775807", 10**12]).tolist() == [1, 0]


def test_float_ids_only_when_integral():
    assert ids_to_text(np.array([1.0, 20.0])).tolist() == ["1", "20"]
    for bad in ([1.5], [np.nan], [True]):
        with pytest.raises(ValueError, match="IDs must be"):
            ids_to_text(bad)


def test_duplicate_ids_refused():
    with pytest.raises(ValueError, match="'1' appears more than once"):
        Vocabulary(["1", 1])


def test_index_names_unknown_ids():
    vocab = Vocabulary(["a", "b"])
    with pytest.raises(UnknownIDError, match="'zz'") as info:
        vocab.index(["a", "zz", "zz", "yy"], "user")
    assert info.value.ids == ["zz", "yy"]
    assert info.value.kind == "user"


def test_interactions_keep_ids_as_text():
    data = Interactions.from_ids(["007", "7", "NA"] + HUGE, ["x", "y", "z", "x", "y"])
    frame = data.to_frame()
    assert frame["user_id"].tolist() == ["007", "7", "NA", "1000000000000", "9223372036854775807"]
    assert data.n_users == 5


def test_ids_round_trip_through_a_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id\n007,NA\n7,1000000000000\nNA,9223372036854775807\n0007,007\n")
    data = read_interactions(path)
    assert data.users.ids.tolist() == ["007", "7", "NA", "0007"]
    assert data.items.ids.tolist() == ["NA", "1000000000000", "9223372036854775807", "007"]
    out = tmp_path / "out.csv"
    data.to_frame().to_csv(out, index=False)
    again = read_interactions(out)
    assert again.to_frame().equals(data.to_frame())


def test_from_frame_with_integer_columns():
    frame = pd.DataFrame({"user_id": np.array(HUGE, dtype=np.int64), "item_id": [1, 2]})
    data = Interactions.from_frame(frame)
    assert data.users.ids.tolist() == ["1000000000000", "9223372036854775807"]
    assert data.items.ids.tolist() == ["1", "2"]


_ids = st.one_of(
    st.lists(st.text(max_size=12), unique=True, max_size=30),
    st.lists(st.integers(-(2**63), 2**63 - 1), unique=True, max_size=30),
)


@settings(max_examples=60, deadline=None)
@given(_ids)
def test_lookup_round_trips(ids):
    vocab = Vocabulary(ids)
    text = [str(i) for i in ids]
    assert vocab.ids.tolist() == text
    assert vocab.lookup(ids).tolist() == list(range(len(ids)))
    assert vocab.index(text).tolist() == list(range(len(ids)))
    assert vocab.ids[vocab.lookup(text)].tolist() == text
    again = Vocabulary(vocab.to_list())
    assert again == vocab


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=6), min_size=1, max_size=40))
def test_from_values_codes_point_back(values):
    vocab, codes = Vocabulary.from_values(np.array(values, dtype=object))
    assert vocab.ids[codes].tolist() == values
    # first appearance order
    assert vocab.ids.tolist() == list(dict.fromkeys(values))
