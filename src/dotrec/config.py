"""Run configs: the data, the model and its settings, in one TOML file.

A run config says everything ``dotrec train`` needs to repeat a run::

    [data]
    path = "ratings.csv"        # or: dataset = "ml-100k"
    sep = ","
    min_rating = 4.0

    [data.columns]
    user = "userId"
    item = "movieId"

    [model]
    name = "mf"

    [model.settings]
    embedding_dim = 64
    epochs = 30
    seed = 0

    [validation]                # optional: how `dotrec tune` chose the settings
    method = "random"
    fraction = 0.2
    seed = 0
    metric = "ndcg@10"

TOML has no null, so an unset option is left out. A relative ``data.path``
is read from the config file's folder. Unknown sections and keys are errors
that name the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from dotrec._version import __version__
from dotrec.data import DATASETS, Dataset, FileFormat, load_dataset, read_interactions
from dotrec.models import MODELS, Recommender

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DataConfig", "ModelConfig", "RunConfig", "ValidationConfig"]

_COLUMN_ROLES = ("user", "item", "rating", "timestamp", "label")


@dataclass
class DataConfig:
    """Where the interactions come from and how to read them."""

    path: str | None = None
    """A file of interactions (CSV/TSV, MovieLens, Parquet); relative to the
    config file's folder when read from a file. Give this or ``dataset``."""
    dataset: str | None = None
    """A dataset name (``ml-100k``, ``ml-1m``, ``ml-latest-small``)."""
    format: FileFormat | None = None
    """File format, as :func:`~dotrec.data.read_interactions` takes it: told
    from the file's name when unset; ``"lightgcn"`` for ``user item item ...``
    lines (LightGCN's ``train.txt``)."""
    sep: str | None = None
    """Column separator; sniffed when unset. ``"tab"`` means a tab."""
    header: bool | None = None
    """Whether the first line names the columns; guessed when unset."""
    columns: dict[str, str | int] = field(default_factory=dict)
    """Column name (or 0-based position) per role: user, item, rating,
    timestamp, label."""
    min_rating: float | None = None
    """Keep rows rated at least this as positives; unset keeps every row."""
    encoding: str | None = None
    """Text encoding; UTF-8 when unset."""
    drop_invalid: bool | None = None
    """Skip malformed rows with a warning instead of stopping."""

    @classmethod
    def from_spec(cls, spec: str) -> DataConfig:
        """DATA as the command line takes it: an existing file, else a dataset name.

        Raises:
            FileNotFoundError: neither a file nor a dataset name.
        """
        path = Path(spec)
        if path.exists():
            return cls(path=str(path))
        if spec in DATASETS:
            return cls(dataset=spec)
        raise FileNotFoundError(
            f"{spec}: no such file, and not a dataset name ({', '.join(DATASETS)})."
        )

    def load(self) -> Dataset:
        """Read the interactions (a named dataset also brings its item titles)."""
        if self.dataset is not None:
            return load_dataset(self.dataset, min_rating=self.min_rating)
        if self.path is None:
            raise ValueError("the data section needs a path or a dataset name")
        path = Path(self.path)
        roles = {f"{role}_col": self.columns.get(role) for role in _COLUMN_ROLES}
        interactions = read_interactions(
            path,
            format=self.format or "auto",
            sep={"\\t": "\t", "tab": "\t"}.get(self.sep, self.sep),
            header=self.header,
            min_rating=self.min_rating,
            encoding=self.encoding or "utf-8",
            on_invalid="drop" if self.drop_invalid else "raise",
            **roles,
        )
        return Dataset(path.name, interactions, None)

    def resolved(self, folder: Path) -> DataConfig:
        """A copy whose relative ``path`` is taken from ``folder``, made absolute."""
        if self.path is None:
            return dataclasses.replace(self)
        return dataclasses.replace(self, path=str((folder / self.path).resolve()))


@dataclass
class ModelConfig:
    """Which model to train, with which settings."""

    name: str = "mf"
    """A model name: one of ``dotrec.MODELS``."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Constructor keywords of the model; unset ones take its defaults."""

    def model_class(self) -> type[Recommender]:
        """The estimator class named by ``name``."""
        if self.name not in MODELS:
            raise ValueError(f"unknown model {self.name!r}; models: {', '.join(sorted(MODELS))}")
        return MODELS[self.name]

    def build(self) -> Recommender:
        """An unfitted model with these settings."""
        return self.model_class()(**self.settings)


@dataclass
class ValidationConfig:
    """The validation split carved from the data to tune or check settings."""

    method: Literal["random"] = "random"
    """Per-user random split (:func:`dotrec.random_split`)."""
    fraction: float = 0.2
    """Share of each user's rows held out for validation."""
    seed: int = 0
    """Seed of the split."""
    metric: str = "ndcg@10"
    """Metric to maximise, as ``name@K``."""


