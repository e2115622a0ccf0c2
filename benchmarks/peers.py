"""dotrec's models against their peers (implicit ALS and BPR, LightFM WARP), one split each.

Datasets: ml-100k and ml-latest-small, every rating a positive,
``dotrec.random_split(data, 0.2, seed=0)``; Gowalla with its published
NGCF/LightGCN train/test split as given (``dotrec.data.load_split``).

Models: every name in ``dotrec.models.MODELS`` when the script runs, each with
its defaults (the two-tower model also gets the dataset's side features), and
the peers:

- implicit ALS: 128 factors, regularization 50, confidence ``1 + 5 r``, 15
  iterations on MovieLens (the tuned setting of the issue); on Gowalla
  ``GOWALLA_ALS`` below (confidence ``1 + 50 r``), the best of a grid on a
  10% validation split of the training side;
- implicit BPR: 128 factors, learning rate 0.01, regularization 0.001, 50
  iterations;
- LightFM WARP, when ``lightfm`` imports (see ``LIGHTFM_NOTE``).

Where a peer's setting was tuned on a validation split (Gowalla's ALS), the dotrec
model tuned on the same split (``TUNED``) runs as an extra row beside its defaults.

Every model is fitted on the same training side and scored by the same code,
``dotrec.evaluate`` (full ranking, training items removed): peer factors are
wrapped in a small :class:`~dotrec.Recommender`. Each fit runs in its own
child process (spawned, so one process tree), which gives each model its own
peak memory: the peak resident set size of that process during ``fit``
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``; where that
is not allowed, ``getrusage`` ``ru_maxrss`` since the process started),
which includes Python, Torch and the data (about 0.3-0.6 GB), and beside it
the growth over the resident size just before ``fit``. A child that runs
past ``--budget-min`` is stopped and its model reported as skipped.
Training time is the wall time of ``fit``, the median over ``--repeats``;
the load average printed beside it says how busy the machine was.

    pip install -e '.[bench]'
    DOTREC_DATA=../shared/data python benchmarks/peers.py --repeats 1
    DOTREC_DATA=../shared/data python benchmarks/peers.py --datasets gowalla --skip-slow
"""

# ruff: noqa: E402  (the environment is set before numpy is imported)
from __future__ import annotations

import os

# implicit parallelises itself and recommends single-threaded BLAS (it warns
# otherwise); OpenBLAS reads this when it is loaded, so before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import inspect
import json
import multiprocessing
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

import dotrec
from dotrec.models import MODELS
from dotrec.models.base import Recommender

DATASETS = ("ml-100k", "ml-latest-small", "gowalla")

GOWALLA_ALS = {"factors": 128, "regularization": 50.0, "confidence": 50.0, "iterations": 15}
"""implicit ALS on Gowalla: the best Recall@20 of 11 settings (regularization 10 to 200,
confidence 5 to 100, 128 factors, 15 iterations) on a 10% random validation split of
the training side (0.182; regularization 50 with confidence 5, the MovieLens setting:
0.152)."""

TUNED = {"gowalla": {"als": {"regularization_exponent": 0.75}}}
"""dotrec settings tuned like their peer's, run as an extra row ``<model> tuned`` beside
the defaults: on Gowalla, ALS's frequency-scaled penalty, chosen on the same 10%
validation split as ``GOWALLA_ALS`` (Recall@20 there: exponent 0 0.182, 0.25 0.184,
0.5 0.185, 0.75 0.186, 1 0.184, at regularization 50; 0.5 at 30 and 80: 0.185)."""

PUBLISHED = [
    ("MF-BPR, as first reported (NGCF paper)", 0.1291, 0.1109),
    ("MF-BPR, carefully tuned (Rendle et al. 2022)", 0.1627, 0.1378),
    ("EASE (Steck 2019, as in Rendle et al. 2022)", 0.1765, 0.1467),
    ("LightGCN (He et al. 2020)", 0.1830, 0.1554),
]
"""Published Gowalla figures on the same split: (model, Recall@20, NDCG@20)."""

SLOW = {
    "gowalla": {
        "ease": "a dense 40,981 x 40,981 inverse: dotrec's float64 EASE needs ~40 GB and "
        "refuses; a float32 in-place variant would fit in ~13.4 GB (two matrices), but the "
        "O(n^3) inverse would take ~35 min on 2 cores (a 4,096 float32 inverse took 4.4 CPU s "
        "here, times (40,981 / 4,096)^3)",
        "lightgcn": "its defaults took 19 s on ml-100k here (80k pairs, 2.6k nodes); every step "
        "propagates over the whole graph, and Gowalla has 10x the edges and 10x the steps, so "
        "about 30 min, over the budget",
    },
}
"""(dataset, model) pairs that ``--skip-slow`` leaves out, and why."""

