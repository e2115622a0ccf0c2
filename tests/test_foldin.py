"""recommend_from_history: folding in people known only by their items.

Every model runs the shared fold-in case in test_contract.py; here are the
errors, the fallback and the per-family exactness checks. The data is the
contract suite's two clusters (u* users have a0..a5, v* users b0..b5, each
missing one item of its own cluster).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dotrec import (
    ALS,
    BPR,
    EASE,
    GFCF,
    DotrecError,
    Interactions,
    ItemKNN,
    MatrixFactorization,
    UnknownIDError,
)
from dotrec.models._foldin import history_matrix
from test_contract import SETTINGS, _clusters


@pytest.fixture(scope="module")
def clusters():
    return _clusters()


@pytest.fixture(scope="module")
def ease(clusters):
    return EASE(**SETTINGS["ease"]).fit(clusters[0])


@pytest.fixture(scope="module")
def mf(clusters):
    return MatrixFactorization(**SETTINGS["mf"]).fit(clusters[0])


def _history(data, user: str) -> list[str]:
    frame = data.to_frame()
    return frame.loc[frame["user_id"] == user, "item_id"].tolist()


def test_unknown_items_are_named(ease):
    with pytest.raises(UnknownIDError, match="'zz'.*'yy'|'yy'.*'zz'") as caught:
        ease.recommend_from_history([["a0", "zz"], ["yy", "a1"]], k=3)
    assert caught.value.kind == "item" and set(caught.value.ids) == {"zz", "yy"}


def test_unknown_items_can_be_ignored(ease):
    with_unknown = ease.recommend_from_history([["a0", "zz", "a1"]], k=3, unknown_items="ignore")
    without = ease.recommend_from_history([["a0", "a1"]], k=3)
    assert with_unknown.item_ids.tolist() == without.item_ids.tolist()
    assert with_unknown.fallback.tolist() == [False]


def test_bad_arguments_are_refused(ease):
    with pytest.raises(ValueError, match="unknown_items"):
        ease.recommend_from_history([["a0"]], unknown_items="drop")
    with pytest.raises(TypeError, match="wrap one history"):
        ease.recommend_from_history(["a0", "a1"])
    with pytest.raises(ValueError, match="k must be"):
        ease.recommend_from_history([["a0"]], k=-1)


def test_history_items_are_left_out_unless_asked(mf):
    history = ["a0", "a1", "a2"]
    recs = mf.recommend_from_history([history], k=12)
    assert not set(recs.item_ids[0, : recs.counts[0]]) & set(history)
    assert recs.counts.tolist() == [12 - 3]
    kept = mf.recommend_from_history([history], k=12, exclude_seen=False)
    assert set(history) <= set(kept.item_ids[0]) and kept.counts.tolist() == [12]


def test_empty_history_gets_the_popular_fallback(mf):
    recs = mf.recommend_from_history([[], ["a0", "a1"], ["zz"]], k=4, unknown_items="ignore")
    assert recs.fallback.tolist() == [True, False, True]
    assert recs.query_ids.tolist() == ["history 0", "history 1", "history 2"]
    popular = mf.recommend("zz", k=4, fallback="popular")
    assert recs.item_ids[0].tolist() == popular.item_ids[0].tolist()


def test_candidates_can_be_restricted(mf):
    recs = mf.recommend_from_history([["a0", "a1"]], k=5, items=["b0", "a4", "b1"])
    assert set(recs.item_ids[0, : recs.counts[0]]) == {"b0", "a4", "b1"}
    assert recs.item_ids[0, 0] == "a4"


@pytest.mark.parametrize("cls", [EASE, GFCF, ItemKNN])
def test_item_item_fold_in_equals_recommend(cls, clusters):
    data, _ = clusters
    model = cls(**SETTINGS[cls.name]).fit(data)
    for user in ("u1", "v4"):
        trained = model.recommend(user, k=8)
        folded = model.recommend_from_history([_history(data, user)], k=8)
        assert folded.item_ids.tolist() == trained.item_ids.tolist()
        np.testing.assert_array_equal(folded.scores, trained.scores)


def test_als_fold_in_solves_the_normal_equations_exactly(clusters):
    data, _ = clusters
    model = ALS(factors=8, regularization=5.0, alpha=2.0, iterations=5, device="cpu").fit(data)
    histories = [["a0", "a2", "b1"], ["b3"]]
    folded = model._fold_in(history_matrix(histories, model.items)).double().numpy()
    # the same equations in float64 NumPy:
    # (Y^T Y + lambda I + alpha Y_u^T Y_u) x = (1 + alpha) Y_u^T 1
    y = model.item_factors.double().numpy()
    for row, items in enumerate(histories):
        y_u = y[model.items.index(items)]
        system = y.T @ y + 5.0 * np.eye(8) + 2.0 * y_u.T @ y_u
        expected = np.linalg.solve(system, 3.0 * y_u.sum(0))
        np.testing.assert_allclose(folded[row], expected, rtol=1e-6, atol=1e-7)


def test_als_fold_in_of_a_training_user_is_its_trained_vector(clusters):
    # At ALS's fixed point the user half-step solves exactly the equations that
    # fold-in solves, against the same item factors. With this penalty the
    # alternation converges in 30 passes to float32 rounding, and 8 CG steps on
    # 8 factors solve each step exactly; what is left is rounding (measured
    # 4e-7 relative), so 1e-5 is tight: one pass fewer than convergence shows
    # as 1e-3.
    data, _ = clusters
    model = ALS(factors=8, regularization=5.0, alpha=2.0, iterations=30, cg_steps=8, device="cpu")
    model.fit(data)
    folded = model._fold_in(model.seen)
    gap = (folded - model.user_factors).norm(dim=1) / model.user_factors.norm(dim=1)
    assert float(gap.max()) < 1e-5


def test_als_fold_in_with_scaled_penalties_is_the_trained_vector():
    # With regularization_exponent each user has its own penalty; fold-in must
    # give a history the penalty training gave a user with as many items
    # (lambda (n + 1)^e over the training users' mean). Users here hold 1 to 12
    # items; one lambda for all leaves a gap of ~0.5 at this fixed point
    # (measured), the scaled penalties 8e-5 after 120 passes.
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(12), np.arange(1, 13))
    items = np.concatenate([rng.choice(20, size=n, replace=False) for n in range(1, 13)])
    data = Interactions.from_ids(users, items)
    model = ALS(
        factors=8,
        regularization=5.0,
        regularization_exponent=0.75,
        alpha=2.0,
        iterations=120,
        cg_steps=8,
        device="cpu",
    ).fit(data)
    counts = np.diff(model.seen.indptr)
    assert model.fit_info["user_penalty_scale"] == pytest.approx(((counts + 1.0) ** 0.75).mean())
    folded = model._fold_in(model.seen)
    gap = (folded - model.user_factors).norm(dim=1) / model.user_factors.norm(dim=1)
    assert float(gap.max()) < 1e-3


def test_mf_fold_in_is_deterministic_and_independent_of_the_batch(mf, clusters):
    data, _ = clusters
    alone = mf.recommend_from_history([_history(data, "u3")], k=6)
    together = mf.recommend_from_history([_history(data, "v1"), _history(data, "u3")], k=6)
    again = mf.recommend_from_history([_history(data, "u3")], k=6)
    np.testing.assert_array_equal(alone.scores, again.scores)
    assert together.item_ids[1].tolist() == alone.item_ids[0].tolist()
    np.testing.assert_allclose(together.scores[1], alone.scores[0], rtol=1e-4, atol=1e-5)


def test_mf_fold_in_vector_is_near_the_trained_one(mf):
    # the user's part of the training objective, solved again: close, not equal
    # (training ran from another start with stochastic negatives)
    folded = mf._fold_in(mf.seen[[0, 9]])
    trained = mf._query_vectors(torch.tensor([0, 9]))
    cosine = torch.nn.functional.cosine_similarity(folded[:, :-2], trained[:, :-2])
    assert cosine.min() > 0.8


def test_bpr_fold_in_keeps_a_zero_user_bias(clusters):
    model = BPR(**SETTINGS["bpr"]).fit(clusters[0])
    folded = model._fold_in(model.seen[[0]])
    assert folded[0, -1].item() == 0.0 and folded[0, -2].item() == 1.0


def test_rating_models_refuse_to_fold_in():
    from dotrec import Interactions

    data = Interactions.from_ids(["a", "a", "b"], ["x", "y", "x"], rating=[4.0, 2.0, 5.0])
    model = MatrixFactorization(loss="mse", embedding_dim=2, epochs=1, device="cpu").fit(data)
    with pytest.raises(DotrecError, match="ratings"):
        model.recommend_from_history([["x"]])
