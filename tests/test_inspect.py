"""dotrec.data.inspect_data and `dotrec inspect`, against counts worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dotrec.cli import main
from dotrec.data import Interactions, inspect_data
from dotrec.data._inspect import gini


@pytest.fixture
def frame() -> pd.DataFrame:
    """Four users, five items, one repeated pair (a, x), ties at a's and b's latest time."""
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "a", "b", "b", "b", "c", "d"],
            "item_id": ["x", "y", "z", "w", "x", "x", "y", "v", "x", "x"],
            "rating": [5, 4, 3, 1, 5, 2, 2, 4, 5, 3],
            "timestamp": [10, 20, 30, 30, 40, 10, 50, 50, 10, 60],
        }
    )


def test_counts_on_a_hand_made_frame(frame):
    report = inspect_data(frame)
    # (a, x) appears twice: 9 distinct pairs; a has x y z w, b has x y v, c x, d x
    assert report.rows == 9
    assert report.duplicates_merged == 1
    assert (report.users, report.items) == (4, 5)
    assert report.density == pytest.approx(9 / 20)
    assert report.user_counts.at_most == {1: 2, 5: 4}  # c and d have one each
    assert (report.user_counts.min, report.user_counts.max) == (1, 4)
    assert report.user_counts.median == 2.0  # counts 4, 3, 1, 1
    # item counts: x 4, y 2, z 1, w 1, v 1
    assert report.item_counts.at_most == {1: 3, 5: 5}
    assert report.top_item_share[0.01] == pytest.approx(4 / 9)  # one item: x
    assert report.top_item_share[0.1] == pytest.approx(4 / 9)
    assert report.item_gini == pytest.approx(_gini_by_pairs([4, 2, 1, 1, 1]))
    assert report.negative_rows == 0


def test_time_and_rating_parts(frame):
    report = inspect_data(frame)
    time = report.time
    assert (time.min, time.max, time.first) == (10, 60, None)  # not Unix seconds
    assert time.distinct == 6  # 10, 20, 30, 40, 50, 60
    assert time.largest_tie == 2  # 10 (b x, c x), 30 (a z, a w), 50 (b y, b v)
    # a's latest is 40 (the merged (a, x) keeps the later row): no tie; b's latest, 50, twice
    assert time.users_with_tied_last == 1
    # after the merge, ratings are 5 4 3 1 (a), 2 2 4 (b), 5 (c), 3 (d)
    assert report.rating_histogram == [("1", 1), ("2", 2), ("3", 2), ("4", 2), ("5", 2)]
    joined = " ".join(report.warnings)
    assert "1 rows repeated a (user, item) pair" in joined
    assert "2 users have a single interaction" in joined
    assert "1 users have two or more rows at their latest timestamp" in joined
    assert "2 rows share one timestamp" in joined


def test_unix_times_become_dates_and_many_ratings_are_binned():
    data = Interactions.from_ids(
        ["u"] * 30,
        [f"i{k}" for k in range(30)],
        rating=np.linspace(0.0, 10.0, 30),
        timestamp=np.full(30, 874724710),
    )
    report = inspect_data(data)
    assert report.time.first == report.time.last == "1997-09-20 03:05:10"
    assert len(report.rating_histogram) == 10
    assert sum(n for _, n in report.rating_histogram) == 30
    assert report.rating_histogram[0][0] == "[0, 1)" and report.rating_histogram[-1][0] == "[9, 10]"


def test_no_timestamps_and_labels():
    data = Interactions.from_ids(["a", "a", "b"], ["x", "y", "x"], label=[1, 0, 1])
    report = inspect_data(data)
    assert report.time is None and report.rating_histogram is None
    assert report.negative_rows == 1
    assert (report.users, report.items) == (2, 1)  # counts are of positives: only x
    assert any("no timestamps" in text for text in report.warnings)


def test_test_data_compared_by_raw_id(frame):
    test = pd.DataFrame({"user_id": ["a", "a", "e", "b"], "item_id": ["v", "q", "x", "y"]})
    report = inspect_data(frame, test)
    t = report.test
    assert (t.rows, t.users) == (4, 3)
    assert t.users_not_in_train == 1  # e
    assert t.items_not_in_train == 1  # q
    assert t.rows_with_unseen_user_or_item == 2  # (a, q), (e, x)
    assert t.pairs_in_train == 1  # (b, y)
    joined = " ".join(report.warnings)
    assert "1 of 3 test users have no training row" in joined
    assert "1 test items occur only in the test data" in joined
    assert "1 test (user, item) pairs also occur" in joined
    json.dumps(report.to_dict())  # plain values only


def _gini_by_pairs(counts) -> float:
    x = np.asarray(counts, dtype=float)
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())


def test_gini_matches_the_mean_absolute_difference(rng):
    for _ in range(5):
        counts = rng.integers(0, 50, size=rng.integers(1, 40))
        if counts.sum() == 0:
            continue
        assert gini(counts) == pytest.approx(_gini_by_pairs(counts))
    assert gini(np.array([7, 7, 7])) == 0.0
    assert gini(np.array([], dtype=int)) == 0.0


def test_inspect_command(tmp_path, frame, capsys):
    data, test = tmp_path / "log.csv", tmp_path / "test.csv"
    frame.to_csv(data, index=False)
    pd.DataFrame({"user_id": ["a", "e"], "item_id": ["v", "x"]}).to_csv(test, index=False)
    assert main(["inspect", str(data), "--test", str(test)]) == 0
    out = capsys.readouterr().out
    assert "users: 4   items: 5" in out
    assert "repeated (user, item) rows merged on loading: 1" in out
    assert "Gini of item counts" in out
    assert "users not in DATA 1" in out
    assert "warnings:" in out

    assert main(["inspect", str(data), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["users"] == 4 and payload["user_counts"]["at_most"] == {"1": 2, "5": 4}
    assert payload["rating_histogram"]["5"] == 2

    assert main(["inspect", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
