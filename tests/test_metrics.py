"""Ranking metrics and full-ranking evaluation, against answers worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from dotrec import Interactions, MatrixFactorization, evaluate, evaluate_lists
from dotrec.exceptions import DataError, DataWarning, EmptyDataError
from dotrec.metrics import (
    average_precision,
    coverage,
    hit_rate,
    hits_from_keys,
    mrr,
    ndcg,
    precision,
    recall,
)

L2_3 = math.log2(3)  # discount denominator at rank 2


def _hits(*rows: str) -> torch.Tensor:
    """'x.x' -> [[True, False, True]]: x marks a relevant item at that rank."""
    return torch.tensor([[c == "x" for c in row] for row in rows], dtype=torch.bool)


def _rel(*counts: int) -> torch.Tensor:
    return torch.tensor(counts, dtype=torch.int64)


# --- precision ----------------------------------------------------------------


def test_precision_by_hand():
    # row 0: 2 hits in 3 -> 2/3; row 1: no hit -> 0
    out = precision(_hits("x.x", "..."), _rel(4, 2), 3)
    assert out.tolist() == pytest.approx([2 / 3, 0.0])


def test_precision_of_short_list_divides_by_k():
    # a list of 2 items (1 hit) scored at K=5: 1 / 5, not 1 / 2
    assert precision(_hits("x."), _rel(1), 5).item() == pytest.approx(0.2)


def test_precision_cuts_at_k():
    # hits at ranks 1, 3, 4; at K=2 only rank 1 counts -> 1/2
    assert precision(_hits("x.xx"), _rel(3), 2).item() == pytest.approx(0.5)


# --- recall -------------------------------------------------------------------


def test_recall_by_hand():
    # ranks 1 and 3 relevant, |R| = 4: K=4 -> 2/4; K=2 -> 1/4; no hit -> 0
    hits = _hits("x.x.", "....")
    assert recall(hits, _rel(4, 3), 4).tolist() == pytest.approx([0.5, 0.0])
    assert recall(hits, _rel(4, 3), 2).tolist() == pytest.approx([0.25, 0.0])


# --- NDCG ---------------------------------------------------------------------


def test_ndcg_by_hand():
    # hits at ranks 2, 3; |R| = 4, K = 3
    # DCG  = 1/log2(3) + 1/log2(4) = 0.630930 + 0.5 = 1.130930
    # IDCG = 3 hits on top (min(K, |R|) = 3) = 1 + 0.630930 + 0.5 = 2.130930
    # NDCG = 1.130930 / 2.130930 = 0.530721
    expected = (1 / L2_3 + 0.5) / (1 + 1 / L2_3 + 0.5)
    assert expected == pytest.approx(0.530721, abs=1e-6)
    assert ndcg(_hits(".xx"), _rel(4), 3).item() == pytest.approx(expected)


def test_ndcg_ideal_over_relevant_count_when_fewer_than_k():
    # one relevant item found at rank 2, K = 3: IDCG = 1 (one hit at rank 1),
    # so NDCG = (1/log2(3)) / 1 = 0.630930; an IDCG over K items would give
    # 0.630930 / 2.130930 = 0.296
    assert ndcg(_hits(".x."), _rel(1), 3).item() == pytest.approx(1 / L2_3)


def test_ndcg_of_short_list():
    # list of one item (a hit), K = 3, |R| = 2: DCG = 1,
    # IDCG = 1 + 1/log2(3) = 1.630930 -> 0.613147
    assert ndcg(_hits("x"), _rel(2), 3).item() == pytest.approx(1 / (1 + 1 / L2_3))


def test_ndcg_perfect_and_no_hit():
    # all 2 relevant at ranks 1, 2: DCG = IDCG -> 1; nothing found -> 0
    out = ndcg(_hits("xx.", "..."), _rel(2, 2), 3)
    assert out.tolist() == pytest.approx([1.0, 0.0])


# --- hit rate, MRR, MAP -------------------------------------------------------


def test_huge_k_costs_no_more_than_the_list():
    # A K far beyond any list or catalogue must not allocate K of anything.
    hits, rel = torch.tensor([[False, True, True]]), torch.tensor([4])
    for fn in (precision, recall, ndcg, hit_rate, mrr, average_precision):
        assert fn(hits, rel, 10**12).shape == (1,)
    assert ndcg(hits, rel, 10**12).item() == pytest.approx(ndcg(hits, rel, 4).item())
    assert ndcg(hits, torch.tensor([2]), 10**30).item() == pytest.approx(
        ndcg(hits, torch.tensor([2]), 3).item()
    )


def test_hit_rate_by_hand():
    # first hit at rank 3: K=3 -> 1, K=2 -> 0; a row with no hit -> 0
    hits = _hits("..x", "...")
    assert hit_rate(hits, _rel(1, 1), 3).tolist() == [1.0, 0.0]
    assert hit_rate(hits, _rel(1, 1), 2).tolist() == [0.0, 0.0]


def test_mrr_by_hand():
    # hits at ranks 3 and 4: 1/3 (first hit only); K=2 -> no hit -> 0
    hits = _hits("..xx", "x...", "....")
    assert mrr(hits, _rel(2, 1, 1), 4).tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert mrr(hits, _rel(2, 1, 1), 2).tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_map_by_hand():
    # hits at ranks 1 and 3: P@1 = 1, P@3 = 2/3, sum = 5/3
    # |R| = 2, K = 3: divide by min(3, 2) = 2 -> 5/6 = 0.833333
    # |R| = 5, K = 3: divide by min(3, 5) = 3 -> 5/9 = 0.555556
    hits = _hits("x.x", "x.x", "...")
    out = average_precision(hits, _rel(2, 5, 3), 3)
    assert out.tolist() == pytest.approx([5 / 6, 5 / 9, 0.0])


def test_map_of_short_list():
    # list of two (hit at rank 2), K = 4, |R| = 3: P@2 = 1/2, divided by
    # min(4, 3) = 3 -> 1/6
    assert average_precision(_hits(".x"), _rel(3), 4).item() == pytest.approx(1 / 6)


# --- coverage and hit lookup --------------------------------------------------


def test_coverage_by_hand():
    # lists hold items {0, 1, 2} (-1 is an empty slot) of a catalogue of 10 -> 0.3
    top = torch.tensor([[0, 1, -1], [1, 2, -1]])
    assert coverage(top, 10) == pytest.approx(0.3)
    assert coverage(np.array([[-1, -1]]), 10) == 0.0


def test_hits_from_keys():
    # user 0 relevant {1, 3}; user 1 relevant {0}; n_items = 4, keys u * 4 + i
    keys = torch.tensor([1, 3, 4])
    top = torch.tensor([[3, 0, 1], [0, 1, -1]])
    hits = hits_from_keys(top, torch.tensor([0, 1]), keys, 4)
    assert hits.tolist() == [[True, False, True], [True, False, False]]
    none = hits_from_keys(top, torch.tensor([0, 1]), torch.tensor([], dtype=torch.int64), 4)
    assert not none.any()


# --- evaluate() on a tiny fitted model ----------------------------------------

TRAIN = [
    ("u1", "a"),
    ("u1", "b"),
    ("u1", "c"),
    ("u2", "b"),
    ("u2", "c"),
    ("u2", "d"),
    ("u3", "a"),
    ("u3", "e"),
    ("u4", "c"),
    ("u4", "d"),
    ("u4", "e"),
    ("u4", "f"),
    ("u5", "a"),
    ("u5", "f"),
    ("u5", "g"),
]
TEST = [
    ("u1", "d"),
    ("u1", "e"),
    ("u2", "a"),
    ("u3", "b"),
    ("u3", "c"),
    ("u3", "g"),
    ("u4", "a"),
    ("u5", "b"),
    ("u5", "zzz"),  # zzz: an item the model never saw, counts as a miss
]


def _interactions(pairs):
    users, items = zip(*pairs, strict=True)
    return Interactions.from_ids(list(users), list(items))


@pytest.fixture(scope="module")
def tiny_model():
    return MatrixFactorization(embedding_dim=4, epochs=5, seed=1, device="cpu", num_threads=1).fit(
        _interactions(TRAIN)
    )


def _by_hand(lists: dict[str, list[str]], relevant: dict[str, set[str]], k: int):
    """Every metric in plain Python from the recommended lists."""
    out = {}
    for user, rel in relevant.items():
        top = lists[user][:k]
        hit = [item in rel for item in top]
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hit) if h)
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
        ap = sum(sum(hit[: r + 1]) / (r + 1) for r, h in enumerate(hit) if h)
        first = next((r + 1 for r, h in enumerate(hit) if h), None)
        out[user] = {
            f"precision@{k}": sum(hit) / k,
            f"recall@{k}": sum(hit) / len(rel),
            f"ndcg@{k}": dcg / idcg,
            f"hit_rate@{k}": float(any(hit)),
            f"map@{k}": ap / min(k, len(rel)),
            f"mrr@{k}": 0.0 if first is None else 1 / first,
        }
    return out


def test_evaluate_matches_plain_python(tiny_model):
    test = _interactions(TEST)
    result = evaluate(tiny_model, test, k=[2, 3])
    relevant: dict[str, set[str]] = {}
    for user, item in TEST:
        relevant.setdefault(user, set()).add(item)
    users = sorted(relevant)
    recs = tiny_model.recommend(users, k=3)
    lists = {u: [item for item, _ in recs.for_user(u)] for u in users}

    per_user = result.per_user.set_index("user_id")
    assert sorted(per_user.index) == users
    for k in (2, 3):
        expected = _by_hand(lists, relevant, k)
        for user in users:
            for name, value in expected[user].items():
                assert per_user.loc[user, name] == pytest.approx(value), (user, name)
        for name in expected[users[0]]:
            mean = sum(expected[u][name] for u in users) / len(users)
            assert result.metrics[name] == pytest.approx(mean)
    # u5's unknown item stays relevant: at most one of its two items can be found
    assert per_user.loc["u5", "recall@3"] <= 0.5
    assert result.notes["rows_with_unknown_item"] == 1
    all_items = {item for lst in lists.values() for item in lst}
    assert result.metrics["coverage@3"] == pytest.approx(len(all_items) / 7)


def test_evaluate_excludes_training_items(tiny_model):
    result = evaluate(tiny_model, _interactions(TEST), k=3, return_recommendations=True)
    recs = result.recommendations
    listed = set(zip(recs["user_id"], recs["item_id"], strict=True))
    assert listed, "no lists were returned"
    assert not listed & set(TRAIN)
    # u1 saw 3 of 7 items: 4 candidates, so a full list of 3
    assert (result.recommendations["user_id"] == "u1").sum() == 3


def test_evaluate_warns_and_drops_overlap(tiny_model):
    # ("u1", "a") is a training pair: it must be dropped, leaving u1 with {d}
    with pytest.warns(DataWarning, match=r"1 test \(user, item\) pairs also occur"):
        result = evaluate(tiny_model, _interactions([("u1", "a"), ("u1", "d")]), k=3)
    assert result.notes["overlap_with_train"] == 1
    top = [item for item, _ in tiny_model.recommend("u1", k=3).for_user("u1")]
    # recall over |R| = 1 (d only), not 2
    expected = 1.0 if "d" in top else 0.0
    assert result.per_user["recall@3"].tolist() == [expected]
    assert result.per_user["hit_rate@3"].tolist() == [expected]


def test_evaluate_overlap_raise(tiny_model):
    with pytest.raises(DataError, match="also occur in the training data"):
        evaluate(tiny_model, _interactions([("u1", "a")]), k=3, on_overlap="raise")


def test_evaluate_unknown_user_not_evaluated(tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = evaluate(tiny_model, _interactions([("stranger", "a"), ("u1", "d")]), k=2)
    assert result.n_users == 1
    assert result.notes["unknown_users"] == 1
    assert result.per_user["user_id"].tolist() == ["u1"]


def test_evaluate_with_a_k_beyond_the_catalogue(tiny_model):
    # Precision still divides by K; nothing of size K is built.
    test = _interactions(TEST)
    huge, catalogue = (
        evaluate(tiny_model, test, k=k).per_user.drop(columns="user_id")
        for k in (10**12, len(tiny_model.items))
    )
    n = len(tiny_model.items)
    assert huge["precision@1000000000000"].tolist() == pytest.approx(
        (catalogue[f"precision@{n}"] * n / 10**12).tolist()
    )
    assert huge["recall@1000000000000"].tolist() == catalogue[f"recall@{n}"].tolist()
    assert evaluate(tiny_model, test, k=10**30).n_users == len(huge)
    import pandas as pd

    lists = pd.DataFrame({"user_id": ["u1"], "item_id": ["b"], "rank": [1]})
    with pytest.warns(DataWarning):
        result = evaluate_lists(lists, test, k=10**12)
    assert result.n_users > 0


def test_evaluate_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="k must be a positive"):
        evaluate(tiny_model, _interactions(TEST), k=0)
    negatives = Interactions.from_ids(["u1"], ["d"], label=[0])
    with pytest.raises(EmptyDataError):
        evaluate(tiny_model, negatives, k=2)


def test_evaluate_lists_by_hand():
    import pandas as pd

    # u1: list [a, b, c], relevant {b, x}: hit at rank 2
    #   precision@3 = 1/3, recall = 1/2, ndcg = (1/log2 3) / (1 + 1/log2 3)
    # u2: no list, relevant {a}: every metric 0
    recs = pd.DataFrame({"user_id": ["u1"] * 3, "item_id": ["a", "b", "c"], "rank": [1, 2, 3]})
    test = _interactions([("u1", "b"), ("u1", "x"), ("u2", "a")])
    frame = evaluate_lists(recs, test, k=3).per_user.set_index("user_id")
    assert frame.loc["u1", "precision@3"] == pytest.approx(1 / 3)
    assert frame.loc["u1", "recall@3"] == pytest.approx(0.5)
    assert frame.loc["u1", "ndcg@3"] == pytest.approx((1 / L2_3) / (1 + 1 / L2_3))
    assert frame.loc["u1", "mrr@3"] == pytest.approx(0.5)
    assert frame.loc["u2"].tolist() == [0.0] * 6


@pytest.mark.parametrize(
    ("items", "ranks", "message"),
    [
        (["b", "b", "b"], [1, 2, 3], "('u1', 'b') more than once"),  # hits counted 3 times
        (["a", "b", "c"], [1, 1, 2], "rank 1 more than once"),  # order of a and b unknown
        (["a", "b", "c"], [1, 0, 2], "rank"),
        (["a", "b", "c"], [1, 2.5, 3], "rank"),
        (["a", "b", "c"], [1, None, 3], "rank"),
    ],
)
def test_evaluate_lists_refuses_ambiguous_lists(items, ranks, message):
    import pandas as pd

    recs = pd.DataFrame({"user_id": ["u1"] * 3, "item_id": items, "rank": ranks})
    test = _interactions([("u1", "b"), ("u1", "x")])
    with pytest.raises(DataError) as info:
        evaluate_lists(recs, test, k=3)
    assert message in str(info.value)


def test_evaluate_lists_metrics_stay_in_range():
    import pandas as pd

    recs = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["b", "a"], "rank": ["1", "2"]})
    result = evaluate_lists(recs, _interactions([("u1", "b")]), k=2)  # ranks as written in a CSV
    assert all(0 <= v <= 1 for v in result.metrics.values())
    # Ranks written as text are numbers: "10" comes after "2".
    items = [f"i{r}" for r in range(1, 11)]
    ranks = [str(r) for r in range(1, 11)]
    recs = pd.DataFrame({"user_id": ["u1"] * 10, "item_id": items, "rank": ranks})
    assert evaluate_lists(recs, _interactions([("u1", "i2")]), k=10).metrics["mrr@10"] == 0.5
