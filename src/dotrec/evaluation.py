"""Full-ranking evaluation of any Recommender, and of ready-made lists.

For each user with at least one positive test item, every item in the
model's catalogue is ranked, the user's training items are removed from the
candidates, and the top K are compared with the test items. Test pairs that
were also training pairs are reported and removed (or refused). Test rows
whose user the model never saw are reported and not ranked; test items the
model never saw stay relevant, so they count as misses: a model cannot get
credit for items it cannot recommend.

Sampled metrics (``sampled=N``) rank each test item among N negatives drawn
for it instead of among the whole catalogue. They are cheaper on huge
catalogues but can order models differently from full ranking (Krichene and
Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020), so they are
only computed when asked for, and always beside the full-ranking figures.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from dotrec.data import Interactions, Vocabulary, ids_to_text
from dotrec.data._checks import describe_rows
from dotrec.data._interactions import require_interactions
from dotrec.data._readers import read_text
from dotrec.exceptions import DataError, DataWarning, EmptyDataError
from dotrec.metrics import METRICS, coverage, hits_from_keys
from dotrec.models.base import Recommender
from dotrec.ranking import RankedUsers, overlap_mask, rank_users, to_model_space
from dotrec.sampling import UniformSampler

__all__ = [
    "EvaluationResult",
    "RatingResult",
    "evaluate",
    "evaluate_lists",
    "evaluate_ratings",
    "read_lists",
    "sampled_metrics",
]

_log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    """Metrics averaged over evaluated users, with what was left out and why.

    Attributes:
        metrics: ``{"ndcg@10": 0.41, ...}``, each the mean over ``n_users``
            (every user weighs the same), plus ``coverage@K``.
        n_users: users evaluated (those with a positive test item the model
            can rank).
        per_user: one row per evaluated user (``user_id`` and each metric).
        notes: counts of what was left out (unknown users, unknown items,
            pairs also in training).
        recommendations: the top-K lists used, when asked for.
        top_items: int64 tensor (n_users, max K) of the ranked items in the
            model's item indices, -1 past a short list, one row per row of
            ``per_user`` (for beyond-accuracy measures); None for
            :func:`evaluate_lists`.
    """

    metrics: dict[str, float]
    n_users: int
    per_user: pd.DataFrame
    notes: dict[str, object] = field(default_factory=dict)
    recommendations: pd.DataFrame | None = None
    top_items: torch.Tensor | None = None

    def table(self) -> str:
        """The metrics as an aligned text table, one row per K."""
        if self.n_users == 0:
            return "no users to evaluate: every metric is not available (n/a)"
        by_k: dict[int, dict[str, float]] = {}
        for key, value in self.metrics.items():
            name, k = key.split("@")
            by_k.setdefault(int(k), {})[name] = value
        names = list(next(iter(by_k.values())))
        widths = [max(9, len(n)) for n in names]
        lines = ["   K  " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))]
        for k, row in sorted(by_k.items()):
            cells = (f"{row[n]:>{w}.4f}" for n, w in zip(names, widths, strict=True))
            lines.append(f"{k:>4}  " + "  ".join(cells))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "n_users": self.n_users, "notes": self.notes}


def evaluate(
    model: Recommender,
    test: Interactions,
    k: int | Sequence[int] = 10,
    *,
    on_overlap: Literal["drop", "raise"] = "drop",
    batch_size: int = 1024,
    return_recommendations: bool = False,
    sampled: int | None = None,
    seed: int = 0,
) -> EvaluationResult:
    """Rank the whole catalogue for every test user and score the top ``k``.

    Args:
        model: a fitted model.
        test: held-out interactions; only positive rows are relevant.
        k: one cutoff or several.
        on_overlap: test pairs that were training pairs are removed with a
            warning (``"drop"``) or make evaluation fail (``"raise"``).
        batch_size: users ranked at once.
        return_recommendations: keep the top-max(k) lists in the result.
        sampled: also rank each test item among this many sampled negatives
            (see :func:`sampled_metrics`), adding ``sampled_recall@K`` and
            ``sampled_ndcg@K`` beside the full-ranking metrics. Off by default:
            sampled metrics can order models differently from full ranking.
        seed: seed of the sampled negatives.

    Raises:
        ValueError: a cutoff or ``sampled`` is not a positive integer.
        EmptyDataError: the test set has no positive interactions.
        DataError: overlap with ``on_overlap="raise"``.
    """
    require_interactions(test, "evaluate()")
    ks = _cutoffs(k)
    if sampled is not None and (
        isinstance(sampled, bool) or not isinstance(sampled, (int, np.integer)) or sampled < 1
    ):
        raise ValueError(
            f"sampled (--sampled) must be a positive number of negatives, got {sampled!r}"
        )
    positives = test.subset(test.positive)
    if len(positives) == 0:
        raise EmptyDataError(f"{test.source}: the test set has no interactions to evaluate.")

    user_idx, item_idx, notes = to_model_space(model.users, model.items, positives)
    keep = _not_in_training(model, user_idx, item_idx, notes, on_overlap, test.source)
    user_idx, item_idx = user_idx[keep], item_idx[keep]
    ranked = rank_users(model, user_idx, item_idx, ks, batch_size=batch_size)
    if sampled is not None:
        extra = sampled_metrics(model, user_idx, item_idx, ks, sampled, seed, batch_size)
        ranked.per_user.update(extra)
        notes["sampled_negatives"] = int(sampled)
    return _result(model, ranked, ks, notes, return_recommendations)


def _cutoffs(k: int | Sequence[int]) -> list[int]:
    """The sorted distinct cutoffs; each must be a positive integer."""
    values = [k] if isinstance(k, (int, np.integer)) else list(k)
    if not values or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in values
    ):
        raise ValueError(f"k must be a positive integer (or several), got {k!r}")
    return sorted({int(v) for v in values})


def _not_in_training(model, user_idx, item_idx, notes, on_overlap, source) -> np.ndarray:
    """Bool mask of the test rows that are not training pairs; warns or raises about the rest."""
    if on_overlap not in ("drop", "raise"):
        raise ValueError(f"on_overlap must be 'drop' or 'raise', got {on_overlap!r}")
    seen = overlap_mask(model.seen, user_idx, item_idx)
    notes["overlap_with_train"] = int(seen.sum())
    if not seen.any():
        return ~seen
    first = (model.users.ids[user_idx[seen][0]], model.items.ids[item_idx[seen][0]])
    msg = (
        f"{source}: {int(seen.sum())} test (user, item) pairs also occur in the training data, "
        f"e.g. {first}"
    )
    if on_overlap == "raise":
        raise DataError(
            msg + ". Remove them from the test set, or evaluate with on_overlap='drop' "
            "(command line: --on-overlap drop)."
        )
    warnings.warn(
        msg + "; they were removed from the test set before evaluation.", DataWarning, stacklevel=3
    )
    return ~seen


def _result(model, ranked: RankedUsers, ks, notes, keep_lists) -> EvaluationResult:
    users = ranked.users
    columns = {name: values.numpy() for name, values in ranked.per_user.items()}
    frame = pd.DataFrame({"user_id": model.users.ids[users], **columns})
    metrics = {name: float(values.mean()) for name, values in columns.items()} if len(users) else {}
    recommendations = None
    if len(users):
        top = ranked.top
        for kk in ks:
            metrics[f"coverage@{kk}"] = coverage(top[:, :kk], len(model.items))
        if keep_lists:
            rows, cols = np.nonzero(top.numpy() >= 0)
            recommendations = pd.DataFrame(
                {
                    "user_id": model.users.ids[users[rows]],
                    "item_id": model.items.ids[top.numpy()[rows, cols]],
                    "rank": cols + 1,
                }
            )
    notes["users_evaluated"] = len(users)
    return EvaluationResult(metrics, len(users), frame, notes, recommendations, ranked.top)


def sampled_metrics(
    model: Recommender,
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    k: Sequence[int],
    n_negatives: int,
    seed: int = 0,
    batch_size: int = 1024,
) -> dict[str, torch.Tensor]:
    """Per-user recall and NDCG with each test item ranked among sampled negatives.

    For each relevant pair (u, i), ``n_negatives`` items are drawn uniformly,
    with replacement, from the items of the model's catalogue that are
    neither training nor test positives of u (:class:`~dotrec.sampling.
    UniformSampler`, seeded). The rank of i is one plus the number of
    negatives scored at least as high (ties count against the test item).
    Per pair, hit@K = [rank <= K] and NDCG@K = hit@K / log2(rank + 1); a
    user's ``sampled_recall@K`` and ``sampled_ndcg@K`` are their means over
    the user's test items. With one test item per user these are the usual
    sampled hit rate and NDCG. An item the model never saw is a miss.

    Args:
        model: a fitted model.
        user_idx: int64 (N,) the user of each relevant pair, in model indices.
        item_idx: int64 (N,) its item, -1 for an item the model never saw.
        k: the sorted distinct cutoffs.
        n_negatives: negatives drawn per test pair.
        seed: seed of the draws; the same seed gives the same negatives.
        batch_size: users scored at once.

    Returns:
        ``{"sampled_recall@10": tensor (U,), "sampled_ndcg@10": ...}`` over
        the distinct users of ``user_idx``, ascending, as in
        :func:`~dotrec.ranking.rank_users`.
    """
    users = np.unique(user_idx)
    positives = _positives(model, user_idx, item_idx)
    _warn_few_negatives(positives, users, n_negatives)
    sampler = UniformSampler(positives)
    generator = torch.Generator().manual_seed(seed)
    order = np.argsort(user_idx, kind="stable")
    pair_users, pair_items = user_idx[order], item_idx[order]
    bounds = np.searchsorted(pair_users, users)
    ranks = []
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        lo = bounds[start]
        hi = bounds[start + batch_size] if start + batch_size < len(users) else len(pair_users)
        negatives = sampler.sample(torch.from_numpy(pair_users[lo:hi]), n_negatives, generator)
        row_of_pair = torch.from_numpy(np.searchsorted(rows, pair_users[lo:hi]))
        ranks.append(_sampled_ranks(model, rows, row_of_pair, pair_items[lo:hi], negatives))
    rank = torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.float64)

    # Per-pair values, then the mean over each user's pairs.
    position = torch.from_numpy(np.searchsorted(users, pair_users))
    n_pairs = torch.bincount(position, minlength=len(users)).double()
    out = {}
    for kk in k:
        hit = (rank <= kk).double()
        gain = hit / torch.log2(rank + 1)
        for name, per_pair in (("recall", hit), ("ndcg", gain)):
            total = torch.zeros(len(users), dtype=torch.float64).index_add_(0, position, per_pair)
            out[f"sampled_{name}@{kk}"] = total / n_pairs.clamp(min=1)
    return out


def _warn_few_negatives(positives: sp.csr_array, users: np.ndarray, n_negatives: int) -> None:
    """Warn when users have fewer distinct negatives than are drawn (so draws repeat)."""
    available = positives.shape[1] - np.diff(positives.indptr)[users]
    short = available < n_negatives
    if short.any():
        warnings.warn(
            f"sampled metrics: {int(short.sum())} of {len(users)} users have fewer items they "
            f"never interacted with than the {n_negatives} negatives drawn (as few as "
            f"{int(available.min())}), so their negatives repeat and their sampled metrics "
            "say little; lower --sampled (sampled=) or rely on the full-ranking metrics",
            DataWarning,
            stacklevel=3,
        )


def _positives(model: Recommender, user_idx: np.ndarray, item_idx: np.ndarray) -> sp.csr_array:
    """CSR (n_users, n_items) of each user's training and (known) test positives."""
    known = item_idx >= 0
    shape = (len(model.users), len(model.items))
    test = sp.csr_array(
        (np.ones(int(known.sum()), dtype=np.float32), (user_idx[known], item_idx[known])),
        shape=shape,
    )
    return sp.csr_array(model.seen + test)


