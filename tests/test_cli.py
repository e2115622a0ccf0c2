"""The command line, run in-process through dotrec.cli.main on small files."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from dotrec.cli import main

TRAIN_ARGS = [
    "--epochs",
    "2",
    "--embedding-dim",
    "8",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    """30 users x 25 items, IDs with leading zeros, ratings and timestamps."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        for t, i in enumerate(rng.choice(25, size=8, replace=False)):
            rows.append((f"0{u:02d}", f"00{i}", int(rng.integers(1, 6)), 1000 + 10 * t + u))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    path = tmp_path_factory.mktemp("cli") / "log.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def split_dir(log_csv):
    out = log_csv.parent / "split"
    assert main(["split", str(log_csv), "--method", "random", "--out-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def model_dir(split_dir):
    out = split_dir.parent / "model"
    assert main(["train", str(split_dir / "train.csv"), "--out", str(out), *TRAIN_ARGS]) == 0
    return out


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.parametrize(
    "method, extra",
    [
        ("random", ["--test-fraction", "0.25", "--seed", "3"]),
        ("leave-last", ["--n", "2"]),
        ("temporal", ["--cutoff", "1050"]),
    ],
)
def test_split_writes_both_files(log_csv, tmp_path, capsys, method, extra):
    out = tmp_path / method
    assert main(["split", str(log_csv), "--method", method, "--out-dir", str(out), *extra]) == 0
    train, test = _read(out / "train.csv"), _read(out / "test.csv")
    original = _read(log_csv)
    assert list(train.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(train) + len(test) == len(original) == 240
    pairs = lambda f: set(zip(f["user_id"], f["item_id"], strict=True))  # noqa: E731
    assert not pairs(train) & pairs(test)
    assert pairs(train) | pairs(test) == pairs(original)
    assert train["user_id"].str.startswith("0").all()  # leading zeros kept
    if method == "random":
        assert len(test) == 60  # 25% of 8 rows = 2 per user
    elif method == "leave-last":
        assert len(test) == 60 and test.groupby("user_id").size().eq(2).all()
    else:
        assert (train["timestamp"].astype(int) < 1050).all()
        assert (test["timestamp"].astype(int) >= 1050).all()
    assert f"({len(test)} rows" in capsys.readouterr().out


def test_split_cutoff_takes_a_timestamp_or_an_iso_date(tmp_path, capsys):
    # Issue: --cutoff 1998-01-01 was refused as "invalid int value".
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu1,a,883612799\nu1,b,883612800\nu2,a,883700000\n")
    for cutoff in ("1998-01-01", "883612800"):
        out = tmp_path / cutoff
        argv = [
            "split",
            str(log),
            "--method",
            "temporal",
            "--cutoff",
            cutoff,
            "--out-dir",
            str(out),
        ]
        assert main(argv) == 0
        assert _read(out / "train.csv")["item_id"].tolist() == ["a"]
        assert sorted(_read(out / "test.csv")["timestamp"].astype(float)) == [883612800, 883700000]
    with pytest.raises(SystemExit):
        main(["split", str(log), "--method", "temporal", "--cutoff", "Jan 1", "--out-dir", "x"])
    err = capsys.readouterr().err
    assert "argument --cutoff: cutoff 'Jan 1' is neither a number nor an ISO 8601 date" in err


def test_train_writes_a_model(model_dir, capsys):
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "model.json",
        "run.toml",
        "vocab.json",
        "weights.safetensors",
    ]
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["config"]["epochs"] == 2 and meta["config"]["embedding_dim"] == 8


def test_evaluate_json(model_dir, split_dir, capsys):
    capsys.readouterr()
    code = main(
        ["evaluate", str(model_dir), str(split_dir / "test.csv"), "--k", "5", "10", "--json"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_users"] == 30
    assert set(result["metrics"]) >= {"ndcg@5", "ndcg@10", "precision@10", "coverage@10"}
    assert all(0.0 <= v <= 1.0 for v in result["metrics"].values())


def test_evaluate_table_and_lists(model_dir, split_dir, tmp_path, capsys):
    lists = tmp_path / "lists.csv"
    code = main(
        [
            "evaluate",
            str(model_dir),
            str(split_dir / "test.csv"),
            "--k",
            "3",
            "--lists-out",
            str(lists),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "users evaluated: 30" in out and "ndcg" in out
    frame = _read(lists)
    assert len(frame) == 90 and frame["user_id"].str.startswith("0").all()
    # scoring the written lists gives the same numbers as scoring the model
    assert main(["evaluate", str(lists), str(split_dir / "test.csv"), "--k", "3", "--json"]) == 0
    from_lists = json.loads(capsys.readouterr().out)["metrics"]
    assert (
        main(["evaluate", str(model_dir), str(split_dir / "test.csv"), "--k", "3", "--json"]) == 0
    )
    from_model = json.loads(capsys.readouterr().out)["metrics"]
    for name, value in from_lists.items():
        assert from_model[name] == pytest.approx(value), name


def test_evaluate_reads_lists_with_the_encoding_given(tmp_path, capsys):
    test = tmp_path / "test.csv"
    test.write_bytes("user_id,item_id\nu1,Été\nu2,i2\n".encode("latin-1"))
    lists = tmp_path / "lists.csv"
    lists.write_bytes("user_id,item_id,rank\nu1,Été,1\nu2,i9,1\n".encode("latin-1"))
    line = _one_line_error(capsys, ["evaluate", str(lists), str(test)])
    assert "test.csv" in line and "--encoding latin-1" in line
    argv = ["evaluate", str(lists), str(test), "--k", "1", "--json", "--encoding", "latin-1"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["hit_rate@1"] == 0.5


def test_report_reads_item_genres_with_the_encoding_given(tmp_path):
    import argparse

    from dotrec.cli.report import _genres

    items = tmp_path / "items.csv"
    items.write_bytes("item_id,title,genres\ni1,Été,Drama|Comédie\n".encode("latin-1"))
    args = argparse.Namespace(items=str(items), encoding="latin-1")
    assert _genres(args).to_dict() == {"i1": "Drama|Comédie"}


def test_recommend_csv(model_dir, split_dir, tmp_path, capsys):
    out = tmp_path / "recs.csv"
    assert (
        main(["recommend", str(model_dir), "--user", "007", "000", "--k", "4", "--out", str(out)])
        == 0
    )
    recs = _read(out)
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert recs["user_id"].tolist() == ["007"] * 4 + ["000"] * 4
    assert recs["rank"].tolist() == ["1", "2", "3", "4"] * 2
    assert recs["item_id"].str.startswith("00").all()
    train = _read(split_dir / "train.csv")
    seen = set(zip(train["user_id"], train["item_id"], strict=True))
    assert not seen & set(zip(recs["user_id"], recs["item_id"], strict=True))
    scores = recs["score"].astype(float).to_numpy().reshape(2, 4)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_recommend_to_stdout_all_users_and_fallback(model_dir, capsys):
    assert main(["recommend", str(model_dir), "--all-users", "--k", "2"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    assert frame["user_id"].nunique() == 30 and len(frame) == 60
    assert (
        main(["recommend", str(model_dir), "--user", "nobody", "--k", "2", "--fallback", "popular"])
        == 0
    )
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out), dtype=str)
    assert list(frame.columns) == ["user_id", "item_id", "rank", "score", "fallback"]
    assert frame["fallback"].tolist() == ["True", "True"]


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dotrec: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_bad_input_exits_2(log_csv, model_dir, tmp_path, capsys):
    line = _one_line_error(
        capsys, ["train", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m"), *TRAIN_ARGS]
    )
    assert "nope.csv: no such file" in line

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,rating\nu1,i1,4\nu2,i2,oops\n")
    line = _one_line_error(capsys, ["split", str(bad), "--out-dir", str(tmp_path / "s")])
    assert "line 3" in line and "'oops'" in line

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    line = _one_line_error(capsys, ["train", str(empty), "--out", str(tmp_path / "m"), *TRAIN_ARGS])
    assert "no interactions" in line

    line = _one_line_error(capsys, ["recommend", str(model_dir), "--user", "nobody"])
    assert "unknown user ID 'nobody'" in line

    line = _one_line_error(capsys, ["recommend", str(tmp_path / "no-model"), "--user", "000"])
    assert "no such model folder" in line

    line = _one_line_error(capsys, ["inspect", str(log_csv), "--encoding", "utf-99"])
    assert "encoding" in line and "'utf-99'" in line

    # MODEL as a CSV of lists: it must be one, with whole ranks.
    line = _one_line_error(capsys, ["evaluate", str(log_csv), str(log_csv)])
    assert "log.csv" in line and "'rank'" in line and "user_id, item_id, rank" in line
    lists = tmp_path / "lists.csv"
    lists.write_text("user_id,item_id,rank\n001,002,1\n001,003,two\n")
    line = _one_line_error(capsys, ["evaluate", str(lists), str(log_csv)])
    assert "lists.csv" in line and "line 3" in line and "'two'" in line

    no_time = tmp_path / "no_time.csv"
    no_time.write_text("user_id,item_id\nu1,i1\nu1,i2\n")
    line = _one_line_error(
        capsys, ["split", str(no_time), "--method", "leave-last", "--out-dir", str(tmp_path / "s")]
    )
    assert "timestamp" in line


def test_a_setting_out_of_range_exits_2_naming_it(split_dir, tmp_path, capsys):
    # a negative L2 penalty once trained a useless model without a word
    train, out = str(split_dir / "train.csv"), str(tmp_path / "m")
    line = _one_line_error(capsys, ["train", train, "--out", out, "--l2", "-1", *TRAIN_ARGS])
    assert "l2 must be non-negative, got -1.0" in line
    line = _one_line_error(capsys, ["train", train, "--out", out, "--set", "init_std=-1"])
    assert "init_std must be positive, got -1" in line
    assert not (tmp_path / "m").exists()


def test_threads_sets_the_fit_of_ease_and_is_refused_by_itemknn(split_dir, tmp_path, capsys):
    train, out = str(split_dir / "train.csv"), tmp_path / "ease"
    assert main(["train", train, "--out", str(out), "--model", "ease", "--threads", "1"]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["config"]["num_threads"] == 1 and meta["fit"]["num_threads"] == 1
    assert "num_threads = 1" in (out / "run.toml").read_text()
    argv = ["train", train, "--out", str(tmp_path / "knn"), "--model", "itemknn", "--threads", "2"]
    line = _one_line_error(capsys, argv)
    assert "--threads does not apply to the itemknn model" in line
    assert "num_threads" not in line


LIGHTGCN_TRAIN = "0 10 11 12\n1 11\n2 12 10\n3 10 11\n4 12\n"


def test_lightgcn_files_read_with_data_format(tmp_path, capsys):
    # Issue: inspect's separator error sent users to --sep, which failed on "too many fields".
    path = tmp_path / "train.txt"
    path.write_text(LIGHTGCN_TRAIN)
    for extra in ([], ["--sep", " "]):
        line = _one_line_error(capsys, ["inspect", str(path), *extra])
        assert "(command line: --data-format lightgcn)" in line
    assert main(["inspect", str(path), "--data-format", "lightgcn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 9

    out = tmp_path / "m"
    argv = ["train", str(path), "--data-format", "lightgcn", "--model", "popularity"]
    assert main([*argv, "--out", str(out)]) == 0
    assert 'format = "lightgcn"' in (out / "run.toml").read_text()
    assert main(["train", "--config", str(out / "run.toml"), "--out", str(tmp_path / "m2")]) == 0


def test_zip_archive_error_names_the_next_command(tmp_path, monkeypatch, capsys):
    import shlex
    import zipfile

    archive = tmp_path / "light_gcn_tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("light_gcn_tiny/train.txt", LIGHTGCN_TRAIN)
        zf.writestr("light_gcn_tiny/test.txt", "0 13\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = ["train", str(archive), "--model", "popularity", "--out", "m"]
    line = _one_line_error(capsys, argv)
    unzip = f"unzip {archive} light_gcn_tiny/train.txt"
    command = "dotrec train light_gcn_tiny/train.txt --model popularity --out m"
    command += " --data-format lightgcn"
    assert f"`{unzip}`" in line and f"Then run: {command}." in line

    # Doing as it says works.
    with zipfile.ZipFile(archive) as zf:
        zf.extract("light_gcn_tiny/train.txt", work)
    assert main(shlex.split(command)[1:]) == 0
    assert "trained popularity on 9 interactions" in capsys.readouterr().out


def test_output_paths_are_checked_first_naming_the_option(log_csv, model_dir, tmp_path, capsys):
    # Issue: "[Errno 21] Is a directory" and "[Errno 17] File exists", after the work.
    folder, file = tmp_path / "folder", tmp_path / "file.txt"
    folder.mkdir()
    file.write_text("")
    data = str(log_csv)
    cases = [
        (["recommend", str(model_dir), "--all-users", "--out", str(folder)], "--out", "recs.csv"),
        (["evaluate", str(model_dir), data, "--lists-out", str(folder)], "--lists-out", ""),
        (["compare", "popularity", "--data", data, "--output", str(folder)], "--output", ""),
        (["report", "popularity", "--data", data, "--out", str(folder)], "--out", "report.html"),
        (["tune", data, "--model", "ease", "--out", str(folder)], "--out", "best.toml"),
    ]
    for argv, option, example in cases:
        line = _one_line_error(capsys, argv)
        assert f"{option} {folder} is a folder; give a file name, such as {folder}" in line
        assert example in line
    line = _one_line_error(capsys, ["split", data, "--out-dir", str(file)])
    assert f"--out-dir {file} is a file, not a folder; give a folder" in line
    line = _one_line_error(capsys, ["train", data, "--out", str(file), *TRAIN_ARGS])
    assert f"--out {file} is a file, not a folder" in line
    line = _one_line_error(
        capsys, ["recommend", str(model_dir), "--user", "000", "--out", str(file / "r.csv")]
    )
    assert f"--out {file / 'r.csv'}: {file} is a file, so no folder can be made there" in line
    (folder / "notes.txt").write_text("mine")
    line = _one_line_error(capsys, ["train", data, "--out", str(folder), *TRAIN_ARGS])
    assert "holds other files and is not a dotrec model folder; not overwriting it" in line
    assert (folder / "notes.txt").read_text() == "mine"


def test_os_errors_read_as_path_and_reason(capsys, monkeypatch):
    from dotrec.cli import recommend

    def denied(args):
        raise PermissionError(13, "Permission denied", "/root/recs.csv")

    monkeypatch.setattr(recommend, "run", denied)
    line = _one_line_error(capsys, ["recommend", "m", "--user", "u1"])
    assert line == "dotrec: error: /root/recs.csv: permission denied"


@pytest.mark.parametrize("command", ["inspect", "recommend", "explain"])
def test_closed_stdout_ends_quietly(command, log_csv, model_dir):
    # Issue: `dotrec explain ... --json | head` said "dotrec: error: [Errno 32] Broken pipe".
    import os
    import subprocess
    import sys

    argv = {
        "inspect": ["inspect", str(log_csv), "--json"],
        "recommend": ["recommend", str(model_dir), "--all-users"],
        "explain": ["explain", str(model_dir), "--user", "000", "--item", "001", "--json"],
    }[command]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dotrec", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_quickstart_offline_falls_back_to_synthetic(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("DOTREC_DATA", str(empty))
    monkeypatch.setenv("DOTREC_OFFLINE", "1")
    assert main(["quickstart", "--epochs", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "synthetic dataset" in captured.err
    assert str(empty) in captured.err
    assert captured.out.startswith("synthetic: ")
    assert "full-ranking evaluation over" in captured.out
    assert "ndcg" in captured.out
    assert list(empty.iterdir()) == []  # nothing was downloaded


@pytest.mark.parametrize("where", ["missing", "file"])
def test_quickstart_with_a_data_dir_that_is_no_folder_uses_synthetic_data(
    tmp_path, monkeypatch, capsys, where
):
    # README's run command sets DOTREC_DATA to ../shared/data, which a lone checkout lacks.
    from dotrec.data import _datasets

    root = tmp_path / "shared" / "data"
    if where == "file":
        root.parent.mkdir()
        root.write_text("")
    monkeypatch.setenv("DOTREC_DATA", str(root))
    monkeypatch.delenv("DOTREC_OFFLINE", raising=False)
    monkeypatch.setattr(_datasets, "_open_url", _no_network_expected)
    assert main(["quickstart", "--epochs", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    reason = "does not exist" if where == "missing" else "is a file, not a folder"
    assert f"the data directory {root} (from DOTREC_DATA) {reason}" in captured.err
    assert "synthetic dataset" in captured.err
    assert captured.out.startswith("synthetic: ")
    assert root.exists() == (where == "file")  # never created


def test_quickstart_falls_back_when_the_download_fails(tmp_path, monkeypatch, capsys):
    from dotrec.data import _datasets

    def unreachable(url, timeout):
        raise OSError("network is unreachable")

    monkeypatch.setenv("DOTREC_DATA", str(tmp_path))
    monkeypatch.delenv("DOTREC_OFFLINE", raising=False)
    monkeypatch.setattr(_datasets, "_open_url", unreachable)
    assert main(["quickstart", "--epochs", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "downloading it failed (network is unreachable)" in captured.err
    assert "synthetic dataset" in captured.err and captured.out.startswith("synthetic: ")
    assert list(tmp_path.iterdir()) == []


def _no_network_expected(url, timeout):
    raise AssertionError(f"quickstart tried to download {url}")


def test_every_command_help_renders_cleanly():
    """Descriptions are printed as written (no %-formatting), help strings are formatted."""
    from dotrec.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in commands.choices.items():
        text = sub.format_help()
        assert "%%" not in text and "%(" not in text, name


# Flags that error messages recommend ("command line: --encoding latin-1"), by the
# commands whose errors can name them: each command must have every one.
_DATA_HINTS = [
    "--data-format",
    "--sep",
    "--header",
    "--encoding",
    "--drop-invalid",
    "--min-rating",
    "--user-col",
    "--item-col",
    "--rating-col",
    "--timestamp-col",
    "--label-col",
]
_RUN_HINTS = ["--on-overlap", "--resamples", "--confidence"]
_HINTS = {
    "inspect": _DATA_HINTS,
    "split": _DATA_HINTS,
    "train": [*_DATA_HINTS, "--n-negatives", "--threads", "--out"],
    "tune": [*_DATA_HINTS, "--set", "--threads", "--trials", "--timeout"],
    "evaluate": [*_DATA_HINTS, "--on-overlap"],
    "compare": [*_DATA_HINTS, *_RUN_HINTS, "--sampled"],
    "report": [*_DATA_HINTS, *_RUN_HINTS, "--max-pairs", "--embedding"],
    "calibrate": [*_DATA_HINTS, "--max-pairs"],
    "recommend": ["--fallback"],
    "serve": ["--encoding", "--admin-token"],
    "quickstart": ["--out"],
}


@pytest.mark.parametrize("command", sorted(_HINTS))
def test_flags_named_in_errors_exist_on_the_commands(command):
    from dotrec.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    flags = set(commands.choices[command]._option_string_actions)
    assert sorted(set(_HINTS[command]) - flags) == []


def _subparsers():
    from dotrec.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return commands.choices


def test_no_option_takes_a_plain_float():
    # float() takes "nan" and "inf"; every number option uses finite_float instead.
    plain = [
        f"{name} {action.option_strings[0]}"
        for name, sub in _subparsers().items()
        for action in sub._actions
        if action.type is float
    ]
    assert plain == []


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "d.csv", "--min-rating"],
        ["split", "d.csv", "--out-dir", "s", "--test-fraction"],
        ["train", "d.csv", "--out", "m", "--lr"],
        ["train", "d.csv", "--out", "m", "--l2"],
        ["tune", "d.csv", "--timeout"],
        ["tune", "d.csv", "--validation-fraction"],
        ["compare", "mf", "--data", "d.csv", "--confidence"],
        ["report", "mf", "--data", "d.csv", "--out", "r.html", "--validation-fraction"],
        ["calibrate", "m", "--data", "d.csv", "--report-fraction"],
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf", "Infinity"])
def test_non_finite_numbers_are_refused_when_parsing(argv, value, capsys):
    # Issue: --min-rating nan was taken, then "0 interactions remain after keeping ratings >= nan".
    with pytest.raises(SystemExit) as info:
        main([*argv, value])
    assert info.value.code == 2
    assert (
        f"argument {argv[-1]}: expected a finite number, got {value!r}" in capsys.readouterr().err
    )


@pytest.mark.parametrize("setting", ["lr=NaN", "lr=Infinity", "lr=1e999", "dims=[1, NaN]"])
def test_set_refuses_non_finite_numbers(setting, log_csv, tmp_path, capsys):
    line = _one_line_error(
        capsys, ["train", str(log_csv), "--out", str(tmp_path), "--set", setting]
    )
    assert f"--set {setting}: expected a finite number" in line


def test_recommend_says_why_a_list_is_short(tmp_path, capsys):
    # u1 has every item; u3 has one of four, so 3 of --k 5 are left; u2 gets --k 2 in full
    log = tmp_path / "small.csv"
    log.write_text("user_id,item_id\nu1,i1\nu1,i2\nu1,i3\nu1,i4\nu2,i1\nu3,i3\n")
    out = tmp_path / "m"
    assert main(["train", str(log), "--out", str(out), "--model", "popularity", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["recommend", str(out), "--user", "u1", "u3", "--k", "5"]) == 0
    captured = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(captured.out), dtype=str)
    assert frame["user_id"].tolist() == ["u3"] * 3
    assert sorted(frame["item_id"]) == ["i1", "i2", "i4"]
    assert "1 user(s) got no items" in captured.err and "(u1)" in captured.err
    assert "--include-seen" in captured.err
    assert "1 user(s) got fewer than 5 items" in captured.err and "(u3)" in captured.err
    assert main(["recommend", str(out), "--user", "u2", "--k", "2"]) == 0
    assert capsys.readouterr().err == ""
    line = _one_line_error(capsys, ["recommend", str(out), "--user", "u2", "--k", "0"])
    assert "--k must be at least 1, got 0" in line


@pytest.mark.parametrize(
    "extra, option",
    [
        (["--method", "random", "--cutoff", "1998-01-01"], "--cutoff applies to --method temporal"),
        (["--method", "temporal", "--n", "3"], "--n applies to --method leave-last"),
        (["--method", "leave-last", "--test-fraction", "0.1"], "--test-fraction applies to"),
    ],
)
def test_split_options_of_another_method_are_refused(log_csv, tmp_path, capsys, extra, option):
    # a --cutoff given with --method random was once ignored without a word
    argv = ["split", str(log_csv), *extra, "--out-dir", str(tmp_path / "s")]
    assert option in _one_line_error(capsys, argv)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("command", ["train", "tune", "serve"])
def test_threads_below_one_is_refused_by_its_flag(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "x", "--threads", "0"])
    assert stop.value.code == 2
    assert "argument --threads: expected at least 1 thread, got 0" in capsys.readouterr().err
