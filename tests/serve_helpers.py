"""Shared by the service tests: tiny models on disk, a real server, an HTTP client."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import uvicorn

from dotrec import Interactions, MatrixFactorization
from dotrec.serve import bind

ITEM_IDS = [f"i{n:02d}" for n in range(1, 29)] + ["a/b", "x y"]


def tiny_interactions() -> Interactions:
    """30 users x 30 items; users ``0042`` and ``42`` are two people with other histories."""
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(28):
        for i in rng.choice(len(ITEM_IDS), size=8, replace=False):
            users.append(f"u{u}")
            items.append(ITEM_IDS[i])
    for user_id, own in [("0042", ITEM_IDS[:10]), ("42", ITEM_IDS[10:20])]:
        users += [user_id] * len(own)
        items += own
    return Interactions.from_ids(users, items, source="tiny")


def train_model(folder: Path, seed: int, items_csv: Path | None = None) -> Path:
    """Fit a 2-epoch MF and save it to ``folder`` (with ``items_csv`` inside, if given)."""
    model = MatrixFactorization(epochs=2, embedding_dim=8, seed=seed, device="cpu")
    model.fit(tiny_interactions())
    model.save(folder)
    if items_csv is not None:
        (folder / "items.csv").write_text(items_csv.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def write_items_csv(path: Path, prefix: str = "Title") -> Path:
    frame = pd.DataFrame(
        {
            "item_id": ITEM_IDS,
            "title": [f"{prefix} {item_id}" for item_id in ITEM_IDS],
            "genres": ["Drama|Comedy" if n % 2 else "Horror" for n in range(len(ITEM_IDS))],
        }
    )
    frame.to_csv(path, index=False)
    return path


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def call(
    base: str,
    method: str,
    path: str,
    body: object = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> tuple[int, dict]:
    """One HTTP request over a fresh connection; returns the status and the parsed JSON body."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = dict(headers or {})
    data: object = raw if raw is not None else (None if body is None else json.dumps(body))
    if chunks is not None:
        data = iter(chunks)
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=headers, encode_chunked=chunks is not None)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    return response.status, json.loads(payload)


def listing(result: list[dict]) -> list[tuple[str, float]]:
    """``[(item_id, score)]`` of a response's items, scores rounded for comparison."""
    return [(entry["item_id"], round(entry["score"], 5)) for entry in result]


def expected(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    return [(item_id, round(float(score), 5)) for item_id, score in pairs]