def _sampled_ranks(model, rows, row_of_pair, pair_items, negatives) -> torch.Tensor:
    """Float64 (P,) rank of each test item among its negatives; beyond them when unknown."""
    with torch.no_grad():
        # The scores that full ranking uses, so that both protocols judge one model.
        scores = model._score_users(torch.from_numpy(rows))
        on = scores.device
        items, row_of_pair = torch.from_numpy(pair_items).to(on), row_of_pair.to(on)
        negatives = negatives.to(on)
        positive = scores[row_of_pair, items.clamp(min=0)]
        negative = scores[row_of_pair.unsqueeze(1), negatives.clamp(min=0)]
        above = ((negative >= positive.unsqueeze(1)) & (negatives >= 0)).sum(1)
        rank = torch.where(items >= 0, 1.0 + above.double(), torch.inf)
    return rank.cpu()


def read_lists(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV of top-K lists (``user_id,item_id,rank``), checked as :func:`evaluate_lists` does.

    IDs stay text as written; ranks become integers.

    Raises:
        FileNotFoundError: the file does not exist.
        DataError: not a CSV of lists, or a bad rank or repeat; the message
            names the file, the column or the lines, and the value.
    """
    text = read_text(Path(path), encoding)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: not a CSV of lists ({err}).") from err
    return _checked_lists(frame, str(path), first_line=2)


def _checked_lists(recs: pd.DataFrame, source: str, first_line: int = 1) -> pd.DataFrame:
    """The lists with text IDs and integer ranks; each item and rank once per user."""
    missing = [col for col in ("user_id", "item_id", "rank") if col not in recs.columns]
    if missing:
        raise DataError(
            f"{source}: lists need the columns user_id, item_id, rank; no {missing[0]!r} column "
            f"among {list(map(str, recs.columns))}."
        )
    where = "row" if first_line == 1 else "line"
    lines = np.arange(len(recs)) + first_line
    raw = recs["rank"].to_numpy(dtype=object)
    rank = pd.to_numeric(recs["rank"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(rank) & (rank >= 1) & (rank == np.floor(rank)))
    if bad.any():
        at = np.flatnonzero(bad)
        raise DataError(
            f"{source}: {len(at)} rank{'s are' if len(at) > 1 else ' is'} not a whole number of "
            f"at least 1, at {describe_rows(at, lines, where)} (first value seen: "
            f"{raw[at[0]]!r}). Rank 1 is each user's best item."
        )
    out = pd.DataFrame(
        {
            "user_id": ids_to_text(recs["user_id"]),
            "item_id": ids_to_text(recs["item_id"]),
            "rank": rank.astype(np.int64),
        }
    )
    for columns, what in ((["user_id", "item_id"], "item"), (["user_id", "rank"], "rank")):
        repeated = out.duplicated(columns, keep=False).to_numpy()
        if repeated.any():
            at = np.flatnonzero(repeated)
            user, value = out.iloc[at[0]][columns]
            shown = f"({user!r}, {value!r})" if what == "item" else f"{value}"
            raise DataError(
                f"{source}: the list of user {user!r} holds {what} {shown} more than once, at "
                f"{describe_rows(at, lines, where)}; each user's list gives each item one rank "
                "and each rank one item."
            )
    return out


def evaluate_lists(
    recommendations: pd.DataFrame, test: Interactions, k: int | Sequence[int] = 10
) -> EvaluationResult:
    """Score ready-made top-K lists against test interactions.

    Args:
        recommendations: columns ``user_id``, ``item_id``, ``rank`` (1 = best,
            whole numbers; text such as ``"10"`` is read as a number). Each
            user's list holds each item and each rank once.
        test: relevant items per user; every test user is evaluated, including
            users with no list (all metrics 0 for them).
        k: one cutoff or several.

    Raises:
        ValueError: a cutoff is not a positive integer.
        DataError: a column is missing, a rank is not a whole number of at
            least 1, or a user's list repeats an item or a rank.
        EmptyDataError: the test set has no positive interactions.
    """
    require_interactions(test, "evaluate_lists()")
    ks = _cutoffs(k)
    recommendations = _checked_lists(recommendations, "recommendations")
    positives = test.subset(test.positive)
    if len(positives) == 0:
        raise EmptyDataError(f"{test.source}: the test set has no interactions to evaluate.")
    users = Vocabulary(np.unique(positives.users.ids[positives.user_idx]))
    items = Vocabulary(
        np.unique(
            np.concatenate(
                [positives.items.ids[positives.item_idx], ids_to_text(recommendations["item_id"])]
            )
        )
    )
    test_u = users.index(positives.users.ids[positives.user_idx])
    test_i = items.index(positives.items.ids[positives.item_idx])
    keys = torch.from_numpy(np.unique(test_u * len(items) + test_i))

    recs = recommendations.assign(user_id=ids_to_text(recommendations["user_id"]))
    recs = recs[users.lookup(recs["user_id"]) >= 0].sort_values(["user_id", "rank"])
    rec_u = users.index(recs["user_id"])
    position = recs.groupby("user_id").cumcount().to_numpy()
    longest = int(position.max()) + 1 if len(position) else 0
    width = min(max(ks), longest)  # the hits matrix need not reach past the longest list
    top = np.full((len(users), width), -1, dtype=np.int64)
    keep = position < width
    top[rec_u[keep], position[keep]] = items.index(ids_to_text(recs["item_id"]))[keep]

    if longest < max(ks):
        warnings.warn(
            f"the longest list holds {longest} items but K={max(ks)}: precision@{max(ks)} "
            f"still divides by {max(ks)}, so lists written with a smaller K score lower than "
            "they would.",
            DataWarning,
            stacklevel=2,
        )
    rows = torch.arange(len(users))
    hits = hits_from_keys(torch.from_numpy(top), rows, keys, len(items))
    rel = torch.from_numpy(np.bincount(test_u, minlength=len(users)))
    columns = {
        f"{name}@{kk}": fn(hits, rel, kk).numpy() for kk in ks for name, fn in METRICS.items()
    }
    frame = pd.DataFrame({"user_id": users.ids, **columns})
    metrics = {name: float(values.mean()) for name, values in columns.items()}
    return EvaluationResult(metrics, len(users), frame, {"test_rows": len(positives)})


@dataclass
class RatingResult:
    """Errors of predicted ratings on test rows.

    Attributes:
        metrics: ``{"rmse": ..., "mae": ...}`` over the rows evaluated.
        n_rows: test rows evaluated (those whose user and item the model knows).
        notes: counts of the rows left out and why.
    """

    metrics: dict[str, float]
    n_rows: int
    notes: dict[str, object] = field(default_factory=dict)

    def table(self) -> str:
        """The metrics as two aligned lines."""
        if self.n_rows == 0:
            return "no test rating to evaluate: RMSE and MAE are not available (n/a)"
        return "\n".join(f"{name:>5}  {value:.4f}" for name, value in self.metrics.items())

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "n_rows": self.n_rows, "notes": self.notes}


def evaluate_ratings(
    model: Recommender,
    test: Interactions,
    *,
    on_overlap: Literal["drop", "raise"] = "drop",
    batch_size: int = 65536,
) -> RatingResult:
    """RMSE and MAE of a rating model's predictions on the test rows' ratings.

    Every test row with a rating counts, labelled or not. Rows whose user or
    item the model never saw cannot be predicted: they are counted in
    ``notes`` and left out. Test pairs that were training pairs are removed
    (or refused), as in :func:`evaluate`.

    Example:
        >>> from dotrec import Interactions, MatrixFactorization
        >>> train = Interactions.from_ids(["a", "a", "b"], ["x", "y", "x"], rating=[5, 1, 4])
        >>> model = MatrixFactorization(loss="mse", embedding_dim=2, epochs=300, lr=0.05)
        >>> test = Interactions.from_ids(["b"], ["y"], rating=[1])
        >>> sorted(evaluate_ratings(model.fit(train), test).metrics)
        ['mae', 'rmse']

    Raises:
        ValueError: the model does not predict ratings (``model.predicts_ratings``).
        DataError: the test data has no ratings, or overlap with
            ``on_overlap="raise"``.
    """
    require_interactions(test, "evaluate_ratings()")
    if not model.predicts_ratings:
        raise ValueError(
            f"{type(model).__name__} scores are not ratings ({model.score_kind}), so RMSE and "
            "MAE mean nothing; train a rating model, e.g. MatrixFactorization(loss='mse')."
        )
    if test.rating is None:
        raise DataError(f"{test.source}: the test data has no rating column to compare with.")
    known_user = model.users.lookup(test.users.ids)[test.user_idx] >= 0
    user_idx, item_idx, notes = to_model_space(model.users, model.items, test)
    keep = (item_idx >= 0) & _not_in_training(
        model, user_idx, item_idx, notes, on_overlap, test.source
    )
    user_idx, item_idx, rating = user_idx[keep], item_idx[keep], test.rating[known_user][keep]

    errors = np.empty(len(user_idx), dtype=np.float64)
    for start in range(0, len(user_idx), batch_size):
        part = slice(start, start + batch_size)
        predicted = model.score(model.users.ids[user_idx[part]], model.items.ids[item_idx[part]])
        errors[part] = np.asarray(predicted, dtype=np.float64) - rating[part]
    notes["rows_evaluated"] = len(errors)
    if len(errors) == 0:
        return RatingResult({}, 0, notes)
    metrics = {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}
    return RatingResult(metrics, len(errors), notes)
