"""Splits: no leakage, per-user quotas, determinism, time order, the report."""

from __future__ import annotations

import datetime
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotrec import (
    Interactions,
    leave_last_split,
    random_split,
    read_interactions,
    split_report,
    synthetic,
    temporal_split,
)


@st.composite
def interaction_logs(draw, max_users: int = 8, max_items: int = 10):
    """Distinct (user, item) pairs with integer timestamps (ties allowed)."""
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
            min_size=1,
            max_size=40,
            unique=True,
        )
    )
    stamps = draw(st.lists(st.integers(0, 20), min_size=len(pairs), max_size=len(pairs)))
    users = [f"u{u}" for u, _ in pairs]
    items = [f"i{i}" for _, i in pairs]
    return Interactions.from_ids(users, items, timestamp=stamps)


def _rows(data: Interactions) -> Counter:
    frame = data.to_frame()
    return Counter(zip(frame["user_id"], frame["item_id"], frame["timestamp"], strict=True))


def _per_user(data: Interactions) -> Counter:
    return Counter(data.users.ids[data.user_idx])


def _check_partition(data, train, test):
    assert not set(_rows(train)) & set(_rows(test)), "a row is on both sides"
    train_pairs = set(zip(train.user_idx, train.item_idx, strict=True))
    assert not train_pairs & set(zip(test.user_idx, test.item_idx, strict=True))
    assert _rows(train) + _rows(test) == _rows(data)
    assert len(train) + len(test) == len(data)
    # every user of the input keeps at least one training row
    assert set(_per_user(train)) == set(_per_user(data))


# --- random_split ---------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(interaction_logs(), st.floats(0.05, 0.95), st.integers(0, 1000))
def test_random_split_properties(data, fraction, seed):
    train, test = random_split(data, fraction, seed=seed)
    _check_partition(data, train, test)
    have, held = _per_user(data), _per_user(test)
    for user, n in have.items():
        floor = math.floor(fraction * n)
        # the floor of the share, maybe one more from apportioning, and never all
        assert min(floor, n - 1) <= held[user] <= min(floor + 1, n - 1), (user, n, held[user])
    assert len(test) <= round(fraction * len(data))


def test_random_split_quotas_by_hand():
    # 10, 3 and 1 rows at 0.25: exact shares 2.5, 0.75, 0.25, floors 2, 0, 0;
    # round(0.25 * 14) = round(3.5) = 4 in all, so 2 extra rows go to the
    # largest remainders, 0.75 (v) then 0.5 (u): quotas 3, 1, 0
    users = ["u"] * 10 + ["v"] * 3 + ["w"]
    items = [f"i{k}" for k in range(10)] + ["a", "b", "c"] + ["a"]
    train, test = random_split(Interactions.from_ids(users, items), 0.25, seed=3)
    assert _per_user(test) == Counter({"u": 3, "v": 1})
    assert _per_user(train) == Counter({"u": 7, "v": 2, "w": 1})


def test_random_split_seed_determinism():
    data = synthetic(n_users=40, n_items=60, seed=2).interactions
    first = random_split(data, 0.3, seed=5)[1]
    again = random_split(data, 0.3, seed=5)[1]
    other = random_split(data, 0.3, seed=6)[1]
    assert _rows(first) == _rows(again)
    assert _rows(first) != _rows(other)


def test_random_split_rejects_bad_fraction():
    data = Interactions.from_ids(["u", "u"], ["a", "b"])
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="test_fraction"):
            random_split(data, bad)


# --- leave_last_split -----------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(interaction_logs(), st.integers(1, 4))
def test_leave_last_properties(data, n):
    train, test = leave_last_split(data, n)
    _check_partition(data, train, test)
    have, held = _per_user(data), _per_user(test)
    for user, count in have.items():
        assert held[user] == min(n, count - 1)
    # nothing in a user's test side is older than anything in their train side
    for user in held:
        t_train = train.timestamp[train.users.ids[train.user_idx] == user]
        t_test = test.timestamp[test.users.ids[test.user_idx] == user]
        assert t_test.min() >= t_train.max()


def test_leave_last_compares_timestamps_as_numbers(tmp_path):
    # as text "9" > "100" > "10"; as numbers 100 is the latest
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,9\nu,b,100\nu,c,10\nv,a,5\nv,b,6\n")
    train, test = leave_last_split(read_interactions(path), 1)
    held = zip(test.users.ids[test.user_idx], test.items.ids[test.item_idx], strict=True)
    assert sorted(held) == [("u", "b"), ("v", "b")]


def test_leave_last_ties_go_to_the_later_row():
    # b and c share the latest time; c comes later in the input, so it is held out
    data = Interactions.from_ids(["u"] * 4, ["a", "b", "c", "d"], timestamp=[1, 5, 5, 2])
    train, test = leave_last_split(data, 1)
    assert test.items.ids[test.item_idx].tolist() == ["c"]
    train, test = leave_last_split(data, 2)
    assert sorted(test.items.ids[test.item_idx]) == ["b", "c"]


