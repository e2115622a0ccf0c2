"""dotrec.calibration and `dotrec calibrate`: PAV, Platt, ECE and the held-out pairs."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from dotrec import DotrecError, Interactions, ModelFileError, load_model, random_split, synthetic
from dotrec.artifact import CALIBRATION_FILE, replace_files
from dotrec.calibration import (
    IsotonicCalibrator,
    PlattCalibrator,
    calibrate,
    calibration_pairs,
    calibrator_from_dict,
    expected_calibration_error,
    fit_isotonic,
    fit_platt,
    log_loss,
    pav,
)
from dotrec.cli import main
from dotrec.models import ALS, MatrixFactorization

MF = {"embedding_dim": 8, "epochs": 5, "device": "cpu"}

# --- pool adjacent violators --------------------------------------------------------


def test_pav_hand_worked():
    assert pav(np.array([1.0, 3.0, 2.0, 4.0])).tolist() == [1.0, 2.5, 2.5, 4.0]
    # 3, 2, 1 pool into their mean; weights 1, 1, 2 make the pooled value (3 + 2 + 2) / 4
    assert pav(np.array([3.0, 2.0, 1.0])).tolist() == [2.0, 2.0, 2.0]
    assert pav(np.array([3.0, 2.0, 1.0]), np.array([1.0, 1.0, 2.0])).tolist() == [1.75] * 3
    assert pav(np.array([0.0, 1.0, 0.0, 0.0, 1.0])).tolist() == [0, 1 / 3, 1 / 3, 1 / 3, 1.0]
    assert pav(np.array([])).tolist() == []


def _isotonic_by_max_min(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """f_i = max over j <= i of min over k >= i of the weighted mean of y[j..k]."""
    n = len(y)
    mean = lambda j, k: np.sum(w[j : k + 1] * y[j : k + 1]) / np.sum(w[j : k + 1])  # noqa: E731
    return np.array(
        [max(min(mean(j, k) for k in range(i, n)) for j in range(i + 1)) for i in range(n)]
    )


def test_pav_matches_the_max_min_formula(rng):
    for _ in range(30):
        n = int(rng.integers(1, 12))
        y = rng.integers(0, 4, size=n).astype(float)  # small integers: many ties
        w = rng.uniform(0.5, 3.0, size=n)
        assert pav(y, w) == pytest.approx(_isotonic_by_max_min(y, w))


def test_pav_stack_finish_matches_and_is_linear(rng, monkeypatch):
    from dotrec.calibration import _fitting

    monkeypatch.setattr(_fitting, "_VECTOR_ROUNDS", 0)  # the stack alone
    for _ in range(30):
        n = int(rng.integers(1, 12))
        y, w = rng.integers(0, 4, size=n).astype(float), rng.uniform(0.5, 3.0, size=n)
        assert pav(y, w) == pytest.approx(_isotonic_by_max_min(y, w))
    monkeypatch.undo()
    # one violator per round for the vectorised rounds: n, 1, 2, ..., n - 1
    n = 100_000
    y = np.concatenate([[float(n)], np.arange(1.0, n)])
    fitted = pav(y)
    assert np.all(np.diff(fitted) >= 0) and fitted.sum() == pytest.approx(y.sum())


def test_pav_against_sklearn(rng):
    isotonic = pytest.importorskip("sklearn.isotonic")
    y, w = rng.normal(size=200), rng.uniform(0.1, 2, size=200)
    expected = isotonic.IsotonicRegression().fit_transform(np.arange(200), y, sample_weight=w)
    assert pav(y, w) == pytest.approx(expected)


def test_isotonic_calibrator_pools_tied_scores_and_steps():
    scores = np.array([0.0, 1.0, 1.0, 2.0, 3.0])
    labels = np.array([0, 1, 0, 0, 1])
    cal = fit_isotonic(scores, labels)
    # tied scores 1, 1 pool to 0.5 first; then 0.5 > 0 (score 2) pools to 1/3
    assert cal.thresholds.tolist() == [0.0, 1.0, 3.0]
    assert cal.values == pytest.approx([0.0, 1 / 3, 1.0])
    assert cal.transform(np.array([-1.0, 0.5, 1.0, 2.5, 9.0])) == pytest.approx(
        [0.0, 0.0, 1 / 3, 1 / 3, 1.0]
    )
    # isotonic regression keeps the (weighted) mean of the labels
    w = np.array([1.0, 2.0, 1.0, 3.0, 1.0])
    cal = fit_isotonic(scores, labels, w)
    assert np.sum(w * cal.transform(scores)) == pytest.approx(np.sum(w * labels))


# --- Platt scaling ---------------------------------------------------------------------


def _platt_by_scipy(s, y, w, smoothing):
    pos, neg = w[y == 1].sum(), w[y == 0].sum()
    t = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2)) if smoothing else y

    def loss(theta):
        z = theta[0] * s + theta[1]
        return np.sum(w * (np.logaddexp(0, z) - t * z))

    return minimize(loss, np.zeros(2), method="BFGS", options={"gtol": 1e-10}).x


@pytest.mark.parametrize("smoothing", [False, True])
def test_platt_matches_scipy(rng, smoothing):
    s = rng.normal(2.0, 3.0, size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.7 * s - 1.5)))).astype(float)
    w = rng.uniform(0.5, 2.0, size=400)
    cal = fit_platt(s, y, w, smoothing=smoothing)
    a, b = _platt_by_scipy(s, y, w, smoothing)
    assert (cal.a, cal.b) == pytest.approx((a, b), abs=1e-4)
    assert cal.transform(np.array([0.0]))[0] == pytest.approx(1 / (1 + math.exp(-b)), abs=1e-4)


def test_platt_against_sklearn(rng):
    linear = pytest.importorskip("sklearn.linear_model")
    s = rng.normal(size=300)
    y = (rng.random(300) < 1 / (1 + np.exp(-2 * s))).astype(int)
    model = linear.LogisticRegression(C=1e10, tol=1e-10).fit(s[:, None], y)
    cal = fit_platt(s, y, smoothing=False)
    assert (cal.a, cal.b) == pytest.approx((model.coef_[0, 0], model.intercept_[0]), abs=1e-4)


def test_platt_stays_finite_on_separable_scores():
    s, y = np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0, 0, 1, 1])
    cal = fit_platt(s, y)  # Platt's targets (1 + 1) / (2 + 2) and 1 / (2 + 2)
    assert math.isfinite(cal.a) and cal.a > 0
    assert cal.transform(np.array([2.0]))[0] < 1


def test_calibrators_round_trip_through_json():
    for cal in (PlattCalibrator(1.5, -2.0, {"k": 1}), IsotonicCalibrator([0, 1], [0.1, 0.4])):
        back = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
        assert type(back) is type(cal) and back.to_dict() == cal.to_dict()
    with pytest.raises(ValueError, match="unknown calibration method 'magic'"):
        calibrator_from_dict({"method": "magic"})
    with pytest.raises(ValueError, match="lacks a field"):
        calibrator_from_dict({"method": "platt", "a": 1.0})
    with pytest.raises(ValueError, match="must increase"):
        IsotonicCalibrator([1.0, 0.0], [0.1, 0.2])


# --- ECE and log loss -------------------------------------------------------------------------


def test_ece_hand_worked():
    p, y = np.array([0.1, 0.3, 0.6, 0.8]), np.array([0, 1, 1, 1])
    # two bins {0.1, 0.3}, {0.6, 0.8}: |1 - 0.4| / 4 + |2 - 1.4| / 4
    assert expected_calibration_error(p, y, 2, "width") == pytest.approx(0.3)
    assert expected_calibration_error(p, y, 2, "mass") == pytest.approx(0.3)
    assert expected_calibration_error(p, y, 1, "width") == pytest.approx(abs(3 - 1.8) / 4)
    # equal mass keeps the three 0.2s together: bins {0.2 x 3}, {0.9}
    p, y = np.array([0.2, 0.9, 0.2, 0.2]), np.array([0, 1, 1, 0])
    assert expected_calibration_error(p, y, 2, "mass") == pytest.approx((0.4 + 0.1) / 4)
    # weights: one bin, label mass 1 against probability mass 3 * 0.1 + 0.5
    p, y, w = np.array([0.1, 0.5]), np.array([0, 1]), np.array([3.0, 1.0])
    assert expected_calibration_error(p, y, 1, "mass", w) == pytest.approx(0.2 / 4)
    with pytest.raises(ValueError, match="binning"):
        expected_calibration_error(p, y, 2, "quantile")


def test_log_loss_hand_worked():
    assert log_loss(np.array([0.8, 0.4]), np.array([1, 0])) == pytest.approx(
        -(math.log(0.8) + math.log(0.6)) / 2
    )
    assert math.isfinite(log_loss(np.array([0.0]), np.array([1])))  # clipped


# --- held-out pairs and calibrate ----------------------------------------------------------


@pytest.fixture(scope="module")
def split():
    data = synthetic(n_users=80, n_items=60, mean_per_user=12, seed=1).interactions
    return random_split(data, 0.3, seed=0)


@pytest.fixture(scope="module")
def mf(split):
    return MatrixFactorization(**MF).fit(split[0])


def test_pairs_hold_every_candidate_item(mf, split):
    train, test = split
    pairs = calibration_pairs(mf, test)
    n_seen = np.diff(mf.seen.indptr)
    users = np.unique(pairs.user_idx)
    assert len(pairs) == sum(mf.seen.shape[1] - n_seen[u] for u in users)
    known = test.reindex(mf.users, mf.items)[0]
    notes = pairs.notes
    assert pairs.labels.sum() == len(known)
    assert len(known) == notes["heldout_positive_rows"] - notes["unknown_user_or_item"]
    assert np.all(pairs.weights == 1)


def test_drawn_negatives_are_weighted_to_the_true_count(mf, split):
    _, test = split
    every = calibration_pairs(mf, test)
    drawn = calibration_pairs(mf, test, negatives=2, seed=5)
    assert drawn.labels.sum() == every.labels.sum()
    for user in np.unique(every.user_idx)[:10]:
        negative_all = np.sum((every.user_idx == user) & (every.labels == 0))
        mine = (drawn.user_idx == user) & (drawn.labels == 0)
        assert mine.sum() <= 2 * every.labels[every.user_idx == user].sum()
        assert drawn.weights[mine].sum() == pytest.approx(negative_all)


def test_cap_samples_users(mf, split):
    pairs = calibration_pairs(mf, split[1], max_pairs=500)
    assert len(pairs) <= 500 and pairs.notes["users_left_out_by_cap"] > 0


def test_calibrate_attaches_a_measured_calibrator(split, tmp_path):
    train, test = split
    model = MatrixFactorization(**MF).fit(train)
    with pytest.raises(DotrecError, match="no calibrator .* dotrec calibrate MODEL_DIR"):
        model.score("user1", "item1", kind="probability")
    report = calibrate(model, test, "platt")
    assert model.calibrator is report.calibrator
    assert report.before == "sigmoid(score)" and not report.in_sample
    assert report.fit_users + report.report_users == report.notes["users"]
    assert report.ece_after["mass"] < report.ece_before["mass"]
    assert report.log_loss_after < report.log_loss_before

    users, items = ["user1", "user2", "user3"], ["item1", "item5", "item7"]
    raw = model.score(users, items)
    prob = model.score(users, items, kind="probability")
    a, b = report.calibrator.a, report.calibrator.b
    assert prob == pytest.approx(1 / (1 + np.exp(-(a * raw + b))))
    assert model.score(users, items, kind="logit") == pytest.approx(np.log(prob / (1 - prob)))
    with pytest.raises(ValueError, match="kind must be"):
        model.score("user1", "item1", kind="odds")

    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.calibrator.to_dict() == model.calibrator.to_dict()
    assert back.score(users, items, kind="probability") == pytest.approx(prob)
    model.fit(train)
    assert model.calibrator is None  # new scores, old calibrator dropped


def test_isotonic_and_a_model_without_before(split):
    train, test = split
    model = ALS(factors=4, iterations=2, device="cpu").fit(train)
    report = calibrate(model, test, "isotonic", report_fraction=0.0)
    assert report.before is None and report.ece_before is None and report.in_sample
    assert "no 'before'" in report.before_note
    p = model.score(["user1", "user2"], ["item3", "item4"], kind="probability")
    assert np.all((p >= 0) & (p <= 1))


def test_calibrating_on_the_training_data_is_refused(mf, split):
    with pytest.raises(ValueError, match="are pairs it trained on"):
        calibrate(mf, split[0])


def test_held_out_data_the_model_cannot_score_is_refused(mf, split):
    # Every row has a user or an item the model never saw: nothing to calibrate on.
    strangers = Interactions.from_ids(["nobody", mf.users.ids[0]], [mf.items.ids[0], "no-item"])
    with pytest.raises(ValueError, match="2 have a user or item the model does not know"):
        calibration_pairs(mf, strangers)


def test_held_out_data_must_be_interactions(mf):
    with pytest.raises(TypeError, match="takes an Interactions"):
        calibration_pairs(mf, "test.csv")


@pytest.mark.parametrize("max_pairs", [0, -5])
def test_cap_must_be_positive(mf, split, max_pairs):
    with pytest.raises(ValueError, match="max_pairs"):
        calibration_pairs(mf, split[1], max_pairs=max_pairs)


# --- the model folder and the command ----------------------------------------------------------


@pytest.fixture(scope="module")
def folders(split, tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    train, test = split
    train.to_frame().to_csv(root / "train.csv", index=False)
    test.to_frame().to_csv(root / "test.csv", index=False)
    assert main(["train", str(root / "train.csv"), "--out", str(root / "mf"), "--quiet",
                 "--epochs", "5", "--embedding-dim", "8", "--device", "cpu"]) == 0  # fmt: skip
    return root


def test_calibrate_command_writes_and_overwrites(folders, capsys):
    capsys.readouterr()
    model_dir, test = folders / "mf", folders / "test.csv"
    assert main(["calibrate", str(model_dir), "--data", str(test)]) == 0
    out = capsys.readouterr().out
    assert "ECE (15 equal-mass bins)" in out and "log loss" in out and "before" in out
    assert "held-out interactions" in out
    assert isinstance(load_model(model_dir).calibrator, PlattCalibrator)

    assert main(["calibrate", str(model_dir), "--data", str(test), "--method", "isotonic",
                 "--json"]) == 0  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert payload["method"] == "isotonic" and payload["ece_after"]["mass"] >= 0
    model = load_model(model_dir)  # checksums verified
    assert isinstance(model.calibrator, IsotonicCalibrator)
    assert sorted(p.name for p in folders.iterdir()) == ["mf", "test.csv", "train.csv"]
    assert (model_dir / "run.toml").is_file()
    listed = json.loads((model_dir / "model.json").read_text())["sha256"]
    assert CALIBRATION_FILE in listed and "run.toml" in listed


def test_calibrate_command_says_when_it_measures_in_sample(folders, tmp_path, capsys):
    one_user = tmp_path / "one_user.csv"
    test = pd.read_csv(folders / "test.csv", dtype=str)
    test[test["user_id"] == test["user_id"].iloc[0]].to_csv(one_user, index=False)
    shutil.copytree(folders / "mf", tmp_path / "mf")
    capsys.readouterr()
    assert main(["calibrate", str(tmp_path / "mf"), "--data", str(one_user)]) == 0
    out = capsys.readouterr().out
    assert "of the same users (in-sample)" in out and "other users" not in out


def test_calibrate_command_bad_input(folders, tmp_path, capsys):
    capsys.readouterr()
    assert main(["calibrate", str(tmp_path / "nope"), "--data", str(folders / "test.csv")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["calibrate", str(folders / "mf"), "--data", str(folders / "train.csv")]) == 2
    err = capsys.readouterr().err
    assert "pairs it trained on" in err and "dotrec split" in err


def test_a_changed_calibration_file_is_caught(folders, tmp_path):
    import shutil

    copy = tmp_path / "mf"
    shutil.copytree(folders / "mf", copy)
    replace_files(copy, {CALIBRATION_FILE: json.dumps(PlattCalibrator(1, 0).to_dict())})
    assert load_model(copy).calibrator.a == 1.0
    (copy / CALIBRATION_FILE).write_text('{"method": "platt", "a": 2, "b": 0}')
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(copy)
    with pytest.raises(ValueError, match="not a free plain file name"):
        replace_files(copy, {"weights.safetensors": "x"})
    replace_files(copy, {CALIBRATION_FILE: None})
    assert load_model(copy).calibrator is None
