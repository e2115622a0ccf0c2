"""Model families, each an estimator with the Recommender contract."""

from dotrec.models.base import Recommendations, Recommender
from dotrec.models.mf import MatrixFactorization, MFConfig

MODELS: dict[str, type[Recommender]] = {MatrixFactorization.name: MatrixFactorization}
"""Model classes by the name the command line and model folders use."""

__all__ = ["MODELS", "MFConfig", "MatrixFactorization", "Recommendations", "Recommender"]
