"""MatrixFactorization: reproducible, finite, and honest about what it recommends."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dotrec import (
    DataWarning,
    DotrecError,
    EmptyDataError,
    Interactions,
    MatrixFactorization,
    UnknownIDError,
    synthetic,
)
from dotrec.explain import explain
from dotrec.models import MFConfig

SMALL = {"embedding_dim": 8, "epochs": 4, "device": "cpu", "num_threads": 1}


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic(n_users=60, n_items=50, mean_per_user=12, seed=3).interactions


@pytest.fixture(scope="module")
def model(data) -> MatrixFactorization:
    return MatrixFactorization(seed=0, **SMALL).fit(data)


def _params(model: MatrixFactorization) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def test_same_seed_same_parameters(data, model):
    again = MatrixFactorization(seed=0, **SMALL).fit(data)
    first, second = _params(model), _params(again)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert model.fit_info["epoch_loss"] == again.fit_info["epoch_loss"]


def test_other_seed_other_parameters(data, model):
    other = MatrixFactorization(seed=1, **SMALL).fit(data)
    assert not torch.equal(
        _params(model)["user_embedding.weight"], _params(other)["user_embedding.weight"]
    )


def test_parameters_and_losses_finite(model):
    for name, tensor in _params(model).items():
        assert torch.isfinite(tensor).all(), name
    losses = model.fit_info["epoch_loss"]
    assert len(losses) == SMALL["epochs"] and np.isfinite(losses).all()
    assert losses[-1] < losses[0]  # it learns something


def test_vocabularies_hold_training_users_and_items_only(data, model):
    assert len(model.users) == len(np.unique(data.user_idx))
    assert len(model.items) == len(np.unique(data.item_idx))
    assert model.seen.shape == (len(model.users), len(model.items))


def test_recommend_excludes_seen_items(data, model):
    frame = data.to_frame()
    users = model.users.ids[:20].tolist()
    recs = model.recommend(users, k=10)
    assert recs.item_ids.shape == (20, 10)
    for user in users:
        seen = set(frame.loc[frame["user_id"] == user, "item_id"])
        listed = [item for item, _ in recs.for_user(user)]
        assert len(listed) == 10 and len(set(listed)) == 10
        assert not seen & set(listed), user
    # with exclude_seen=False, seen items may come back
    everything = model.recommend(users, k=len(model.items), exclude_seen=False)
    assert (everything.counts == len(model.items)).all()


def test_recommend_scores_match_score_and_are_sorted(model):
    user = model.users.ids[0]
    listed = model.recommend(user, k=5).for_user(user)
    items = [item for item, _ in listed]
    scores = np.array([score for _, score in listed])
    np.testing.assert_allclose(model.score([user] * 5, items), scores, rtol=1e-5, atol=1e-6)
    assert (np.diff(scores) <= 0).all()


def test_fewer_than_k_when_fewer_candidates():
    # u saw 4 of 6 items: only 2 candidates for k = 5
    data = Interactions.from_ids(["u"] * 4 + ["v"] * 2, ["a", "b", "c", "d", "e", "f"])
    model = MatrixFactorization(seed=0, **SMALL).fit(data)
    recs = model.recommend(["u", "v"], k=5)
    assert recs.counts.tolist() == [2, 4]
    assert sorted(item for item, _ in recs.for_user("u")) == ["e", "f"]
    assert recs.item_ids[0, 2:].tolist() == [None, None, None]
    assert np.isnan(recs.scores[0, 2:]).all()
    frame = recs.to_frame()
    assert len(frame) == 6 and frame["rank"].tolist() == [1, 2, 1, 2, 3, 4]
    # restricted candidates: only e and a (a is seen by u)
    only = model.recommend("u", k=5, items=["e", "a"])
    assert [item for item, _ in only.for_user("u")] == ["e"]


def test_unknown_user_raises_naming_it(model):
    with pytest.raises(UnknownIDError, match="'nobody'") as info:
        model.recommend([model.users.ids[0], "nobody"], k=3)
    assert info.value.ids == ["nobody"]
    assert "fallback='popular'" in str(info.value)
    with pytest.raises(UnknownIDError, match="'no-item'"):
        model.score(model.users.ids[0], "no-item")
    # The fallback is an option of recommend only; elsewhere the message must not offer it.
    for ask in (
        lambda: model.score("nobody", model.items.ids[0]),
        lambda: explain(model, "nobody", model.items.ids[0]),
    ):
        with pytest.raises(UnknownIDError, match="'nobody'") as info:
            ask()
        assert "fallback" not in str(info.value)


def test_fallback_popular_marks_rows(model):
    known = model.users.ids[0]
    recs = model.recommend([known, "nobody"], k=4, fallback="popular")
    assert recs.fallback.tolist() == [False, True]
    most_popular = model.items.ids[np.argsort(-model.item_counts, kind="stable")[:4]]
    assert [item for item, _ in recs.for_user("nobody")] == most_popular.tolist()
    frame = recs.to_frame()
    assert frame.loc[frame["user_id"] == "nobody", "fallback"].all()
    assert not frame.loc[frame["user_id"] == known, "fallback"].any()


def test_bad_k_and_unfitted():
    with pytest.raises(DotrecError, match="not fitted"):
        MatrixFactorization().recommend("u")
    data = Interactions.from_ids(["u", "v"], ["a", "b"])
    model = MatrixFactorization(seed=0, **SMALL).fit(data)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="k must be a non-negative integer"):
            model.recommend("u", k=bad)


def test_user_with_every_item_warns():
    data = Interactions.from_ids(["u", "u", "v"], ["a", "b", "a"])
    with pytest.warns(DataWarning, match="interacted with every item \\('u'\\)") as caught:
        model = MatrixFactorization(seed=0, **SMALL).fit(data)
    assert "only their positives are used" in str(caught[0].message)
    assert model.recommend("u", k=3).counts.tolist() == [0]
    # a pairwise loss learns nothing from such a user, and the warning says so
    with pytest.warns(DataWarning, match="interacted with every item") as caught:
        MatrixFactorization(seed=0, loss="bpr", **SMALL).fit(data)
    assert "they add nothing to training" in str(caught[0].message)


def test_fit_needs_positives():
    negatives = Interactions.from_ids(["u"], ["a"], label=[0])
    with pytest.raises(EmptyDataError):
        MatrixFactorization(**SMALL).fit(negatives)


def test_similar_items_leave_out_the_query(model):
    item = model.items.ids[0]
    similar = model.similar_items(item, k=5).for_user(item)
    assert len(similar) == 5 and item not in [i for i, _ in similar]
    assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for _, s in similar)


def test_config_round_trip():
    config = MFConfig(embedding_dim=16, epochs=3, lr=0.05, seed=9, num_threads=2)
    values = config.to_dict()
    assert values == dataclasses.asdict(config)
    assert MFConfig.from_dict(values) == config
    assert MatrixFactorization(**values).config == config
    with pytest.raises(ValueError, match="unknown MFConfig settings \\['bogus'\\]"):
        MFConfig.from_dict({**values, "bogus": 1})


@pytest.mark.parametrize(
    "bad", [{"embedding_dim": 0}, {"epochs": 0}, {"lr": 0.0}, {"n_negatives": -1}]
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        MFConfig(**bad)
