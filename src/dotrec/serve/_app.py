"""The FastAPI application: endpoints over one :class:`ModelHolder`.

Each request takes the current model once, so a reload never changes the
model under it. Scoring runs on worker threads, at most ``workers`` at a
time, so the event loop keeps accepting and answering while models compute.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint
# annotations at run time, and some are built inside create_app.

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Header, Query

from dotrec._version import __version__
from dotrec.data._readers import check_encoding
from dotrec.exceptions import DotrecError
from dotrec.models import Recommendations
from dotrec.serve._errors import BodyLimit, ServiceError, install_error_handlers
from dotrec.serve._holder import ModelHolder, ServedModel, load_served
from dotrec.serve._schemas import (
    ErrorBody,
    Fallback,
    HealthBody,
    HistoryResponse,
    ReadyBody,
    RecommendationsResponse,
    ReloadRequest,
    ReloadResponse,
    SimilarItemsResponse,
    UserRecommendationsResponse,
    request_models,
)

__all__ = ["Limits", "create_app"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in [
        (404, "unknown user or item ID (the body names it)"),
        (413, "request body over the limit"),
        (422, "invalid request: K out of bounds, wrong types, malformed JSON"),
    ]
}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask."""

    max_k: int = 1000
    """Largest K a request may ask for."""
    max_batch: int = 1000
    """Most users (or histories) in one batch request."""
    max_body_bytes: int = 1 << 20
    """Largest request body, in bytes; larger ones get 413 before parsing."""


def create_app(
    model_dir: str | Path,
    *,
    items_file: str | Path | None = None,
    items_encoding: str | None = None,
    device: str = "auto",
    limits: Limits | None = None,
    workers: int = 1,
    admin_token: str | None = None,
    allow_admin: bool = True,
) -> FastAPI:
    """Load ``model_dir`` and build the service around it.

    Args:
        model_dir: a model folder (``dotrec train --out``); loaded now, so a
            bad folder fails here, before the server starts.
        items_file: item metadata (titles, genres) for responses; by default
            looked for in the model folder and beside its training data.
        items_encoding: text encoding of the item file (None: UTF-8, or
            Latin-1 for MovieLens ``u.item`` and ``movies.dat``); it applies
            on every reload too.
        device: where to score.
        limits: bounds on K, batch size and body size.
        workers: model calls run at once, each on its own thread.
        admin_token: when set, ``POST /admin/reload`` needs the header
            ``Authorization: Bearer TOKEN``.
        allow_admin: False turns ``POST /admin/reload`` off (403).

    Returns:
        The application; ``app.state.holder`` is its :class:`ModelHolder`.

    Raises:
        ModelFileError: the model folder cannot be loaded or fails a trial.
        ValueError: a limit or ``workers`` is not a positive integer, or
            ``items_encoding`` is no text encoding Python knows.
    """
    limits = limits or Limits()
    for name, value in [*vars(limits).items(), ("workers", workers)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if items_encoding is not None:
        check_encoding(items_encoding)  # also when no item file is found at first
    loader = partial(
        load_served, items_file=items_file, items_encoding=items_encoding, device=device
    )
    holder = ModelHolder(loader(Path(model_dir)), loader)

    app = FastAPI(
        title="dotrec",
        version=__version__,
        description="Top-K recommendations, fold-in and similar items from a dotrec model.",
    )
    app.state.holder = holder
    app.state.limits = limits
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    install_error_handlers(app)
    calls = _ModelCalls(workers)
    _add_status_routes(app, holder)
    _add_query_routes(app, holder, limits, calls)
    _add_admin_routes(app, holder, admin_token, allow_admin)
    return app


class _ModelCalls:
    """Runs blocking model calls on worker threads, ``workers`` at a time."""

    def __init__(self, workers: int):
        self.workers = workers
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        if self._limiter is None:  # made inside the event loop, on first use
            self._limiter = anyio.CapacityLimiter(self.workers)
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)


def _add_status_routes(app: FastAPI, holder: ModelHolder) -> None:
    @app.get("/health", response_model=HealthBody, tags=["status"])
    async def health() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", response_model=ReadyBody, tags=["status"])
    async def ready() -> dict[str, Any]:
        """Readiness: the model being served, with its sizes and fingerprint."""
        return {"status": "ready", "model": holder.current.info, "reloads": holder.reloads}


