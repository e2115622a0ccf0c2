"""MatrixFactorization's losses and samplers on tiny data whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dotrec import BPR, Interactions, MatrixFactorization, evaluate_ratings, load_model
from dotrec.models import MODELS, BPRConfig, MFConfig

TINY = {
    "embedding_dim": 8,
    "epochs": 150,
    "lr": 0.05,
    "batch_size": 32,
    "device": "cpu",
    "num_threads": 1,
}


def _clusters() -> tuple[Interactions, dict[str, str]]:
    """Users u0..u7 have items a0..a5, users v0..v7 have b0..b5, each missing one of its own."""
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


@pytest.mark.parametrize("sampler", ["uniform", "popularity", "in-batch", "hard"])
@pytest.mark.parametrize("loss", ["bce", "bpr", "softmax"])
def test_each_loss_and_sampler_ranks_the_missing_item_first(loss, sampler):
    # the only unseen item of a user's own cluster must come before the six of
    # the other cluster
    data, missing = _clusters()
    model = MatrixFactorization(loss=loss, sampler=sampler, **TINY).fit(data)
    top = model.recommend(list(missing), k=1).to_list()
    assert [row[0][0] for row in top] == list(missing.values())
    assert np.isfinite(model.fit_info["epoch_loss"]).all()
    assert model.fit_info["epoch_loss"][-1] < model.fit_info["epoch_loss"][0]


def _ratings(seed: int = 0) -> tuple[Interactions, Interactions]:
    """Ratings 3 + b_u + b_i + 1.5 s_u s_i (s = +-1) of 12 users x 10 items; 10 held out."""
    rng = np.random.default_rng(seed)
    user_bias, item_bias = rng.uniform(-0.5, 0.5, 12), rng.uniform(-0.5, 0.5, 10)
    user_sign, item_sign = np.repeat([1, -1], 6), np.tile([1, -1], 5)
    rating = 3 + user_bias[:, None] + item_bias[None, :] + 1.5 * np.outer(user_sign, item_sign)
    users, items = np.meshgrid(np.arange(12), np.arange(10), indexing="ij")
    test = np.zeros(rating.shape, dtype=bool)
    test[np.arange(10), np.arange(10)] = True  # one held-out rating for users 0..9

    def pick(mask):
        return Interactions.from_ids(users[mask], items[mask], rating=rating[mask])

    return pick(~test), pick(test)


def test_mse_learns_the_ratings():
    train, test = _ratings()
    model = MatrixFactorization(
        loss="mse",
        embedding_dim=4,
        epochs=300,
        lr=0.05,
        l2=0.0,
        batch_size=32,
        device="cpu",
        num_threads=1,
    ).fit(train)
    assert model.predicts_ratings and model.score_kind == "predicted rating"
    frame = train.to_frame()
    predicted = model.score(frame["user_id"], frame["item_id"])
    train_rmse = float(np.sqrt(np.mean((predicted - frame["rating"].to_numpy()) ** 2)))
    assert train_rmse < 0.1
    held_out = evaluate_ratings(model, test)
    assert held_out.n_rows == 10 and held_out.metrics["rmse"] < 0.5
    # the rating model ranks too: a "+" user's best unseen item is a "+" item
    assert int(model.recommend("0", k=1).to_list()[0][0][0]) % 2 == 0


def test_mse_needs_ratings_and_ranking_losses_need_negatives():
    data, _ = _clusters()
    with pytest.raises(ValueError, match="no rating column"):
        MatrixFactorization(loss="mse", **TINY).fit(data)
    for loss in ("bpr", "softmax"):
        with pytest.raises(ValueError, match="n_negatives >= 1"):
            MatrixFactorization(loss=loss, n_negatives=0, **TINY).fit(data)


def test_mse_ignores_the_sampler_and_observed_negatives_count_as_ratings():
    data = Interactions.from_ids(
        ["a", "a", "b"], ["x", "y", "x"], rating=[5, 1, 4], label=[1, 0, 1]
    )
    model = MatrixFactorization(
        loss="mse",
        sampler="hard",
        embedding_dim=2,
        epochs=200,
        lr=0.05,
        l2=0.0,
        device="cpu",
        num_threads=1,
    ).fit(data)
    np.testing.assert_allclose(model.score(["a", "a", "b"], ["x", "y", "x"]), [5, 1, 4], atol=0.1)


def test_score_kind_follows_the_loss_and_sampler():
    assert MatrixFactorization().score_kind == (
        "logit against uniformly sampled negatives (not a probability)"
    )
    assert "popularity-sampled" in MatrixFactorization(sampler="popularity").score_kind
    assert "BPR" in MatrixFactorization(loss="bpr").score_kind
    assert "softmax" in MatrixFactorization(loss="softmax").score_kind
    assert not MatrixFactorization(loss="softmax").predicts_ratings


def test_softmax_log_q_can_be_turned_off():
    data, _ = _clusters()
    settings = {**TINY, "epochs": 5, "loss": "softmax", "sampler": "popularity"}
    on = MatrixFactorization(**settings).fit(data)
    off = MatrixFactorization(**settings, logq_correction=False).fit(data)
    assert on.fit_info["epoch_loss"] != off.fit_info["epoch_loss"]


def test_bpr_estimator_is_mf_with_bpr_defaults(tmp_path):
    assert MODELS["bpr"] is BPR and issubclass(BPR, MatrixFactorization)
    assert BPR().config.loss == "bpr" and isinstance(BPR().config, BPRConfig)
    assert BPRConfig.from_dict(BPRConfig().to_dict()) == BPRConfig()
    data, missing = _clusters()
    model = BPR(**TINY).fit(data)
    model.save(tmp_path / "bpr")
    loaded = load_model(tmp_path / "bpr", device="cpu")
    assert type(loaded) is BPR and loaded.config == model.config
    users = list(missing)
    torch.testing.assert_close(
        torch.from_numpy(loaded.recommend(users, k=3).scores),
        torch.from_numpy(model.recommend(users, k=3).scores),
    )


def test_same_seed_same_model_for_every_sampler():
    data, _ = _clusters()
    for sampler in ("popularity", "in-batch", "hard"):
        settings = {**TINY, "epochs": 5, "sampler": sampler, "loss": "softmax"}
        first = MatrixFactorization(**settings).fit(data)
        second = MatrixFactorization(**settings).fit(data)
        for name, tensor in first._tensors().items():
            assert torch.equal(tensor, second._tensors()[name]), (sampler, name)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"loss": "hinge"}, "loss must be one of"),
        ({"sampler": "random"}, "sampler must be one of"),
        ({"popularity_alpha": -0.5}, "popularity_alpha"),
        ({"sampler": "hard", "hard_pool": 2, "n_negatives": 4}, "hard_pool"),
        ({"patience": 0}, "patience"),
        ({"eval_every": 0}, "eval_every"),
        ({"early_stopping_metric": "ndcg"}, "NAME@K"),
        ({"early_stopping_metric": "auc@10"}, "NAME@K"),
    ],
)
def test_config_rejects_bad_loss_and_sampler_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        MFConfig(**bad)