LIGHTFM_NOTE = (
    "`pip install lightfm` fails on this machine: lightfm 1.17 ships only an sdist whose "
    "setup.py sets __builtins__.__LIGHTFM_SETUP__, which breaks in PEP 517 builds "
    "(\"'dict' object has no attribute '__LIGHTFM_SETUP__'\")"
)


# --- peers behind dotrec's Recommender contract (benchmark only) -------------------


@dataclass
class PeerConfig:
    """A peer's settings; ALS fills its matrix with ``1 + confidence * r``."""

    factors: int = 128
    regularization: float = 0.01
    confidence: float = 0.0
    learning_rate: float = 0.01
    iterations: int = 15
    seed: int = 0


class _PeerFactors(Recommender):
    """Factors learned by another library, scored by dot products (plus item biases)."""

    config_class = PeerConfig
    _item_bias: torch.Tensor | None = None

    def _score_users(self, user_idx: torch.Tensor) -> torch.Tensor:
        scores = self._users[user_idx] @ self._items.T
        return scores if self._item_bias is None else scores + self._item_bias

    def _item_vectors(self) -> torch.Tensor:
        return self._items

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {"users": self._users, "items": self._items}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self._users, self._items = tensors["users"], tensors["items"]

    def _keep(self, users: np.ndarray, items: np.ndarray) -> None:
        self._users = torch.from_numpy(np.ascontiguousarray(users, dtype=np.float32))
        self._items = torch.from_numpy(np.ascontiguousarray(items, dtype=np.float32))


class ImplicitALS(_PeerFactors):
    name = "implicit-als"

    def _fit(self, data: dotrec.Interactions, show_progress: bool) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        matrix = self.seen.astype(np.float32)
        matrix.data = 1.0 + cfg.confidence * matrix.data
        model = AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            iterations=cfg.iterations,
            random_state=cfg.seed,
        )
        model.fit(sp.csr_matrix(matrix), show_progress=False)  # implicit wants csr_matrix
        self._keep(model.user_factors, model.item_factors)


class ImplicitBPR(_PeerFactors):
    name = "implicit-bpr"

    def _fit(self, data: dotrec.Interactions, show_progress: bool) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        cfg = self.config
        model = BayesianPersonalizedRanking(
            factors=cfg.factors,
            learning_rate=cfg.learning_rate,
            regularization=cfg.regularization,
            iterations=cfg.iterations,
            random_state=cfg.seed,
        )
        model.fit(sp.csr_matrix(self.seen.astype(np.float32)), show_progress=False)
        self._keep(model.user_factors, model.item_factors)  # the last factor is the item bias


class LightFMWARP(_PeerFactors):
    name = "lightfm-warp"

    def _fit(self, data: dotrec.Interactions, show_progress: bool) -> None:
        from lightfm import LightFM

        cfg = self.config
        model = LightFM(
            no_components=cfg.factors,
            loss="warp",
            learning_rate=cfg.learning_rate,
            item_alpha=cfg.regularization,
            random_state=cfg.seed,
        )
        model.fit(sp.coo_matrix(self.seen), epochs=cfg.iterations, num_threads=os.cpu_count())
        self._keep(model.user_embeddings, model.item_embeddings)
        self._item_bias = torch.from_numpy(model.item_biases.astype(np.float32))


def _peer_settings(dataset: str) -> dict[str, tuple[type[Recommender], dict]]:
    als = (
        GOWALLA_ALS
        if dataset == "gowalla"
        else {"factors": 128, "regularization": 50.0, "confidence": 5.0, "iterations": 15}
    )
    bpr = {"factors": 128, "learning_rate": 0.01, "regularization": 0.001, "iterations": 50}
    warp = {"factors": 128, "learning_rate": 0.05, "regularization": 0.0, "iterations": 30}
    return {
        "implicit-als": (ImplicitALS, als),
        "implicit-bpr": (ImplicitBPR, bpr),
        "lightfm-warp": (LightFMWARP, warp),
    }


PEER_OF = {"als": "implicit-als", "bpr": "implicit-bpr"}
"""dotrec model -> its peer; every other dotrec model is compared with the best peer."""


# --- one fit, in a child process ---------------------------------------------------


