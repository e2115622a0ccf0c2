"""Model families, each an estimator with the Recommender contract."""

from dotrec.models.als import ALS, ALSConfig
from dotrec.models.base import Recommendations, Recommender
from dotrec.models.ease import EASE, EASEConfig
from dotrec.models.gfcf import GFCF, GFCFConfig
from dotrec.models.itemknn import ItemKNN, ItemKNNConfig
from dotrec.models.lightgcn import LightGCN, LightGCNConfig
from dotrec.models.mf import BPR, BPRConfig, MatrixFactorization, MFConfig
from dotrec.models.popularity import Popularity
from dotrec.models.two_tower import TwoTower, TwoTowerConfig

MODELS: dict[str, type[Recommender]] = {
    model.name: model
    for model in (
        MatrixFactorization,
        BPR,
        ALS,
        EASE,
        GFCF,
        ItemKNN,
        LightGCN,
        TwoTower,
        Popularity,
    )
}
"""Model classes by the name the command line and model folders use."""

__all__ = [
    "ALS",
    "ALSConfig",
    "BPR",
    "BPRConfig",
    "EASE",
    "EASEConfig",
    "GFCF",
    "GFCFConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "LightGCN",
    "LightGCNConfig",
    "MODELS",
    "MFConfig",
    "MatrixFactorization",
    "Popularity",
    "Recommendations",
    "Recommender",
    "TwoTower",
    "TwoTowerConfig",
]
