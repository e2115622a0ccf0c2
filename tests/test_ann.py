"""Approximate top-K through faiss indexes (issue 5): the answers keep the contract.

The model is a matrix factorization over 3,000 items whose vectors are set
by hand: clustered item vectors with popularity-skewed norms and biases, and
users drawn near one or two clusters, so that the exact top-10 is a real
target rather than noise.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from dotrec import (
    ALS,
    LightGCN,
    MatrixFactorization,
    MissingDependencyError,
    StaleIndexError,
    TwoTower,
    load_model,
)
from dotrec.ann import ANNIndex, HNSWSettings, IVFSettings, index_file
from dotrec.artifact import ANN_FILE, replace_files
from dotrec.cli import main
from dotrec.data import Interactions
from dotrec.exceptions import DotrecError
from dotrec.models import MODELS

N_USERS, N_ITEMS, DIM = 300, 3000, 16


def _random_log(seed: int, n_rows: int = 12_000) -> Interactions:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, n_rows)
    items = np.concatenate([np.arange(N_ITEMS), rng.integers(0, N_ITEMS, n_rows - N_ITEMS)])
    users[:N_USERS] = np.arange(N_USERS)  # every user and item occurs
    frame_users = [f"u{u}" for u in users]
    frame_items = [f"i{i}" for i in items]
    return Interactions.from_ids(frame_users, frame_items)


def _structured_mf(seed: int = 0) -> MatrixFactorization:
    """An MF whose vectors have the structure of a trained catalogue."""
    model = MatrixFactorization(embedding_dim=DIM, epochs=1, device="cpu", seed=seed)
    with pytest.warns(Warning):  # the random log repeats some pairs
        model.fit(_random_log(seed))
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, DIM)) / np.sqrt(DIM)
    cluster = rng.integers(0, 30, N_ITEMS)
    items = centres[cluster] + 0.5 * rng.standard_normal((N_ITEMS, DIM)) / np.sqrt(DIM)
    popularity = rng.zipf(1.8, N_ITEMS).clip(max=1000)
    items *= (0.6 + 0.2 * np.log(popularity))[:, None] / np.linalg.norm(items, axis=1)[:, None]
    users = 3 * centres[rng.integers(0, 30, (N_USERS, 2))].sum(1)
    module = model.module
    with torch.no_grad():
        module.item_embedding.weight.copy_(torch.from_numpy(items))
        module.item_bias.weight.copy_(torch.from_numpy(0.3 * np.log(popularity))[:, None])
        module.user_embedding.weight.copy_(torch.from_numpy(users))
        module.user_bias.weight.copy_(torch.from_numpy(rng.standard_normal((N_USERS, 1))))
    return model


@pytest.fixture(scope="module")
def faiss():
    return pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def mf(faiss) -> MatrixFactorization:
    return _structured_mf()


def _recall(approx, exact) -> float:
    hits = [
        len(set(a[:ca]) & set(e[:ce])) / max(ce, 1)
        for a, e, ca, ce in zip(
            approx.item_ids, exact.item_ids, approx.counts, exact.counts, strict=True
        )
    ]
    return float(np.mean(hits))


def _exact_scores(model, recs) -> np.ndarray:
    """The exact path's scores (every item scored at once) of the listed items."""
    users = torch.from_numpy(model.users.index(list(recs.query_ids), "user"))
    with torch.no_grad():
        rows = model._score_users(users).numpy()
    out = np.full(recs.scores.shape, np.nan, dtype=np.float32)
    for r, count in enumerate(recs.counts):
        items = model.items.index(list(recs.item_ids[r, :count]), "item")
        out[r, :count] = rows[r, items]
    return out


# --- the vectors the indexes search -----------------------------------------------

DOT_MODELS = {
    "mf": lambda: MatrixFactorization(embedding_dim=8, epochs=3, device="cpu"),
    "bpr": lambda: MODELS["bpr"](embedding_dim=8, epochs=3, device="cpu"),
    "als": lambda: ALS(factors=8, iterations=3, device="cpu"),
    "lightgcn": lambda: LightGCN(embedding_dim=8, epochs=3, device="cpu"),
    "two-tower": lambda: TwoTower(embedding_dim=8, id_dim=8, hidden=[16], epochs=3, device="cpu"),
}