@dataclass
class Outcome:
    """What one model did on one dataset (``skipped`` holds the reason when it did not run)."""

    model: str
    peer: bool
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    peak_mb: float = 0.0
    fit_mb: float = 0.0
    load: float = 0.0
    skipped: str = ""
    settings: dict = field(default_factory=dict)


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_memory() -> bool:
    """Start a new peak-RSS window (Linux >= 4.0: ``5`` into ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def _make(name: str, dataset: str) -> tuple[Recommender, bool]:
    peers = _peer_settings(dataset)
    if name in peers:
        cls, settings = peers[name]
        return cls(**settings), True
    if name.endswith(" tuned"):
        base = name.removesuffix(" tuned")
        return MODELS[base](**TUNED[dataset][base]), False
    return MODELS[name](), False


def _fit_and_evaluate(name, dataset, train, test, features, ks, repeats, conn) -> None:
    """Child process: fit ``repeats`` times, measure, evaluate the last fit, send an Outcome."""
    warnings.simplefilter("ignore")
    try:
        window = _reset_peak_memory()
        times, before = [], _memory_mb("VmRSS")
        for _ in range(repeats):
            model, peer = _make(name, dataset)
            accepts = inspect.signature(model.fit).parameters
            extra = {k: v for k, v in features.items() if k in accepts}
            start = time.perf_counter()
            model.fit(train, **extra)
            times.append(time.perf_counter() - start)
        peak = (
            _memory_mb("VmHWM")
            if window
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        )
        metrics = dotrec.evaluate(model, test, k=ks).metrics
        outcome = Outcome(name, peer, metrics, statistics.median(times), peak, peak - before)
        outcome.load = os.getloadavg()[0]
    except Exception as err:  # noqa: BLE001 - reported in the table
        outcome = Outcome(name, name in _peer_settings(dataset), skipped=_reason(err))
    conn.send(outcome)
    conn.close()


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def run_one(name, dataset, train, test, features, ks, repeats, budget_s) -> Outcome:
    """Fit and evaluate ``name`` in a spawned child; stop it after ``budget_s`` seconds."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_fit_and_evaluate,
        args=(name, dataset, train, test, features, ks, repeats, send),
        name=f"peers-{dataset}-{name}",
    )
    child.start()
    send.close()
    if receive.poll(budget_s):
        try:
            outcome = receive.recv()
        except EOFError:
            outcome = None
    else:
        outcome = Outcome(name, False, skipped=f"stopped after the {budget_s / 60:g}-min budget")
        child.kill()
    child.join()
    if outcome is None:
        outcome = Outcome(name, False, skipped=f"the process died (exit code {child.exitcode})")
    return outcome


# --- data and the tables -------------------------------------------------------------


def load(dataset: str, root: Path | None):
    """(train, test, side features for models whose fit takes them, description)."""
    if dataset == "gowalla":
        train, test = dotrec.data.load_split("gowalla", root=root)
        return train, test, {}, "published LightGCN split, as given"
    data = dotrec.load_dataset(dataset, root=root, download=False)
    train, test = dotrec.random_split(data.interactions, 0.2, seed=0)
    features_of = getattr(MODELS.get("two-tower"), "dataset_features", None)
    features = features_of(data) if features_of else {}
    return train, test, features, "random_split(0.2, seed=0), every rating a positive"


def _comparison(outcome: Outcome, by_name: dict[str, Outcome], metric: str) -> Outcome | None:
    """The peer ``outcome`` is compared with: its own (ALS, BPR), else the best by ``metric``."""
    if outcome.peer:
        return None
    peer = by_name.get(PEER_OF.get(outcome.model.removesuffix(" tuned"), ""))
    if peer is not None and not peer.skipped:
        return peer
    peers = [o for o in by_name.values() if o.peer and not o.skipped]
    return max(peers, key=lambda o: o.metrics[metric]) if peers else None


