"""Shared pieces of training: device choice, seeded generators, threads, the epoch loop."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from dotrec.exceptions import TrainingDivergedError
from dotrec.metrics import METRICS

__all__ = [
    "EarlyStopping",
    "FitLog",
    "check_finite_parameters",
    "epoch_loop",
    "parse_metric",
    "resolve_device",
    "seeded_generators",
    "thread_count",
]

_log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}"
        ) from err
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for, but CUDA is not available here")
    return resolved


def seeded_generators(
    seed: int, device: torch.device
) -> tuple[np.random.Generator, torch.Generator]:
    """A NumPy and a Torch generator (on ``device``) derived from one seed."""
    sequence = np.random.SeedSequence(seed)
    numpy_seed, torch_seed = sequence.spawn(2)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(torch_seed.generate_state(1, dtype=np.uint64)[0] >> 1))
    return np.random.default_rng(numpy_seed), generator


@contextlib.contextmanager
def thread_count(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` Torch CPU threads (None keeps the current count).

    Training under one seed and one thread count is reproducible on the CPU;
    the same seed with another thread count may differ in the last bits.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(
            f"num_threads must be a positive integer, got {n!r} (command line: --threads of "
            "dotrec train and tune; in a run config, num_threads in [model.settings])"
        )
    # Torch's thread count is process-wide, and blocks may overlap on several
    # threads (a service answering requests at once): each block restores the
    # count it found, and the last one to leave restores the count the first
    # one found, so overlapping blocks never leave the process on theirs.
    with _THREADS.lock:
        if _THREADS.active == 0:
            _THREADS.outside = torch.get_num_threads()
        _THREADS.active += 1
        before = torch.get_num_threads()
        if n is not None:
            torch.set_num_threads(n)
        current = torch.get_num_threads()
    try:
        yield current
    finally:
        with _THREADS.lock:
            _THREADS.active -= 1
            torch.set_num_threads(before if _THREADS.active else _THREADS.outside)


class _ThreadCounts:
    """Bookkeeping of :func:`thread_count`: open blocks and the count outside them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.outside = 1


_THREADS = _ThreadCounts()


@dataclass
class FitLog:
    """What happened during ``fit``: per-epoch losses, time, threads, device."""

    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    num_threads: int = 1
    device: str = "cpu"
    seed: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _advice(lr: float | None) -> str:
    if lr is None:
        return "Raise the regularization, or scale or clip the interaction values."
    return f"Lower the learning rate (lr={lr:g}), or scale or clip the ratings."


def check_finite_parameters(params: dict[str, torch.Tensor], epoch: int, lr: float | None) -> None:
    """Raise :class:`TrainingDivergedError` when any parameter is NaN or infinite.

    ``lr`` is the learning rate to mention in the advice; None for solvers
    without one.
    """
    for name, tensor in params.items():
        if not torch.isfinite(tensor).all():
            raise TrainingDivergedError(
                f"training diverged: parameter {name!r} became non-finite in epoch {epoch}. "
                + _advice(lr)
            )


def epoch_loop(
    run_epoch: Callable[[int], float],
    epochs: int,
    *,
    lr: float | None,
    show_progress: bool = False,
    desc: str = "train",
    after_epoch: Callable[[int], bool] | None = None,
) -> list[float]:
    """Run ``run_epoch(epoch)`` ``epochs`` times, checking each mean loss.

    ``after_epoch(epoch)``, when given, runs after each epoch's check (for
    example an :class:`EarlyStopping`); returning True ends training there.

    Returns:
        The mean loss of each epoch run.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite, naming the
            epoch and suggesting a lower learning rate.
    """
    from tqdm.auto import tqdm

    losses = []
    with tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not show_progress) as bar:
        for epoch in bar:
            start = time.perf_counter()
            loss = run_epoch(epoch)
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"training diverged: the loss became {loss} in epoch {epoch}. " + _advice(lr)
                )
            losses.append(loss)
            bar.set_postfix(loss=f"{loss:.4f}")
            _log.debug("epoch %d: loss %.5f (%.2f s)", epoch, loss, time.perf_counter() - start)
            if after_epoch is not None and after_epoch(epoch):
                break
    return losses


