"""The HTML report: its measures, its page, and the `dotrec report` command on tiny data."""

from __future__ import annotations

import base64
import html
import io
import re
import struct
import sys
import time

import numpy as np
import pandas as pd
import pytest

import dotrec
from dotrec.calibration import (
    _sigmoid,
    _split_users,
    calibration_pairs,
    expected_calibration_error,
    reliability_curve,
)
from dotrec.cli import main
from dotrec.comparison import compare_models
from dotrec.models import ALS, MatrixFactorization, Popularity
from dotrec.report import make_report, uses_validation
from dotrec.report._measures import _pca, exposure, first_genres, reliability, training_curves
from dotrec.split import random_split

pytest.importorskip("matplotlib")

PLOTS = ["training", "metric-at-k", "popularity", "reliability", "embeddings"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def dataset():
    return dotrec.synthetic(n_users=60, n_items=50, n_genres=3, mean_per_user=15, seed=0)


@pytest.fixture(scope="module")
def fitted(dataset):
    train_all, test = random_split(dataset.interactions, 0.2, seed=0)
    train, validation = random_split(train_all, 0.1, seed=0)
    models = {
        "pop": Popularity().fit(train),
        "mf": MatrixFactorization(epochs=6, embedding_dim=8, eval_every=1, device="cpu").fit(
            train, validation
        ),
        "als": ALS(factors=8, iterations=3, device="cpu").fit(train),
    }
    return models, test


@pytest.fixture(scope="module")
def comparison(fitted):
    models, test = fitted
    return compare_models(models, test, [1, 5], ["recall", "ndcg"], n_resamples=50, seed=3)


@pytest.fixture(scope="module")
def page(fitted, comparison, dataset):
    models, test = fitted
    report = make_report(
        models, test, comparison, item_genres=dataset.items["genres"], seed=0, summary=["tiny"]
    )
    return report.to_html()


def _section(page: str, id: str) -> str:
    match = re.search(rf'<section id="{id}">(.*?)</section>', page, re.S)
    assert match, f"no section {id}"
    return match.group(1)


def _png(section: str) -> bytes:
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', section)
    assert len(images) == 1
    return base64.b64decode(images[0], validate=True)


# --- the page ----------------------------------------------------------------------


def test_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page, re.I)
    assert links, "the page has its images and in-page links"
    assert all(link.startswith(("data:image/png;base64,", "#")) for link in links)
    assert not re.search(r"https?://|<script|<link|@import|url\(", page, re.I)


@pytest.mark.parametrize("id", PLOTS)
def test_every_plot_is_a_decodable_png_with_content(page, id):
    import matplotlib.image

    png = _png(_section(page, id))
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 400 and height >= 300
    pixels = matplotlib.image.imread(io.BytesIO(png))
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05  # drawn on, not a blank canvas


def test_table_matches_compare_models(page, fitted):
    models, test = fitted
    expected = compare_models(models, test, [1, 5], ["recall", "ndcg"], n_resamples=50, seed=3)
    table = _section(page, "comparison")
    rows = [
        [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1])
    ]
    assert len(rows) == len(expected.rows)
    metric = None
    for cells, row in zip(rows, expected.rows.itertuples(), strict=True):
        metric = cells[0] or metric
        assert (metric, cells[1]) == (row.metric, row.model)
        assert float(cells[2]) == pytest.approx(row.value, abs=5e-5)
        if not np.isnan(row.ci_low):
            low, high = (float(x) for x in cells[3].strip("[]").split(","))
            assert (low, high) == pytest.approx((row.ci_low, row.ci_high), abs=5e-5)
    assert "Wilcoxon" in table  # the footer says what the columns mean


def test_training_section_says_which_models_have_no_curve(page):
    text = html.unescape(_section(page, "training"))
    assert "pop: no training curve; popularity is not trained in epochs" in text
    assert "mf: no training curve" not in text and "als: no training curve" not in text
    assert "als: no validation metric; als does not use validation data." in text


def test_reliability_and_map_sections_explain_themselves(page):
    reliability_text = html.unescape(_section(page, "reliability"))
    assert "Uncalibrated scores are not probabilities" in reliability_text
    assert "ECE" in reliability_text
    maps = html.unescape(_section(page, "embeddings"))
    assert "coloured by each item's first genre" in maps
    assert "pop: no item map; popularity has no item embeddings" in maps


