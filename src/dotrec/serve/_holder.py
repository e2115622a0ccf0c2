"""The model being served, and swapping in a new one without dropping requests.

A request takes :attr:`ModelHolder.current` once and uses that
:class:`ServedModel` to the end, so a reload never changes the model under a
request in flight. :meth:`ModelHolder.reload` loads and checks the new folder
completely before it replaces the reference; a folder that fails to load or
to recommend is refused and the old model keeps serving.
"""

from __future__ import annotations

import datetime
import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dotrec.artifact import load_model, read_metadata
from dotrec.exceptions import DataError, DotrecError, ModelFileError
from dotrec.models import Recommender
from dotrec.serve._metadata import ItemInfo, find_item_file, read_item_info

__all__ = ["ModelHolder", "ServedModel", "load_served", "settle_heap"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A loaded, checked model with what responses show about it.

    Attributes:
        model: the recommender.
        model_dir: the folder it was loaded from.
        model_id: the first 16 hex digits of its weights' SHA-256, which
            tells two models apart in every response.
        info: what ``/ready`` reports (name, sizes, fingerprint, ...).
        items: title and genres by raw item ID; empty without metadata.
    """

    model: Recommender
    model_dir: Path
    model_id: str
    info: dict[str, Any]
    items: dict[str, ItemInfo] = field(default_factory=dict)


def load_served(
    model_dir: str | Path,
    *,
    items_file: str | Path | None = None,
    items_encoding: str | None = None,
    device: str = "auto",
) -> ServedModel:
    """Load a model folder for serving and check that it recommends.

    Args:
        model_dir: a folder written by ``dotrec train`` or ``model.save``.
        items_file: item metadata to show; by default looked for in the folder
            and beside its training data (see :mod:`dotrec.serve._metadata`).
        items_encoding: text encoding of the item file, given or found (None:
            UTF-8, or Latin-1 for MovieLens ``u.item`` and ``movies.dat``).
        device: where to score (``"auto"``, ``"cpu"``, ``"cuda"``).

    Raises:
        ModelFileError: the folder is missing, corrupt, changed while being
            loaded, or its model fails a trial recommendation.
        DataError: ``items_file`` is unreadable (an item file found, not
            given, that is unreadable is left out with a warning).
    """
    folder = Path(model_dir).resolve()
    before = read_metadata(folder)
    model = load_model(folder, device=device)
    meta = read_metadata(folder)
    if meta.get("sha256") != before.get("sha256"):
        raise ModelFileError(f"{folder} changed while it was being loaded; reload again")
    item_file, items = _item_metadata(folder, items_file, items_encoding)
    _trial(model, folder)

    model_id = str(meta["sha256"]["weights.safetensors"])[:16]
    info = {
        "model_id": model_id,
        "model": model.name,
        "model_dir": str(folder),
        "dotrec_version": meta.get("dotrec_version"),
        "n_users": len(model.users),
        "n_items": len(model.items),
        "fingerprint": model.fit_info.get("fingerprint"),
        "score_kind": model.score_kind,
        "item_metadata": None if item_file is None else str(item_file),
        "loaded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _log.info("loaded %s model %s from %s", model.name, model_id, folder)
    return ServedModel(model, folder, model_id, info, items)


def _item_metadata(
    folder: Path, items_file: str | Path | None, encoding: str | None
) -> tuple[Path | None, dict[str, ItemInfo]]:
    """The item file and its contents; a file found (not given) that fails is skipped."""
    if items_file is not None:
        return Path(items_file), read_item_info(Path(items_file), encoding)
    found = find_item_file(folder)
    if found is None:
        return None, {}
    try:
        return found, read_item_info(found, encoding)
    except (DataError, OSError, ValueError) as err:
        _log.warning("%s: item metadata left out; %s is unreadable (%s)", folder, found, err)
        return None, {}


def _trial(model: Recommender, folder: Path) -> None:
    """Run each query once: refuse a model that cannot recommend, warm the rest.

    The first call of some models builds caches (graph filters, propagated
    layers); doing it here keeps that cost off the first real request.
    """
    user_ids, item_ids = model.users.ids[:1], model.items.ids[:1]
    k = min(10, len(model.items))
    try:
        recs = model.recommend(user_ids, k=k)
    except (DotrecError, RuntimeError, ValueError, IndexError) as err:
        raise ModelFileError(f"{folder}: the model fails a trial recommendation ({err})") from err
    if not np.isfinite(recs.scores[0, : recs.counts[0]]).all():
        raise ModelFileError(f"{folder}: the model's trial recommendation has non-finite scores")
    for name, query in [
        ("similar_items", lambda: model.similar_items(item_ids, k=k)),
        ("recommend_from_history", lambda: model.recommend_from_history([item_ids], k=k)),
    ]:
        try:
            query()
        except DotrecError as err:
            _log.warning("%s: %s is not available for this model (%s)", folder, name, err)


class ModelHolder:
    """Holds the served model; swaps it atomically on :meth:`reload`.

    Args:
        served: the model to start with.
        loader: loads and checks a folder (as :func:`load_served` with the
            server's options); called by :meth:`reload`.

    Attributes:
        reloads: successful reloads so far.
        freeze_heap: after each reload, collect garbage and then exclude
            every live object from later collections (:func:`settle_heap`).
            The server process sets it; see :func:`dotrec.serve.run_server`.
    """

    def __init__(self, served: ServedModel, loader: Callable[[Path], ServedModel]):
        self._current = served
        self._loader = loader
        self._reload_lock = threading.Lock()
        self.reloads = 0
        self.freeze_heap = False

    @property
    def current(self) -> ServedModel:
        """The model to answer a request with; take it once per request."""
        return self._current

    def reload(self, model_dir: str | Path | None = None) -> tuple[ServedModel, ServedModel]:
        """Load ``model_dir`` (default: the current folder again) and swap it in.

        Reloads run one at a time; requests keep being answered by the old
        model until the new one is loaded and checked.

        Returns:
            The previous and the new :class:`ServedModel`.

        Raises:
            ModelFileError, DataError, OSError: the folder is refused; the old
                model stays.
        """
        with self._reload_lock:
            previous = self._current
            folder = previous.model_dir if model_dir is None else Path(model_dir)
            served = self._loader(folder)
            self._current = served  # one reference assignment: atomic for readers
            self.reloads += 1
            if self.freeze_heap:
                settle_heap()
        _log.info(
            "reloaded: serving %s model %s from %s (was %s)",
            served.model.name,
            served.model_id,
            served.model_dir,
            previous.model_id,
        )
        return previous, served


def settle_heap() -> None:
    """Collect garbage, then leave every live object out of later collections.

    A served process holds a few hundred thousand long-lived objects (Torch,
    pandas, the model's vocabularies); each full collection walks them all,
    which stalled about one request in a hundred by some 150 ms on MovieLens
    100K. Frozen (:func:`gc.freeze`), they are skipped; they are still freed
    by reference counting. Unfreezing first lets each reload's collection
    reclaim the reference cycles of models replaced before (the one just
    replaced may still be answering requests, so its turn comes next time).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
