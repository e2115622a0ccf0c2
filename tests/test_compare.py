"""Comparing models: the library call and the `dotrec compare` command on tiny data."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from dotrec import EASE, Interactions, evaluate
from dotrec.cli import main
from dotrec.comparison import COLUMNS, check_catalogues, compare_models
from dotrec.exceptions import DataError, DataWarning
from dotrec.models import ItemKNN, Popularity
from dotrec.split import random_split
from dotrec.stats import bootstrap_ci

# --- the library ------------------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(40), 12)
    # a popularity skew, so that the models differ
    weights = 1.0 / np.arange(1, 51)
    items = np.concatenate(
        [rng.choice(50, size=12, replace=False, p=weights / weights.sum()) for _ in range(40)]
    )
    data = Interactions.from_ids(users.astype(str), items.astype(str))
    return random_split(data, 0.25, seed=0)


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return {"pop": Popularity().fit(train), "ease": EASE(regularization=5.0).fit(train)}


def test_compare_rows_match_evaluate_and_the_statistics(split, fitted):
    _, test = split
    result = compare_models(fitted, test, [3, 5], ["recall", "ndcg"], n_resamples=200, seed=2)
    rows = result.rows.set_index(["metric", "model"])
    assert list(result.rows.columns) == COLUMNS
    assert result.models == ["pop", "ease"] and result.n_users == 40

    full = {label: evaluate(model, test, [3, 5]) for label, model in fitted.items()}
    pop, ease = (full[m].per_user.set_index("user_id").sort_index() for m in ("pop", "ease"))
    for label in fitted:
        for name in ("recall@3", "ndcg@5", "coverage@5"):
            assert rows.loc[(name, label), "value"] == pytest.approx(full[label].metrics[name])

    # the interval and the tests come from the same users, paired
    a, b = pop["ndcg@5"].to_numpy(), ease["ndcg@5"].to_numpy()
    low, high = bootstrap_ci(np.column_stack([a, b]), n_resamples=200, seed=2)
    assert rows.loc[("ndcg@5", "ease"), "ci_low"] == pytest.approx(low[1])
    assert rows.loc[("ndcg@5", "ease"), "ci_high"] == pytest.approx(high[1])
    assert rows.loc[("ndcg@5", "ease"), "diff"] == pytest.approx(b.mean() - a.mean())
    assert rows.loc[("ndcg@5", "ease"), "p_ttest"] == pytest.approx(
        scipy.stats.ttest_rel(b, a).pvalue
    )
    assert rows.loc[("ndcg@5", "ease"), "p_wilcoxon"] == pytest.approx(
        scipy.stats.wilcoxon(b, a).pvalue
    )
    assert np.isnan(rows.loc[("ndcg@5", "pop"), "p_ttest"])  # the reference


def test_compare_beyond_accuracy(split, fitted):
    train, test = split
    genres = pd.DataFrame(
        {"genres": [f"g{int(i) % 3}|g{int(i) % 5}" for i in train.items.ids]},
        index=train.items.ids,
    )
    result = compare_models(fitted, test, [5], ["ndcg"], item_features=genres, n_resamples=50)
    rows = result.rows.set_index(["metric", "model"])
    metrics = list(dict.fromkeys(result.rows["metric"]))
    assert metrics == [
        "ndcg@5",
        "coverage@5",
        "gini@5",
        "novelty@5",
        "avg_popularity@5",
        "diversity@5",
    ]
    # popularity recommends (nearly) one list: lower coverage and novelty, higher gini
    assert rows.loc[("coverage@5", "pop"), "value"] < rows.loc[("coverage@5", "ease"), "value"]
    assert rows.loc[("gini@5", "pop"), "value"] > rows.loc[("gini@5", "ease"), "value"]
    assert rows.loc[("novelty@5", "pop"), "value"] < rows.loc[("novelty@5", "ease"), "value"]
    assert np.isnan(rows.loc[("gini@5", "ease"), "p_ttest"])  # a list-level measure
    assert 0.0 <= rows.loc[("diversity@5", "ease"), "value"] <= 1.0
    assert "diversity: mean pairwise cosine" in " ".join(result.footer())


def test_a_model_against_itself(split, fitted):
    _, test = split
    same = {"a": fitted["ease"], "b": fitted["ease"]}
    rows = compare_models(same, test, [5], ["ndcg"], n_resamples=50).rows
    b = rows[rows["model"] == "b"]
    assert (b["diff"] == 0).all()
    assert (b["p_ttest"].dropna() == 1.0).all() and (b["p_wilcoxon"].dropna() == 1.0).all()


def test_compare_sampled_rows_sit_beside_full_ones(split, fitted):
    _, test = split
    result = compare_models(fitted, test, [5], ["recall", "ndcg"], sampled=10, n_resamples=20)
    metrics = list(dict.fromkeys(result.rows["metric"]))
    assert metrics[:4] == ["recall@5", "sampled_recall@5", "ndcg@5", "sampled_ndcg@5"]
    assert "Krichene and Rendle" in " ".join(result.footer())


def test_compare_different_users_uses_the_common_ones(split, fitted):
    train, test = split
    # a model that never saw user "0" cannot rank for it
    fewer = train.subset(train.users.ids[train.user_idx] != "0")
    models = {"pop": fitted["pop"], "ease": EASE(regularization=5.0).fit(fewer)}
    with pytest.warns(DataWarning, match="the 39 users that every model evaluates"):
        result = compare_models(models, test, [5], ["ndcg"], n_resamples=20)
    assert result.n_users == 39


def test_different_catalogues_are_refused(split, fitted):
    train, _ = split
    fewer = train.subset(train.items.ids[train.item_idx] != "0")
    other = ItemKNN().fit(fewer)
    with pytest.raises(DataError, match="different item catalogues .* item '0' is only in pop"):
        check_catalogues({"pop": fitted["pop"], "knn": other})


def test_compare_bad_arguments(split, fitted):
    _, test = split
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        compare_models(fitted, test, [5], ["auc"])
    with pytest.raises(ValueError, match="at least one model"):
        compare_models({}, test)


# --- the command line -------------------------------------------------------------


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    """30 users x 25 items with a popularity skew."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, 26)
    rows = [
        (f"u{u:02d}", f"i{i:02d}")
        for u in range(30)
        for i in rng.choice(25, size=8, replace=False, p=weights / weights.sum())
    ]
    path = tmp_path_factory.mktemp("compare") / "log.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id"]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def split_dir(log_csv):
    out = log_csv.parent / "split"
    assert main(["split", str(log_csv), "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def knn_dir(split_dir):
    out = split_dir.parent / "knn"
    train = split_dir / "train.csv"
    assert main(["train", str(train), "--model", "itemknn", "--out", str(out)]) == 0
    return out


FAST = ["--k", "3", "5", "--resamples", "50", "--quiet"]


def test_cli_table(log_csv, capsys):
    assert main(["compare", "popularity", "ease", "--data", str(log_csv), *FAST]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["metric", "model", "value", "95%", "CI", "diff", "p(t)", "p(W)"]
    assert any(line.startswith("precision@3") and "popularity" in line for line in lines)
    assert "ndcg@5" in out and "coverage@5" in out and "novelty@3" in out
    assert "p(t): paired t-test; p(W): Wilcoxon signed-rank" in out.replace("\n", " ")


def test_cli_csv_json_markdown_and_output(log_csv, tmp_path, capsys):
    args = ["compare", "popularity", "ease", "--data", str(log_csv), *FAST]
    assert main([*args, "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(frame.columns) == COLUMNS
    assert set(frame["model"]) == {"popularity", "ease"}
    assert len(frame) == 2 * 2 * (3 + 4)  # 2 models x 2 K x (3 metrics + 4 beyond)

    assert main([*args, "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["models"] == ["popularity", "ease"] and payload["n_users"] == 30
    assert payload["settings"]["n_resamples"] == 50 and payload["settings"]["k"] == [3, 5]
    ease = {r["metric"]: r for r in payload["rows"] if r["model"] == "ease"}
    assert ease["recall@5"]["ci_low"] <= ease["recall@5"]["value"] <= ease["recall@5"]["ci_high"]
    assert ease["gini@5"]["p_ttest"] is None
    assert any("Wilcoxon" in line for line in payload["footer"])

    out = tmp_path / "table.md"
    assert main([*args, "--format", "markdown", "--output", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("| metric | model | value | 95% CI | diff | p(t) | p(W) |\n|---|")
    assert "| precision@3 | popularity |" in text and "Wilcoxon" in text


def test_cli_folder_config_and_sampled(split_dir, knn_dir, tmp_path, capsys):
    config = tmp_path / "tiny-mf.toml"
    config.write_text(
        '[model]\nname = "mf"\n\n[model.settings]\nepochs = 2\nembedding_dim = 4\n'
        'num_threads = 1\ndevice = "cpu"\n'
    )
    argv = [
        "compare",
        str(knn_dir),
        str(config),
        "--data",
        str(split_dir / "train.csv"),
        "--test",
        str(split_dir / "test.csv"),
        "--sampled",
        "5",
        "--format",
        "csv",
        *FAST,
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(captured.out))
    assert list(dict.fromkeys(frame["model"])) == ["knn", "tiny-mf"]
    assert {"recall@5", "sampled_recall@5", "sampled_ndcg@3"} <= set(frame["metric"])
    assert "sampled metrics" in captured.err and "Krichene and Rendle" in captured.err
    assert "fingerprint" not in captured.err  # the folder was trained on this training side


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dotrec: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_cli_bad_input_exits_2(log_csv, split_dir, knn_dir, tmp_path, capsys):
    line = _error(capsys, ["compare", "popularity", "nosuchmodel", "--data", str(log_csv)])
    assert "nosuchmodel: no such model folder or run config file, and not a model name" in line
    assert "popularity" in line  # the names to choose from

    missing = tmp_path / "gone" / "model"
    line = _error(capsys, ["compare", str(missing), "--data", str(log_csv)])
    assert f"{missing}: no such model folder" in line

    # a folder trained on other items than another
    other_csv = tmp_path / "other.csv"
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]}).to_csv(
        other_csv, index=False
    )
    other = tmp_path / "other-model"
    assert main(["train", str(other_csv), "--model", "popularity", "--out", str(other)]) == 0
    capsys.readouterr()
    line = _error(capsys, ["compare", str(knn_dir), str(other), "--data", str(log_csv)])
    assert "knn and other-model were trained on different item catalogues" in line

    line = _error(capsys, ["compare", "popularity", "--data", str(tmp_path / "nope.csv")])
    assert "nope.csv: no such file" in line

    line = _error(capsys, ["compare", "popularity", "--data", str(log_csv), "--resamples", "0"])
    assert "n_resamples (--resamples) must be a positive integer, got 0" in line


def test_cli_warns_about_a_folder_trained_on_other_rows(log_csv, tmp_path, capsys):
    # trained on all of DATA, so it saw every test row of the split: a warning, then
    # no user left to compare
    folder = tmp_path / "all-rows"
    assert main(["train", str(log_csv), "--model", "popularity", "--out", str(folder)]) == 0
    capsys.readouterr()
    argv = ["compare", "popularity", str(folder), "--data", str(log_csv), *FAST]
    line = _error(capsys, argv)
    assert "no test user is evaluated by every model" in line
    assert main(argv) == 2
    assert "all-rows was trained on other rows than the training side" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["compare", "report"])
def test_cli_bad_k_fails_before_training(log_csv, tmp_path, capsys, command):
    out = ["--out", str(tmp_path / "r.html")] if command == "report" else []
    assert main([command, "popularity", "ease", "--data", str(log_csv), "--k", "0", *out]) == 2
    err = capsys.readouterr().err
    assert "k must be a positive integer" in err and "trained" not in err
