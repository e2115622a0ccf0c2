"""Request and response bodies of the HTTP service (pydantic; they make the OpenAPI schema).

Raw IDs are JSON strings: ``"0042"`` and ``"42"`` are two IDs, and a number
where an ID belongs is refused rather than guessed at. The request bodies
carry the server's limits (largest K, largest batch), so they are built by
:func:`request_models` once the limits are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "HealthBody",
    "HistoryRecommendations",
    "HistoryResponse",
    "ItemScore",
    "ModelInfo",
    "ReadyBody",
    "RecommendationsResponse",
    "ReloadRequest",
    "ReloadResponse",
    "RequestModels",
    "SimilarItemsResponse",
    "UserRecommendations",
    "UserRecommendationsResponse",
    "request_models",
]

Fallback = Literal["none", "popular"]


class ErrorBody(BaseModel):
    """Every error: a one-line message, and structured detail when there is some."""

    error: str = Field(description="what went wrong and how to fix it")
    detail: Any = Field(None, description="the IDs, fields or limits concerned")


class HealthBody(BaseModel):
    status: Literal["ok"] = "ok"


class ModelInfo(BaseModel):
    model_id: str = Field(description="first 16 hex digits of the weights' SHA-256")
    model: str = Field(description="model type, as `dotrec train --model` names it")
    model_dir: str
    dotrec_version: str | None = Field(description="the dotrec version that saved the model")
    n_users: int
    n_items: int
    fingerprint: str | None = Field(description="fingerprint of the training interactions")
    score_kind: str = Field(description="what a score means for this model")
    item_metadata: str | None = Field(description="the file titles and genres come from")
    loaded_at: str = Field(description="when this model was loaded (UTC, ISO 8601)")


class ReadyBody(BaseModel):
    status: Literal["ready"] = "ready"
    model: ModelInfo
    reloads: int = Field(description="successful reloads since the server started")


class ItemScore(BaseModel):
    item_id: str
    score: float = Field(description="the model's score (see score_kind); higher is better")
    title: str | None = Field(None, description="null when no item metadata is known")
    genres: list[str] | None = Field(None, description="null when no item metadata is known")


class UserRecommendations(BaseModel):
    user_id: str
    fallback: bool = Field(description="true: an unknown user answered with popular items")
    items: list[ItemScore] = Field(description="best first; shorter than k when few remain")


class UserRecommendationsResponse(UserRecommendations):
    model_id: str


class RecommendationsResponse(BaseModel):
    model_id: str
    results: list[UserRecommendations] = Field(description="one per user, in request order")


class HistoryRecommendations(BaseModel):
    history: int = Field(description="position of the history in the request")
    fallback: bool = Field(description="true: an empty history answered with popular items")
    items: list[ItemScore]


class HistoryResponse(BaseModel):
    model_id: str
    results: list[HistoryRecommendations]


class SimilarItemsResponse(BaseModel):
    model_id: str
    item_id: str
    title: str | None = None
    genres: list[str] | None = None
    items: list[ItemScore] = Field(description="most similar first (cosine); itself left out")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_dir: str | None = Field(
        None, description="model folder to serve; default: the current folder, read again"
    )


class ReloadResponse(BaseModel):
    status: Literal["reloaded"] = "reloaded"
    model: ModelInfo
    previous: ModelInfo


@dataclass(frozen=True)
class RequestModels:
    """The request bodies under one server's limits."""

    batch: type[BaseModel]
    history: type[BaseModel]


def request_models(max_k: int, max_batch: int) -> RequestModels:
    """Request bodies whose ``k`` and batch size are bounded by the server's limits."""

    class BatchRequest(BaseModel):
        """Top-K for many known users at once."""

        model_config = ConfigDict(extra="forbid")

        users: list[str] = Field(min_length=1, max_length=max_batch, description="raw user IDs")
        k: int = Field(10, ge=1, le=max_k)
        exclude_seen: bool = Field(True, description="leave out the users' training items")
        fallback: Fallback = Field(
            "none", description="'popular': answer unknown users with popular items, not 404"
        )

    class HistoryRequest(BaseModel):
        """Top-K for people known only by lists of item IDs (fold-in)."""

        model_config = ConfigDict(extra="forbid")

        histories: list[list[str]] = Field(
            min_length=1, max_length=max_batch, description="one list of raw item IDs per person"
        )
        k: int = Field(10, ge=1, le=max_k)
        exclude_seen: bool = Field(True, description="leave out each history's own items")
        unknown_items: Literal["error", "ignore"] = Field(
            "error", description="'error': 404 naming unknown item IDs; 'ignore': drop them"
        )

    return RequestModels(BatchRequest, HistoryRequest)
