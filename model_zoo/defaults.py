"""Defaults that several parts of the zoo share, defined once."""
from __future__ import annotations

__all__ = ["DEFAULT_SEED", "DEFAULT_WORLD_SEED", "DATASET_EMBEDDING"]

DEFAULT_SEED = 20242025        # model seed (initialisation, dropout, shuffle): the challenge baseline's `seed`
DEFAULT_WORLD_SEED = 2025      # seed of a synthetic world's generator (the data, not the model)
DATASET_EMBEDDING = "dataset"  # results' `embedding_variant` when a run uses the dataset's own item_emb_d128