def test_leave_last_keeps_a_training_row():
    data = Interactions.from_ids(["u", "u", "u", "w"], ["a", "b", "c", "a"], timestamp=[1, 2, 3, 4])
    train, test = leave_last_split(data, 5)
    assert _per_user(test) == Counter({"u": 2})
    assert _per_user(train) == Counter({"u": 1, "w": 1})
    assert train.items.ids[train.item_idx[train.users.ids[train.user_idx] == "u"]].tolist() == ["a"]


def test_leave_last_needs_timestamps_and_positive_n():
    no_time = Interactions.from_ids(["u", "u"], ["a", "b"])
    with pytest.raises(ValueError, match="timestamp"):
        leave_last_split(no_time)
    with pytest.raises(ValueError, match="n must be at least 1"):
        leave_last_split(Interactions.from_ids(["u"], ["a"], timestamp=[1]), 0)


# --- temporal_split -------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(interaction_logs(), st.integers(0, 21))
def test_temporal_split_cutoff_property(data, cutoff):
    train, test = temporal_split(data, cutoff=cutoff)
    assert (train.timestamp < cutoff).all()
    assert (test.timestamp >= cutoff).all()
    assert _rows(train) + _rows(test) == _rows(data)


def test_temporal_split_row_at_cutoff_goes_to_test():
    data = Interactions.from_ids(
        ["u", "u", "v", "v"], ["a", "b", "a", "c"], timestamp=[99, 100, 101, 50]
    )
    train, test = temporal_split(data, cutoff=100)
    assert sorted(train.timestamp.tolist()) == [50, 99]
    assert sorted(test.timestamp.tolist()) == [100, 101]


def test_temporal_split_by_fraction():
    # 10 rows at times 0..9, fraction 0.3: the cutoff is sorted[round(0.7 * 9)]
    # = sorted[6] = 6, so test holds times 6, 7, 8, 9
    data = Interactions.from_ids(
        [f"u{k % 3}" for k in range(10)],
        [f"i{k}" for k in range(10)],
        timestamp=list(range(9, -1, -1)),
    )
    train, test = temporal_split(data, test_fraction=0.3)
    assert sorted(test.timestamp.tolist()) == [6, 7, 8, 9]
    assert train.timestamp.max() == 5


def test_temporal_split_argument_checks():
    data = Interactions.from_ids(["u"], ["a"], timestamp=[1])
    with pytest.raises(ValueError, match="exactly one"):
        temporal_split(data, cutoff=1, test_fraction=0.2)
    with pytest.raises(ValueError, match="exactly one"):
        temporal_split(data)
    with pytest.raises(ValueError, match="timestamp"):
        temporal_split(Interactions.from_ids(["u"], ["a"]), cutoff=1)
    for cutoff in ("Jan 1 2024", "now", True, float("nan"), "inf", None):
        with pytest.raises(ValueError, match="cutoff"):
            temporal_split(data, cutoff=cutoff)


@pytest.mark.parametrize(
    "cutoff",
    [
        "1998-01-01",
        "1998-01-01T00:00:00Z",
        "1998-01-01T02:00:00+02:00",
        datetime.date(1998, 1, 1),
        np.datetime64("1998-01-01"),
        "883612800",
        883612800,
    ],
)
def test_temporal_split_takes_a_date_as_unix_seconds(cutoff):
    # 1998-01-01T00:00:00Z is 883612800 s after the epoch
    data = Interactions.from_ids(
        ["u", "u", "v"], ["a", "b", "a"], timestamp=[883612799, 883612800, 883700000]
    )
    train, test = temporal_split(data, cutoff=cutoff)
    assert train.timestamp.tolist() == [883612799]
    assert sorted(test.timestamp.tolist()) == [883612800, 883700000]


@pytest.mark.parametrize("split", [random_split, leave_last_split, temporal_split])
def test_splits_take_interactions(split):
    with pytest.raises(TypeError, match="takes an Interactions"):
        split("log.csv")


# --- split_report ---------------------------------------------------------------


def test_split_report_counts_cold_users_and_items():
    # train: u1-a, u1-b, u2-a. test: u1-c (c cold), u2-b, u3-a (u3 cold),
    # u3-d (both cold) -> 1 cold user (u3), 2 cold items (c, d), 3 cold rows
    data = Interactions.from_ids(
        ["u1", "u1", "u2", "u1", "u2", "u3", "u3"],
        ["a", "b", "a", "c", "b", "a", "d"],
        timestamp=[1, 1, 1, 9, 9, 9, 9],
    )
    train, test = temporal_split(data, cutoff=5)
    assert split_report(train, test) == {
        "train_rows": 3,
        "test_rows": 4,
        "test_users": 3,
        "test_only_users": 1,
        "test_only_items": 2,
        "test_rows_with_unseen_user_or_item": 3,
    }