MIN_STEPS_PER_EPOCH = 4
"""Fewest optimizer steps an epoch takes (see :func:`step_batch_size`)."""


def step_batch_size(batch_size: int, n_rows: int) -> int:
    """Rows per step: ``batch_size``, smaller on data too small for a few steps per epoch.

    With the large default batches of the embedding models, a few dozen
    rows would otherwise make one step per epoch, and the default epochs too
    few updates to learn even two clean clusters. At least
    :data:`MIN_STEPS_PER_EPOCH` steps are taken; data of more than that many
    full batches is not affected.
    """
    return max(1, min(batch_size, math.ceil(n_rows / MIN_STEPS_PER_EPOCH)))


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` as ``("ndcg", 10)``, checked against :data:`dotrec.metrics.METRICS`.

    Raises:
        ValueError: an unknown metric or a cutoff that is not a positive integer.
    """
    metric, sep, cutoff = str(name).partition("@")
    if metric not in METRICS or not sep or not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(
            f"early_stopping_metric must be NAME@K with NAME one of {', '.join(METRICS)} "
            f"and K a positive integer, e.g. 'ndcg@10'; got {name!r}"
        )
    return metric, int(cutoff)


class EarlyStopping:
    """Keeps the weights of the epoch with the best validation metric.

    Called after each epoch (``epoch_loop(..., after_epoch=stopping)``), it
    evaluates every ``eval_every`` epochs and after the last one, keeps a copy
    of the weights whenever the metric improves (higher is better), and asks
    to stop after ``patience`` evaluations in a row without improvement.
    :meth:`restore` then puts the best weights back.

    Args:
        evaluate: returns the metric of the current weights.
        module: the weights to copy and restore.
        metric: the metric's name, for the record.
        epochs: the planned number of epochs (the last one is evaluated).
        eval_every: epochs between evaluations.
        patience: evaluations without improvement before stopping; None
            trains every epoch and still restores the best.
    """

    def __init__(
        self,
        evaluate: Callable[[], float],
        module: torch.nn.Module,
        *,
        metric: str,
        epochs: int,
        eval_every: int = 1,
        patience: int | None = None,
    ):
        self.evaluate, self.module, self.metric = evaluate, module, metric
        self.epochs, self.eval_every, self.patience = epochs, eval_every, patience
        self.history: list[tuple[int, float]] = []
        self.best_epoch: int | None = None
        self.best_value = -math.inf
        self.last_epoch = 0
        self._best_state: dict[str, torch.Tensor] | None = None
        self._since_best = 0

    def __call__(self, epoch: int) -> bool:
        """Evaluate when due; True when training should stop."""
        self.last_epoch = epoch
        if epoch % self.eval_every and epoch != self.epochs:
            return False
        value = float(self.evaluate())
        self.history.append((epoch, value))
        _log.debug("epoch %d: validation %s %.5f", epoch, self.metric, value)
        if value > self.best_value or self.best_epoch is None:
            self.best_epoch, self.best_value, self._since_best = epoch, value, 0
            self._best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            return False
        self._since_best += 1
        return self.patience is not None and self._since_best >= self.patience

    def restore(self) -> None:
        """Load the best epoch's weights into the module (if it was not the last)."""
        if self._best_state is not None and self.best_epoch != self.last_epoch:
            self.module.load_state_dict(self._best_state)

    def to_dict(self) -> dict:
        """The record for ``fit_info``: per-evaluation values, best and last epoch."""
        return {
            "metric": self.metric,
            "epochs": [epoch for epoch, _ in self.history],
            "values": [value for _, value in self.history],
            "best_epoch": self.best_epoch,
            "best_value": self.best_value if self.best_epoch is not None else None,
            "last_epoch": self.last_epoch,
            "stopped_early": self.last_epoch < self.epochs,
        }
