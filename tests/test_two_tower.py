"""Two-tower: the feature encoder, side features, new users and items, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from dotrec import Interactions, TwoTower, load_dataset, load_model, losses
from dotrec.data import FeatureEncoder
from dotrec.models.two_tower import TwoTowerConfig, _encode, _pair_logits, _Step
from dotrec.training import seeded_generators

# --- the feature encoder ------------------------------------------------------------


def _people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20, 30, np.nan, 50],
            "job": ["writer", "doctor", "writer", None],
            "genres": ["Drama|War", "Comedy", "", "Drama"],
            "member": [True, False, True, False],
        },
        index=["p1", "p2", "p3", "p4"],
    )


def test_encoder_infers_kinds_and_encodes_by_hand():
    encoder = FeatureEncoder.fit(_people())
    assert [c.kind for c in encoder.columns] == ["numeric", "categorical", "multi_hot", "numeric"]
    assert encoder.feature_names == [
        "age", "job=doctor", "job=writer", "genres=Comedy", "genres=Drama", "genres=War", "member",
    ]  # fmt: skip
    x = encoder.transform(_people())
    assert x.shape == (4, encoder.width) == (4, 7) and x.dtype == np.float32
    ages = np.array([20, 30, 50.0])
    np.testing.assert_allclose(
        x[:, 0], np.append((ages - ages.mean()) / ages.std(), 0)[[0, 1, 3, 2]], rtol=1e-6
    )  # a missing age is the mean: 0
    np.testing.assert_array_equal(x[:, 1:6], [[0, 1, 0, 1, 1], [1, 0, 1, 0, 0], [0, 1, 0, 0, 0],
                                              [0, 0, 0, 1, 0]])  # fmt: skip


def test_encoder_round_trips_through_json():
    encoder = FeatureEncoder.fit(_people(), {"age": "categorical"})
    again = FeatureEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert again.feature_names == encoder.feature_names
    np.testing.assert_array_equal(again.transform(_people()), encoder.transform(_people()))


def test_encoder_gives_zeros_to_unseen_values_and_keeps_the_most_frequent():
    encoder = FeatureEncoder.fit(_people()[["job", "genres"]], max_categories=1)
    assert encoder.feature_names == ["job=writer", "genres=Drama"]
    new = pd.DataFrame({"job": ["pilot", "writer"], "genres": ["Horror", "Drama|Horror"]})
    np.testing.assert_array_equal(encoder.transform(new), [[0, 0], [1, 1]])


def test_encoder_errors_name_the_column():
    with pytest.raises(ValueError, match="'when'.*drop the column"):
        FeatureEncoder.fit(pd.DataFrame({"when": pd.to_datetime(["2020-01-01"])}))
    with pytest.raises(ValueError, match=r"lack the columns \['job'\]"):
        FeatureEncoder.fit(_people()[["job"]]).transform(_people()[["age"]])
    with pytest.raises(ValueError, match="kind must be"):
        FeatureEncoder.fit(_people(), {"age": "ordinal"})
    with pytest.raises(TypeError, match="DataFrame"):
        FeatureEncoder.fit({"age": [1]})


# --- the model -----------------------------------------------------------------------


def _clusters():
    """Users u0..u7 like items a0..a5 (genre A), v0..v7 like b0..b5 (genre B)."""
    users, items = [], []
    for user_prefix, item_prefix in (("u", "a"), ("v", "b")):
        for j in range(8):
            for i in range(6):
                if i != j % 6:
                    users.append(f"{user_prefix}{j}")
                    items.append(f"{item_prefix}{i}")
    data = Interactions.from_ids(users, items)
    item_features = pd.DataFrame(
        {"genres": ["A"] * 6 + ["B"] * 6, "year": np.arange(12) % 3},
        index=[f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)],
    )
    user_features = pd.DataFrame(
        {"group": ["u"] * 8 + ["v"] * 8, "age": np.arange(16) % 4 + 20},
        index=[f"u{j}" for j in range(8)] + [f"v{j}" for j in range(8)],
    )
    return data, user_features, item_features


SMALL = {"embedding_dim": 8, "id_dim": 8, "hidden": [16], "epochs": 60, "lr": 0.01,
         "batch_size": 32, "device": "cpu", "num_threads": 1}  # fmt: skip


@pytest.fixture(scope="module")
def with_features() -> TwoTower:
    data, user_features, item_features = _clusters()
    return TwoTower(**SMALL, id_dropout=0.3).fit(
        data, user_features=user_features, item_features=item_features
    )


def test_cold_item_is_ranked_with_its_cluster(with_features):
    model = with_features
    new = pd.DataFrame({"genres": ["A", "B"], "year": [0, 1]}, index=["a_new", "b_new"])
    assert model.add_items(new) is model and len(model.items) == 14
    assert model.item_counts[-2:].tolist() == [0, 0]

    # its nearest items are those of its genre
    similar = model.similar_items(["a_new", "b_new"], k=5).to_list()
    assert all(item.startswith("a") for item, _ in similar[0])
    assert all(item.startswith("b") for item, _ in similar[1])

    # users of the cluster rank it above every item of the other cluster
    scores = model.score(["u1"] * 8, ["a_new", "b0", "b1", "b2", "b3", "b4", "b5", "b_new"])
    assert scores[0] > scores[1:].max()
    ranked = [item for item, _ in model.recommend("v2", k=12).to_list()[0]]
    assert ranked.index("b_new") < min(ranked.index(item) for item in ranked if item[0] == "a")


def test_new_user_gets_the_items_of_its_group(with_features):
    users = pd.DataFrame({"group": ["u", "v"], "age": [21, 22]}, index=["new1", "new2"])
    recs = with_features.recommend_for_features(users, k=6)
    assert recs.query_ids.tolist() == ["new1", "new2"] and not recs.fallback.any()
    assert all(item.startswith("a") for item in recs.item_ids[0])
    assert all(item.startswith("b") for item in recs.item_ids[1])
    only = with_features.recommend_for_features(users, k=3, items=["b0", "b1"])
    assert only.counts.tolist() == [2, 2]


def test_save_load_keeps_encoders_and_added_items(with_features, tmp_path):
    loaded = load_model(with_features.save(tmp_path / "tt"), device="cpu")
    assert len(loaded.items) == len(with_features.items)
    users = pd.DataFrame({"group": ["v"], "age": [30]}, index=["new3"])
    before = with_features.recommend_for_features(users, k=5)
    after = loaded.recommend_for_features(users, k=5)
    assert (before.item_ids == after.item_ids).all()
    # recomputed from the saved towers: equal up to float rounding
    np.testing.assert_allclose(before.scores, after.scores, rtol=1e-6)
    more = pd.DataFrame({"genres": ["B"], "year": [2]}, index=["b_new2"])
    assert loaded.add_items(more).similar_items("b_new2", k=1).to_list()[0][0][0].startswith("b")


def test_id_only_model_refuses_features_questions():
    data, _, item_features = _clusters()
    model = TwoTower(**{**SMALL, "epochs": 2}).fit(data)
    assert model.user_encoder is None and model.item_encoder is None
    with pytest.raises(ValueError, match="without user features"):
        model.recommend_for_features(pd.DataFrame({"group": ["u"]}, index=["x"]))
    with pytest.raises(ValueError, match="without item features"):
        model.add_items(item_features.iloc[:1])


def test_bad_features_are_refused():
    data, user_features, item_features = _clusters()
    model = TwoTower(**{**SMALL, "epochs": 1})
    with pytest.raises(TypeError, match="item_features must be a pandas DataFrame"):
        model.fit(data, item_features=item_features.to_dict())
    with pytest.raises(ValueError, match="repeats the user IDs"):
        model.fit(data, user_features=pd.concat([user_features, user_features.iloc[:1]]))
    model.fit(data, item_features=item_features)
    with pytest.raises(ValueError, match="already known or repeated.*a0"):
        model.add_items(item_features.iloc[:1])


def test_in_batch_negatives_leave_out_known_positives():
    data = Interactions.from_ids(["x", "x", "y"], ["a", "b", "c"])
    model = TwoTower(**{**SMALL, "epochs": 1}).fit(data)
    step = _Step(model, torch.zeros(2, 0), torch.zeros(3, 0), seeded_generators(0, "cpu")[1])
    users = torch.tensor([0, 0, 1])  # x, x, y
    unique = torch.tensor([0, 1, 2])  # a, b, c
    known = step._known_pairs(users, unique)
    assert known.tolist() == [[True, True, False], [True, True, False], [False, False, True]]


def _step_with_features(**config) -> _Step:
    """A fitted model's training step, with the features encoded as in fit."""
    data, user_features, item_features = _clusters()
    model = TwoTower(**{**SMALL, "epochs": 1, **config}).fit(
        data, user_features=user_features, item_features=item_features
    )
    user_x = torch.from_numpy(_encode(user_features, model.users, 1000, "user")[1])
    item_x = torch.from_numpy(_encode(item_features, model.items, 1000, "item")[1])
    return _Step(model, user_x, item_x, seeded_generators(0, "cpu")[1])