def test_every_dot_product_model_is_checked_here():
    assert {name for name, cls in MODELS.items() if cls.dot_product} == set(DOT_MODELS)


@pytest.mark.parametrize("name", sorted(DOT_MODELS))
def test_query_times_search_vector_is_the_score(name):
    # The index ranks by <query vector, search vector>; that must be the score,
    # biases included, or the index would rank by something else.
    data = Interactions.from_ids(
        [f"u{u % 20}" for u in range(100)], [f"i{(u * 7) % 50}" for u in range(100)]
    )
    model = DOT_MODELS[name]().fit(data)
    with torch.no_grad():
        if hasattr(model, "module"):  # give MF's biases values that matter
            model.module.item_bias.weight.normal_(0, 1.0)
            model.module.user_bias.weight.normal_(0, 1.0)
        users = torch.arange(len(model.users))
        search = model._item_vectors_for_search()
        products = model._query_vectors(users) @ search.T
        scores = model._score_users(users)
        pairs = model._score_pairs(users.repeat_interleave(7), torch.arange(7).repeat(len(users)))
        some = torch.tensor([5, 0, 3])
        rows = model._search_vectors_of(some)
    torch.testing.assert_close(products, scores, rtol=0, atol=1e-5)
    torch.testing.assert_close(pairs, scores[:, :7].reshape(-1), rtol=0, atol=1e-5)
    torch.testing.assert_close(rows, search[some], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["ease", "itemknn", "gf-cf", "popularity"])
