"""Beyond-accuracy measures of top-K lists and sampled-negative evaluation.

Answers are worked out by hand in the comments, or recomputed by plain loops.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dotrec import EASE, DataWarning, Interactions, evaluate
from dotrec import metrics as metrics_module
from dotrec.evaluation import sampled_metrics
from dotrec.metrics import average_popularity, gini_index, intra_list_diversity, novelty
from dotrec.models import Popularity
from dotrec.ranking import to_model_space
from dotrec.sampling import UniformSampler
from dotrec.split import random_split

# --- novelty and popularity ---------------------------------------------------------------


def test_novelty_by_hand():
    # 16 users; item 0 had by 16 (-log2 1 = 0 bits), item 1 by 4 (2 bits),
    # item 2 by 1 (4 bits), item 3 by nobody (counted as 1: 4 bits)
    counts = np.array([16, 4, 1, 0])
    top = torch.tensor([[0, 1, 2], [1, 3, -1], [-1, -1, -1]])
    out = novelty(top, counts, 16)
    assert out[:2].tolist() == pytest.approx([(0 + 2 + 4) / 3, (2 + 4) / 2])
    assert math.isnan(out[2])  # an empty list has no novelty


def test_average_popularity_by_hand():
    counts = np.array([16, 4, 1, 0])
    top = torch.tensor([[0, 1, 2], [3, 1, -1]])
    # (16 + 4 + 1) / 3 = 7; (0 + 4) / 2 = 2: padding is not an item
    assert average_popularity(top, counts).tolist() == pytest.approx([7.0, 2.0])


# --- Gini index -------------------------------------------------------------------------


def test_gini_by_hand():
    # recommendation counts over 4 items [0, 0, 1, 3]; sorted ascending with weights
    # 2i - n - 1 = -3, -1, 1, 3: (0 + 0 + 1 + 9) / (4 * 4) = 0.625
    top = torch.tensor([[3, 2], [3, -1], [3, -1]])
    assert gini_index(top, 4) == pytest.approx(0.625)


def test_gini_extremes():
    # every item recommended equally often: 0
    assert gini_index(torch.tensor([[0, 1], [2, 3]]), 4) == 0.0
    # one item of 5 fills every list: counts [0, 0, 0, 0, 3] -> 4 * 3 / (5 * 3) = 0.8
    assert gini_index(torch.tensor([[4], [4], [4]]), 5) == pytest.approx(0.8)
    assert gini_index(torch.full((2, 3), -1), 5) == 0.0  # nothing recommended


def test_gini_matches_mean_absolute_difference(rng):
    # G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x)), the textbook definition
    top = torch.from_numpy(rng.integers(0, 30, size=(50, 6)))
    counts = np.bincount(top.flatten().numpy(), minlength=40).astype(float)
    pairs = np.abs(counts[:, None] - counts[None, :]).sum()
    expected = pairs / (2 * len(counts) ** 2 * counts.mean())
    assert gini_index(top, 40) == pytest.approx(expected)


# --- intra-list diversity -------------------------------------------------------------


GENRES = torch.tensor(
    [
        [1.0, 0.0, 0.0],  # item 0: A
        [1.0, 1.0, 0.0],  # item 1: A, B
        [0.0, 1.0, 0.0],  # item 2: B
        [0.0, 0.0, 0.0],  # item 3: no genre
    ]
)


def test_diversity_cosine_by_hand():
    # pairs of [0, 2, 1]: (0, 2) cos 0 -> 1; (0, 1) and (2, 1) cos 1/sqrt(2) each
    expected = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    out = intra_list_diversity(torch.tensor([[0, 2, 1], [0, 1, -1]]), GENRES)
    assert out.tolist() == pytest.approx([expected, 1 - 1 / math.sqrt(2)])


def test_diversity_jaccard_by_hand():
    # (0, 2): no shared genre -> 1; (0, 1): 1 shared of 2 -> 1/2; (2, 1): 1/2
    out = intra_list_diversity(torch.tensor([[0, 2, 1]]), GENRES, "jaccard")
    assert out.item() == pytest.approx(2 / 3)


def test_diversity_of_short_lists_and_featureless_items():
    out = intra_list_diversity(torch.tensor([[0, -1, -1], [0, 3, -1], [1, 1, -1]]), GENRES)
    assert math.isnan(out[0])  # one item: no pair
    assert out[1].item() == pytest.approx(1.0)  # an item without features is unlike all
    assert out[2].item() == pytest.approx(0.0, abs=1e-12)  # the same item twice


def test_diversity_matches_a_loop_in_batches(rng):
    features = torch.from_numpy((rng.random((20, 5)) < 0.4).astype(np.float64))
    top = torch.from_numpy(rng.integers(0, 20, size=(9, 4)))
    top[2, 3] = -1
    for distance in ("cosine", "jaccard"):
        got = intra_list_diversity(top, features, distance, batch_size=4)
        for row, value in zip(top.tolist(), got.tolist(), strict=True):
            items = [i for i in row if i >= 0]
            gaps = [_distance(features[i], features[j], distance) for i, j in _pairs(items)]
            assert value == pytest.approx(sum(gaps) / len(gaps)), distance


def test_diversity_in_row_blocks_matches_a_loop(rng, monkeypatch):
    # a tiny budget forces one list at a time and 3 Jaccard rows per block,
    # as a long K (thousands) does on real data
    monkeypatch.setattr(metrics_module, "_ILD_BUDGET", 3 * 7)
    features = torch.from_numpy((rng.random((30, 6)) < 0.4).astype(np.float64))
    features[5] = 0  # an item without features
    top = torch.from_numpy(rng.integers(0, 30, size=(5, 7)))
    top[1, 4:] = -1
    top[3, 0] = 5
    for distance in ("cosine", "jaccard"):
        got = intra_list_diversity(top, features, distance)
        for row, value in zip(top.tolist(), got.tolist(), strict=True):
            items = [i for i in row if i >= 0]
            gaps = [_distance(features[i], features[j], distance) for i, j in _pairs(items)]
            assert value == pytest.approx(sum(gaps) / len(gaps)), distance


def test_diversity_memory_does_not_grow_with_k_squared():
    # 64 lists of 3,000 items: a (B, K, K) float64 product would need 4.6 GB
    features = torch.eye(19, dtype=torch.float64)[torch.arange(3000) % 19]
    top = torch.arange(3000).repeat(64, 1)
    out = intra_list_diversity(top, features)
    # 19 genres in equal shares (some 157 or 158 items each): pairs that share a genre
    sizes = torch.bincount(torch.arange(3000) % 19).double()
    same = (sizes * (sizes - 1) / 2).sum()
    expected = 1 - same / (3000 * 2999 / 2)
    torch.testing.assert_close(out, torch.full((64,), float(expected), dtype=torch.float64))


def _pairs(items):
    return itertools.combinations(items, 2)


def _distance(a, b, distance) -> float:
    if distance == "cosine":
        norm = float(a.norm() * b.norm())
        return 1.0 - (float(a @ b) / norm if norm else 0.0)
    union = float(((a > 0) | (b > 0)).sum())
    return 1.0 - (float(((a > 0) & (b > 0)).sum()) / union if union else 0.0)


def test_diversity_bad_distance():
    with pytest.raises(ValueError, match="distance must be"):
        intra_list_diversity(torch.tensor([[0, 1]]), GENRES, "euclid")


# --- sampled metrics ------------------------------------------------------------------


@pytest.fixture
def popular():
    """Popularity over items a..e: counts a 1, b 1, c 2, d 3, e 3 (training users)."""
    users = ["u", "u", "v", "w", "w", "x", "x", "y"]
    items = ["a", "b", "c", "d", "e", "d", "e", "c"]
    users += ["z", "z"]
    items += ["d", "e"]
    return Popularity().fit(Interactions.from_ids(users, items))


def test_sampled_ranks_by_hand(popular):
    # u (trained on a, b) holds out c (count 2); its only negatives are d and e
    # (count 3 each), so c ranks 3 of 3 whatever is drawn:
    # hit@2 = 0; hit@3 = 1 and NDCG@3 = 1 / log2(3 + 1) = 0.5
    test = Interactions.from_ids(["u"], ["c"])
    user_idx, item_idx, _ = to_model_space(popular.users, popular.items, test)
    out = sampled_metrics(popular, user_idx, item_idx, [2, 3], n_negatives=2, seed=0)
    assert out["sampled_recall@2"].tolist() == [0.0]
    assert out["sampled_ndcg@2"].tolist() == [0.0]
    assert out["sampled_recall@3"].tolist() == [1.0]
    assert out["sampled_ndcg@3"].tolist() == pytest.approx([0.5])


def test_sampled_ties_count_against_the_test_item(popular):
    # x and z (trained on d, e) hold out c (count 2): their negatives a, b (count 1)
    # never beat it, so c ranks first for any draw
    test = Interactions.from_ids(["x", "z"], ["c", "c"])
    user_idx, item_idx, _ = to_model_space(popular.users, popular.items, test)
    with pytest.warns(DataWarning, match="negatives repeat"):  # a 5-item catalogue
        out = sampled_metrics(popular, user_idx, item_idx, [1], n_negatives=5, seed=3)
    assert out["sampled_recall@1"].tolist() == [1.0, 1.0]
    # y (trained on c) holds out d (count 3); negatives a, b, e, and e (count 3) ties:
    # a tie counts against d, and e is drawn among 50 (all but surely)
    test = Interactions.from_ids(["y"], ["d"])
    user_idx, item_idx, _ = to_model_space(popular.users, popular.items, test)
    with pytest.warns(DataWarning, match="negatives repeat"):  # a 5-item catalogue
        out = sampled_metrics(popular, user_idx, item_idx, [1], n_negatives=50, seed=3)
    assert out["sampled_recall@1"].tolist() == [0.0]


def test_sampled_unknown_item_is_a_miss(popular):
    user_idx, item_idx = np.array([0]), np.array([-1])
    out = sampled_metrics(popular, user_idx, item_idx, [10], n_negatives=3)
    assert out["sampled_recall@10"].tolist() == [0.0]
    assert out["sampled_ndcg@10"].tolist() == [0.0]


@pytest.fixture(scope="module")
def ease_split():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(40), 10)
    items = np.concatenate([rng.choice(60, size=10, replace=False) for _ in range(40)])
    data = Interactions.from_ids(users.astype(str), items.astype(str))
    train, test = random_split(data, 0.3, seed=0)
    return EASE().fit(train), test


def test_sampled_matches_a_loop(ease_split):
    # the same draws (one sampler, one generator, pairs in user order), then each rank
    # counted by hand from model.score and averaged per user in Python
    model, test = ease_split
    user_idx, item_idx, _ = to_model_space(model.users, model.items, test)
    out = sampled_metrics(model, user_idx, item_idx, [5, 10], n_negatives=20, seed=4)

    order = np.argsort(user_idx, kind="stable")
    pairs_u, pairs_i = user_idx[order], item_idx[order]
    known = pairs_i >= 0
    positives = (model.seen.toarray() > 0).astype(np.float32)
    positives[pairs_u[known], pairs_i[known]] = 1
    sampler = UniformSampler(sp.csr_array(positives))
    negatives = sampler.sample(
        torch.from_numpy(pairs_u), 20, torch.Generator().manual_seed(4)
    ).numpy()
    per_user: dict[int, list[float]] = {}
    for u, i, neg in zip(pairs_u, pairs_i, negatives, strict=True):
        assert not positives[u, neg].any()  # never a train or test positive
        if i < 0:
            per_user.setdefault(u, []).append(math.inf)
            continue
        ids = model.users.ids[u], model.items.ids[i]
        mine = model.score(*ids)
        theirs = model.score([ids[0]] * len(neg), model.items.ids[neg])
        per_user.setdefault(u, []).append(1 + int((theirs >= mine).sum()))
    for row, u in enumerate(sorted(per_user)):
        ranks = np.array(per_user[u])
        hits = ranks <= 10
        assert out["sampled_recall@10"][row].item() == pytest.approx(hits.mean())
        gains = np.where(hits, 1 / np.log2(np.minimum(ranks, 1e9) + 1), 0.0)
        assert out["sampled_ndcg@10"][row].item() == pytest.approx(gains.mean(), abs=1e-6)


def test_evaluate_with_sampled_adds_columns_only(ease_split):
    model, test = ease_split
    full = evaluate(model, test, [5, 10])
    both = evaluate(model, test, [5, 10], sampled=20, seed=1)
    assert set(both.metrics) - set(full.metrics) == {
        "sampled_recall@5",
        "sampled_recall@10",
        "sampled_ndcg@5",
        "sampled_ndcg@10",
    }
    for name, value in full.metrics.items():
        assert both.metrics[name] == value
    assert both.notes["sampled_negatives"] == 20
    again = evaluate(model, test, [5, 10], sampled=20, seed=1)
    assert again.metrics == both.metrics  # seeded
    # ranking among 20 negatives is easier than among the whole catalogue
    assert both.metrics["sampled_recall@10"] >= full.metrics["recall@10"]
    assert both.top_items.shape == (both.n_users, 10)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_evaluate_refuses_bad_sampled(ease_split, bad):
    model, test = ease_split
    with pytest.raises(ValueError, match="sampled"):
        evaluate(model, test, 10, sampled=bad)


def test_sampled_warns_when_draws_must_repeat(ease_split, recwarn):
    model, test = ease_split
    n_users = len(set(test.users.ids[test.user_idx]) & set(model.users.ids))
    # every user has positives, so none has the whole catalogue to draw from
    with pytest.warns(DataWarning, match=f"{n_users} of {n_users} users have fewer items"):
        evaluate(model, test, 10, sampled=len(model.items))
    recwarn.clear()
    evaluate(model, test, 10, sampled=5)
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]
