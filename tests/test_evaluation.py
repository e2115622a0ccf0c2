"""Rating evaluation (RMSE, MAE) by hand, and the ranking path shared with training."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from dotrec import DataError, DataWarning, Interactions, MatrixFactorization, evaluate_ratings
from dotrec.cli import main as cli_main
from dotrec.models.base import Recommender
from dotrec.ranking import overlap_mask, rank_users, to_model_space


@dataclass
class _NoSettings:
    pass


class FixedRatings(Recommender):
    """Predicts the rating of (u, i) from a fixed table: 1 + user index + 0.5 * item index."""

    name = "fixed-ratings"
    config_class = _NoSettings
    predicts_ratings = True

    def _fit(self, data, show_progress):
        users = torch.arange(data.n_users, dtype=torch.float32)
        items = torch.arange(data.n_items, dtype=torch.float32)
        self.table = 1.0 + users[:, None] + 0.5 * items[None, :]

    def _score_users(self, user_idx):
        return self.table[user_idx]

    def _item_vectors(self):
        return self.table.T

    def _tensors(self):
        return {"table": self.table}

    def _load_tensors(self, tensors):
        self.table = tensors["table"]


@pytest.fixture
def fixed() -> FixedRatings:
    # users u0, u1 and items i0, i1, i2 in that index order; predictions
    # u0: 1.0, 1.5, 2.0 and u1: 2.0, 2.5, 3.0
    train = Interactions.from_ids(["u0", "u0", "u1"], ["i0", "i1", "i2"], rating=[1, 1, 3])
    return FixedRatings().fit(train)


def test_rmse_and_mae_by_hand(fixed):
    # (u0, i2): predicted 2.0, rated 4 -> error -2; (u1, i0): 2.0 vs 1 -> +1;
    # (u1, i1): 2.5 vs 2.5 -> 0. RMSE = sqrt((4 + 1 + 0) / 3), MAE = 3 / 3.
    test = Interactions.from_ids(["u0", "u1", "u1"], ["i2", "i0", "i1"], rating=[4, 1, 2.5])
    result = evaluate_ratings(fixed, test)
    assert result.n_rows == 3
    assert result.metrics["rmse"] == pytest.approx(math.sqrt(5 / 3), rel=1e-6)
    assert result.metrics["mae"] == pytest.approx(1.0, rel=1e-6)
    assert "rmse" in result.table() and result.to_dict()["n_rows"] == 3


def test_unknown_and_overlapping_rows_are_left_out(fixed):
    # (nobody, i0) and (u0, new) cannot be predicted; (u0, i0) was a training pair
    test = Interactions.from_ids(
        ["u0", "nobody", "u0", "u0"], ["i2", "i0", "new", "i0"], rating=[4, 5, 5, 5]
    )
    with pytest.warns(DataWarning, match="1 test \\(user, item\\) pairs also occur"):
        result = evaluate_ratings(fixed, test)
    assert result.n_rows == 1 and result.metrics["mae"] == pytest.approx(2.0)
    notes = result.notes
    assert (notes["rows_with_unknown_user"], notes["rows_with_unknown_item"]) == (1, 1)
    assert notes["overlap_with_train"] == 1
    with pytest.raises(DataError, match="also occur in the training data"):
        evaluate_ratings(fixed, test, on_overlap="raise")


def test_rating_evaluation_needs_ratings_and_a_rating_model(fixed):
    with pytest.raises(DataError, match="no rating column"):
        evaluate_ratings(fixed, Interactions.from_ids(["u0"], ["i2"]))
    implicit = MatrixFactorization(epochs=1, embedding_dim=2, device="cpu")
    implicit.fit(Interactions.from_ids(["u0", "u1"], ["i0", "i1"]))
    with pytest.raises(ValueError, match="not ratings"):
        evaluate_ratings(implicit, Interactions.from_ids(["u0"], ["i1"], rating=[3]))
    empty = evaluate_ratings(fixed, Interactions.from_ids(["zz"], ["i0"], rating=[3]))
    assert empty.n_rows == 0 and empty.metrics == {} and "n/a" in empty.table()


def test_rank_users_by_hand(fixed):
    # u0 (training items i0, i1) has only i2 left: relevant i2 is a hit at rank 1;
    # u1 (training item i2) ranks i1 (2.5) above i0 (2.0): relevant i0 at rank 2
    test = Interactions.from_ids(["u0", "u1"], ["i2", "i0"])
    user_idx, item_idx, notes = to_model_space(fixed.users, fixed.items, test)
    assert not overlap_mask(fixed.seen, user_idx, item_idx).any()
    ranked = rank_users(fixed, user_idx, item_idx, [1, 2])
    assert ranked.users.tolist() == [0, 1]
    assert ranked.top.tolist() == [[2, -1], [1, 0]]
    assert ranked.per_user["hit_rate@1"].tolist() == [1.0, 0.0]
    assert ranked.per_user["ndcg@2"].tolist() == pytest.approx([1.0, 1 / math.log2(3)])
    assert ranked.mean("mrr@2") == pytest.approx(0.75)


def test_cli_evaluate_prints_rmse_for_a_rating_model(tmp_path, capsys):
    rng = np.random.default_rng(0)
    users, items = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    ratings = rng.integers(1, 6, users.shape)
    frame = {"user_id": users.ravel(), "item_id": items.ravel(), "rating": ratings.ravel()}
    test_rows = np.arange(0, 48, 7)
    train_rows = np.setdiff1d(np.arange(48), test_rows)
    for name, rows in (("train.csv", train_rows), ("test.csv", test_rows)):
        lines = ["user_id,item_id,rating"]
        lines += [f"{frame['user_id'][r]},{frame['item_id'][r]},{frame['rating'][r]}" for r in rows]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = cli_main(
        [
            "train",
            str(tmp_path / "train.csv"),
            "--out",
            str(tmp_path / "m"),
            "--set",
            "loss=mse",
            "--epochs",
            "5",
            "--quiet",
            "--threads",
            "1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli_main(["evaluate", str(tmp_path / "m"), str(tmp_path / "test.csv")]) == 0
    out = capsys.readouterr().out
    assert "ratings evaluated: 7" in out and "rmse" in out and "mae" in out
    assert cli_main(["evaluate", str(tmp_path / "m"), str(tmp_path / "test.csv"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ratings"]["n_rows"] == 7 and payload["ratings"]["metrics"]["rmse"] > 0


def test_evaluation_arguments_are_checked(fixed, tmp_path):
    import pandas as pd

    from dotrec import evaluate, evaluate_lists

    test = Interactions.from_ids(["u0"], ["i2"], rating=[2])
    # A path or a frame where Interactions are expected: said plainly, not AttributeError.
    for call in (
        lambda: evaluate(fixed, "test.csv"),
        lambda: evaluate_ratings(fixed, pd.DataFrame({"user_id": ["u0"]})),
        lambda: evaluate_lists(pd.DataFrame(columns=["user_id", "item_id", "rank"]), "t.csv"),
    ):
        with pytest.raises(TypeError, match="takes an Interactions"):
            call()
    # An unknown on_overlap is refused, not taken as "drop".
    for call in (
        lambda: evaluate(fixed, test, on_overlap="keep"),
        lambda: evaluate_ratings(fixed, test, on_overlap="keep"),
    ):
        with pytest.raises(ValueError, match="on_overlap"):
            call()
