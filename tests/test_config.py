"""Run configs: dict and TOML round trips, key checks, `dotrec train --config`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import dotrec
from dotrec.cli import main
from dotrec.config import DataConfig, ModelConfig, RunConfig, ValidationConfig
from dotrec.exceptions import ModelFileError

FULL = RunConfig(
    DataConfig(
        path="ratings.csv",
        format="csv",
        sep="::",
        header=False,
        columns={"user": "userId", "item": 1},
        min_rating=3.5,
        encoding="latin-1",
        drop_invalid=True,
    ),
    ModelConfig("mf", {"embedding_dim": 16, "lr": 0.0123456789, "seed": 7, "device": "cpu"}),
    ValidationConfig("random", 0.25, 3, "recall@20"),
)

QUICK = ["--epochs", "2", "--embedding-dim", "8", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    """A small synthetic log with ratings and timestamps."""
    path = tmp_path_factory.mktemp("config") / "log.csv"
    dotrec.synthetic(n_users=40, n_items=30, mean_per_user=12).interactions.to_frame().to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize(
    "run",
    [
        FULL,
        RunConfig(),
        RunConfig(DataConfig(dataset="ml-100k"), ModelConfig("ease", {"regularization": 500.0})),
        RunConfig(model=ModelConfig("popularity")),
    ],
)
def test_round_trip_dict_and_toml(run):
    assert RunConfig.from_dict(run.to_dict()) == run
    assert RunConfig.from_toml(run.to_toml()) == run
    assert RunConfig.from_toml(run.to_toml_file()) == run  # the comment line is harmless
    text = run.to_toml()
    assert RunConfig.from_toml(text).to_toml() == text


def test_toml_layout_and_unset_values():
    values = FULL.to_dict()
    assert set(values) == {"data", "model", "validation"}
    assert values["data"]["columns"] == {"user": "userId", "item": 1}
    assert values["model"] == {"name": "mf", "settings": FULL.model.settings}
    # TOML has no null: unset options and empty tables are left out
    text = RunConfig(DataConfig(path="x.csv")).to_toml()
    assert text == '[data]\npath = "x.csv"\n\n[model]\nname = "mf"\n'


@pytest.mark.parametrize(
    "text, message",
    [
        ("[dta]\npath = 'x'\n", "unknown key 'dta'"),
        ("[data]\npath = 'x'\nseperator = ','\n", "unknown key 'data.seperator'"),
        ("[data]\npath = 'x'\n[data.columns]\nuserid = 'u'\n", "data.columns.userid"),
        ("[model]\nname = 'mf'\n[model.settings]\nepoch = 3\n", "model.settings.epoch"),
        ("[model]\nname = 'mf'\nepochs = 3\n", "unknown key 'model.epochs'"),
        ("[validation]\nfolds = 3\n", "unknown key 'validation.folds'"),
        ("[model]\nname = 'nope'\n", "unknown model 'nope'"),
        ("[data]\npath = 'x'\nheader = 'yes'\n", "data.header = 'yes' has the wrong type"),
        ("[data]\npath = 'x'\nformat = 'light'\n", "data.format = 'light' has the wrong type"),
        ("[data]\npath = 'x'\nmin_rating = true\n", "data.min_rating = True"),
        ("[data]\npath = 'x'\nmin_rating = nan\n", "data.min_rating = nan is not a finite"),
        ("[data]\npath = 'x'\ndataset = 'ml-100k'\n", "exactly one of 'path' and 'dataset'"),
        ("[data]\ndataset = 'ml-5m'\n", "'ml-5m' is not a dataset name"),
        ("[validation]\nmetric = 'ndcg10'\n", "'ndcg10' is not a metric"),
        ("[validation]\nmethod = 'temporal'\n", "validation.method = 'temporal'"),
        ("[model.settings]\nepochs = 0\n", "epochs must be at least 1"),
        ("[model.settings]\nepochs = '3'\n", "epochs = '3' has the wrong type"),
        ("[model.settings]\nepochs = 2.5\n", "epochs = 2.5 has the wrong type"),
        ("[model.settings]\nseed = 1.5\n", "seed = 1.5 has the wrong type"),
        ("model = 'mf'\n", "[model] must be a table"),
        ("[data\n", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        RunConfig.read(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_relative_data_path_is_read_from_the_config_folder(tmp_path, log_csv):
    folder = tmp_path / "runs"
    RunConfig(DataConfig(path="../data/log.csv")).write(folder / "run.toml")
    run = RunConfig.read(folder / "run.toml")
    assert run.data.path == str((tmp_path / "data" / "log.csv").resolve())
    assert RunConfig.read(folder).data == run.data  # a folder stands for its run.toml


def test_data_config_reads_with_its_options(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("a;x;5\na;y;2\nb;x;4\n")
    data = DataConfig(path=str(path), sep=";", header=False, min_rating=4.0).load().interactions
    assert len(data) == 2 and list(data.items.ids) == ["x"]  # rows rated under 4 dropped


def test_train_records_the_run_and_rerunning_it_is_exact(tmp_path, log_csv, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", str(log_csv), "--out", str(first), *QUICK, "--quiet"]) == 0
    meta = json.loads((first / "model.json").read_text())
    assert "run.toml" in meta["sha256"]
    run = RunConfig.read(first / "run.toml")
    assert run.data.path == str(log_csv.resolve())
    assert run.model.settings == {k: v for k, v in meta["config"].items() if v is not None}

    assert main(["train", "--config", str(first / "run.toml"), "--out", str(second)]) == 0
    a, b = dotrec.load_model(first), dotrec.load_model(second)
    users, items = (ids.ravel() for ids in np.meshgrid(a.users.ids, a.items.ids, indexing="ij"))
    assert np.array_equal(a.score(users, items), b.score(users, items))
    assert (second / "run.toml").read_text() == (first / "run.toml").read_text()


def test_run_toml_is_checked_on_load(tmp_path, log_csv):
    out = tmp_path / "model"
    assert main(["train", str(log_csv), "--out", str(out), *QUICK, "--quiet"]) == 0
    path = out / "run.toml"
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 3"))
    with pytest.raises(ModelFileError, match="run.toml does not match the checksum"):
        dotrec.load_model(out)
    path.unlink()
    with pytest.raises(ModelFileError, match="lists 'run.toml', which is not a file"):
        dotrec.load_model(out)


def test_folder_saved_from_python_has_no_run_toml_and_loads(tmp_path, log_csv):
    data = DataConfig(path=str(log_csv)).load().interactions
    model = dotrec.Popularity().fit(data)
    model.save(tmp_path / "pop")
    assert not (tmp_path / "pop" / "run.toml").exists()
    assert dotrec.load_model(tmp_path / "pop").recommend(data.users.ids[0], k=3).counts[0] == 3


def test_command_line_overrides_the_config(tmp_path, log_csv, capsys):
    config = tmp_path / "run.toml"
    RunConfig(
        DataConfig(path="missing.csv", min_rating=5.0),
        ModelConfig("mf", {"epochs": 3, "embedding_dim": 8, "num_threads": 1, "device": "cpu"}),
    ).write(config)
    out = tmp_path / "model"
    argv = ["train", str(log_csv), "--config", str(config), "--out", str(out), "--quiet"]
    assert main([*argv, "--epochs", "1", "--min-rating", "4"]) == 0
    run = RunConfig.read(out / "run.toml")
    assert run.data.path == str(log_csv.resolve())  # DATA beats data.path
    assert run.data.min_rating == 4.0  # the flag beats the file
    settings = run.model.settings
    assert settings["epochs"] == 1 and settings["embedding_dim"] == 8  # flag, then file
    assert settings["lr"] == dotrec.models.MFConfig().lr  # then the model's default
    meta = json.loads((out / "model.json").read_text())
    ratings = pd.read_csv(log_csv)["rating"]
    assert meta["config"]["epochs"] == 1 and meta["fit"]["n_rows"] == (ratings >= 4).sum()

    # another model drops the file's settings, saying so
    capsys.readouterr()
    assert main([*argv, "--model", "popularity"]) == 0
    assert "replaces the config's mf model" in capsys.readouterr().err
    assert RunConfig.read(out / "run.toml").model == ModelConfig("popularity", {})


@pytest.mark.parametrize(
    "setting", ["epochs=2.5", 'lr="0.1"', "seed=1.5", "embedding_dim=true", "num_threads=0.5"]
)
def test_set_of_the_wrong_type_is_a_clear_error(tmp_path, log_csv, capsys, setting):
    out = tmp_path / "model"
    code = main(["train", str(log_csv), "--out", str(out), "--set", setting, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert setting.split("=")[0] in err and "wrong type" in err
    assert not out.exists()


def test_train_without_data_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "run.toml"
    RunConfig(model=ModelConfig("popularity")).write(config)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "m")]) == 2
    assert "no data to train on" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "nope.toml"), "--out", "m"]) == 2
    assert "no such run config file" in capsys.readouterr().err
