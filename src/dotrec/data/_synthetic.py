"""A synthetic interaction log with the structure of real ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dotrec.data._datasets import Dataset
from dotrec.data._interactions import Interactions

__all__ = ["synthetic"]

_GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Documentary", "Family"]


def synthetic(
    n_users: int = 600,
    n_items: int = 900,
    n_genres: int = 6,
    mean_per_user: float = 60.0,
    seed: int = 0,
) -> Dataset:
    """Generate a dataset with taste clusters, popularity skew and time order.

    Each item belongs to one genre and has a popularity drawn from a Zipf-like
    law; each user likes one or two genres. A user's interactions are drawn
    without replacement, with log-odds = affinity to the item's genre +
    log popularity + noise. The number of interactions per user is
    log-normal (at least 10), timestamps increase through each history, and
    ratings 1-5 grow with affinity. A model that learns the structure beats
    popularity on a held-out split, as on MovieLens.

    Returns:
        A :class:`Dataset` named ``synthetic`` with titles and genres.

    Example:
        >>> data = synthetic(n_users=50, n_items=40, seed=1)
        >>> data.interactions.n_users
        50
    """
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, n_genres, n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    log_pop = np.log(rng.permutation(popularity))
    taste = np.full((n_users, n_genres), -2.0)
    taste[np.arange(n_users), rng.integers(0, n_genres, n_users)] = 2.0
    second = rng.random(n_users) < 0.5
    taste[np.flatnonzero(second), rng.integers(0, n_genres, int(second.sum()))] = 1.0

    logits = taste[:, item_genre] + log_pop[None, :] + rng.gumbel(size=(n_users, n_items))
    counts = np.clip(rng.lognormal(np.log(mean_per_user), 0.6, n_users), 10, n_items // 2)
    counts = counts.astype(int)
    ranked = np.argsort(-logits, axis=1)
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([ranked[u, : counts[u]] for u in range(n_users)])
    affinity = taste[users, item_genre[items]] + rng.normal(0, 1, len(users))
    rating = np.clip(np.round(3 + affinity / 1.5), 1, 5)
    start = rng.integers(1_600_000_000, 1_650_000_000, n_users)
    steps = rng.exponential(86_400, len(users)).astype(np.int64)
    within = np.concatenate([np.cumsum(steps[users == u]) for u in range(n_users)])
    timestamp = start[users] + within

    interactions = Interactions.from_ids(
        [f"user{u + 1}" for u in users],
        [f"item{i + 1}" for i in items],
        rating=rating,
        timestamp=timestamp,
        source="synthetic",
    )
    names = [_GENRES[g % len(_GENRES)] for g in item_genre]
    meta = pd.DataFrame(
        {"title": [f"Synthetic {g} title #{i + 1}" for i, g in enumerate(names)], "genres": names},
        index=pd.Index([f"item{i + 1}" for i in range(n_items)], name="item_id"),
    )
    return Dataset("synthetic", interactions, meta)