def _add_query_routes(
    app: FastAPI, holder: ModelHolder, limits: Limits, calls: _ModelCalls
) -> None:
    # Built here, under this server's limits; so a type checker sees them as
    # variables, not types (hence the ignores below).
    bodies = request_models(limits.max_k, limits.max_batch)
    BatchRequest, HistoryRequest = bodies.batch, bodies.history
    K = Annotated[int, Query(ge=1, le=limits.max_k, description="list length")]

    @app.get(
        "/users/{user_id:path}/recommendations",
        response_model=UserRecommendationsResponse,
        responses=_ERRORS,
        tags=["recommend"],
    )
    async def user_recommendations(
        user_id: str,
        k: K = 10,
        exclude_seen: bool = True,
        fallback: Fallback = "none",
    ) -> dict[str, Any]:
        """Top-K items for one known user; 404 for an unknown one unless fallback=popular."""
        served = holder.current
        recs = await calls.run(
            lambda: served.model.recommend(
                [user_id], k=k, exclude_seen=exclude_seen, fallback=_fallback(fallback)
            )
        )
        return {"model_id": served.model_id, "user_id": user_id, **_rows(served, recs)[0]}

    @app.post(
        "/recommendations",
        response_model=RecommendationsResponse,
        responses=_ERRORS,
        tags=["recommend"],
    )
    async def batch_recommendations(body: BatchRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """Top-K items for many users, in request order."""
        served = holder.current
        recs = await calls.run(
            lambda: served.model.recommend(
                body.users,
                k=body.k,
                exclude_seen=body.exclude_seen,
                fallback=_fallback(body.fallback),
            )
        )
        rows = _rows(served, recs)
        results = [{"user_id": u, **row} for u, row in zip(body.users, rows, strict=True)]
        return {"model_id": served.model_id, "results": results}

    @app.post(
        "/recommendations/from-history",
        response_model=HistoryResponse,
        responses=_ERRORS,
        tags=["recommend"],
    )
    async def history_recommendations(body: HistoryRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """Top-K items for people known only by the items they had (fold-in)."""
        served = holder.current
        recs = await calls.run(
            lambda: served.model.recommend_from_history(
                body.histories,
                k=body.k,
                exclude_seen=body.exclude_seen,
                unknown_items=body.unknown_items,
            )
        )
        results = [{"history": i, **row} for i, row in enumerate(_rows(served, recs))]
        return {"model_id": served.model_id, "results": results}

    @app.get(
        "/items/{item_id:path}/similar",
        response_model=SimilarItemsResponse,
        responses=_ERRORS,
        tags=["items"],
    )
    async def similar_items(item_id: str, k: K = 10) -> dict[str, Any]:
        """The K items most similar to one item (cosine of the model's item vectors)."""
        served = holder.current
        recs = await calls.run(lambda: served.model.similar_items([item_id], k=k))
        row = _rows(served, recs)[0]
        return {
            "model_id": served.model_id,
            "item_id": item_id,
            **_item_info(served, item_id),
            "items": row["items"],
        }


def _add_admin_routes(
    app: FastAPI, holder: ModelHolder, admin_token: str | None, allow_admin: bool
) -> None:
    def check_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not allow_admin:
            raise ServiceError(
                403,
                "the admin endpoints are off: the server listens beyond loopback without "
                "an admin token. Reload with SIGHUP, or restart with --admin-token.",
            )
        if admin_token is None:
            return
        given = (authorization or "").encode()
        if not hmac.compare_digest(given, f"Bearer {admin_token}".encode()):
            raise ServiceError(
                401,
                "this endpoint needs the header 'Authorization: Bearer TOKEN' with the "
                "server's admin token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses={
            401: {"model": ErrorBody, "description": "missing or wrong admin token"},
            403: {"model": ErrorBody, "description": "admin endpoints are off"},
            422: {"model": ErrorBody, "description": "model folder refused; old model serves"},
        },
        dependencies=[Depends(check_admin)],
        tags=["admin"],
    )
    async def reload(body: ReloadRequest | None = None) -> dict[str, Any]:
        """Load a model folder (default: the current one, read again) and swap it in.

        Requests keep being answered by the old model while the new one loads;
        a folder that fails to load or recommend is refused and the old model
        keeps serving.
        """
        model_dir = None if body is None else body.model_dir
        try:
            previous, served = await anyio.to_thread.run_sync(holder.reload, model_dir)
        except (DotrecError, OSError, ValueError) as err:
            current = holder.current
            _log.warning("reload refused, still serving %s: %s", current.model_id, err)
            raise ServiceError(
                422,
                f"model folder refused; still serving model {current.model_id}: {err}",
                {"model_dir": model_dir, "serving": current.info},
            ) from err
        return {"status": "reloaded", "model": served.info, "previous": previous.info}


def _fallback(option: str) -> str | None:
    return "popular" if option == "popular" else None


def _item_info(served: ServedModel, item_id: str) -> dict[str, Any]:
    info = served.items.get(item_id)
    if info is None:
        return {"title": None, "genres": None}
    return {"title": info.title, "genres": list(info.genres)}


def _rows(served: ServedModel, recs: Recommendations) -> list[dict[str, Any]]:
    """Each row of ``recs`` as ``{"fallback", "items"}``, with item metadata."""
    rows = []
    for r, count in enumerate(recs.counts.tolist()):
        item_ids = recs.item_ids[r, :count].tolist()
        scores = recs.scores[r, :count].tolist()
        items = [
            {"item_id": item_id, "score": score, **_item_info(served, item_id)}
            for item_id, score in zip(item_ids, scores, strict=True)
        ]
        rows.append({"fallback": bool(recs.fallback[r]), "items": items})
    return rows
