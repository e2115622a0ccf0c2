"""The Recommender contract, run against every model in dotrec.models.MODELS.

The data is two clusters: users u0..u7 have the items a0..a5 and users
v0..v7 have b0..b5, each missing exactly one item of their own cluster (user
j misses item j mod 6). A personalised model must rank that missing item
first; popularity cannot tell the clusters apart, so it only has to rank by
count.
"""

from __future__ import annotations

import json
import typing

import numpy as np
import pytest

from dotrec import Interactions, Recommender, UnknownIDError, load_model
from dotrec.models import MODELS

SETTINGS = {
    "mf": {"embedding_dim": 8, "epochs": 150, "lr": 0.05, "batch_size": 32, "device": "cpu"},
    "bpr": {"embedding_dim": 8, "epochs": 150, "lr": 0.05, "batch_size": 32, "device": "cpu"},
    "als": {"factors": 8, "regularization": 0.1, "iterations": 10, "device": "cpu"},
    "ease": {"regularization": 1.0, "device": "cpu"},
    "gf-cf": {"n_components": 4, "device": "cpu"},
    "itemknn": {"shrinkage": 0.0},
    "lightgcn": {
        "embedding_dim": 8,
        "epochs": 100,
        "lr": 0.05,
        "batch_size": 32,
        "n_negatives": 4,
        "device": "cpu",
    },
    "two-tower": {
        "embedding_dim": 8,
        "id_dim": 8,
        "hidden": [16],
        "epochs": 100,
        "lr": 0.01,
        "l2": 0.01,
        "batch_size": 32,
        "device": "cpu",
    },
    "popularity": {},
}
PERSONALISED = [name for name in MODELS if name != "popularity"]


def test_every_model_has_settings_here():
    assert set(MODELS) == set(SETTINGS)


def _wrong_types(hint) -> list:
    """Values that a setting annotated ``hint`` must refuse."""
    text = str(hint)
    if text in ("<class 'int'>", "int | None"):
        return ["3", 2.5, True]
    if text in ("<class 'float'>", "float | None"):
        return ["0.1", float("nan"), True]
    if text == "<class 'bool'>":
        return ["yes", 1]
    if text.startswith("tuple"):
        return ["abc", [1.5]]
    return []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_settings_of_the_wrong_type_are_refused_by_name(name):
    hints = typing.get_type_hints(MODELS[name].config_class)
    checked = 0
    for setting, hint in hints.items():
        for value in _wrong_types(hint):
            with pytest.raises(ValueError) as info:
                MODELS[name](**{setting: value})
            assert setting in str(info.value) and repr(value) in str(info.value)
            checked += 1
    assert checked or not hints


@pytest.mark.parametrize("name", sorted(MODELS))
def test_numpy_numbers_are_accepted_as_plain_settings(name, tmp_path):
    settings = {
        key: np.int64(value) if type(value) is int else np.float64(value)
        for key, value in SETTINGS[name].items()
        if type(value) in (int, float)
    }
    model = MODELS[name](**settings)
    for key in settings:
        assert type(getattr(model.config, key)) in (int, float)


def _clusters() -> tuple[Interactions, dict[str, str]]:
    users, items, missing = [], [], {}
    for user_prefix, item_prefix in (("u", "a"), ("v", "b")):
        for j in range(8):
            user = f"{user_prefix}{j}"
            missing[user] = f"{item_prefix}{j % 6}"
            for i in range(6):
                if i != j % 6:
                    users.append(user)
                    items.append(f"{item_prefix}{i}")
    return Interactions.from_ids(users, items), missing


@pytest.fixture(scope="module")
def clusters():
    return _clusters()


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, clusters) -> Recommender:
    data, _ = clusters
    model = MODELS[request.param](**SETTINGS[request.param])
    assert model.fit(data) is model
    return model


def test_recommend_leaves_out_seen_items(fitted, clusters):
    data, _ = clusters
    users = data.users.ids
    recs = fitted.recommend(users, k=20)
    seen = data.to_frame().groupby("user_id")["item_id"].apply(set)
    for user, row in zip(users, recs.to_list(), strict=True):
        items = [item for item, _ in row]
        assert not set(items) & seen[user]
        assert len(items) == len(set(items)) == 12 - 5  # every unseen item, once
        assert np.all(np.diff([score for _, score in row]) <= 0)  # best first


def test_held_out_item_of_own_cluster_comes_first(fitted, clusters):
    if fitted.name not in PERSONALISED:
        pytest.skip("popularity is not personalised")
    _, missing = clusters
    recs = fitted.recommend(list(missing), k=1).to_list()
    assert [row[0][0] for row in recs] == list(missing.values())


def test_popularity_ranks_by_count():
    data = Interactions.from_ids(["a", "b", "b", "c", "c", "c"], ["x", "x", "y", "x", "y", "z"])
    model = MODELS["popularity"]().fit(data)
    assert model.recommend("a", k=3).to_list()[0] == [("y", 2.0), ("z", 1.0)]


def test_score_matches_recommend(fitted, clusters):
    data, _ = clusters
    row = fitted.recommend("u1", k=4).to_list()[0]
    scores = fitted.score(["u1"] * len(row), [item for item, _ in row])
    np.testing.assert_allclose(scores, [score for _, score in row], rtol=1e-5, atol=1e-6)