def table(outcomes: list[Outcome], ks: list[int], gowalla: bool) -> str:
    k = ks[-1]
    columns = [f"recall@{k}", f"ndcg@{k}"] if gowalla else [f"ndcg@{k}", f"recall@{k}"]
    by_name = {o.model: o for o in outcomes}
    header = (
        f"{'model':<22} {columns[0]:>9} {columns[1]:>9} {'train s':>8} "
        f"{'peak MB':>8} {'+fit MB':>8} {'load':>5}  {'vs peer':<13} {'quality':>7} {'time':>6}"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        label = ("" if o.peer else "dotrec ") + o.model
        if o.skipped:
            continue
        peer = _comparison(o, by_name, columns[0])
        versus = ""
        if peer is not None:
            quality = o.metrics[columns[0]] / max(peer.metrics[columns[0]], 1e-12)
            versus = f"{peer.model:<13} {quality:>7.3f} {o.seconds / peer.seconds:>6.2f}"
        lines.append(
            f"{label:<22} {o.metrics[columns[0]]:>9.4f} {o.metrics[columns[1]]:>9.4f} "
            f"{o.seconds:>8.2f} {o.peak_mb:>8.0f} {o.fit_mb:>8.0f} {o.load:>5.1f}  {versus}"
        )
    for o in outcomes:
        if o.model.endswith(" tuned") and not o.skipped:
            settings = ", ".join(f"{k}={v}" for k, v in o.settings.items())
            lines.append(f"dotrec {o.model}: {settings}, chosen on a validation split")
    if gowalla:
        lines.append("published, same split:")
        for name, recall, ndcg in PUBLISHED:
            lines.append(f"  {name:<48} {recall:>9.4f} {ndcg:>9.4f}")
    for o in outcomes:
        if o.skipped:
            lines.append(f"skipped: {('' if o.peer else 'dotrec ') + o.model}: {o.skipped}")
    return "\n".join(lines)


def _paired_order(names: list[str]) -> list[str]:
    """Each peer right after its dotrec counterpart, so that both see about the same load."""
    order = []
    for name in names:
        if name not in PEER_OF.values():
            order.append(name)
            if PEER_OF.get(name) in names:
                order.append(PEER_OF[name])
    return order + [name for name in names if name not in order]


def _with_tuned(names: list[str], dataset: str) -> list[str]:
    """``names`` with each ``TUNED`` model's extra row after its peer (or after it)."""
    out = []
    for name in names:
        out.append(name)
        for model in TUNED.get(dataset, {}):
            peer = PEER_OF.get(model)
            if model in names and name == (peer if peer in names else model):
                out.append(f"{model} tuned")
    return out


def _shown(ks: list[int]) -> list[str]:
    return [f"{name}@{k}" for k in ks for name in ("ndcg", "recall")]


def main(argv: list[str] | None = None) -> int:
    peers = list(_peer_settings("ml-100k"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help=f"dotrec model names ({', '.join(MODELS)}) and peers ({', '.join(peers)}); "
        "default: all",
    )
    parser.add_argument("--repeats", type=int, default=1, help="fits per model (median time)")
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="leave out the pairs in SLOW (each over the budget on 2 cores)",
    )
    parser.add_argument("--budget-min", type=float, default=15.0, help="per fit (default 15)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $DOTREC_DATA")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    names = args.models or [*MODELS, *peers]
    unknown = sorted(set(names) - set(MODELS) - set(peers))
    if unknown or args.repeats < 1:
        parser.error(f"unknown model(s) {unknown}" if unknown else "--repeats must be >= 1")
    names = _paired_order(names)

    try:
        import lightfm  # noqa: F401
    except ImportError:
        lightfm_missing = LIGHTFM_NOTE
    else:
        lightfm_missing = ""
    print(
        f"dotrec {dotrec.__version__}, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), {os.cpu_count()} CPU cores; load average at start "
        f"{os.getloadavg()[0]:.1f}; peak MB = peak resident size (VmHWM) of the model's own "
        "process during fit, +fit MB = its growth over the size before fit",
        flush=True,
    )
    results = {}
    for dataset in args.datasets:
        train, test, features, how = load(dataset, args.data_dir)
        ks = [10, 20] if dataset == "gowalla" else [10]
        print(
            f"\n== {dataset}: {how}; {len(train):,} training and {len(test):,} test rows, "
            f"{train.n_users:,} users, {train.n_items:,} items",
            flush=True,
        )
        outcomes = []
        for name in _with_tuned(names, dataset):
            if name == "lightfm-warp" and lightfm_missing:
                outcomes.append(Outcome(name, True, skipped=lightfm_missing))
            elif args.skip_slow and name in SLOW.get(dataset, {}):
                outcomes.append(Outcome(name, name in peers, skipped=SLOW[dataset][name]))
            else:
                outcomes.append(
                    run_one(
                        name,
                        dataset,
                        train,
                        test,
                        features,
                        ks,
                        args.repeats,
                        args.budget_min * 60,
                    )
                )
                outcomes[-1].peer = name in peers
                if name.endswith(" tuned"):
                    outcomes[-1].settings = TUNED[dataset][name.removesuffix(" tuned")]
            done = outcomes[-1]
            print(
                f"  {name}: "
                + (
                    f"skipped ({done.skipped[:120]})"
                    if done.skipped
                    else f"fit {done.seconds:.2f} s, "
                    + ", ".join(f"{m} {done.metrics[m]:.4f}" for m in _shown(ks))
                ),
                flush=True,
            )
        print(table(outcomes, ks, dataset == "gowalla"), flush=True)
        results[dataset] = [o.__dict__ for o in outcomes]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