def _row_by_row_loss(step: _Step, users, items, negatives):
    """Loss and L2 penalty with each training row run through the towers on its own."""
    model, cfg = step.model, step.cfg
    user_out = model.user_tower(users, step.user_x[users])  # [u, 1, b_u]
    if cfg.loss == "bce":
        candidates = torch.cat([items.unsqueeze(1), negatives], 1)  # (B, 1 + n)
        flat = candidates.reshape(-1)
        item_out = model.item_tower(flat, step.item_x[flat]).view(*candidates.shape, -1)
        logits = (user_out.unsqueeze(1) * item_out).sum(-1)
        loss = losses.bce(logits[:, 0], logits[:, 1:])
    else:
        unique, column = torch.unique(items, return_inverse=True)
        item_out = model.item_tower(unique, step.item_x[unique])  # [v, b_i, 1]
        logits = user_out @ item_out.T / cfg.temperature
        known = torch.from_numpy(model.seen.toarray() > 0)[users][:, unique]
        log_q = step.log_q[unique]
        positive = logits.gather(1, column.unsqueeze(1)).squeeze(1)
        loss = losses.sampled_softmax(
            positive, logits, ~known, log_q[column], log_q.expand_as(logits)
        )
        item_out = item_out[column]
    penalty = user_out[:, :-2].square().sum(-1).mean() + item_out[..., :-2].square().sum(-1).mean()
    return loss, penalty