def test_save_load_gives_identical_answers(fitted, clusters, tmp_path):
    data, _ = clusters
    fitted.save(tmp_path / "model")
    loaded = load_model(tmp_path / "model", device="cpu")
    assert type(loaded) is type(fitted)
    before = fitted.recommend(data.users.ids, k=5)
    after = loaded.recommend(data.users.ids, k=5)
    assert (before.item_ids == after.item_ids).all()
    np.testing.assert_array_equal(before.scores, after.scores)


def test_unknown_user_is_an_error_unless_fallback_asked(fitted):
    with pytest.raises(UnknownIDError, match="zz"):
        fitted.recommend(["u1", "zz"], k=3)
    recs = fitted.recommend(["u1", "zz"], k=3, fallback="popular")
    assert recs.fallback.tolist() == [False, True]
    assert recs.counts.tolist() == [3, 3]


def test_fold_in_of_a_history_recommends_its_held_out_item(fitted, clusters):
    data, missing = clusters
    frame = data.to_frame()
    histories = [frame.loc[frame["user_id"] == user, "item_id"].tolist() for user in missing]
    recs = fitted.recommend_from_history(histories, k=12)
    assert recs.fallback.tolist() == [False] * len(missing)
    for history, row in zip(histories, recs.to_list(), strict=True):
        assert not {item for item, _ in row} & set(history)
        assert len(row) == 12 - 5
    if fitted.name in PERSONALISED:
        assert [row[0][0] for row in recs.to_list()] == list(missing.values())
    with pytest.raises(UnknownIDError, match="zz") as info:
        fitted.recommend_from_history([["a0", "zz"]])
    assert "unknown_items='ignore'" in str(info.value)


def test_similar_items_leaves_out_the_query(fitted):
    recs = fitted.similar_items(["a0", "b3"], k=4)
    for query, row in zip(["a0", "b3"], recs.to_list(), strict=True):
        assert query not in [item for item, _ in row]
        assert len(row) == 4


def test_k_is_checked_and_any_size_is_served(fitted):
    for ask in (
        lambda k: fitted.recommend("u0", k=k),
        lambda k: fitted.similar_items("a0", k=k),
        lambda k: fitted.recommend_from_history([["a0"]], k=k),
    ):
        for bad in (-1, 1.5, "3", None, True):
            with pytest.raises(ValueError, match="k must be a non-negative integer"):
                ask(bad)
        assert ask(0).to_list() == [[]]
        everything = ask(10**30).to_list()[0]  # more than any catalogue: all candidates
        assert len(everything) == len(ask(len(fitted.items)).to_list()[0]) > 0


def test_integer_ids_are_text_in_every_query(fitted):
    data = Interactions.from_ids([1, 1, 2, 2, 3], [10, 20, 20, 30, 10])
    model = type(fitted)(**SETTINGS[fitted.name]).fit(data)
    for recs in (model.recommend(1, k=2), model.similar_items(10, k=2)):
        assert recs.query_ids.tolist() in (["1"], ["10"])
        assert all(type(item) is str for row in recs.to_list() for item, _ in row)
    assert model.similar_items([10, 20], k=1).query_ids.tolist() == ["10", "20"]


def test_score_lengths_must_match(fitted):
    with pytest.raises(ValueError, match="2 user IDs and 3 item IDs"):
        fitted.score(["u0", "u1"], ["a0", "a1", "a2"])
    assert len(fitted.score("u0", ["a0", "a1", "a2"])) == 3  # one ID on a side is repeated


def test_unknown_fallback_is_refused(fitted):
    with pytest.raises(ValueError, match="fallback"):
        fitted.recommend("u0", k=3, fallback="random")


def test_similar_items_stay_in_cluster(fitted):
    if fitted.name not in PERSONALISED:
        pytest.skip("popularity knows no similarity")
    top = fitted.similar_items(["a0", "b0"], k=1).to_list()
    assert top[0][0][0].startswith("a") and top[1][0][0].startswith("b")


def test_same_settings_same_answers(fitted, clusters):
    data, _ = clusters
    again = type(fitted)(**SETTINGS[fitted.name]).fit(data)
    first = fitted.recommend(data.users.ids, k=5)
    second = again.recommend(data.users.ids, k=5)
    assert (first.item_ids == second.item_ids).all()
    np.testing.assert_array_equal(first.scores, second.scores)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_accepts_validation_data(name, clusters):
    # models trained in epochs keep their best epoch on it; the others ignore it
    data, missing = clusters
    validation = Interactions.from_ids(list(missing), list(missing.values()))
    model = MODELS[name](**SETTINGS[name]).fit(data, validation=validation)
    assert model.recommend(list(missing), k=1).counts.tolist() == [1] * len(missing)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_settings_round_trip_through_json(name):
    config = MODELS[name](**SETTINGS[name]).config
    values = json.loads(json.dumps(config.to_dict()))
    assert type(config).from_dict(values) == config
    with pytest.raises(ValueError, match="unknown .*Config settings \\['bogus'\\]"):
        type(config).from_dict({**values, "bogus": 1})
