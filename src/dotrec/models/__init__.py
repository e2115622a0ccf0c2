"""Model families, each an estimator with the Recommender contract."""

from dotrec.models.als import ALS, ALSConfig
from dotrec.models.base import Recommendations, Recommender
from dotrec.models.ease import EASE, EASEConfig
from dotrec.models.itemknn import ItemKNN, ItemKNNConfig
from dotrec.models.mf import MatrixFactorization, MFConfig
from dotrec.models.popularity import Popularity

MODELS: dict[str, type[Recommender]] = {
    model.name: model for model in (MatrixFactorization, ALS, EASE, ItemKNN, Popularity)
}
"""Model classes by the name the command line and model folders use."""

__all__ = [
    "ALS",
    "ALSConfig",
    "EASE",
    "EASEConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "MODELS",
    "MFConfig",
    "MatrixFactorization",
    "Popularity",
    "Recommendations",
    "Recommender",
]
