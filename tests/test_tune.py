"""Hyperparameter search: `dotrec.tune` and `dotrec tune` on tiny synthetic data."""

from __future__ import annotations

import pytest

import dotrec
from dotrec.cli import main
from dotrec.config import RunConfig
from dotrec.models import MODELS, MatrixFactorization
from dotrec.tuning import FloatRange, tune

pytest.importorskip("optuna")

QUICK_MF = {"epochs": 2, "embedding_dim": 8, "num_threads": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def data():
    return dotrec.synthetic(n_users=50, n_items=40, mean_per_user=12, seed=2).interactions


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("tune") / "log.csv"
    data.to_frame().to_csv(path, index=False)
    return path


def test_tune_returns_the_best_of_its_trials(data):
    seen = []
    result = dotrec.tune(data, "mf", n_trials=3, seed=1, fixed=QUICK_MF, callback=seen.append)
    assert len(result.trials) == 3 and [row["trial"] for row in seen] == [0, 1, 2]
    assert result.best_value == result.trials["ndcg@10"].max()
    assert 0.0 < result.best_value <= 1.0
    # the searched settings vary; the fixed ones are kept out of the search
    assert {"lr", "l2", "n_negatives"} <= set(result.trials.columns)
    assert "epochs" not in result.trials.columns
    best = result.trials.loc[result.trials["ndcg@10"].idxmax()]
    assert result.best_settings["lr"] == best["lr"]
    assert result.best_settings["epochs"] == 2 and result.best_settings["seed"] == 1
    run = result.run_config()
    assert run.validation.seed == 1 and run.validation.metric == "ndcg@10"
    assert RunConfig.from_toml(run.to_toml()) == run
    assert "*" in result.table() and "ndcg@10" in result.table().splitlines()[0]


def test_same_seed_same_search(data):
    space = {"regularization": FloatRange(1.0, 1000.0, log=True)}
    first = tune(data, "ease", n_trials=3, seed=4, space=space, fixed={"device": "cpu"})
    again = tune(data, "ease", n_trials=3, seed=4, space=space, fixed={"device": "cpu"})
    assert first.trials["regularization"].tolist() == again.trials["regularization"].tolist()
    assert first.trials["ndcg@10"].tolist() == again.trials["ndcg@10"].tolist()


def test_models_without_a_search_space_say_so(data, monkeypatch):
    with pytest.raises(ValueError, match="popularity model has no settings to tune"):
        tune(data, "popularity", n_trials=1)
    # a model family added later, before anyone gives it a search space
    monkeypatch.setitem(MODELS, "future-model", MatrixFactorization)
    with pytest.raises(ValueError, match="no search space for future-model"):
        tune(data, "future-model", n_trials=1)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        tune(data, "nope", n_trials=1)
    with pytest.raises(ValueError, match="'ndcg' is not a metric"):
        tune(data, "itemknn", n_trials=1, metric="ndcg")
    with pytest.raises(ValueError, match="has no setting epochs"):
        tune(data, "itemknn", n_trials=1, fixed={"epochs": 3})


def test_diverged_trials_are_marked_failed(data):
    # a learning rate this high makes the MF loss non-finite: the trial fails, the search goes on
    space = {"lr": FloatRange(1e30, 1e31)}
    with pytest.raises(dotrec.DotrecError, match="every one of the 2 trials failed"):
        tune(data, "mf", n_trials=2, space=space, fixed=QUICK_MF)


def test_tune_command_prints_trials_and_writes_a_config_train_accepts(log_csv, tmp_path, capsys):
    best = tmp_path / "best.toml"
    argv = ["tune", str(log_csv), "--model", "mf", "--trials", "3", "--out", str(best)]
    assert main([*argv, "--set", "epochs=2", "--threads", "1", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    header = next(line for line in table if line.split()[:1] == ["trial"])
    assert {"embedding_dim", "lr", "l2", "n_negatives", "seconds"} <= set(header.split())
    assert sum(line.startswith("*") for line in table) == 1
    assert "per-user random 0.2 validation split (seed 0)" in captured.out
    assert captured.err.count("dotrec: trial ") == 3

    run = RunConfig.read(best)
    assert run.data.path == str(log_csv.resolve())
    assert run.model.name == "mf" and run.model.settings["epochs"] == 2
    assert 0.0 < float(captured.out.split("best: ndcg@10 ")[1].split()[0]) <= 1.0
    model_dir = tmp_path / "model"
    assert main(["train", "--config", str(best), "--out", str(model_dir), "--quiet"]) == 0
    assert RunConfig.read(model_dir / "run.toml").model == run.model


def test_tune_command_errors_are_one_line(log_csv, tmp_path, capsys):
    out = str(tmp_path / "b.toml")
    assert main(["tune", str(log_csv), "--model", "popularity", "--out", out]) == 2
    assert "no settings to tune" in capsys.readouterr().err
    assert main(["tune", str(log_csv), "--metric", "ndcg@0", "--out", out]) == 2
    assert "'ndcg@0' is not a metric" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "--trials"),  # used to end in "error: trial"
        (["--trials", "-2"], "--trials"),
        (["--trials", "2", "--timeout", "0"], "no trial finished"),
    ],
)
def test_tune_command_with_no_trial_to_run(log_csv, tmp_path, capsys, args, message):
    out = tmp_path / "b.toml"
    argv = ["tune", str(log_csv), "--set", "epochs=1", "--out", str(out), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_tune_needs_a_limit(data):
    with pytest.raises(ValueError, match="n_trials"):
        tune(data, "mf", n_trials=None, timeout=None, fixed=QUICK_MF)
    with pytest.raises(TypeError, match="takes an Interactions"):
        tune("log.csv", "mf", n_trials=1, fixed=QUICK_MF)


def test_tune_command_without_optuna(log_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "optuna", None)
    assert main(["tune", str(log_csv), "--out", str(tmp_path / "b.toml")]) == 2
    err = capsys.readouterr().err
    assert "needs Optuna" in err and "pip install 'dotrec[tune]'" in err