@pytest.mark.parametrize("loss", ["bce", "softmax"])
@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_step_matches_the_towers_row_by_row(loss, batch_size):
    # The step runs the towers over every user and item (or the batch's rows
    # and distinct items, by batch size) on features encoded once; loss and
    # gradients are those of running each training row through the towers.
    step = _step_with_features(loss=loss, batch_size=batch_size, id_dropout=0.0)
    pairs = step.model.seen.tocoo()
    users = torch.from_numpy(pairs.row[::5][:batch_size].astype(np.int64))
    items = torch.from_numpy(pairs.col[::5][:batch_size].astype(np.int64))
    negatives = None
    if loss == "bce":  # the step's draws, from the same generator state
        state = step.generator.get_state()
        negatives = step.sampler.sample(users, step.cfg.n_negatives, step.generator)
        step.generator.set_state(state)
    params = step.params
    fast = step.batch_loss(users, items)
    slow = _row_by_row_loss(step, users, items, negatives)
    for got, expected in zip(fast, slow, strict=True):
        torch.testing.assert_close(got, expected)
    grads = [torch.autograd.grad(a + step.cfg.l2 * b, params) for a, b in (fast, slow)]
    for got, expected in zip(*grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_fused_and_gathered_pair_logits_agree():
    # the CPU's fused kernel and the gathered rows used on a GPU
    g = torch.Generator().manual_seed(0)
    users = (torch.randn(5, 4, generator=g), torch.randn(5, 1, generator=g))
    items = (torch.randn(7, 4, generator=g), torch.randn(7, 1, generator=g))
    user_row = torch.tensor([0, 3, 3, 4])
    item_row = torch.randint(0, 7, (4, 3), generator=g)
    results = []
    for fused in (True, False):
        tensors = [t.clone().requires_grad_() for t in (*users, *items)]
        logits = _pair_logits(tensors[:2], tensors[2:], user_row, item_row, fused=fused)
        (logits * torch.arange(12.0).view(4, 3)).sum().backward()
        results.append([logits.detach(), *(t.grad for t in tensors)])
    (u, b_u), (v, b_i) = users, items
    expected = (u[user_row].unsqueeze(1) * v[item_row]).sum(-1) + b_u[user_row] + b_i[item_row, 0]
    torch.testing.assert_close(results[0][0], expected)
    for got, again in zip(*results, strict=True):
        torch.testing.assert_close(got, again)


def test_dropped_user_ids_take_the_no_id_output():
    step = _step_with_features(id_dropout=0.5, batch_size=32)
    tower, user_x = step.model.user_tower, step.user_x
    users = torch.arange(16).repeat(2)  # 32 rows: the table of every user with and without ID
    (vectors, biases), row = step._user_outputs(users)
    dropped = row >= 16
    assert 0 < int(dropped.sum()) < 32 and (row % 16 == users).all()
    with_id = torch.cat(tower.parts(users, user_x[users]), 1)
    no_id = torch.cat(tower.parts(torch.full_like(users, tower.n_ids), user_x[users]), 1)
    expected = torch.where(dropped.unsqueeze(1), no_id, with_id)
    torch.testing.assert_close(torch.cat([vectors, biases], 1)[row], expected)


def test_bce_loss_trains_too():
    data, _, item_features = _clusters()
    model = TwoTower(**{**SMALL, "loss": "bce", "epochs": 3}).fit(data, item_features=item_features)
    assert np.isfinite(model.fit_info["epoch_loss"]).all()


def test_config_round_trip_and_checks():
    config = TwoTowerConfig(hidden=[32, 16], loss="bce")
    assert config.hidden == (32, 16)
    assert TwoTowerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for bad in ({"loss": "warp"}, {"id_dropout": 1.0}, {"hidden": [0]}, {"temperature": 0}):
        with pytest.raises(ValueError):
            TwoTowerConfig(**bad)


def test_movielens_features(data_root):
    dataset = load_dataset("ml-100k", root=data_root)
    assert len(dataset.users) == 943
    assert dataset.users.loc["1"].to_dict() == {
        "age": 24, "gender": "M", "occupation": "technician", "zip_code": "85711",
    }  # fmt: skip
    features = TwoTower.dataset_features(dataset)
    assert list(features["user_features"].columns) == ["age", "gender", "occupation"]
    assert list(features["item_features"].columns) == ["genres"]
    encoder = FeatureEncoder.fit(features["item_features"])
    assert encoder.width == 19  # the 19 genre flags of u.item


def test_command_line_trains_two_tower_without_features(tmp_path, capsys):
    from dotrec.cli import main

    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id\nu0,a\nu0,b\nu1,b\nu1,c\nu2,a\n")
    out = tmp_path / "model"
    argv = ["train", str(log), "--model", "two-tower", "--out", str(out), "--epochs", "2",
            "--set", "hidden=[8]", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "trained two-tower" in capsys.readouterr().out
    loaded = load_model(out, device="cpu")
    assert loaded.config.hidden == (8,) and loaded.item_encoder is None
