"""LightGCN: the normalised graph, the layer mean, and what fit caches and saves."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dotrec import Interactions, LightGCN, load_model
from dotrec.models.lightgcn import (
    LightGCNConfig,
    _to_torch,
    normalized_adjacency,
    propagate,
)

# Users u0, u1; items i0, i1, i2. u0 has i0 and i1, u1 has i1 and i2.
# Degrees: u0 2, u1 2, i0 1, i1 2, i2 1.
R = sp.csr_array(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))


def test_adjacency_by_hand_on_two_users_and_three_items():
    a, b = 1 / np.sqrt(2 * 1), 1 / np.sqrt(2 * 2)  # 1 / sqrt(|N_u| |N_i|)
    expected = np.array(
        [
            # u0 u1  i0 i1 i2
            [0, 0, a, b, 0],  # u0
            [0, 0, 0, b, a],  # u1
            [a, 0, 0, 0, 0],  # i0
            [b, b, 0, 0, 0],  # i1
            [0, a, 0, 0, 0],  # i2
        ]
    )
    adjacency = normalized_adjacency(R)
    assert adjacency.shape == (5, 5) and adjacency.dtype == np.float32
    np.testing.assert_allclose(adjacency.toarray(), expected, rtol=1e-6)


def test_adjacency_ignores_repeats_and_leaves_isolated_nodes_empty():
    repeated = sp.csr_array(np.array([[3.0, 0.0], [0.0, 0.0]]))
    adjacency = normalized_adjacency(repeated).toarray()
    assert adjacency[0, 2] == adjacency[2, 0] == 1.0
    assert not adjacency[1].any() and not adjacency[3].any()


def test_final_embedding_is_the_mean_of_the_layers(rng):
    ego = torch.from_numpy(rng.normal(size=(5, 4)).astype(np.float32))
    dense = normalized_adjacency(R).toarray().astype(np.float64)
    layers = [ego.double().numpy()]
    for _ in range(3):
        layers.append(dense @ layers[-1])
    expected = np.mean(layers, axis=0)  # (E0 + A E0 + A^2 E0 + A^3 E0) / 4
    out = propagate(_to_torch(normalized_adjacency(R), "cpu"), ego, 3)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(propagate(_to_torch(normalized_adjacency(R), "cpu"), ego, 0), ego)


def test_propagation_gradient_matches_the_dense_product(rng):
    adjacency = normalized_adjacency(R)
    ego = torch.from_numpy(rng.normal(size=(5, 4)).astype(np.float32)).requires_grad_()
    weight = torch.from_numpy(rng.normal(size=(5, 4)).astype(np.float32))
    (propagate(_to_torch(adjacency, "cpu"), ego, 2) * weight).sum().backward()
    dense_ego = ego.detach().clone().requires_grad_()
    dense = torch.from_numpy(adjacency.toarray())
    ((dense_ego + dense @ dense_ego + dense @ (dense @ dense_ego)) / 3 * weight).sum().backward()
    torch.testing.assert_close(ego.grad, dense_ego.grad)


@pytest.fixture(scope="module")
def fitted() -> LightGCN:
    users = ["u0", "u0", "u1", "u1", "u2", "u2", "u3"]
    items = ["a", "b", "b", "c", "a", "c", "d"]
    data = Interactions.from_ids(users, items)
    return LightGCN(embedding_dim=4, epochs=5, batch_size=4, n_negatives=2, device="cpu").fit(data)


def test_cached_vectors_are_the_propagated_ego_vectors(fitted):
    adjacency = _to_torch(normalized_adjacency(fitted.seen), "cpu")
    final = propagate(adjacency, torch.cat([fitted.user_ego, fitted.item_ego]), 3)
    n_users = len(fitted.users)
    torch.testing.assert_close(fitted.user_vectors, final[:n_users])
    torch.testing.assert_close(fitted.item_vectors, final[n_users:])
    expected = (fitted.user_vectors[0] * fitted.item_vectors[3]).sum().item()
    assert fitted.score("u0", "d") == pytest.approx(expected, rel=1e-6)


def test_save_keeps_ego_and_propagated_vectors(fitted, tmp_path):
    loaded = load_model(fitted.save(tmp_path / "m"), device="cpu")
    for name in ("user_ego", "item_ego", "user_vectors", "item_vectors"):
        assert torch.equal(getattr(loaded, name), getattr(fitted, name))


def test_user_with_every_item_trains_on_positives_only():
    # u0 has every item: nothing to sample for it, which must not break training
    data = Interactions.from_ids(["u0", "u0", "u1"], ["a", "b", "a"])
    model = LightGCN(embedding_dim=4, epochs=3, batch_size=2, device="cpu").fit(data)
    assert np.isfinite(model.fit_info["epoch_loss"]).all()
    assert model.recommend("u1", k=2).to_list()[0][0][0] == "b"


def test_config_round_trip_and_checks():
    config = LightGCNConfig(n_layers=2, lr=0.01)
    assert LightGCNConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown LightGCNConfig settings"):
        LightGCNConfig.from_dict({"layers": 2})
    for bad in ({"n_layers": -1}, {"lr": 0.0}, {"n_negatives": 0}, {"l2": -1.0}):
        with pytest.raises(ValueError):
            LightGCNConfig(**bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_and_scores_on_cuda():
    data = Interactions.from_ids(["u0", "u0", "u1", "u1"], ["a", "b", "b", "c"])
    model = LightGCN(embedding_dim=4, epochs=2, batch_size=2, device="cuda").fit(data)
    assert model.user_vectors.device.type == "cuda"
    assert model.recommend("u0", k=1).counts.tolist() == [1]


def test_command_line_trains_lightgcn(tmp_path, capsys):
    from dotrec.cli import main

    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id\nu0,a\nu0,b\nu1,b\nu1,c\nu2,a\n")
    out = tmp_path / "model"
    argv = ["train", str(log), "--model", "lightgcn", "--out", str(out), "--epochs", "2",
            "--embedding-dim", "4", "--device", "cpu", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "trained lightgcn" in capsys.readouterr().out
    assert type(load_model(out, device="cpu")) is LightGCN