def test_models_without_vectors_have_no_index(name):
    data = Interactions.from_ids(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
    model = MODELS[name]().fit(data)
    with pytest.raises(DotrecError, match="does not score by a dot product"):
        model.build_index()


# --- answers ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_default_settings_recall_at_10(mf, kind):
    mf.build_index(kind)
    users = mf.users.ids
    approx = mf.recommend(users, k=10, exact=False)
    exact = mf.recommend(users, k=10, exact=True)
    assert _recall(approx, exact) >= 0.95
    assert (approx.counts == 10).all()


@pytest.mark.parametrize(
    ("kind", "settings"),
    [("ivf", {"nlist": 20, "nprobe": 20}), ("hnsw", {"ef_search": N_ITEMS})],
)
def test_exhaustive_settings_give_the_exact_lists(mf, kind, settings):
    mf.build_index(kind, **settings)
    users = mf.users.ids
    approx = mf.recommend(users, k=10, exact=False)
    exact = mf.recommend(users, k=10, exact=True)
    for a, e in zip(approx.item_ids, exact.item_ids, strict=True):
        assert set(a) == set(e)
    np.testing.assert_allclose(approx.scores, exact.scores, rtol=0, atol=1e-5)


def test_weak_settings_do_miss_items(mf):
    # The recall test above can fail: a sparse graph searched narrowly misses items.
    mf.build_index("hnsw", m=4, ef_construction=10, ef_search=10)
    users = mf.users.ids
    approx = mf.recommend(users, k=10, exact=False, exclude_seen=False)
    assert _recall(approx, mf.recommend(users, k=10, exclude_seen=False)) < 0.9


def test_scores_are_the_models_exact_scores(mf):
    mf.build_index("ivf", nprobe=2)  # approximate lists, exact scores
    recs = mf.recommend(mf.users.ids, k=10, exact=False)
    np.testing.assert_allclose(recs.scores, _exact_scores(mf, recs), rtol=0, atol=1e-5)
    assert (np.diff(recs.scores, axis=1) <= 0).all()  # best first


def test_seen_items_are_never_returned(faiss):
    model = _structured_mf(seed=1)
    # Make each user's 300 best items seen: they would fill any unfiltered list.
    with torch.no_grad():
        top = torch.topk(model._score_users(torch.arange(N_USERS)), 300, dim=1).indices
    model.seen = sp.csr_array(
        (np.ones(top.numel()), top.reshape(-1).numpy(), np.arange(0, top.numel() + 1, 300)),
        shape=(N_USERS, N_ITEMS),
    )
    model.build_index("hnsw")
    recs = model.recommend(model.users.ids, k=10, exact=False)
    for row, items in enumerate(recs.item_ids):
        assert not set(model.items.index(list(items), "item")) & set(top[row].tolist())
    assert (recs.counts == 10).all()
    assert _recall(recs, model.recommend(model.users.ids, k=10, exact=True)) >= 0.95


def test_candidates_are_honoured(mf):
    mf.build_index("ivf")
    rng = np.random.default_rng(3)
    candidates = list(rng.choice(mf.items.ids, 200, replace=False))
    users = mf.users.ids[:50]
    approx = mf.recommend(users, k=10, items=candidates, exact=False)
    assert set(approx.item_ids.ravel()) <= set(candidates)
    assert _recall(approx, mf.recommend(users, k=10, items=candidates, exact=True)) >= 0.95

    # Fewer candidates than k: every unseen one, and no more.
    few = approx.item_ids[0, :3].tolist()
    row = mf.recommend(users[0], k=10, items=few, exact=False)
    assert row.counts.tolist() == [3] and set(row.item_ids[0, :3]) == set(few)


def test_rows_are_short_only_when_candidates_run_out(mf):
    # A list holds about 40 items: searching 1, then 2, 4 and 8 lists cannot
    # fill k=500, so those rows are answered exactly instead of coming back short.
    mf.build_index("ivf", nlist=70, nprobe=1)
    users = mf.users.ids[:20]
    approx = mf.recommend(users, k=500, exact=False)
    exact = mf.recommend(users, k=500, exact=True)
    assert (approx.counts == 500).all()
    assert (approx.item_ids == exact.item_ids).all()
    # k=50 is filled by searching more lists: full rows, still approximate.
    assert (mf.recommend(users, k=50, exact=False).counts == 50).all()

    everything = mf.recommend(users, k=N_ITEMS, exact=False)
    unseen = N_ITEMS - np.diff(mf.seen.indptr)[mf.users.index(list(users), "user")]
    assert everything.counts.tolist() == unseen.tolist()


def test_similar_items_through_the_cosine_index(mf):
    mf.build_index("hnsw", similar_items=True)
    queries = mf.items.ids[:100]
    approx = mf.similar_items(queries, k=10, exact=False)
    exact = mf.similar_items(queries, k=10, exact=True)
    assert _recall(approx, exact) >= 0.95
    assert not any(q in row for q, row in zip(queries, approx.item_ids, strict=True))
    same = approx.item_ids == exact.item_ids
    np.testing.assert_allclose(approx.scores[same], exact.scores[same], rtol=0, atol=1e-5)


# --- when the index is used -------------------------------------------------------


def test_exact_none_uses_the_index_from_min_items(mf, monkeypatch):
    asked = []
    original = ANNIndex.search
    monkeypatch.setattr(
        ANNIndex, "search", lambda self, *a, **kw: asked.append(1) or original(self, *a, **kw)
    )
    mf.build_index("ivf")  # min_items defaults to 100,000: more than this catalogue
    mf.recommend(mf.users.ids[:3], k=5)
    assert asked == []
    mf.build_index("ivf", min_items=N_ITEMS)
    mf.recommend(mf.users.ids[:3], k=5)
    assert asked
    asked.clear()
    mf.recommend(mf.users.ids[:3], k=5, exact=True)
    assert asked == []


def test_exact_false_without_an_index_says_how_to_build_one(mf):
    model = _structured_mf(seed=2)
    with pytest.raises(DotrecError, match=r"build_index\(\)"):
        model.recommend("u1", exact=False)
    with pytest.raises(DotrecError, match="similar_items=True"):
        model.similar_items("i1", exact=False)
    model.build_index("ivf")
    with pytest.warns(Warning):  # the random log repeats some pairs
        model.fit(_random_log(2))  # retraining drops the index built on the old vectors
    assert model.ann_indexes == {}


def test_settings_are_checked(mf):
    with pytest.raises(ValueError, match="unknown ivf settings"):
        mf.build_index("ivf", ef_search=10)
    with pytest.raises(ValueError, match="kind must be"):
        mf.build_index("annoy")
    with pytest.raises(ValueError, match="nprobe"):
        IVFSettings(nprobe=0)
    with pytest.raises(ValueError, match="ef_search"):
        HNSWSettings(ef_search=-1)


# --- files ------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_answers(mf, tmp_path, faiss):
    mf.build_index("ivf", similar_items=True, nprobe=4)
    mf.save(tmp_path / "m")
    assert {index_file("recommend"), index_file("similar"), ANN_FILE} <= {
        p.name for p in (tmp_path / "m").iterdir()
    }
    stored = faiss.deserialize_index(
        np.frombuffer((tmp_path / "m" / index_file("recommend")).read_bytes(), dtype=np.uint8)
    )
    assert stored.ntotal == N_ITEMS

    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.ann_indexes["recommend"]._index is None  # read on first use
    users, items = mf.users.ids, mf.items.ids[:50]
    before = mf.recommend(users, k=10, exact=False)
    after = loaded.recommend(users, k=10, exact=False)
    assert (before.item_ids == after.item_ids).all()
    np.testing.assert_array_equal(before.scores, after.scores)
    similar = mf.similar_items(items, exact=False), loaded.similar_items(items, exact=False)
    assert (similar[0].item_ids == similar[1].item_ids).all()
    assert loaded.ann_indexes["recommend"].settings.nprobe == 4


def test_an_index_of_other_vectors_is_refused(mf, tmp_path):
    mf.build_index("ivf")
    mf.save(tmp_path / "a")
    other = _structured_mf(seed=5)
    other.save(tmp_path / "b")
    # Put a's index into b's folder: the files are intact, the vectors differ.
    replace_files(
        tmp_path / "b",
        {ANN_FILE: (tmp_path / "a" / ANN_FILE).read_text()},
        {index_file("recommend"): (tmp_path / "a" / index_file("recommend")).read_bytes()},
    )
    loaded = load_model(tmp_path / "b", device="cpu")
    with pytest.raises(StaleIndexError, match="rebuild it"):
        loaded.recommend("u1", exact=False)
    loaded.recommend("u1", exact=True)  # exact ranking still works

    # Vectors changed in memory after building: saving refuses the stale index.
    with torch.no_grad():
        mf.module.item_bias.weight[0] += 1.0
    try:
        with pytest.raises(StaleIndexError):
            mf.save(tmp_path / "c")
    finally:
        with torch.no_grad():
            mf.module.item_bias.weight[0] -= 1.0


def test_a_changed_index_file_is_refused(mf, tmp_path):
    mf.build_index("ivf")
    mf.save(tmp_path / "m")
    path = tmp_path / "m" / index_file("recommend")
    path.write_bytes(path.read_bytes()[:-10])
    loaded = load_model(tmp_path / "m", device="cpu")  # lazily: not read yet
    with pytest.raises(DotrecError, match="checksum"):
        loaded.recommend("u1", exact=False)


def test_without_faiss(mf, monkeypatch):
    mf.build_index("ivf", min_items=0)
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'dotrec\[ann\]'"):
        mf.build_index("ivf")
    with pytest.raises(MissingDependencyError, match="faiss"):
        mf.recommend("u1", exact=False)
    with pytest.warns(UserWarning, match="faiss is not installed"):
        approx = mf.recommend("u1", k=5)  # the index would be used: exact instead
    assert approx.item_ids.tolist() == mf.recommend("u1", k=5, exact=True).item_ids.tolist()


# --- command line -----------------------------------------------------------------


def test_index_command_builds_stores_and_removes(mf, tmp_path, capsys):
    mf.ann_indexes = {}
    mf.save(tmp_path / "m")
    args = ["index", str(tmp_path / "m"), "--kind", "hnsw", "--ef-search", "64", "--min-items", "1"]
    assert main(args) == 0
    assert "ann-recommend.faiss" in capsys.readouterr().out
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.ann_indexes["recommend"].settings.ef_search == 64
    assert loaded.ann_indexes["recommend"].min_items == 1

    assert main(["recommend", str(tmp_path / "m"), "--user", "u1", "--k", "3", "--exact"]) == 0
    exact = capsys.readouterr().out
    assert exact.splitlines()[0] == "user_id,item_id,rank,score"
    assert main(["recommend", str(tmp_path / "m"), "--user", "u1", "--k", "3"]) == 0
    approx = capsys.readouterr().out
    items = [[line.split(",")[1] for line in out.splitlines()[1:]] for out in (exact, approx)]
    assert items[0] == items[1]  # ef_search 64 finds these three too

    assert main(["index", str(tmp_path / "m"), "--kind", "ivf", "--m", "8"]) == 2
    assert "--m is a setting of --kind hnsw" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "m"), "--remove"]) == 0
    assert not (tmp_path / "m" / index_file("recommend")).exists()
    assert load_model(tmp_path / "m").ann_indexes == {}
