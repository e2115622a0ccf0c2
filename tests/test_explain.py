"""dotrec.explain and `dotrec explain`: parts that sum to the score, rank, nearest items."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dotrec import Interactions, UnknownIDError
from dotrec.cli import main
from dotrec.explain import explain
from dotrec.models import MODELS

FAST = {
    "mf": {"embedding_dim": 4, "epochs": 3, "batch_size": 32, "device": "cpu"},
    "bpr": {"embedding_dim": 4, "epochs": 3, "batch_size": 32, "device": "cpu"},
    "als": {"factors": 4, "iterations": 3, "device": "cpu"},
    "ease": {"regularization": 1.0, "device": "cpu"},
    "gf-cf": {"n_components": 4, "device": "cpu"},
    "itemknn": {"shrinkage": 0.0},
    "lightgcn": {"embedding_dim": 4, "epochs": 3, "batch_size": 32, "device": "cpu"},
    "two-tower": {"embedding_dim": 4, "id_dim": 4, "hidden": [8], "epochs": 3, "device": "cpu"},
    "popularity": {},
}
WITH_PARTS = {"mf": 3, "bpr": 3, "two-tower": 3, "als": 1, "lightgcn": 1}


@pytest.fixture(scope="module")
def data() -> Interactions:
    """12 users, 10 items, each user 4 random items."""
    rng = np.random.default_rng(3)
    users, items = [], []
    for u in range(12):
        for i in rng.choice(10, size=4, replace=False):
            users.append(f"u{u}")
            items.append(f"i{i}")
    return Interactions.from_ids(users, items)


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, data):
    return MODELS[request.param](**FAST[request.param]).fit(data)


def test_every_model_is_covered():
    assert set(FAST) == set(MODELS)


def test_parts_sum_to_the_score(fitted, data):
    for user in ("u0", "u5"):
        for item in ("i0", "i3", "i9"):
            why = explain(fitted, user, item)
            assert why.score == pytest.approx(float(fitted.score(user, item)))
            if fitted.name == "popularity":
                assert why.parts is None and "not available" in why.parts_note
                continue
            assert why.parts is not None
            assert why.parts_sum == pytest.approx(why.score, abs=1e-5)
            assert "bug" not in why.parts_note
            if fitted.name in WITH_PARTS:
                assert len(why.parts) == WITH_PARTS[fitted.name]


@pytest.mark.parametrize("name", ["ease", "itemknn"])
def test_item_item_parts_are_the_history_items(name, data):
    fitted = MODELS[name](**FAST[name]).fit(data)
    frame = data.to_frame()
    history = set(frame.loc[frame["user_id"] == "u0", "item_id"])
    for item in ("i0", "i9"):
        parts = explain(fitted, "u0", item).parts
        assert {name.removeprefix("history item ") for name in parts} <= history


def test_rank_matches_recommend(fitted, data):
    frame = data.to_frame()
    for user in ("u0", "u7"):
        full = [item for item, _ in fitted.recommend(user, k=100).to_list()[0]]
        history = set(frame.loc[frame["user_id"] == user, "item_id"])
        for item in data.items.ids:
            why = explain(fitted, user, item)
            assert why.candidates == len(full) == 10 - len(history)
            if item in history:
                assert why.in_history and why.rank is None
            else:
                assert not why.in_history and why.rank == full.index(item) + 1


def test_nearest_history_items_by_cosine(data):
    model = MODELS["mf"](**FAST["mf"]).fit(data)
    why = explain(model, "u0", "i9", n_nearest=2)
    vectors = model.module.item_embedding.weight.detach().numpy().astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    history = [i for i in model.items.lookup(data.to_frame().query("user_id == 'u0'")["item_id"])]
    target = model.items.index(["i9"])[0]
    cosines = {model.items.ids[i]: vectors[i] @ vectors[target] for i in history if i != target}
    expected = sorted(cosines.items(), key=lambda kv: -kv[1])[:2]
    assert [item for item, _ in why.nearest_history] == [item for item, _ in expected]
    for (_, got), (_, want) in zip(why.nearest_history, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)
    assert why.probability is None


def test_unknown_ids_are_named(data):
    model = MODELS["popularity"]().fit(data)
    with pytest.raises(UnknownIDError, match="'nobody'"):
        explain(model, "nobody", "i0")
    with pytest.raises(UnknownIDError, match="'nothing'"):
        explain(model, "u0", "nothing")


def test_explain_command(tmp_path, data, capsys):
    folder = tmp_path / "model"
    MODELS["mf"](**FAST["mf"]).fit(data).save(folder)
    assert main(["explain", str(folder), "--user", "u0", "--item", "i9"]) == 0
    out = capsys.readouterr().out
    assert "user bias b_u" in out and "dot product <p_u, q_i>" in out
    assert "probability: not available" in out
    assert "rank: " in out

    assert main(["explain", str(folder), "--user", "u0", "--item", "i9", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["parts_sum"] == pytest.approx(payload["score"], abs=1e-5)

    assert main(["explain", str(folder), "--user", "nobody", "--item", "i9"]) == 2
    err = capsys.readouterr().err
    assert "unknown user ID 'nobody'" in err
    assert "--fallback" not in err  # explain has no such option
    assert main(["explain", str(tmp_path / "none"), "--user", "u0", "--item", "i9"]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_popularity_lists_no_closest_items(tmp_path, data, capsys):
    # popularity has no item similarity: a "closest" list would be all ties (1.000)
    model = MODELS["popularity"]().fit(data)
    assert explain(model, "u0", "i9").nearest_history == []
    folder = tmp_path / "pop"
    model.save(folder)
    assert main(["explain", str(folder), "--user", "u0", "--item", "i9"]) == 0
    out = capsys.readouterr().out
    assert "closest training items: none (the popularity model knows no similarity)" in out
    assert "cosine of item vectors" not in out
