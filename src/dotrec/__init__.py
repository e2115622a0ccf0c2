"""dotrec: recommendations from interaction logs.

Load a log into :class:`Interactions`, split it, fit a model, evaluate it with
full ranking, and recommend::

    import dotrec
    data = dotrec.load_dataset("ml-100k").interactions
    train, test = dotrec.random_split(data, test_fraction=0.2, seed=0)
    model = dotrec.MatrixFactorization().fit(train)
    print(dotrec.evaluate(model, test, k=10).table())
    model.recommend(["1", "2"], k=10).to_frame()
"""

from dotrec._version import __version__
from dotrec.artifact import load_model
from dotrec.config import RunConfig
from dotrec.data import (
    Dataset,
    Interactions,
    Vocabulary,
    load_dataset,
    read_interactions,
    read_items,
    synthetic,
)
from dotrec.evaluation import (
    EvaluationResult,
    RatingResult,
    evaluate,
    evaluate_lists,
    evaluate_ratings,
)
from dotrec.exceptions import (
    ArchiveError,
    DataError,
    DatasetNotFoundError,
    DataWarning,
    DotrecError,
    EmptyDataError,
    MissingDependencyError,
    ModelFileError,
    StaleIndexError,
    TrainingDivergedError,
    UnknownIDError,
)
from dotrec.models import (
    ALS,
    BPR,
    EASE,
    GFCF,
    MODELS,
    ItemKNN,
    LightGCN,
    MatrixFactorization,
    Popularity,
    Recommendations,
    Recommender,
    TwoTower,
)
from dotrec.split import leave_last_split, random_split, split_report, temporal_split
from dotrec.tuning import TuningResult, tune

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "GFCF",
    "ItemKNN",
    "LightGCN",
    "MODELS",
    "ArchiveError",
    "DataError",
    "DataWarning",
    "Dataset",
    "DatasetNotFoundError",
    "DotrecError",
    "EmptyDataError",
    "EvaluationResult",
    "Interactions",
    "MatrixFactorization",
    "MissingDependencyError",
    "ModelFileError",
    "Popularity",
    "RatingResult",
    "Recommendations",
    "Recommender",
    "RunConfig",
    "StaleIndexError",
    "TrainingDivergedError",
    "TuningResult",
    "TwoTower",
    "UnknownIDError",
    "Vocabulary",
    "__version__",
    "evaluate",
    "evaluate_lists",
    "evaluate_ratings",
    "leave_last_split",
    "load_dataset",
    "load_model",
    "random_split",
    "read_interactions",
    "read_items",
    "split_report",
    "synthetic",
    "temporal_split",
    "tune",
]
