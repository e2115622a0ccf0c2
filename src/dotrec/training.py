"""Shared pieces of training: device choice, seeded generators, threads, the epoch loop."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from dotrec.exceptions import TrainingDivergedError

__all__ = [
    "FitLog",
    "check_finite_parameters",
    "epoch_loop",
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
        raise ValueError(f"num_threads (--threads) must be a positive integer, got {n!r}")
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


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
) -> list[float]:
    """Run ``run_epoch(epoch)`` ``epochs`` times, checking each mean loss.

    Returns:
        The mean loss of each epoch.

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
    return losses