@dataclass
class RunConfig:
    """A whole run: the data, the model, and optionally the validation split.

    Example:
        >>> run = RunConfig(DataConfig(dataset="ml-100k"), ModelConfig("ease"))
        >>> print(run.to_toml(), end="")
        [data]
        dataset = "ml-100k"
        <BLANKLINE>
        [model]
        name = "ease"
        >>> RunConfig.from_toml(run.to_toml()) == run
        True
    """

    data: DataConfig | None = None
    """The interactions; may be left to the command line's DATA."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model and its settings."""
    validation: ValidationConfig | None = None
    """How the settings were validated (``dotrec tune`` writes it);
    ``dotrec train`` records it and fits on all of the data."""

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict ready for TOML: unset (None) values and empty tables left out."""
        return _drop_none(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "run config") -> RunConfig:
        """Build from a nested dict, checking every section, key and value type.

        Args:
            values: as :meth:`to_dict` returns, or as TOML parses.
            source: what to name in errors (the file).

        Raises:
            ValueError: an unknown section, key, model or setting, or a value
                of the wrong type; the message names ``source`` and the key.
        """
        _check_table(values, "", {"data", "model", "validation"}, source)
        data = values.get("data")
        model = _build(ModelConfig, values.get("model", {}), "model", source)
        run = cls(
            data=None if data is None else _build(DataConfig, data, "data", source),
            model=model,
            validation=_optional(ValidationConfig, values.get("validation"), "validation", source),
        )
        run._check(source)
        return run

    def to_toml(self) -> str:
        """The config as TOML text."""
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, source: str = "run config") -> RunConfig:
        """Parse TOML text (``source`` names it in errors)."""
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{source}: not valid TOML ({err})") from err
        return cls.from_dict(values, source)

    @classmethod
    def read(cls, path: str | Path) -> RunConfig:
        """Read a TOML file; a relative ``data.path`` is taken from its folder.

        A model folder stands for the ``run.toml`` inside it.
        """
        path = Path(path)
        if path.is_dir():
            path = path / "run.toml"
        if not path.is_file():
            hint = (
                " (this model folder was saved from Python, which records no run)"
                if (path.parent / "model.json").is_file()
                else ""
            )
            raise FileNotFoundError(f"{path}: no such run config file{hint}")
        run = cls.from_toml(path.read_text(encoding="utf-8"), str(path))
        if run.data is not None:
            run.data = run.data.resolved(path.parent)
        return run

    def write(self, path: str | Path) -> Path:
        """Write the config as TOML, with a comment saying how to re-run it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_toml_file(), encoding="utf-8")
        return path

    def to_toml_file(self) -> str:
        """The TOML text of :meth:`write`: a comment line, then the config."""
        return (
            f"# dotrec {__version__} run config; re-run with "
            "`dotrec train --config THIS_FILE --out MODEL_DIR`\n" + self.to_toml()
        )

    def _check(self, source: str) -> None:
        if self.data is not None:
            if (self.data.path is None) == (self.data.dataset is None):
                raise ValueError(f"{source}: [data] needs exactly one of 'path' and 'dataset'")
            if self.data.dataset is not None and self.data.dataset not in DATASETS:
                raise ValueError(
                    f"{source}: data.dataset {self.data.dataset!r} is not a dataset name "
                    f"({', '.join(DATASETS)}); for a file use data.path"
                )
            if self.data.min_rating is not None and not math.isfinite(self.data.min_rating):
                raise ValueError(
                    f"{source}: data.min_rating = {self.data.min_rating!r} is not a finite number"
                )
            unknown = sorted(set(self.data.columns) - set(_COLUMN_ROLES))
            if unknown:
                raise ValueError(
                    f"{source}: unknown key data.columns.{unknown[0]}; the roles are "
                    f"{', '.join(_COLUMN_ROLES)}"
                )
        try:
            cls = self.model.model_class()
        except ValueError as err:
            raise ValueError(f"{source}: model.name: {err}") from err
        known = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(self.model.settings) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown key model.settings.{unknown[0]}: the {self.model.name} "
                f"model's settings are {', '.join(sorted(known)) or 'none'}"
            )
        try:
            cls(**self.model.settings)  # the model's own checks of types and ranges
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: [model.settings]: {err}") from err
        if self.validation is not None:
            _metric_name_and_k(self.validation.metric, f"{source}: validation.metric")


def _metric_name_and_k(metric: str, where: str) -> tuple[str, int]:
    """Split ``"ndcg@10"`` into ``("ndcg", 10)``, checking both parts."""
    from dotrec.metrics import METRICS

    name, _, k = metric.partition("@")
    if name not in METRICS or not k.isdigit() or int(k) < 1:
        raise ValueError(
            f"{where}: {metric!r} is not a metric; write NAME@K with NAME one of "
            f"{', '.join(METRICS)} and K a positive integer, e.g. ndcg@10"
        )
    return name, int(k)


def _drop_none(value: Any) -> Any:
    """``value`` without None values and empty tables, which TOML cannot or need not hold."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None and v != {}}
    return value


def _check_table(values: Any, where: str, known: set[str], source: str) -> None:
    """``values`` must be a table whose keys are all in ``known``."""
    if not isinstance(values, dict):
        raise ValueError(f"{source}: [{where}] must be a table, got {values!r}")
    unknown = sorted(set(values) - known)
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ValueError(
            f"{source}: unknown key {key!r}; the known keys{f' of [{where}]' if where else ''} "
            f"are {', '.join(sorted(known))}"
        )


def _build(cls: type, values: Any, where: str, source: str) -> Any:
    """Instance of the dataclass ``cls`` from a table, checking keys and types."""
    hints = typing.get_type_hints(cls)
    _check_table(values, where, set(hints), source)
    for key, value in values.items():
        if not _accepts(value, hints[key]):
            raise ValueError(
                f"{source}: {where}.{key} = {value!r} has the wrong type; expected "
                f"{_type_name(hints[key])}"
            )
    return cls(**values)


def _optional(cls: type, values: Any, where: str, source: str) -> Any:
    return None if values is None else _build(cls, values, where, source)


def _accepts(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (the few shapes used here)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if origin is dict:
        return isinstance(value, dict) and all(
            _accepts(k, args[0]) and _accepts(v, args[1]) for k, v in value.items()
        )
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    return str(hint).replace("typing.", "")
