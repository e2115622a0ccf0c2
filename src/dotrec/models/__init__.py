"""Model families, each an estimator with the Recommender contract."""

from dotrec.models.base import Recommendations, Recommender
from dotrec.models.mf import MatrixFactorization, MFConfig
from dotrec.models.popularity import Popularity

MODELS: dict[str, type[Recommender]] = {
    model.name: model for model in (MatrixFactorization, Popularity)
}
"""Model classes by the name the command line and model folders use."""

__all__ = [
    "MODELS",
    "MFConfig",
    "MatrixFactorization",
    "Popularity",
    "Recommendations",
    "Recommender",
]
