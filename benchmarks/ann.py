"""Approximate top-10 against exact ranking on a synthetic catalogue of a million items.

The model is a biased matrix factorization (``<p_u, q_i> + b_u + b_i``,
``embedding_dim`` 64) whose vectors are drawn with the structure of a trained
catalogue, so that recall is measured against a real target and not noise:

- items fall in ``n_items / 1000`` clusters of very unequal sizes (Dirichlet
  0.5); each item is its cluster's centre plus noise;
- popularity is Zipf-distributed; an item's norm grows with the log of its
  popularity (times log-normal noise) and so does its bias;
- each user is the sum of one to three cluster centres (drawn by cluster
  size) plus noise, with a small bias, and has seen about 30 items, drawn
  by popularity, which every list leaves out.

Exact top-10 is ``model.recommend(users, exact=True)``: every item scored
in Torch and ranked by dotrec's top-K routine. The approximate lists are
``model.recommend(users, exact=False)`` after ``model.build_index(kind)``:
the same call, answered through the faiss index, over-fetched past the seen
items and rescored exactly. Query time is the median over batches of 100
users, per user; recall@10 is the share of the exact top-10 found.

    python benchmarks/ann.py [--n-items 1000000] [--n-users 1000] [--kinds ivf hnsw]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch

from dotrec import MatrixFactorization
from dotrec.data import Vocabulary

# Query-time settings tried on each built index (one build per kind).
QUERY_SETTINGS = {
    "ivf": ("nprobe", [16, 32, 64, 128]),
    "hnsw": ("ef_search", [256, 1024, 2048]),
}


def synthetic_model(n_items: int, n_users: int, dim: int, seed: int) -> MatrixFactorization:
    """A matrix factorization with clustered, popularity-skewed item vectors."""
    rng = np.random.default_rng(seed)
    n_clusters = max(n_items // 1000, 10)
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32) / np.sqrt(dim)
    sizes = rng.dirichlet(np.full(n_clusters, 0.5))
    cluster = rng.choice(n_clusters, n_items, p=sizes)
    items = centres[cluster]
    items += 0.6 * rng.standard_normal((n_items, dim), dtype=np.float32) / np.sqrt(dim)
    items /= np.linalg.norm(items, axis=1, keepdims=True)

    # Norms and biases grow with popularity: the popular items win most lists.
    popularity = rng.zipf(1.6, n_items).clip(max=10**5).astype(np.float32)
    norms = rng.lognormal(0, 0.25, n_items).astype(np.float32)
    items *= (norms * (0.6 + 0.15 * np.log(popularity)))[:, None]
    item_bias = 0.3 * np.log(popularity) + 0.2 * rng.standard_normal(n_items)

    mixtures = [rng.choice(n_clusters, rng.integers(1, 4), p=sizes) for _ in range(n_users)]
    users = np.stack([centres[chosen].sum(0) for chosen in mixtures])
    users = 3 * (users + 0.5 * rng.standard_normal((n_users, dim)) / np.sqrt(dim))
    user_bias = 0.1 * rng.standard_normal(n_users)

    model = MatrixFactorization(embedding_dim=dim, device="cpu")
    model._load_tensors(
        {
            "user_embedding.weight": torch.from_numpy(users.astype(np.float32)),
            "item_embedding.weight": torch.from_numpy(items),
            "user_bias.weight": torch.from_numpy(user_bias.astype(np.float32)[:, None]),
            "item_bias.weight": torch.from_numpy(item_bias.astype(np.float32)[:, None]),
        }
    )
    model.users = Vocabulary([f"u{u}" for u in range(n_users)])
    model.items = Vocabulary([f"i{i}" for i in range(n_items)])
    model.seen = _seen(rng, popularity, n_users)
    model.item_counts = np.asarray(model.seen.sum(axis=0)).ravel().astype(np.int64)
    return model


def _seen(rng: np.random.Generator, popularity: np.ndarray, n_users: int) -> sp.csr_array:
    """About 30 items per user, drawn in proportion to popularity."""
    p = popularity / popularity.sum()
    rows = [np.unique(rng.choice(len(p), rng.poisson(30) + 1, p=p)) for _ in range(n_users)]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    data = np.ones(indptr[-1], dtype=np.float32)
    return sp.csr_array((data, np.concatenate(rows), indptr), shape=(n_users, len(p)))


def timed_lists(model, users: np.ndarray, batch: int, exact: bool):
    """The top-10 lists of ``users`` and the median time per user (ms) over batches."""
    lists, per_user = [], []
    for start in range(0, len(users), batch):
        part = users[start : start + batch]
        began = time.perf_counter()
        recs = model.recommend(part, k=10, exact=exact)
        per_user.append((time.perf_counter() - began) * 1000 / len(part))
        lists.append(recs.item_ids)
    return np.concatenate(lists), statistics.median(per_user)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    found = [len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=1_000_000)
    parser.add_argument("--n-users", type=int, default=1000, help="query users")
    parser.add_argument("--dim", type=int, default=64, help="embedding_dim")
    parser.add_argument("--kinds", nargs="+", default=["ivf", "hnsw"], choices=["ivf", "hnsw"])
    parser.add_argument("--batch", type=int, default=100, help="users per recommend call")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    began = time.perf_counter()
    model = synthetic_model(args.n_items, args.n_users, args.dim, args.seed)
    users = model.users.ids
    print(
        f"catalogue: {args.n_items:,} items, embedding_dim {args.dim} (+ bias), "
        f"{args.n_users:,} query users, ~30 seen items each; made in "
        f"{time.perf_counter() - began:.0f} s; torch threads {torch.get_num_threads()}, "
        f"{platform.processor() or platform.machine()}",
        flush=True,
    )
    exact, exact_ms = timed_lists(model, users, args.batch, exact=True)
    print(f"exact: {exact_ms:.2f} ms per user (batches of {args.batch})", flush=True)

    header = (
        f"{'kind':<6}{'build settings':<28}{'query':<16}{'build s':>8}{'ms/user':>9}"
        f"{'speed-up':>10}{'recall@10':>11}{'size MB':>9}"
    )
    rows = [header, "-" * len(header)]
    for kind in args.kinds:
        model.build_index(kind)
        index = model.ann_indexes["recommend"]
        size = len(index.to_bytes()) / 2**20
        name, values = QUERY_SETTINGS[kind]
        shown = ("nlist",) if kind == "ivf" else ("m", "ef_construction")
        built = ", ".join(f"{k}={getattr(index.settings, k)}" for k in shown)
        for value in values:
            setattr(index.settings, name, value)
            approx, ms = timed_lists(model, users, args.batch, exact=False)
            rows.append(
                f"{kind:<6}{built:<28}{f'{name}={value}':<16}{index.build_seconds:>8.0f}"
                f"{ms:>9.3f}{exact_ms / ms:>9.0f}x{recall(approx, exact):>11.3f}{size:>9.0f}"
            )
            print(rows[-1], flush=True)
    print()
    print("\n".join(rows))
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