def test_make_report_refuses_a_comparison_of_other_models(fitted, comparison):
    models, test = fitted
    with pytest.raises(ValueError, match="the comparison is of"):
        make_report({"pop": models["pop"]}, test, comparison)


def test_report_writes_the_file(fitted, comparison, tmp_path):
    models, test = fitted
    report = make_report(models, test, comparison)
    assert report.section("reliability").image[:8] == PNG_MAGIC
    with pytest.raises(KeyError, match="no section 'nope'"):
        report.section("nope")
    out = report.write(tmp_path / "sub" / "r.html")
    assert out.read_text(encoding="utf-8").count("data:image/png;base64,") == len(PLOTS)
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind
    assert "not coloured: no item genres" in out.read_text(encoding="utf-8")


# --- the measures --------------------------------------------------------------------


def test_training_curves_come_from_the_fit_log(fitted):
    models, _ = fitted
    curves, without = training_curves(models)
    assert [c.label for c in curves] == ["mf", "als"] and len(without) == 1
    mf, als = curves
    record = models["mf"].fit_info["validation"]
    assert mf.loss == models["mf"].fit_info["epoch_loss"] and mf.metric == "ndcg@10"
    assert mf.values == record["values"] and mf.best_epoch == record["best_epoch"]
    assert als.metric is None and "does not use validation data" in als.note
    assert uses_validation(models["mf"]) and not uses_validation(models["als"])


def test_exposure_counts_each_listed_item(fitted, comparison):
    models, _ = fitted
    top = comparison.top_items["mf"]
    found = exposure("mf", models["mf"], top, 5)
    assert found.recommended.sum() == (top[:, :5] >= 0).sum()
    item = int(top[0, 0])
    assert found.recommended[item] == (top[:, :5] == item).sum()
    assert np.array_equal(found.train_counts, models["mf"].item_counts)


def test_reliability_before_is_sigmoid_of_the_score(fitted):
    models, test = fitted
    found = reliability("mf", models["mf"], test, n_bins=5, seed=0)
    before, after = found.curves
    assert before.name == "sigmoid(score)" and after.name == "Platt scaling"

    # measured on the 30% of the users held out of the Platt fit
    pairs = calibration_pairs(models["mf"], test, seed=0)
    _, measured, in_sample = _split_users(pairs, 0.3, 0)
    assert not in_sample and found.n_pairs == len(measured) < len(pairs)
    p = _sigmoid(measured.scores)
    expected = reliability_curve(p, measured.labels, 5, "mass", measured.weights)
    for got, want in zip((before.predicted, before.observed, before.weight), expected, strict=True):
        assert np.allclose(got, want)
    assert before.ece == pytest.approx(
        np.sum(before.weight * np.abs(before.observed - before.predicted))
    )
    assert before.ece == pytest.approx(
        expected_calibration_error(p, measured.labels, 5, "mass", measured.weights)
    )
    assert after.ece < before.ece  # sampled-negative logits overstate the probability
    assert [c.name for c in reliability("pop", models["pop"], test).curves] == ["Platt scaling"]


def test_reliability_uses_a_calibrator_the_model_has(fitted):
    models, test = fitted
    model = models["als"]
    dotrec.calibration.calibrate(model, test, "isotonic")
    try:
        found = reliability("als", model, test)
        assert [c.name for c in found.curves] == ["its isotonic calibrator"]
        assert found.n_pairs == len(calibration_pairs(model, test))  # every user, no split
    finally:
        model.calibrator = None


def test_pca_finds_the_line_the_points_lie_on():
    rng = np.random.default_rng(0)
    t = rng.normal(size=200)
    vectors = np.outer(t, [3.0, 4.0, 0.0]) + 1.0
    coords, axes = _pca(vectors, 0)
    assert np.allclose(np.abs(coords[:, 0]), np.abs(5 * (t - t.mean())))
    assert np.allclose(coords[:, 1], 0, atol=1e-9)
    assert axes == ("PC1 (100% of variance)", "PC2 (0% of variance)")


def test_first_genre_of_each_item(fitted):
    model = fitted[0]["mf"]
    ids = model.items.ids
    genres = pd.Series(["Drama|Comedy", "", "Horror"], index=ids[:3])
    found = first_genres(model, genres)
    assert list(found[:3]) == ["Drama", "", "Horror"] and set(found[3:]) == {""}


