"""Interaction data: the container, ID vocabularies, readers and named datasets.

This package imports nothing else from dotrec but its exceptions.
"""

from dotrec.data._datasets import (
    DATASETS,
    Dataset,
    data_dir,
    find_dataset,
    load_dataset,
    load_split,
)
from dotrec.data._features import FeatureEncoder
from dotrec.data._inspect import DataReport, inspect_data
from dotrec.data._interactions import Interactions
from dotrec.data._items import read_items, read_users
from dotrec.data._lightgcn import read_lightgcn
from dotrec.data._readers import FileFormat, read_interactions
from dotrec.data._synthetic import synthetic
from dotrec.data._vocab import Vocabulary, ids_to_text

__all__ = [
    "DATASETS",
    "DataReport",
    "Dataset",
    "FeatureEncoder",
    "FileFormat",
    "Interactions",
    "Vocabulary",
    "data_dir",
    "find_dataset",
    "ids_to_text",
    "inspect_data",
    "load_dataset",
    "load_split",
    "read_interactions",
    "read_items",
    "read_lightgcn",
    "read_users",
    "synthetic",
]
