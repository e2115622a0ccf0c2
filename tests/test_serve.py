"""The HTTP service, end to end: a real uvicorn server on a loopback port, called over HTTP."""

from __future__ import annotations

import gc
import hashlib
import json
import pickle
import shutil
import threading
import time
from functools import partial
from pathlib import Path
from urllib.parse import quote

import pytest

from dotrec import MODELS, load_model
from dotrec.config import DataConfig, RunConfig
from dotrec.exceptions import DataError, ModelFileError
from dotrec.serve import Limits, ModelHolder, create_app, load_served
from serve_helpers import (
    call,
    expected,
    listing,
    running,
    tiny_interactions,
    train_model,
    write_items_csv,
)
from test_contract import SETTINGS

LIMITS = Limits(max_k=20, max_batch=5, max_body_bytes=4096)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two models of the same data (seeds 0 and 1), an item file, a corrupt copy."""
    root = tmp_path_factory.mktemp("serve")
    items_csv = write_items_csv(root / "titles.csv")
    a = train_model(root / "model_a", seed=0)
    b = train_model(root / "model_b", seed=1, items_csv=write_items_csv(root / "b.csv", "B"))
    corrupt = root / "corrupt"
    shutil.copytree(a, corrupt)
    weights = corrupt / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])
    return {"a": a, "b": b, "items": items_csv, "corrupt": corrupt, "root": root}


@pytest.fixture(scope="module")
def model_a(folders):
    return load_model(folders["a"], device="cpu")


@pytest.fixture(scope="module")
def server(folders):
    app = create_app(
        folders["a"], items_file=folders["items"], device="cpu", limits=LIMITS, workers=2
    )
    with running(app) as base:
        yield base


def test_health_and_ready_describe_the_model(server, model_a, folders):
    assert call(server, "GET", "/health") == (200, {"status": "ok"})
    status, body = call(server, "GET", "/ready")
    assert status == 200 and body["status"] == "ready"
    info = body["model"]
    assert (info["model"], info["n_users"], info["n_items"]) == ("mf", 30, 30)
    assert info["fingerprint"] == model_a.fit_info["fingerprint"]
    assert info["model_dir"] == str(folders["a"].resolve())
    assert info["item_metadata"] == str(folders["items"])
    digest = json.loads((folders["a"] / "model.json").read_text())["sha256"]
    assert info["model_id"] == digest["weights.safetensors"][:16]


def test_ids_are_text_0042_is_not_42(server, model_a):
    lists = {}
    for user_id in ["0042", "42"]:
        status, body = call(server, "GET", f"/users/{user_id}/recommendations?k=5")
        assert status == 200 and body["user_id"] == user_id and body["fallback"] is False
        assert listing(body["items"]) == expected(model_a.recommend(user_id, k=5).for_user(user_id))
        lists[user_id] = listing(body["items"])
    assert lists["0042"] != lists["42"]
    status, body = call(server, "GET", "/users/042/recommendations")
    assert status == 404 and "'042'" in body["error"]


def test_recommendations_carry_item_metadata(server):
    status, body = call(server, "GET", "/users/u1/recommendations?k=3")
    assert status == 200 and len(body["items"]) == 3
    for entry in body["items"]:
        assert entry["title"] == f"Title {entry['item_id']}"
        assert entry["genres"] in (["Drama", "Comedy"], ["Horror"])


def test_exclude_seen_can_be_turned_off(server, model_a):
    path = "/users/0042/recommendations?k=12&exclude_seen=false"
    status, body = call(server, "GET", path)
    recs = model_a.recommend("0042", k=12, exclude_seen=False).for_user("0042")
    assert status == 200 and listing(body["items"]) == expected(recs)
    assert {e["item_id"] for e in body["items"]} & {f"i{n:02d}" for n in range(1, 11)}


def test_unknown_user_is_404_unless_popular_fallback_is_asked(server, model_a):
    status, body = call(server, "GET", "/users/nobody/recommendations?k=4")
    assert status == 404
    assert "'nobody'" in body["error"] and "fallback=popular" in body["error"]
    assert body["detail"] == {"kind": "user", "ids": ["nobody"]}

    status, body = call(server, "GET", "/users/nobody/recommendations?k=4&fallback=popular")
    popular = model_a.recommend("nobody", k=4, fallback="popular").for_user("nobody")
    assert status == 200 and body["fallback"] is True
    assert listing(body["items"]) == expected(popular)


@pytest.mark.parametrize("k", ["0", "21", "-3", "abc", "2.5"])
def test_k_out_of_bounds_is_422_naming_k(server, k):
    status, body = call(server, "GET", f"/users/u1/recommendations?k={k}")
    assert status == 422
    assert body["error"].startswith("invalid request: query parameter k:")
    assert body["detail"][0]["loc"] == ["query", "k"]


def test_largest_k_is_allowed_and_short_lists_stay_short(server):
    status, body = call(server, "GET", "/users/0042/recommendations?k=20")
    assert status == 200 and len(body["items"]) == 20  # 30 items, 10 seen
    status, body = call(server, "GET", "/items/i01/similar?k=20")
    assert status == 200 and len(body["items"]) == 20


def test_batch_answers_in_request_order(server, model_a):
    users = ["42", "0042", "u3", "42"]
    status, body = call(server, "POST", "/recommendations", {"users": users, "k": 3})
    assert status == 200 and [r["user_id"] for r in body["results"]] == users
    recs = model_a.recommend(users, k=3).to_list()
    assert [listing(r["items"]) for r in body["results"]] == [expected(r) for r in recs]


def test_batch_with_unknown_users(server, model_a):
    request = {"users": ["u1", "ghost", "u2", "ghost2"], "k": 2}
    status, body = call(server, "POST", "/recommendations", request)
    assert status == 404 and body["detail"]["ids"] == ["ghost", "ghost2"]
    assert "'ghost', 'ghost2'" in body["error"]

    status, body = call(server, "POST", "/recommendations", {**request, "fallback": "popular"})
    assert status == 200
    assert [r["fallback"] for r in body["results"]] == [False, True, False, True]
    single = model_a.recommend("u2", k=2).for_user("u2")
    assert listing(body["results"][2]["items"]) == expected(single)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"users": [42], "k": 2}, "users.0: Input should be a valid string"),
        ({"users": ["u1"] * 6}, "users: List should have at most 5 items"),
        ({"users": []}, "users: List should have at least 1 item"),
        ({"users": ["u1"], "k": 21}, "k: Input should be less than or equal to 20"),
        ({"user": ["u1"]}, "users: Field required"),
        ({"users": ["u1"], "fallback": "random"}, "fallback: Input should be 'none' or 'popular'"),
    ],
)
def test_bad_batch_bodies_are_422_naming_the_field(server, body, field):
    status, answer = call(server, "POST", "/recommendations", body)
    assert status == 422 and field in answer["error"]


def test_validation_errors_do_not_echo_large_inputs(folders):
    # Issue: 200,000 user IDs POSTed to /recommendations came back in an 800 KB 422 body.
    limits = Limits(max_k=20, max_batch=1000, max_body_bytes=8 << 20)
    app = create_app(folders["a"], device="cpu", limits=limits)
    with running(app) as base:
        request = json.dumps({"users": ["1"] * 200_000, "k": 2}).encode()
        status, body = call(base, "POST", "/recommendations", raw=request)
        assert status == 422 and len(json.dumps(body)) < 1000
        assert "body field users: List should have at most 1000 items" in body["error"]
        assert body["detail"] == [
            {
                "loc": ["body", "users"],
                "msg": "List should have at most 1000 items after validation, not 200000",
                "type": "too_long",
            }
        ]

        status, body = call(base, "POST", "/recommendations", {"users": list(range(1000))})
        assert status == 422 and len(json.dumps(body)) < 5000
        assert "(1000 errors; detail lists the first 20)" in body["error"]
        assert len(body["detail"]) == 20 and body["detail"][0]["input"] == 0

        status, body = call(base, "POST", "/recommendations", {"users": ["u1"], "k": "9" * 10_000})
        assert status == 422 and "input" not in body["detail"][0]
        assert body["detail"][0]["loc"] == ["body", "k"] and len(json.dumps(body)) < 1000


@pytest.mark.parametrize("k", [b"NaN", b"Infinity", b"1e400"])
def test_a_non_finite_k_is_422_not_500(server, k):
    # Python's JSON reader takes NaN and Infinity; repeating them back broke the 422 answer
    for path in ("/recommendations", "/recommendations/from-history"):
        field = b'"users": ["u1"]' if path == "/recommendations" else b'"items": ["i01"]'
        status, body = call(server, "POST", path, raw=b"{" + field + b', "k": ' + k + b"}")
        assert status == 422 and "body field k" in body["error"], (path, body)
        assert "input" not in body["detail"][0]


def test_unknown_ids_are_clipped_in_errors(server):
    long_id = "a" * 3_000  # under the 4 KB body limit
    status, body = call(server, "POST", "/recommendations", {"users": [long_id]})
    assert status == 404 and len(json.dumps(body)) < 1000
    clipped = "a" * 60 + "... (3000 characters)"
    assert body["detail"]["ids"] == [clipped] and repr(clipped) in body["error"]
    status, body = call(server, "GET", "/items/" + "b" * 50_000 + "/similar")
    assert status == 404 and len(json.dumps(body)) < 1000


def test_malformed_json_is_422(server):
    status, body = call(server, "POST", "/recommendations", raw=b'{"users": ["u1",')
    assert status == 422 and "not valid JSON" in body["error"]


def test_history_fold_in_matches_the_model(server, model_a):
    histories = [["i01", "i02", "i03"], [], ["a/b"]]
    request = {"histories": histories, "k": 4}
    status, body = call(server, "POST", "/recommendations/from-history", request)
    assert status == 200 and [r["history"] for r in body["results"]] == [0, 1, 2]
    recs = model_a.recommend_from_history(histories, k=4)
    assert [listing(r["items"]) for r in body["results"]] == [expected(r) for r in recs.to_list()]
    assert [r["fallback"] for r in body["results"]] == [False, True, False]


def test_history_with_unknown_items_errs_or_ignores_as_asked(server, model_a):
    request = {"histories": [["i01", "nope"]], "k": 3}
    status, body = call(server, "POST", "/recommendations/from-history", request)
    assert status == 404 and "'nope'" in body["error"]
    assert body["detail"] == {"kind": "item", "ids": ["nope"]}

    request["unknown_items"] = "ignore"
    status, body = call(server, "POST", "/recommendations/from-history", request)
    alone = model_a.recommend_from_history([["i01"]], k=3).to_list()[0]
    assert status == 200 and listing(body["results"][0]["items"]) == expected(alone)


def test_similar_items_with_ids_holding_slashes_and_spaces(server, model_a):
    for item_id in ["i05", "a/b", "x y"]:
        status, body = call(server, "GET", f"/items/{quote(item_id, safe='')}/similar?k=4")
        assert status == 200 and body["item_id"] == item_id
        assert body["title"] == f"Title {item_id}"
        recs = model_a.similar_items(item_id, k=4).for_user(item_id)
        assert listing(body["items"]) == expected(recs)
        assert item_id not in [e["item_id"] for e in body["items"]]
    status, body = call(server, "GET", "/items/i99/similar")
    assert status == 404 and "'i99'" in body["error"]


def test_oversized_body_is_413_before_parsing(server):
    padding = "u" * 5000
    status, body = call(server, "POST", "/recommendations", {"users": [padding]})
    assert status == 413 and "4096 bytes" in body["error"]
    assert body["detail"]["limit_bytes"] == 4096


def test_oversized_chunked_body_is_413(server):
    chunks = [b'{"users": ["'] + [b"u" * 1000] * 6 + [b'"]}']
    status, body = call(server, "POST", "/recommendations", chunks=chunks)
    assert status == 413 and "4096 bytes" in body["error"]
    small = [b'{"users": ', b'["u1"], "k": 2}']
    status, body = call(server, "POST", "/recommendations", chunks=small)
    assert status == 200 and len(body["results"][0]["items"]) == 2


def test_unknown_endpoint_and_method_answer_json(server):
    status, body = call(server, "GET", "/nowhere")
    assert status == 404 and "no such endpoint: GET /nowhere" in body["error"]
    status, body = call(server, "DELETE", "/health")
    assert status == 405 and "DELETE" in body["error"]


def test_openapi_schema_lists_the_endpoints_and_limits(server):
    status, schema = call(server, "GET", "/openapi.json")
    assert status == 200
    assert {
        "/health",
        "/ready",
        "/users/{user_id}/recommendations",
        "/recommendations",
        "/recommendations/from-history",
        "/items/{item_id}/similar",
        "/admin/reload",
    } <= set(schema["paths"])
    params = schema["paths"]["/users/{user_id}/recommendations"]["get"]["parameters"]
    k = next(p for p in params if p["name"] == "k")
    assert (k["schema"]["minimum"], k["schema"]["maximum"]) == (1, 20)


def test_a_bad_model_folder_fails_at_start(folders):
    with pytest.raises(ModelFileError, match="checksum"):
        create_app(folders["corrupt"], device="cpu")
    with pytest.raises(ModelFileError, match="no such model folder"):
        create_app(folders["root"] / "missing", device="cpu")


def test_item_metadata_is_found_in_the_model_folder(folders):
    served = load_served(folders["b"], device="cpu")
    assert served.items["a/b"].title == "B a/b"
    assert served.info["item_metadata"] == str(folders["b"].resolve() / "items.csv")
    assert load_served(folders["a"], device="cpu").items == {}


def test_item_metadata_is_found_beside_the_training_data(folders, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_items_csv(data / "movies.csv", "Run")
    folder = shutil.copytree(folders["a"], tmp_path / "model")
    RunConfig(DataConfig(path=str(data / "log.csv"))).write(folder / "run.toml")
    served = load_served(folder, device="cpu")
    assert served.items["i03"].title == "Run i03"
    assert served.info["item_metadata"] == str(data / "movies.csv")


def test_unreadable_item_metadata_fails_only_when_given(folders, tmp_path):
    folder = shutil.copytree(folders["a"], tmp_path / "model")
    (folder / "items.csv").write_text("item_id,title\n,No ID\n", encoding="utf-8")
    served = load_served(folder, device="cpu")
    assert served.items == {} and served.info["item_metadata"] is None
    with pytest.raises(DataError, match="empty item ID"):
        load_served(folders["a"], items_file=folder / "items.csv", device="cpu")


def test_item_file_encoding_applies_to_given_and_found_files(folders, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("item_id,title\ni01,Été\n".encode("latin-1"))
    served = load_served(folders["a"], items_file=latin, items_encoding="latin-1", device="cpu")
    assert served.items["i01"].title == "Été"
    folder = shutil.copytree(folders["a"], tmp_path / "model")
    shutil.copy(latin, folder / "items.csv")
    assert load_served(folder, device="cpu").items == {}  # not UTF-8: left out
    served = load_served(folder, items_encoding="latin-1", device="cpu")
    assert served.items["i01"].title == "Été"
    with pytest.raises(ValueError, match="'utf-99' is not a text encoding"):
        create_app(folders["a"], items_encoding="utf-99", device="cpu")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_type_loads_for_serving(name, tmp_path):
    settings = {k: (2 if k in ("epochs", "iterations") else v) for k, v in SETTINGS[name].items()}
    MODELS[name](**settings).fit(tiny_interactions()).save(tmp_path / name)
    served = load_served(tmp_path / name, device="cpu")
    assert (served.info["model"], served.info["n_items"]) == (name, 30)


def test_reload_under_requests_drops_none_and_refuses_bad_folders(folders, model_a):
    """Threads keep asking while the model is swapped, and while bad folders are offered."""
    expect = {}
    for name in ("a", "b"):
        served = load_served(folders[name], device="cpu")
        expect[served.model_id] = expected(served.model.recommend("u5", k=5).for_user("u5"))
    id_a, id_b = list(expect)
    assert expect[id_a] != expect[id_b]

    app = create_app(folders["a"], device="cpu", limits=LIMITS, workers=2)
    failures, answers, stop = [], [], threading.Event()

    def hammer(base: str) -> None:
        deadline = time.monotonic() + 60
        for _ in range(5000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                status, body = call(base, "GET", "/users/u5/recommendations?k=5")
            except OSError as err:
                failures.append(repr(err))
                continue
            if status != 200:
                failures.append((status, body))
            else:
                answers.append((body["model_id"], listing(body["items"])))

    with running(app) as base:
        threads = [threading.Thread(target=hammer, args=(base,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            steps = [
                (folders["b"], 200, id_b),
                (folders["corrupt"], 422, id_b),
                (folders["root"] / "missing", 422, id_b),
                (folders["a"], 200, id_a),
                (None, 200, id_a),
            ]
            for model_dir, status_wanted, serving in steps:
                time.sleep(0.3)
                request = {"model_dir": None if model_dir is None else str(model_dir)}
                status, body = call(base, "POST", "/admin/reload", request)
                assert status == status_wanted, body
                if status == 422:
                    assert "still serving model" in body["error"]
                    assert body["detail"]["serving"]["model_id"] == serving
                assert call(base, "GET", "/ready")[1]["model"]["model_id"] == serving
            time.sleep(0.3)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        ready = call(base, "GET", "/ready")[1]

    assert failures == []
    assert ready["reloads"] == 3
    assert {model_id for model_id, _ in answers} == {id_a, id_b}
    assert all(items == expect[model_id] for model_id, items in answers)


def test_loading_never_runs_code_from_the_folder(folders, tmp_path):
    """A pickle in place of the weights (checksums made to match) is refused, never run."""
    marker = tmp_path / "ran"
    evil = tmp_path / "evil"
    shutil.copytree(folders["a"], evil)

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (evil / "weights.safetensors").write_bytes(pickle.dumps(Payload()))
    meta = json.loads((evil / "model.json").read_text())
    digest = hashlib.sha256((evil / "weights.safetensors").read_bytes()).hexdigest()
    meta["sha256"]["weights.safetensors"] = digest
    (evil / "model.json").write_text(json.dumps(meta))

    app = create_app(folders["a"], device="cpu")
    with running(app) as base:
        status, body = call(base, "POST", "/admin/reload", {"model_dir": str(evil)})
        assert status == 422 and "cannot read the weights" in body["error"]
    assert not marker.exists()


def test_admin_token_is_required_when_set(folders):
    app = create_app(folders["a"], device="cpu", admin_token="s3cret")
    with running(app) as base:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            status, body = call(base, "POST", "/admin/reload", headers=headers)
            assert status == 401 and "Authorization: Bearer" in body["error"]
        good = {"Authorization": "Bearer s3cret"}
        status, body = call(base, "POST", "/admin/reload", headers=good)
        assert status == 200 and body["status"] == "reloaded"


def test_admin_endpoints_can_be_turned_off(folders):
    app = create_app(folders["a"], device="cpu", allow_admin=False)
    with running(app) as base:
        status, body = call(base, "POST", "/admin/reload", {"model_dir": str(folders["b"])})
        assert status == 403 and "SIGHUP" in body["error"]
        assert call(base, "GET", "/ready")[1]["reloads"] == 0


def test_a_server_reload_leaves_live_objects_out_of_collections(folders):
    load = partial(load_served, device="cpu")
    holder = ModelHolder(load(folders["a"]), load)
    assert gc.get_freeze_count() == 0
    holder.reload(folders["b"])
    assert gc.get_freeze_count() == 0
    holder.freeze_heap = True
    try:
        holder.reload(folders["a"])
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert holder.reloads == 2 and holder.current.model_dir == folders["a"].resolve()
