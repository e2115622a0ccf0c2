"""GF-CF against a dense computation of its two filters, written out from the paper."""

import warnings

import numpy as np
import pytest

from dotrec import GFCF, Interactions, load_model


def _data(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    dense = rng.random((12, 9)) < 0.35
    dense[np.arange(12), np.arange(12) % 9] = True  # every user and item has a pair
    users, items = np.nonzero(dense)
    return Interactions.from_ids([f"u{u}" for u in users], [f"i{i}" for i in items])


def _dense_scores(
    model: GFCF, alpha: float, rank: int, sharpen: float = 0.0, exponent: float = 0.0
) -> np.ndarray:
    """s = (R P + alpha L - sharpen L P) * d^exponent, P = Rn^T Rn, L = R D^-1/2 V V^T D^1/2,
    with V from numpy's full SVD and every matrix dense."""
    r = model.seen.toarray().astype(np.float64)
    r[r != 0] = 1.0
    du, di = r.sum(1), r.sum(0)
    normalized = r / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    _, _, vt = np.linalg.svd(normalized)
    v = vt[:rank].T
    low = (r / np.sqrt(di)) @ v @ v.T * np.sqrt(di)
    p = normalized.T @ normalized
    return (r @ p + alpha * low - sharpen * low @ p) * di**exponent


def test_scores_equal_the_dense_formula():
    data = _data()
    # Rank 9 = the whole item space: the randomized SVD is then exact up to rotation.
    model = GFCF(n_components=9, oversample=0, alpha=0.7, device="cpu").fit(data)
    cfg = model.config  # the default sharpening and popularity weight
    expected = _dense_scores(model, 0.7, 9, cfg.sharpen, cfg.popularity_exponent)
    users = model.users.ids
    got = np.stack([model.score([u] * 9, list(model.items.ids)) for u in users])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_truncated_filter_matches_top_singular_vectors():
    data = _data(1)
    # GF-CF as published: no sharpening, no popularity weight.
    model = GFCF(
        n_components=3,
        oversample=6,
        power_iterations=20,
        alpha=1.0,
        sharpen=0.0,
        popularity_exponent=0.0,
        device="cpu",
    )
    model.fit(data)
    expected = _dense_scores(model, alpha=1.0, rank=3)
    got = model._score_users(__import__("torch").arange(12)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_sharpening_and_popularity_weight_equal_the_dense_formula():
    data = _data(2)
    model = GFCF(
        n_components=9, oversample=0, alpha=0.4, sharpen=0.6, popularity_exponent=0.2, device="cpu"
    ).fit(data)
    expected = _dense_scores(model, alpha=0.4, rank=9, sharpen=0.6, exponent=0.2)
    got = model._score_users(__import__("torch").arange(12)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("settings", [{}, {"sharpen": 0.0, "popularity_exponent": 0.0}])
def test_score_parts_sum_to_the_score(settings):
    model = GFCF(n_components=4, device="cpu", **settings).fit(_data())
    for user_idx, item_idx in [(0, 5), (3, 1), (7, 8)]:
        parts = model._score_parts(user_idx, item_idx)
        user, item = model.users.ids[user_idx], model.items.ids[item_idx]
        assert sum(parts.values()) == pytest.approx(model.score(user, item), rel=1e-4, abs=1e-5)


def test_same_seed_same_model_and_round_trip(tmp_path):
    data = _data()
    first = GFCF(n_components=4, seed=3, device="cpu").fit(data)
    second = GFCF(n_components=4, seed=3, device="cpu").fit(data)
    assert np.array_equal(first.components.numpy(), second.components.numpy())
    loaded = load_model(first.save(tmp_path / "gfcf"))
    a, b = first.recommend(list(first.users.ids), k=5), loaded.recommend(list(first.users.ids), k=5)
    assert (a.item_ids == b.item_ids).all()
    np.testing.assert_array_equal(a.scores, b.scores)


def test_rank_is_capped_by_the_matrix():
    with pytest.warns(UserWarning, match="9 singular vectors"):
        model = GFCF(n_components=500, device="cpu").fit(_data())
    assert model.components.shape == (9, 9)
    # "auto" (here round(2.5 sqrt(9)) = 8 of 9: no cap) is never warned about, capped or not
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = GFCF(device="cpu").fit(_data())
        tiny = GFCF(device="cpu").fit(Interactions.from_ids(["a", "b"], ["x", "y"]))
    assert auto.components.shape[1] == 8 and tiny.components.shape[1] == 2


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="n_components"):
        GFCF(n_components=0)
    with pytest.raises(ValueError, match="alpha"):
        GFCF(alpha=-1.0)
    with pytest.raises(ValueError, match="sharpen"):
        GFCF(sharpen=-0.5)
    with pytest.raises(ValueError, match="sharpen"):
        GFCF(sharpen=1e308)
    with pytest.raises(ValueError, match="alpha"):
        GFCF(alpha=float("nan"))
    with pytest.raises(ValueError, match="popularity_exponent"):
        GFCF(popularity_exponent=2.0)


def test_auto_rank_grows_with_the_square_root_of_the_catalogue():
    from dotrec.models.gfcf import auto_components

    # 2.5 * sqrt(n): 2.5 * 41 = 102.5 -> 102 (round half to even), 2.5 * 202.4 = 506.1 -> 506
    assert [auto_components(n) for n in (1, 1681, 40981)] == [2, 102, 506]
    model = GFCF(device="cpu").fit(_data())  # 9 items: 2.5 * 3 = 7.5 -> 8 of at most 9
    assert model.components.shape == (9, 8)
    assert model.fit_info["n_components"] == 8
