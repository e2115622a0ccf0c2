"""The model folder: exact round trip, clear failures, atomic replacement, no pickle."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import dotrec.artifact
from dotrec import (
    DataWarning,
    DotrecError,
    Interactions,
    MatrixFactorization,
    ModelFileError,
    load_model,
)

SMALL = {"embedding_dim": 8, "epochs": 3, "device": "cpu", "num_threads": 1}
USERS = ["007", "7", "NA", "1000000000000", "9223372036854775807"]


@pytest.fixture(scope="module")
def data() -> Interactions:
    rng = np.random.default_rng(0)
    users = [USERS[k % len(USERS)] for k in range(60)]
    items = [f"0{k}" for k in rng.integers(0, 20, 60)]
    with pytest.warns(DataWarning):  # repeated pairs are merged
        return Interactions.from_ids(users, items)


@pytest.fixture(scope="module")
def model(data) -> MatrixFactorization:
    return MatrixFactorization(seed=0, **SMALL).fit(data)


@pytest.fixture
def saved(model, tmp_path):
    return model.save(tmp_path / "model")


def test_round_trip_identical(model, saved):
    loaded = load_model(saved, device="cpu")
    assert isinstance(loaded, MatrixFactorization)
    assert loaded.config == model.config
    assert loaded.users == model.users and loaded.items == model.items
    assert loaded.users.ids.tolist() == USERS
    users = np.repeat(model.users.ids, len(model.items))
    items = np.tile(model.items.ids, len(model.users))
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))
    before, after = model.recommend(USERS, k=7), loaded.recommend(USERS, k=7)
    np.testing.assert_array_equal(after.item_ids, before.item_ids)
    np.testing.assert_array_equal(after.scores, before.scores)
    assert (loaded.seen != model.seen).nnz == 0
    np.testing.assert_array_equal(loaded.item_counts, model.item_counts)
    assert loaded.fit_info["epoch_loss"] == model.fit_info["epoch_loss"]


def test_folder_is_json_and_safetensors(saved):
    assert sorted(p.name for p in saved.iterdir()) == [
        "model.json",
        "vocab.json",
        "weights.safetensors",
    ]
    meta = json.loads((saved / "model.json").read_text())
    assert meta["format_version"] == dotrec.artifact.FORMAT_VERSION
    assert meta["model"] == "mf"
    vocab = json.loads((saved / "vocab.json").read_text())
    assert vocab["users"] == USERS
    tensors = load_file(str(saved / "weights.safetensors"))
    assert "param.user_embedding.weight" in tensors


def test_load_uses_no_pickle(saved, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert load_model(saved, device="cpu").recommend(USERS[0], k=2).counts.tolist() == [2]
    # a safetensors file: an 8-byte little-endian length, then a JSON header
    raw = (saved / "weights.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert header["param.item_embedding.weight"]["dtype"] == "F32"


def test_truncated_weights(saved):
    weights = saved / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="weights.safetensors does not match the checksum"):
        load_model(saved)


def test_missing_checksums_are_refused(saved):
    # without checksums a damaged file could load unnoticed, so the folder is refused
    meta = json.loads((saved / "model.json").read_text())
    meta.pop("sha256")
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="lacks the checksums"):
        load_model(saved)


def test_unreadable_weights_with_matching_checksum(saved):
    # a cut file whose checksum was recomputed still fails to parse, clearly
    weights = saved / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    meta = json.loads((saved / "model.json").read_text())
    meta["sha256"]["weights.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="cannot read the weights"):
        load_model(saved)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (("config", "embedding_dim"), 4),  # the weights still have 8: the record would lie
        (("config", "loss"), "mse"),  # would turn logits into "predicted ratings"
        (("score_kind",), "probability"),
    ],
)
def test_edited_model_json_is_refused(saved, key, value):
    meta = json.loads((saved / "model.json").read_text())
    table = meta
    for part in key[:-1]:
        table = table[part]
    table[key[-1]] = value
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="model.json was changed after saving"):
        load_model(saved)


def test_folder_written_before_the_description_checksum_loads(model, saved):
    meta = json.loads((saved / "model.json").read_text())
    meta.pop("description_sha256")
    (saved / "model.json").write_text(json.dumps(meta))
    assert (
        load_model(saved).recommend(model.users.ids[:2], k=3).to_list()
        == model.recommend(model.users.ids[:2], k=3).to_list()
    )


def test_files_added_later_keep_the_description_valid(saved):
    dotrec.artifact.replace_files(saved, {"notes.txt": "hello"})
    assert load_model(saved) is not None
    # Dropping a listed file (a calibrator, say) from model.json by hand is caught.
    meta = json.loads((saved / "model.json").read_text())
    listed = {k: v for k, v in meta["sha256"].items() if k != "notes.txt"}
    (saved / "model.json").write_text(json.dumps({**meta, "sha256": listed}))
    with pytest.raises(ModelFileError, match="model.json was changed after saving"):
        load_model(saved)
    (saved / "model.json").write_text(json.dumps(meta))
    dotrec.artifact.replace_files(saved, {"notes.txt": None})
    assert load_model(saved) is not None


def test_corrupt_model_json(saved):
    (saved / "model.json").write_text('{"format_version": 1, "model": ')
    with pytest.raises(ModelFileError, match="model.json is truncated or corrupt"):
        load_model(saved)


def test_wrong_format_version(saved):
    meta = json.loads((saved / "model.json").read_text())
    meta["format_version"] = 99
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="model format version 99.*reads version 1"):
        load_model(saved)


def test_missing_folder_and_missing_file(saved, tmp_path):
    with pytest.raises(ModelFileError, match="no such model folder"):
        load_model(tmp_path / "nowhere")
    (saved / "vocab.json").unlink()
    with pytest.raises(ModelFileError, match="missing \\['vocab.json'\\]"):
        load_model(saved)


def test_save_replaces_an_existing_model(model, data, saved):
    other = MatrixFactorization(seed=5, **SMALL).fit(data)
    other.save(saved)
    loaded = load_model(saved, device="cpu")
    user, item = USERS[0], model.items.ids[0]
    assert loaded.score(user, item) == other.score(user, item)
    assert loaded.score(user, item) != model.score(user, item)
    assert [p.name for p in saved.parent.iterdir()] == ["model"]  # no temporary folders left


def test_failed_save_leaves_the_old_model(model, data, saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(dotrec.artifact, "save_file", broken)
    other = MatrixFactorization(seed=5, **SMALL).fit(data)
    with pytest.raises(OSError, match="disk full"):
        other.save(saved)
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert [p.name for p in saved.parent.iterdir()] == ["model"]
    monkeypatch.undo()
    user, item = USERS[0], model.items.ids[0]
    assert load_model(saved, device="cpu").score(user, item) == model.score(user, item)


def test_refuses_to_overwrite_a_foreign_folder(model, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ModelFileError, match="not a dotrec model folder"):
        model.save(folder)
    assert (folder / "keep.txt").read_text() == "mine"


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(DotrecError, match="not fitted"):
        MatrixFactorization().save(tmp_path / "m")