# --- the command ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    dataset.interactions.to_frame().to_csv(folder / "log.csv", index=False)
    dataset.items.reset_index().to_csv(folder / "items.csv", index=False)
    config = folder / "tiny-mf.toml"
    config.write_text(
        '[model]\nname = "mf"\n\n[model.settings]\nepochs = 4\nembedding_dim = 4\n'
        'eval_every = 1\nnum_threads = 1\ndevice = "cpu"\n'
    )
    return folder


FAST = ["--k", "1", "5", "--resamples", "50", "--quiet"]


def test_cli_writes_the_report(files, capsys):
    out = files / "out" / "report.html"
    argv = ["report", "popularity", str(files / "tiny-mf.toml"), "--data", str(files / "log.csv")]
    assert main([*argv, "--items", str(files / "items.csv"), "--out", str(out), *FAST]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    for id in PLOTS:
        assert _png(_section(page, id))[:8] == PNG_MAGIC
    assert "coloured by each item's first genre" in html.unescape(page)
    summary = html.unescape(page.split("<nav>")[0])
    assert "Validation: " in summary and "tiny-mf: MatrixFactorization, trained in" in summary


def test_cli_without_validation_matches_compare(files, capsys):
    out = files / "plain.html"
    data = ["--data", str(files / "log.csv")]
    argv = ["report", "popularity", str(files / "tiny-mf.toml"), *data, "--out", str(out)]
    assert main([*argv, "--validation-fraction", "0", *FAST]) == 0
    compare = ["compare", "popularity", str(files / "tiny-mf.toml"), *data, "--format", "csv"]
    capsys.readouterr()
    assert main([*compare, *FAST]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))
    page = html.unescape(out.read_text(encoding="utf-8"))
    value = rows.set_index(["metric", "model"]).loc[("ndcg@5", "tiny-mf"), "value"]
    assert f"<td>tiny-mf</td><td>{value:.4f}</td>" in page
    assert "Validation: " not in page and "trained without validation data" in page


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("dotrec: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_cli_bad_input_exits_2(files, tmp_path, capsys):
    data, out = ["--data", str(files / "log.csv")], ["--out", str(tmp_path / "r.html")]
    line = _error(capsys, ["report", "popularity", "nosuchmodel", *data, *out])
    assert "nosuchmodel: no such model folder or run config file, and not a model name" in line

    line = _error(capsys, ["report", "popularity", "--data", str(tmp_path / "nope.csv"), *out])
    assert "nope.csv: no such file" in line

    line = _error(capsys, ["report", "mf", *data, *out, "--validation-fraction", "1"])
    assert "--validation-fraction must be in [0, 1), got 1.0" in line

    line = _error(capsys, ["report", "mf", *data, *out, "--items", str(tmp_path / "no.csv")])
    assert "no.csv: no such file" in line
    assert not (tmp_path / "r.html").exists()


def test_cli_without_matplotlib_says_how_to_install_it(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    started = time.perf_counter()
    argv = ["report", "mf", "--data", str(files / "log.csv"), "--out", str(tmp_path / "r.html")]
    line = _error(capsys, argv)
    assert "pip install 'dotrec[report]'" in line and "matplotlib" in line
    assert time.perf_counter() - started < 5  # before training anything


def test_cli_tsne_without_scikit_learn_says_so(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    argv = ["report", "popularity", "--data", str(files / "log.csv"), "--embedding", "tsne"]
    line = _error(capsys, [*argv, "--out", str(tmp_path / "r.html")])
    assert "t-SNE item map needs scikit-learn" in line and "--embedding pca" in line


@pytest.mark.slow
@pytest.mark.data
def test_ml100k_report(data_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DOTREC_DATA", str(data_root))
    out = tmp_path / "ml100k.html"
    argv = ["report", "popularity", "mf", "als", "--data", "ml-100k", "--out", str(out)]
    assert main([*argv, "--resamples", "100", "--max-pairs", "300000", "--quiet"]) == 0
    page = out.read_text(encoding="utf-8")
    for id in PLOTS:
        assert _png(_section(page, id))[:8] == PNG_MAGIC
    text = html.unescape(page)
    assert "coloured by each item's first genre" in text
    assert "mf: MatrixFactorization, trained in" in text
    assert "mf: before: sigmoid of the raw score" in text
    assert "popularity: no training curve" in text and "als: no validation metric" in text
