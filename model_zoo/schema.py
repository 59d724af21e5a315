"""The MicroLens_1M_x1 schema (WWW 2025 MMCTR challenge, Task 2), defined once.

Used by the readers and validators (``model_zoo.datasets.microlens``), by every generator and builder that writes
MMCTR files (the synthetic worlds, the dataset builder) and by the tests. Source: ``shared/reference/microlens_mmctr.md``
sections 3 to 5 (files, columns, dtypes, vocab sizes, padding) and the baseline YAML of
``reczoo/WWW2025_MMCTR_Challenge`` (``config/DIN_microlens_mmctr_tuner_config_01.yaml``).

* ``train|valid|test.parquet``: ``user_id`` int64, ``item_seq`` list<int64> of one fixed length per file (left-padded
  with 0, most recent item last), ``item_id`` int64, ``likes_level`` int64, ``views_level`` int64, ``label`` 0/1.
* ``item_info.parquet``: I + 1 dense rows sorted by ``item_id`` (row i holds item i), row 0 all zeros (padding);
  ``item_tags`` list<int64> of length 5, ``item_emb_d128`` list<float32> of length 128.
* ``item_feature.parquet`` / ``item_emb.parquet``: I rows, ids 1..I contiguous, no padding row.
"""
from __future__ import annotations

import types
from typing import Mapping, Tuple

import pyarrow as pa

__all__ = [
    "SPLITS", "SPLIT_COLUMNS", "ITEM_INFO_COLUMNS", "ITEM_FEATURE_COLUMNS", "ITEM_EMB_COLUMNS", "MICROLENS_VOCAB",
    "SEQ_LENGTH", "ITEM_TAGS_LENGTH", "ITEM_EMB_DIM", "TXT_EMB_DIM", "IMG_EMB_DIM", "E4_SPLIT", "NUM_LEVELS",
    "LEVEL_VOCAB", "SEQ_COLUMN", "TARGET_COLUMN", "LABEL_COLUMN", "TEXT_COLUMN", "IMAGE_COLUMN", "TITLE_COLUMN",
    "SPLIT_SCHEMA", "ITEM_INFO_SCHEMA", "ITEM_FEATURE_SCHEMA", "ITEM_EMB_SCHEMA", "DATA_FILES", "feature_cols",
]

SPLITS: Tuple[str, ...] = ("train", "valid", "test")
SEQ_COLUMN = "item_seq"          # the history: left-padded with 0, most recent item last
TARGET_COLUMN = "item_id"        # the target item (0 is padding, never a target)
LABEL_COLUMN = "label"
TEXT_COLUMN = "txt_emb_BERT"     # 768-d text vectors in item_feature.parquet
IMAGE_COLUMN = "img_emb_CLIPRN50"  # 1024-d image vectors (OpenAI CLIP RN50)
TITLE_COLUMN = "item_title"

SPLIT_COLUMNS: Tuple[str, ...] = ("user_id", SEQ_COLUMN, TARGET_COLUMN, "likes_level", "views_level", LABEL_COLUMN)
ITEM_INFO_COLUMNS: Tuple[str, ...] = ("item_id", "item_tags", "item_emb_d128")
ITEM_FEATURE_COLUMNS: Tuple[str, ...] = ("item_id", TITLE_COLUMN, "item_tags", "likes_level", "views_level",
                                         TEXT_COLUMN, IMAGE_COLUMN)
ITEM_EMB_COLUMNS: Tuple[str, ...] = ("item_id", "item_emb_d128_v1", "item_emb_d128_v2", "item_emb_d128_v3",
                                     "item_emb_d128_e4")

# item_id: 91,717 items + padding 0 (FuxiCTR's identity vocab puts OOV at 91,717); item_tags: ids 0..11,738 + OOV
# 11,739; likes/views levels: 0..9 + OOV 10.
MICROLENS_VOCAB: Mapping[str, int] = types.MappingProxyType(
    {"item_id": 91718, "item_tags": 11740, "likes_level": 11, "views_level": 11})
SEQ_LENGTH = 100          # stored item_seq length (inferred; readers accept any fixed length)
ITEM_TAGS_LENGTH = 5      # item_tags list length in item_info.parquet
ITEM_EMB_DIM = 128        # item_emb_d128 and the item_emb.parquet variants
TXT_EMB_DIM = 768         # txt_emb_BERT
IMG_EMB_DIM = 1024        # img_emb_CLIPRN50
E4_SPLIT: Tuple[int, int] = (64, 64)  # item_emb_d128_e4 = PCA64(text) ‖ PCA64(image) (inferred)
NUM_LEVELS = 9            # observed likes/views levels 1..9
LEVEL_VOCAB = MICROLENS_VOCAB["likes_level"]

_I64 = pa.int64()
_LIST_I64 = pa.list_(pa.int64())
_LIST_F32 = pa.list_(pa.float32())

SPLIT_SCHEMA = pa.schema([("user_id", _I64), (SEQ_COLUMN, _LIST_I64), (TARGET_COLUMN, _I64),
                          ("likes_level", _I64), ("views_level", _I64), (LABEL_COLUMN, _I64)])
ITEM_INFO_SCHEMA = pa.schema([("item_id", _I64), ("item_tags", _LIST_I64), ("item_emb_d128", _LIST_F32)])
ITEM_FEATURE_SCHEMA = pa.schema([("item_id", _I64), (TITLE_COLUMN, pa.string()), ("item_tags", _LIST_I64),
                                 ("likes_level", _I64), ("views_level", _I64),
                                 (TEXT_COLUMN, _LIST_F32), (IMAGE_COLUMN, _LIST_F32)])
ITEM_EMB_SCHEMA = pa.schema([(name, _I64 if name == "item_id" else _LIST_F32) for name in ITEM_EMB_COLUMNS])

DATA_FILES: Tuple[str, ...] = ("train.parquet", "valid.parquet", "test.parquet", "item_info.parquet",
                               "item_feature.parquet", "item_emb.parquet")


def feature_cols(vocab: Mapping[str, int] = MICROLENS_VOCAB, *, emb_dim: int = ITEM_EMB_DIM) -> list:
    """The challenge's ``feature_cols`` (FuxiCTR dataset YAML) for the given vocab sizes, as plain dicts.

    Exactly the baseline's seven columns, with an explicit ``pretrain_dim`` on the embedding column.
    """
    return [
        {"name": "user_id", "active": True, "dtype": "int", "type": "meta"},
        {"name": SEQ_COLUMN, "active": True, "dtype": "int", "type": "meta"},
        {"name": "likes_level", "active": True, "dtype": "int", "type": "categorical",
         "vocab_size": int(vocab["likes_level"])},
        {"name": "views_level", "active": True, "dtype": "int", "type": "categorical",
         "vocab_size": int(vocab["views_level"])},
        {"name": TARGET_COLUMN, "active": True, "dtype": "int", "type": "categorical",
         "vocab_size": int(vocab["item_id"]), "source": "item"},
        {"name": "item_tags", "active": True, "dtype": "int", "type": "sequence", "max_len": ITEM_TAGS_LENGTH,
         "vocab_size": int(vocab["item_tags"]), "source": "item"},
        {"name": "item_emb_d128", "active": True, "dtype": "float", "type": "embedding", "source": "item",
         "embedding_dim": emb_dim, "pretrain_dim": emb_dim},
    ]
