"""Early stopping: the best epoch's weights come back, by the same ranking path as evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dotrec import DataWarning, MatrixFactorization, evaluate, random_split, synthetic
from dotrec.training import EarlyStopping, epoch_loop, parse_metric, thread_count


class _Weights(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.value = torch.nn.Parameter(torch.zeros(1))


def _scripted(values: list[float], module: _Weights, **settings) -> EarlyStopping:
    """An EarlyStopping whose metric follows ``values``, one per evaluation."""
    script = iter(values)
    return EarlyStopping(lambda: next(script), module, metric="ndcg@10", **settings)


def test_early_stopping_by_hand():
    # metric 0.1, 0.3, 0.2, 0.25, ...: best at epoch 2; two evaluations without
    # improvement (patience 2) stop training after epoch 4, and epoch 2's weights return
    module = _Weights()
    stopping = _scripted([0.1, 0.3, 0.2, 0.25, 0.9], module, epochs=10, patience=2)

    def run_epoch(epoch: int) -> float:
        with torch.no_grad():
            module.value.fill_(float(epoch))  # the weights after epoch e are e
        return 1.0 / epoch

    losses = epoch_loop(run_epoch, 10, lr=0.1, after_epoch=stopping)
    assert len(losses) == 4
    stopping.restore()
    assert module.value.item() == 2.0
    assert stopping.to_dict() == {
        "metric": "ndcg@10",
        "epochs": [1, 2, 3, 4],
        "values": [0.1, 0.3, 0.2, 0.25],
        "best_epoch": 2,
        "best_value": 0.3,
        "last_epoch": 4,
        "stopped_early": True,
    }


def test_early_stopping_evaluates_every_few_epochs_and_the_last():
    module = _Weights()
    stopping = _scripted([0.5, 0.4, 0.6], module, epochs=7, eval_every=3, patience=None)
    for epoch in range(1, 8):
        with torch.no_grad():
            module.value.fill_(float(epoch))
        assert stopping(epoch) is False  # no patience: never stops
    assert stopping.to_dict()["epochs"] == [3, 6, 7]
    assert stopping.best_epoch == 7
    stopping.restore()  # the best is the last: nothing to restore
    assert module.value.item() == 7.0


def test_parse_metric():
    assert parse_metric("ndcg@10") == ("ndcg", 10)
    assert parse_metric("recall@20") == ("recall", 20)
    for bad in ("ndcg", "ndcg@0", "ndcg@x", "auc@10"):
        with pytest.raises(ValueError, match="NAME@K"):
            parse_metric(bad)


@pytest.fixture(scope="module")
def split():
    data = synthetic(n_users=80, n_items=60, mean_per_user=15, seed=5).interactions
    return random_split(data, test_fraction=0.25, seed=0)


# A learning rate high enough that the validation metric peaks and then falls.
OVERFIT = {
    "embedding_dim": 16,
    "epochs": 16,
    "lr": 0.2,
    "l2": 0.0,
    "batch_size": 64,
    "device": "cpu",
    "num_threads": 1,
    "eval_every": 1,
    "patience": None,
}


def test_mf_restores_the_best_epoch(split):
    train, validation = split
    model = MatrixFactorization(**OVERFIT).fit(train, validation)
    record = model.fit_info["validation"]
    best = record["best_epoch"]
    assert record["epochs"] == list(range(1, 17)) and len(model.fit_info["epoch_loss"]) == 16
    assert best < 16 and record["values"][best - 1] == max(record["values"])
    # the weights are those after the best epoch: a model trained for just that many
    # epochs (same seed, same draws) gives the same scores
    short = MatrixFactorization(**{**OVERFIT, "epochs": best}).fit(train)
    users = model.users.ids[:10]
    np.testing.assert_array_equal(
        model.recommend(users, k=5).scores, short.recommend(users, k=5).scores
    )
    # and the recorded metric is what dotrec.evaluate reports: one ranking path
    reported = evaluate(model, validation, k=10).metrics["ndcg@10"]
    assert reported == pytest.approx(record["best_value"], abs=1e-12)


def test_mf_stops_after_patience(split):
    train, validation = split
    model = MatrixFactorization(**{**OVERFIT, "patience": 2, "epochs": 40}).fit(
        train, validation=validation
    )
    record = model.fit_info["validation"]
    assert record["stopped_early"] and record["last_epoch"] == record["best_epoch"] + 2
    assert len(model.fit_info["epoch_loss"]) == record["last_epoch"] < 40


def test_validation_needs_rankable_rows(split):
    train, _ = split
    with (
        pytest.warns(DataWarning, match="also occur in the training data"),
        pytest.raises(ValueError, match="no validation interaction can be ranked"),
    ):
        MatrixFactorization(**OVERFIT).fit(train, validation=train)
    with pytest.raises(TypeError, match="validation must be an Interactions"):
        MatrixFactorization(**OVERFIT).fit(train, validation="valid.csv")


def test_thread_count_blocks_overlapping_on_two_threads_restore_the_outside_count():
    # A service answers requests on several threads at once: block a opens, b
    # opens (finding a's count), a closes, then b. Restoring what each block
    # found would leave the process on a's count for good.
    outside = torch.get_num_threads()
    inside = 1 if outside > 1 else 2
    first, second = thread_count(inside), thread_count(inside)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert torch.get_num_threads() == outside


def test_thread_count_nested_blocks_restore_each_level():
    outside = torch.get_num_threads()
    with thread_count(3):
        with thread_count(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == outside


def test_step_batch_size_by_hand():
    from dotrec.training import step_batch_size

    assert step_batch_size(16384, 24) == 6  # 24 rows: 4 steps of 6
    assert step_batch_size(16384, 25) == 7  # ceil(25 / 4): 4 steps, the last of 4 rows
    assert step_batch_size(16384, 80_000) == 16384  # 5 full steps already
    assert step_batch_size(16384, 4 * 16384) == 16384
    assert step_batch_size(16384, 3) == 1
    assert step_batch_size(8, 0) == 1
