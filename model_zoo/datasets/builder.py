"""Build an MMCTR dataset (the zoo's MicroLens_1M_x1 schema) from an interaction log and an item table.

Input: an interaction log (user, item, timestamp, optionally a rating) and an item table (item id, text columns,
optionally categories, extra tags, cover images or precomputed vectors). Output, in ``out_dir``::

    dataset_config.yaml   the dataset block <Name> (vocab sizes filled in, absolute paths, test_has_labels: True)
    model_config.yaml     one expid <Model>_<Name> per registered model, from its <Model>_MicroLens_seqneg block
    manifest.json         inputs' sha256, options, counts, encoders, timings, output files' sha256
    <Name>/train.parquet valid.parquet test.parquet item_info.parquet item_feature.parquet
    <Name>/item_ids.parquet user_ids.parquet   new id -> the input's raw id (to map predictions back)
    encoder_cache/        CachedEncoder shards (a rebuild with the same texts re-encodes nothing)

so that ``python run_expid.py --config <out_dir> --expid <Model>_<Name>`` runs every model with nothing written by
hand. ``data_root`` is ``out_dir``, so runtime artefacts (feature maps) land next to the data in ``<out_dir>/<Name>/``.

Sources: the schema is ``model_zoo.schema`` (``shared/reference/microlens_mmctr.md`` sections 3 to 5); the recipe
follows section 10's MovieLens mapping (chronological histories, leave-last-out, sampled negatives or a rating rule,
popularity levels, genre tags, MiniLM text, PCA 128) and section 3's inference of how the challenge labels were made
(the latest interaction as the positive plus sampled negatives sharing its history; three per positive in train).

Choices (each is an option unless said otherwise):

* **Order and histories.** Each user's interactions are sorted by (timestamp, new item id): equal timestamps are
  broken by item id, deterministically. The row of an interaction holds the user's up to ``max_len`` previous items,
  left-padded with 0, most recent last. Rows whose history is shorter than ``min_history`` (default 1: a user's
  first interaction) are not emitted; the interaction still appears in later histories.
* **Split.** ``leave_last_out`` (default): per user, the last interaction is the test row, the second to last the
  valid row, earlier ones train rows, each with the history before it (so a user with two interactions has only a
  test row, since the valid one has an empty history). ``time``: global cut points at the ``time_split`` quantiles
  of all timestamps (default 0.8, 0.9): earlier interactions train, then valid, then test; histories always hold
  every earlier interaction of the user, whatever its split.
* **Labels.** Positive-only logs (default): every emitted interaction is a positive row followed by ``negatives``
  (default 3) sampled negative rows with the same user and history. Negatives are distinct within a row and never
  an item the user interacted with at any time (a superset of "not in the history, not the positive": no negative is
  a past or future positive of that user). Sampling is ``uniform`` over the items or ``popularity``-tempered:
  P(i) proportional to (count of i + 1) ** ``popularity_alpha`` (default 0.75). ``popularity_counts``: ``log``
  (default) counts every interaction of the log, so an item that is new in the valid/test period is drawn as a
  negative about as often as it is a positive there; ``train`` counts the train part only, under which items unseen
  in train are almost never negatives, and a cold-item AUC would measure little more than "unknown item => positive";
  ``split`` counts up to the end of each row's own split (train rows: the train part; valid rows: train + valid; test
  rows: the whole log), so no item is drawn before the period in which it first occurs, while items new in valid/test
  are negatives there too: the temporally honest choice for ``split: time``. Seeded (``seed``). Rating logs: with
  ``label_rule`` (e.g. ``"rating>=4"``) every emitted interaction is one row labelled by the rule; no negatives.
* **Ids.** Items occurring in the log are numbered 1..I in the order of their raw ids (numerically when every raw id
  is an integer, else as text); 0 is padding. Users likewise 1..U. Items of the item table that never occur in the log
  are left out. Raw ids are compared as text.
* **Levels** (``likes_level``, ``views_level``; 1..9, vocab 11 as in the challenge; the split files repeat the
  target's levels): ``views_level`` from **train popularity** = the item's number of interactions in the train part
  of the log (every interaction assigned to train, including first interactions that emit no row);
  ``likes_level`` from **train label statistics** = the item's Beta-smoothed label rate over the train rows where it
  is the target, (positives + m * mu) / (rows + m) with mu the train label rate and m = ``prior_strength``. In
  both, level 1 means "no train statistic" (the item never counted in train) and the seen items get 2..9 by
  equal-frequency buckets of the statistic (ties share a bucket). No valid or test label is used.
* **Tags** (``item_tags``, length 5, left-padded): the item's categories in their given order (``category_sep``
  separated, ``ignore_categories`` dropped), then its extra tags (e.g. MovieLens tags.csv; lower-cased) by number of
  applications, truncated to 5. Extra tags on fewer than ``min_tag_items`` distinct items are dropped. Categories
  and extra tags have separate ids (``comedy`` the tag is not ``Comedy`` the genre); ids 1..T by decreasing item
  count, then name; vocab T + 2 (0 padding, T + 1 OOV as in the challenge). Extra tags are item content taken from
  the whole tag file, whatever the time of tagging.
* **Vectors.** Text: the text columns joined with ". " (nulls skipped), encoded by the real all-MiniLM-L6-v2
  (384-d, L2-normalised) through :class:`~model_zoo.embeddings.encoders.CachedEncoder`; written as ``txt_emb_BERT``
  (the schema's name; the model is recorded in the parquet metadata and the manifest; every consumer accepts any
  dimension). Images (``images_dir``: ``{raw item id}.jpg|jpeg|png``): EfficientNet-Lite0 1280-d, written as
  ``img_emb_CLIPRN50`` (same convention); an item without a file gets a zero vector (counted). Precomputed vectors
  (a parquet file with the item column and one list<float> column) replace an encoder. Without images there is no
  image column, and the DMF expid uses ``mm_feature_columns: [txt_emb_BERT]``.
* **item_emb_d128** = PCA128 (:func:`model_zoo.embeddings.pca.fit_pca`, seeded) of the text vectors, or of text ‖
  image with each modality L2-normalised first (deviation: the challenge concatenated raw CLIP/BERT vectors; without
  normalisation the 1280-d image features, norms about 20, would drown the unit-norm text). With fewer than 128
  items or dimensions the PCA keeps min(I, D) components and the rest is zero.

Every output file is read back with the zoo's own readers (``model_zoo.datasets.microlens``) and every expid is
resolved and validated with ``model_zoo.config`` before the directory is published (temp dir, then
:func:`model_zoo.fileio.publish_dir`); on any error nothing is left at ``out_dir`` (an existing build stays as it was).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import re
import shutil
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from model_zoo.datasets.synthetic._common import Stages, make_bar
from model_zoo.errors import ConfigError, DataError, did_you_mean
from model_zoo.fileio import publish_dir, remove_stale_temp, sha256_file, temp_dir_for
from model_zoo.schema import (IMAGE_COLUMN, ITEM_EMB_DIM, ITEM_FEATURE_SCHEMA, ITEM_INFO_SCHEMA, ITEM_TAGS_LENGTH,
                              LABEL_COLUMN, LEVEL_VOCAB, NUM_LEVELS, SPLIT_SCHEMA, SPLITS, TEXT_COLUMN, TITLE_COLUMN,
                              feature_cols)

__all__ = ["BUILDER_VERSION", "InteractionSource", "ItemSource", "BuildOptions", "BuildResult", "LabelRule",
           "parse_label_rule", "build_dataset", "movielens_sources", "SPLIT_MODES", "SAMPLING_MODES",
           "MANIFEST", "DATA_FILE_NAMES"]

BUILDER_VERSION = "1"
SPLIT_MODES: Tuple[str, ...] = ("leave_last_out", "time")
SAMPLING_MODES: Tuple[str, ...] = ("uniform", "popularity")
POPULARITY_COUNTS: Tuple[str, ...] = ("log", "train", "split")
MANIFEST = "manifest.json"
DATA_FILE_NAMES: Tuple[str, ...] = ("train.parquet", "valid.parquet", "test.parquet", "item_info.parquet",
                                    "item_feature.parquet", "item_ids.parquet", "user_ids.parquet")
ENCODER_CACHE = "encoder_cache"
# Every model's CPU-sized blocks, in order of preference as the template of the generated expids: the sampled-negatives
# world's (recency positions, unknown-item vector: made for real sequences with new items), then the first world's.
TEMPLATE_EXPID_SUFFIXES: Tuple[str, ...] = ("_MicroLens_seqneg", "_MicroLens_synth")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RULE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*"
                      r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_POSITIVES_PER_CHUNK = 16_384   # positives written per row group (rows = positives * (1 + negatives))
_MAX_REJECTION_ROUNDS = 64      # then the remaining negatives are drawn exactly from the allowed items
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


# ---------------------------------------------------------------------------------------------------------------------
# Public configuration
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InteractionSource:
    """The interaction log: a ``.csv``, ``.tsv`` or ``.parquet`` file with one row per interaction.

    Args:
        path: the file.
        user_col, item_col: raw user and item ids (any type; compared as text).
        time_col: a number (e.g. Unix seconds) or, in parquet, a date/datetime.
        rating_col: a numeric column the ``label_rule`` reads (rating logs only).
    """

    path: str | os.PathLike
    user_col: str
    item_col: str
    time_col: str
    rating_col: Optional[str] = None


@dataclass(frozen=True)
class ItemSource:
    """The item table (one row per item) and optional item-side extras.

    Args:
        path: ``.csv``, ``.tsv`` or ``.parquet`` file.
        item_col: raw item id column (must match the log's ids as text); ids must be unique.
        text_cols: columns joined with ". " into the text that is encoded (e.g. ``("title",)``).
        category_col: a column of ``category_sep``-separated categories (e.g. MovieLens ``genres``).
        category_sep: separator of ``category_col``.
        ignore_categories: category values dropped (e.g. ``("(no genres listed)",)``).
        tags_path: an extra tag file, one row per (item, tag) application (e.g. MovieLens ``tags.csv``).
        tags_item_col: its item column (default ``item_col``).
        tags_col: its tag column.
        images_dir: a folder of ``{raw item id}.jpg|jpeg|png`` covers, encoded by EfficientNet-Lite0.
        text_vectors: a parquet file with ``item_col`` and one list<float> column, used instead of encoding text.
        image_vectors: the same for images (instead of ``images_dir``).
    """

    path: str | os.PathLike
    item_col: str
    text_cols: Tuple[str, ...] = ("title",)
    category_col: Optional[str] = None
    category_sep: str = "|"
    ignore_categories: Tuple[str, ...] = ()
    tags_path: Optional[str | os.PathLike] = None
    tags_item_col: Optional[str] = None
    tags_col: str = "tag"
    images_dir: Optional[str | os.PathLike] = None
    text_vectors: Optional[str | os.PathLike] = None
    image_vectors: Optional[str | os.PathLike] = None

    def __post_init__(self) -> None:
        if isinstance(self.text_cols, str):
            object.__setattr__(self, "text_cols", (self.text_cols,))
        object.__setattr__(self, "text_cols", tuple(self.text_cols))
        object.__setattr__(self, "ignore_categories", tuple(self.ignore_categories))
        if not self.text_cols and self.text_vectors is None:
            raise ConfigError("ItemSource: text_cols is empty and no text_vectors file is given; expected at least "
                              "one text column (e.g. text_cols=('title',))")
        if self.images_dir is not None and self.image_vectors is not None:
            raise ConfigError("ItemSource: give images_dir or image_vectors, not both")
        if not self.category_sep:
            raise ConfigError("ItemSource: category_sep must be a non-empty string")


@dataclass(frozen=True)
class BuildOptions:
    """How the log becomes rows (see the module docstring for each choice).

    Args:
        name: the dataset id (a letter, then letters, digits, underscores); expids are ``<Model>_<name>``.
        max_len: stored history length L (the loader keeps the last ``max_len`` of a model's config).
        split: ``leave_last_out`` | ``time``.
        time_split: (valid start, test start) quantiles of the timestamps for ``split="time"``.
        min_history: rows with fewer previous interactions are not emitted.
        negatives: sampled negatives per positive (positive-only mode); ``None`` = 3 (the challenge's ratio).
        negative_sampling: ``uniform`` | ``popularity``.
        popularity_alpha: exponent of the popularity-tempered sampler.
        popularity_counts: ``log`` (every interaction) | ``train`` (train part only) | ``split`` (up to the end of
            each row's split): the sampler's counts.
        label_rule: e.g. ``"rating>=4"``: rating mode (one row per interaction, labelled by the rule, no negatives).
        min_tag_items: extra tags applied to fewer distinct items are dropped.
        prior_strength: m of the Beta-smoothed train label rate behind ``likes_level``.
        seed: seeds negative sampling and the PCA.
        text_batch_size, image_batch_size: encoder batch sizes.
        cache_dir: encoder cache (default ``<out_dir>/encoder_cache``, kept across rebuilds).
        model_root: ``model_root`` written into every generated expid (default: the zoo's Base, ./checkpoints/).
        epochs: override the template's ``epochs`` in every generated expid (default: keep it).
        progress: tqdm progress bars.
    """

    name: str
    max_len: int = 100
    split: str = "leave_last_out"
    time_split: Tuple[float, float] = (0.8, 0.9)
    min_history: int = 1
    negatives: Optional[int] = None
    negative_sampling: str = "popularity"
    popularity_alpha: float = 0.75
    popularity_counts: str = "log"
    label_rule: Optional[str] = None
    min_tag_items: int = 2
    prior_strength: float = 10.0
    seed: int = 2025
    text_batch_size: int = 64
    image_batch_size: int = 32
    cache_dir: Optional[str | os.PathLike] = None
    model_root: Optional[str | os.PathLike] = None
    epochs: Optional[int] = None
    progress: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(f"name={self.name!r}; expected a letter followed by letters, digits or underscores "
                              f"(it becomes the dataset id and the expid suffix), e.g. 'MovieLens_small'")
        _check_int("max_len", self.max_len, 1)
        _check_int("min_history", self.min_history, 0)
        _check_int("min_tag_items", self.min_tag_items, 1)
        _check_int("seed", self.seed, 0)
        _check_int("text_batch_size", self.text_batch_size, 1)
        _check_int("image_batch_size", self.image_batch_size, 1)
        if self.epochs is not None:
            _check_int("epochs", self.epochs, 1)
        if self.split not in SPLIT_MODES:
            raise ConfigError(f"split={self.split!r}; expected one of {SPLIT_MODES}"
                              f"{did_you_mean(self.split, SPLIT_MODES)}")
        if self.negative_sampling not in SAMPLING_MODES:
            raise ConfigError(f"negative_sampling={self.negative_sampling!r}; expected one of {SAMPLING_MODES}"
                              f"{did_you_mean(self.negative_sampling, SAMPLING_MODES)}")
        if self.popularity_counts not in POPULARITY_COUNTS:
            raise ConfigError(f"popularity_counts={self.popularity_counts!r}; expected one of {POPULARITY_COUNTS}"
                              f"{did_you_mean(str(self.popularity_counts), POPULARITY_COUNTS)}")
        q = tuple(float(v) for v in self.time_split)
        if len(q) != 2 or not 0.0 < q[0] < q[1] < 1.0:
            raise ConfigError(f"time_split={tuple(self.time_split)}; expected two quantiles 0 < valid < test < 1, "
                              f"e.g. (0.8, 0.9)")
        object.__setattr__(self, "time_split", q)
        if not (math.isfinite(self.popularity_alpha) and self.popularity_alpha >= 0):
            raise ConfigError(f"popularity_alpha={self.popularity_alpha}; expected a finite number >= 0")
        if not (math.isfinite(self.prior_strength) and self.prior_strength > 0):
            raise ConfigError(f"prior_strength={self.prior_strength}; expected a finite number > 0")
        if self.label_rule is not None:
            parse_label_rule(self.label_rule)
            if self.negatives is not None:
                raise ConfigError(f"negatives={self.negatives} and label_rule={self.label_rule!r} given; expected one "
                                  f"mode: sampled negatives (positive-only log) or a label rule (rating log)")
        else:
            _check_int("negatives", 3 if self.negatives is None else self.negatives, 1)

    @property
    def num_negatives(self) -> int:
        """Negatives per positive; 0 in rating mode."""
        if self.label_rule is not None:
            return 0
        return 3 if self.negatives is None else int(self.negatives)


@dataclass(frozen=True)
class LabelRule:
    """``column op threshold``, e.g. ``rating >= 4`` (no ``eval``: six comparison operators only)."""

    column: str
    op: str
    threshold: float

    _OPS = types.MappingProxyType({">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
                                   "==": np.equal, "!=": np.not_equal})

    def apply(self, values: np.ndarray) -> np.ndarray:
        """0/1 int64 labels of ``values``."""
        return self._OPS[self.op](values, self.threshold).astype(np.int64)

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.threshold:g}"


def parse_label_rule(rule: str) -> LabelRule:
    """Parse ``"rating>=4"`` into a :class:`LabelRule`; ConfigError on anything else."""
    m = _RULE_RE.match(str(rule))
    if not m:
        raise ConfigError(f"label_rule={rule!r}; expected '<column><op><number>' with op one of "
                          f"{tuple(LabelRule._OPS)}, e.g. 'rating>=4'")
    return LabelRule(m.group(1), m.group(2), float(m.group(3)))


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_dataset` published."""

    out_dir: Path
    data_dir: Path
    expids: Tuple[str, ...]
    manifest: Mapping[str, Any]


def movielens_sources(root: str | os.PathLike, *, rating_col: Optional[str] = None
                      ) -> Tuple[InteractionSource, ItemSource]:
    """Sources for a MovieLens "latest" layout (``ratings.csv``, ``movies.csv``, optional ``tags.csv``).

    Text = the title; categories = the genres (``(no genres listed)`` dropped); extra tags = tags.csv when present.
    ``rating_col="rating"`` is needed for a label rule only (positive-only mode ignores the ratings).
    """
    root = Path(root)
    for name in ("ratings.csv", "movies.csv"):
        if not (root / name).is_file():
            raise DataError(f"file not found: the MovieLens preset expects {name} in {root} "
                            f"(ratings.csv: userId,movieId,rating,timestamp; movies.csv: movieId,title,genres)",
                            path=str(root / name))
    tags = root / "tags.csv"
    interactions = InteractionSource(root / "ratings.csv", user_col="userId", item_col="movieId",
                                     time_col="timestamp", rating_col=rating_col)
    items = ItemSource(root / "movies.csv", item_col="movieId", text_cols=("title",), category_col="genres",
                       category_sep="|", ignore_categories=("(no genres listed)",),
                       tags_path=tags if tags.is_file() else None, tags_item_col="movieId", tags_col="tag")
    return interactions, items


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}={value!r}; expected an integer >= {minimum}")


# ---------------------------------------------------------------------------------------------------------------------
# Reading and checking the inputs
# ---------------------------------------------------------------------------------------------------------------------
def _read_table(path: str | os.PathLike, columns: Sequence[str], what: str) -> pl.DataFrame:
    """The requested columns of a csv/tsv (every value as text) or parquet file, plus ``__row`` (0-based row)."""
    p = Path(path)
    shown = str(p)
    if not p.is_file():
        raise DataError(f"file not found: expected the {what} ({'is a directory' if p.is_dir() else 'no such file'})",
                        path=shown)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".tsv", ".parquet"):
        raise DataError(f"unsupported file type '{suffix}' for the {what}; expected .csv, .tsv or .parquet", path=shown)
    sep = "\t" if suffix == ".tsv" else ","
    try:
        if suffix == ".parquet":
            names = pq.read_schema(p).names
        else:
            names = pl.read_csv(p, n_rows=0, infer_schema=False, separator=sep).columns
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(f"missing column '{missing[0]}'{did_you_mean(missing[0], names)} in the {what}; the file "
                            f"has columns {names}", path=shown, column=missing[0])
        wanted = list(dict.fromkeys(columns))
        if suffix == ".parquet":
            frame = pl.read_parquet(p, columns=wanted)
        else:
            frame = pl.read_csv(p, columns=wanted, infer_schema=False, separator=sep)
    except (pl.exceptions.PolarsError, pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise DataError(f"cannot read the {what}: {type(exc).__name__}: {first_line}", path=shown) from None
    return frame.with_row_index("__row")


def _where(path: str | os.PathLike, row: int) -> str:
    """" (CSV line N)" for a csv/tsv data row (header = line 1), else ""."""
    return f" (line {row + 2} of the file)" if Path(path).suffix.lower() in (".csv", ".tsv") else ""


def _ids_as_text(frame: pl.DataFrame, col: str, path: str | os.PathLike, what: str) -> pl.Series:
    """Raw ids as stripped text; a null or empty id is a DataError naming the row."""
    values = frame[col]
    if values.dtype.is_float():
        values = values.cast(pl.Int64, strict=False) if (values.drop_nulls() % 1 == 0).all() else values
    text = values.cast(pl.Utf8).str.strip_chars()
    bad = text.is_null() | (text == "")
    if bad.any():
        r = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"empty {what} id{_where(path, r)}; expected a value in every row", path=str(path),
                        column=col, row=int(frame["__row"][r]))
    return text


def _numbers(frame: pl.DataFrame, col: str, path: str | os.PathLike, what: str) -> np.ndarray:
    """A numeric column as float64 (dates/datetimes as seconds); DataError on an empty or non-numeric value."""
    values = frame[col]
    if values.dtype.is_temporal():
        if values.dtype == pl.Date:
            values = values.cast(pl.Datetime("ms"))
        values = values.dt.epoch("ms").cast(pl.Float64) / 1000.0
    elif values.dtype.is_numeric():
        values = values.cast(pl.Float64)
    else:
        raw = values.cast(pl.Utf8).str.strip_chars()
        values = raw.cast(pl.Float64, strict=False)
        bad = values.is_null() & raw.is_not_null() & (raw != "")
        if bad.any():
            r = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"value {raw[r]!r}{_where(path, r)} is not a number; expected {what}", path=str(path),
                            column=col, row=int(frame["__row"][r]))
    arr = values.to_numpy().astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        shown = "empty" if values[r] is None else f"value {values[r]!r}"
        raise DataError(f"{shown}{_where(path, r)}; expected {what} in every row", path=str(path), column=col,
                        row=int(frame["__row"][r]))
    return arr


def _id_order(raw: np.ndarray) -> np.ndarray:
    """Sorted unique raw ids: numerically when every id is an integer, else as text."""
    unique = np.unique(raw)
    as_int = pl.Series(unique).cast(pl.Int64, strict=False)
    if as_int.null_count() == 0:
        return unique[np.argsort(as_int.to_numpy(), kind="stable")]
    return unique


@dataclass
class _Log:
    """The interaction log in (user, time, item) order, ids remapped."""

    user: np.ndarray          # (N,) 1..U
    item: np.ndarray          # (N,) 1..I
    time: np.ndarray          # (N,) float64
    rating: Optional[np.ndarray]
    source_row: np.ndarray    # (N,) row of the input file
    raw_users: np.ndarray     # (U,) raw id of user u at u - 1
    raw_items: np.ndarray     # (I,) raw id of item i at i - 1

    @property
    def num_users(self) -> int:
        return len(self.raw_users)

    @property
    def num_items(self) -> int:
        return len(self.raw_items)


def _read_log(src: InteractionSource, rule: Optional[LabelRule]) -> _Log:
    """Read, check and order the log."""
    rating_col = src.rating_col
    if rule is not None:
        if rating_col is None:
            rating_col = rule.column
        elif rule.column != rating_col:
            raise ConfigError(f"label_rule {str(rule)!r} reads column '{rule.column}' but rating_col is "
                              f"'{rating_col}'; expected the rule to name the rating column")
    cols = [src.user_col, src.item_col, src.time_col] + ([rating_col] if rule is not None else [])
    frame = _read_table(src.path, cols, "interaction log")
    if frame.height == 0:
        raise DataError("the interaction log has no rows; expected at least one interaction per user",
                        path=str(src.path))
    users = _ids_as_text(frame, src.user_col, src.path, "user").to_numpy().astype(object)
    items = _ids_as_text(frame, src.item_col, src.path, "item").to_numpy().astype(object)
    times = _numbers(frame, src.time_col, src.path, "a numeric timestamp (e.g. Unix seconds)")
    rating = _numbers(frame, rating_col, src.path, f"a number for the label rule {rule}") if rule is not None else None
    raw_users, raw_items = _id_order(users), _id_order(items)
    user = _code(raw_users, users)
    item = _code(raw_items, items)
    order = np.lexsort((item, times, user))   # per user, by time, ties by (new) item id
    log = _Log(user=user[order], item=item[order], time=times[order],
               rating=rating[order] if rating is not None else None,
               source_row=frame["__row"].to_numpy()[order].astype(np.int64),
               raw_users=raw_users, raw_items=raw_items)
    return log


def _code(sorted_unique: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based position of each value in ``sorted_unique`` (which holds every value)."""
    lookup = {v: k + 1 for k, v in enumerate(sorted_unique.tolist())}
    return np.fromiter((lookup[v] for v in values.tolist()), dtype=np.int64, count=len(values))


@dataclass
class _ItemTable:
    """Item-side inputs aligned to the new ids: row k is item k + 1."""

    titles: List[str]
    categories: List[List[str]]
    source_rows: np.ndarray


def _read_items(src: ItemSource, log: _Log, log_src: InteractionSource) -> _ItemTable:
    """The item table restricted to the log's items, in new-id order; DataError on duplicates or missing items."""
    cols = [src.item_col, *src.text_cols] + ([src.category_col] if src.category_col else [])
    frame = _read_table(src.path, cols, "item table")
    if frame.height == 0:
        raise DataError("the item table has no rows; expected one row per item of the log", path=str(src.path))
    ids = _ids_as_text(frame, src.item_col, src.path, "item")
    frame = frame.with_columns(ids.alias("__id"))
    dup = frame.filter(pl.col("__id").is_duplicated()).sort("__row").head(2)
    if dup.height:
        first, second = int(dup["__row"][0]), int(dup["__row"][1])
        raise DataError(f"duplicate item id {dup['__id'][1]!r}{_where(src.path, second)}, first seen on row {first}; "
                        f"expected one row per item", path=str(src.path), column=src.item_col, row=second)
    position = {v: k for k, v in enumerate(frame["__id"].to_list())}
    missing = [k for k, raw in enumerate(log.raw_items.tolist()) if raw not in position]
    if missing:
        raw = log.raw_items[missing[0]]
        log_row = int(log.source_row[np.flatnonzero(log.item == missing[0] + 1)].min())
        raise DataError(f"item id {raw!r}{_where(log_src.path, log_row)} has no row in the item table "
                        f"{src.path} ({len(missing)} such item(s)); expected every logged item there",
                        path=str(log_src.path), column=log_src.item_col, row=log_row)
    take = np.array([position[raw] for raw in log.raw_items.tolist()], dtype=np.int64)
    sub = frame[take]
    if src.text_cols:
        text = sub.select(pl.concat_str([pl.col(c).cast(pl.Utf8).str.strip_chars() for c in src.text_cols],
                                        separator=". ", ignore_nulls=True).fill_null("")).to_series()
        titles = text.to_list()
    else:
        titles = [""] * sub.height
    categories: List[List[str]] = [[] for _ in range(sub.height)]
    if src.category_col:
        ignore = set(src.ignore_categories)
        for k, value in enumerate(sub[src.category_col].cast(pl.Utf8).to_list()):
            seen: Dict[str, None] = {}
            for part in (value or "").split(src.category_sep):
                part = part.strip()
                if part and part not in ignore:
                    seen.setdefault(part, None)
            categories[k] = list(seen)
    return _ItemTable(titles=titles, categories=categories, source_rows=sub["__row"].to_numpy().astype(np.int64))


def _read_extra_tags(src: ItemSource, log: _Log, min_items: int) -> List[List[str]]:
    """Per item (new-id order): its extra tags by number of applications (then name); rare tags dropped."""
    out: List[List[str]] = [[] for _ in range(log.num_items)]
    if src.tags_path is None:
        return out
    item_col = src.tags_item_col or src.item_col
    frame = _read_table(src.tags_path, [item_col, src.tags_col], "tag file")
    if frame.height == 0:
        return out
    ids = _ids_as_text(frame, item_col, src.tags_path, "item")
    tags = frame[src.tags_col].cast(pl.Utf8).str.strip_chars().str.to_lowercase()
    pos = {v: k for k, v in enumerate(log.raw_items.tolist())}
    pairs = pl.DataFrame({"item": [pos.get(v, -1) for v in ids.to_list()], "tag": tags}).filter(
        (pl.col("item") >= 0) & pl.col("tag").is_not_null() & (pl.col("tag") != ""))
    counts = pairs.group_by(["item", "tag"]).len()
    spread = counts.group_by("tag").agg(pl.col("item").n_unique().alias("items"))
    keep = spread.filter(pl.col("items") >= min_items).select("tag")
    counts = counts.join(keep, on="tag").sort(["item", "len", "tag"], descending=[False, True, False])
    for item, tag in zip(counts["item"].to_list(), counts["tag"].to_list()):
        out[item].append(tag)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Rows: split, negatives, labels, levels
# ---------------------------------------------------------------------------------------------------------------------
_TRAIN, _VALID, _TEST = 0, 1, 2


@dataclass
class _Rows:
    """Emitted interactions (indices into the ordered log) per split, their negatives and labels."""

    user_start: np.ndarray                  # (N,) index of the first interaction of the row's user
    split_of: np.ndarray                    # (N,) split code of every interaction
    emitted: Dict[int, np.ndarray]          # split code -> indices of emitted interactions
    negatives: Dict[int, np.ndarray]        # split code -> (rows, k) sampled items (k = 0 in rating mode)
    labels: Dict[int, np.ndarray]           # split code -> (rows,) labels of the emitted interactions (rating mode)


def _assign_splits(log: _Log, opts: BuildOptions) -> Tuple[np.ndarray, np.ndarray]:
    """(split code per interaction, index of each interaction's user's first interaction)."""
    n = len(log.user)
    boundary = np.flatnonzero(np.r_[True, log.user[1:] != log.user[:-1]])
    counts = np.diff(np.r_[boundary, n])
    start = np.repeat(boundary, counts)
    pos = np.arange(n) - start
    size = np.repeat(counts, counts)
    split = np.full(n, _TRAIN, dtype=np.int8)
    if opts.split == "leave_last_out":
        split[pos == size - 2] = _VALID
        split[pos == size - 1] = _TEST
    else:
        q_valid, q_test = np.quantile(log.time, opts.time_split)
        split[log.time >= q_valid] = _VALID
        split[log.time >= q_test] = _TEST
    return split, start


def _sampling_cdf(counts: np.ndarray, opts: BuildOptions) -> np.ndarray:
    """Cumulative sampling distribution over items 1..I (entry k is item k + 1) from per-item ``counts``; with
    ``popularity_counts: split`` items not yet counted get weight 0 (they do not exist yet)."""
    if opts.negative_sampling == "uniform":
        weights = np.ones(len(counts) - 1)
    else:
        weights = (counts[1:].astype(np.float64) + 1.0) ** opts.popularity_alpha
    if opts.popularity_counts == "split":
        weights = np.where(counts[1:] > 0, weights, 0.0)
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _in_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Membership of ``keys`` in the sorted array ``sorted_keys``."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    idx = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[idx] == keys


def _sample_negatives(users: np.ndarray, k: int, cdf: np.ndarray, user_item_keys: np.ndarray, num_items: int,
                      rng: np.random.Generator) -> np.ndarray:
    """(R, k) distinct negatives per row, none an item of that row's user (rejection sampling, then exact draws)."""
    stride = num_items + 1
    neg = np.zeros((len(users), k), dtype=np.int64)
    for j in range(k):
        todo = np.arange(len(users))
        for _ in range(_MAX_REJECTION_ROUNDS):
            if todo.size == 0:
                break
            cand = np.minimum(np.searchsorted(cdf, rng.random(todo.size), side="right"), num_items - 1) + 1
            bad = _in_sorted(user_item_keys, users[todo] * stride + cand)
            for prev in range(j):
                bad |= neg[todo, prev] == cand
            neg[todo[~bad], j] = cand[~bad]
            todo = todo[bad]
        probs = np.diff(np.r_[0.0, cdf])
        for r in todo.tolist():   # users who interacted with most of the catalogue: draw from what is left
            lo, hi = np.searchsorted(user_item_keys, [users[r] * stride, (users[r] + 1) * stride])
            allowed = np.ones(num_items + 1, dtype=bool)
            allowed[0] = False
            allowed[user_item_keys[lo:hi] - users[r] * stride] = False
            allowed[neg[r, :j]] = False
            p = np.where(allowed[1:], probs, 0.0)
            if p.sum() <= 0:
                raise DataError(f"user row {r}: no item left to sample negative {j + 1} of {k} from (every item "
                                f"available so far is one of the user's items); expected fewer negatives")
            neg[r, j] = int(rng.choice(num_items, p=p / p.sum())) + 1
    return neg


def _make_rows(log: _Log, opts: BuildOptions, rule: Optional[LabelRule],
               src: InteractionSource) -> Tuple[_Rows, np.ndarray]:
    """Split, emit, sample negatives / apply the label rule; returns the rows and the train counts per item."""
    split, start = _assign_splits(log, opts)
    pos = np.arange(len(log.user)) - start
    emit = pos >= opts.min_history
    train_counts = np.bincount(log.item[split == _TRAIN], minlength=log.num_items + 1)
    emitted = {s: np.flatnonzero(emit & (split == s)) for s in (_TRAIN, _VALID, _TEST)}
    for s, name in zip((_TRAIN, _VALID, _TEST), SPLITS):
        if emitted[s].size == 0:
            raise DataError(f"the {name} split has no rows (split={opts.split!r}, min_history={opts.min_history}, "
                            f"{log.num_users} users, {len(log.user)} interactions); expected users with at least "
                            f"{opts.min_history + 3} interactions for leave-last-out, or a longer log",
                            path=str(src.path))
    negatives: Dict[int, np.ndarray] = {}
    labels: Dict[int, np.ndarray] = {}
    k = opts.num_negatives
    if rule is not None:
        for s in emitted:
            labels[s] = rule.apply(log.rating[emitted[s]])
            negatives[s] = np.zeros((emitted[s].size, 0), dtype=np.int64)
    else:
        keys = np.unique(log.user * (log.num_items + 1) + log.item)
        per_user = np.bincount(keys // (log.num_items + 1), minlength=log.num_users + 1)
        crowded = np.flatnonzero(per_user > log.num_items - k)
        if crowded.size:
            u = int(crowded[0])
            raise DataError(f"user {log.raw_users[u - 1]!r} interacted with {int(per_user[u])} of the "
                            f"{log.num_items} items, which leaves fewer than negatives={k} items to sample from; "
                            f"expected more items than any user's distinct items + negatives, or fewer negatives",
                            path=str(src.path), column=src.user_col)
        rng = np.random.default_rng(opts.seed)
        for s in (_TRAIN, _VALID, _TEST):
            if opts.popularity_counts == "split":  # interactions of this split and the earlier ones
                counts = np.bincount(log.item[split <= s], minlength=log.num_items + 1)
            elif opts.popularity_counts == "train":
                counts = train_counts
            else:
                counts = np.bincount(log.item, minlength=log.num_items + 1)
            cdf = _sampling_cdf(counts, opts)
            negatives[s] = _sample_negatives(log.user[emitted[s]], k, cdf, keys, log.num_items, rng)
            labels[s] = np.ones(emitted[s].size, dtype=np.int64)
    return _Rows(user_start=start, split_of=split, emitted=emitted, negatives=negatives, labels=labels), train_counts


def _levels(stat: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Levels 1..9 per item 0..I: 0 for padding, 1 for unseen items, 2..9 equal-frequency buckets of ``stat``."""
    out = np.zeros(stat.shape[0], dtype=np.int64)
    out[1:] = 1
    seen = seen.copy()
    seen[0] = False
    if seen.any():
        buckets = NUM_LEVELS - 1
        edges = np.quantile(stat[seen], np.arange(1, buckets) / buckets)
        out[seen] = np.searchsorted(edges, stat[seen], side="right") + 2
    return out


def _item_levels(rows: _Rows, log: _Log, train_counts: np.ndarray, prior_strength: float
                 ) -> Tuple[np.ndarray, np.ndarray, Dict[str, float]]:
    """(likes_level, views_level) per item id 0..I from train rows and train counts; and the stats used."""
    n_items = log.num_items + 1
    train = rows.emitted[_TRAIN]
    targets = np.concatenate([log.item[train], rows.negatives[_TRAIN].reshape(-1)])
    labels = np.concatenate([rows.labels[_TRAIN], np.zeros(rows.negatives[_TRAIN].size, dtype=np.int64)])
    n_rows = np.bincount(targets, minlength=n_items).astype(np.float64)
    n_pos = np.bincount(targets, weights=labels, minlength=n_items)
    mu = float(labels.mean())
    smoothed = (n_pos + prior_strength * mu) / (n_rows + prior_strength)
    likes = _levels(smoothed, n_rows > 0)
    views = _levels(np.log1p(train_counts.astype(np.float64)), train_counts > 0)
    return likes, views, {"train_label_rate": mu, "prior_strength": prior_strength}


# ---------------------------------------------------------------------------------------------------------------------
# Tags and vectors
# ---------------------------------------------------------------------------------------------------------------------
def _tag_matrix(categories: List[List[str]], extra: List[List[str]]) -> Tuple[np.ndarray, List[str]]:
    """(I + 1, 5) left-padded tag ids (row 0 = padding) and the tag names (id t at t - 1)."""
    per_item = [[f"category:{c}" for c in cats] + [f"tag:{t}" for t in tags]
                for cats, tags in zip(categories, extra)]
    kept = [names[:ITEM_TAGS_LENGTH] for names in per_item]
    freq: Dict[str, int] = {}
    for names in kept:
        for name in names:
            freq[name] = freq.get(name, 0) + 1
    vocab = sorted(freq, key=lambda name: (-freq[name], name))
    ids = {name: t + 1 for t, name in enumerate(vocab)}
    mat = np.zeros((len(kept) + 1, ITEM_TAGS_LENGTH), dtype=np.int64)
    for k, names in enumerate(kept):
        if names:
            mat[k + 1, ITEM_TAGS_LENGTH - len(names):] = [ids[n] for n in names]
    return mat, vocab


def _read_vectors(path: str | os.PathLike, item_col: str, log: _Log, what: str) -> np.ndarray:
    """(I, D) float32 precomputed vectors in new-id order from a parquet file (item column + one list column)."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() != ".parquet":
        raise DataError(f"expected a parquet file of {what} vectors (columns: {item_col} and one list<float> column)",
                        path=str(p))
    schema = pq.read_schema(p)
    if item_col not in schema.names:
        raise DataError(f"missing column '{item_col}'{did_you_mean(item_col, schema.names)}; the file has "
                        f"{schema.names}", path=str(p), column=item_col)
    is_list = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    lists = [f.name for f in schema if f.name != item_col and any(check(f.type) for check in is_list)]
    if len(lists) != 1:
        raise DataError(f"found list columns {lists}; expected exactly one list<float> column of {what} vectors",
                        path=str(p))
    col = lists[0]
    frame = pl.read_parquet(p, columns=[item_col, col]).with_row_index("__row")
    ids = _ids_as_text(frame, item_col, p, "item")
    position: Dict[str, int] = {}
    for r, v in enumerate(ids.to_list()):
        if v in position:
            raise DataError(f"duplicate item id {v!r}, first seen on row {position[v]}; expected one vector per item",
                            path=str(p), column=item_col, row=r)
        position[v] = r
    missing = [raw for raw in log.raw_items.tolist() if raw not in position]
    if missing:
        raise DataError(f"no vector for item id {missing[0]!r} ({len(missing)} logged item(s) missing); expected a "
                        f"row for every item of the log", path=str(p), column=item_col)
    take = [position[raw] for raw in log.raw_items.tolist()]
    values = frame[col][take]
    lengths = values.list.len().to_numpy()
    nulls = values.is_null().to_numpy()
    if nulls.any():
        r = take[int(np.flatnonzero(nulls)[0])]
        raise DataError("null vector; expected a list of floats", path=str(p), column=col, row=r)
    if (lengths != lengths[0]).any() or lengths[0] == 0:
        bad = int(np.flatnonzero(lengths != lengths[0])[0]) if (lengths != lengths[0]).any() else 0
        raise DataError(f"vector of length {int(lengths[bad])}, expected {int(lengths[0])} in every row (non-empty)",
                        path=str(p), column=col, row=take[bad])
    arrow = values.to_arrow()
    arrow = arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
    flat = arrow.flatten().to_numpy(zero_copy_only=False)
    mat = np.asarray(flat, dtype=np.float32).reshape(len(take), int(lengths[0]))
    finite = np.isfinite(mat).all(axis=1)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        raise DataError("NaN or infinite value in the vector; expected finite floats", path=str(p), column=col,
                        row=take[k])
    return mat


def _image_paths(images_dir: str | os.PathLike, log: _Log) -> List[Optional[Path]]:
    """The cover file of every item (new-id order) or None."""
    d = Path(images_dir)
    if not d.is_dir():
        raise DataError("not a directory: expected a folder of {item id}.jpg|jpeg|png cover images", path=str(d))
    files: Dict[str, Path] = {}
    for f in sorted(d.iterdir()):
        if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES:
            files.setdefault(f.stem, f)
    paths = [files.get(raw) for raw in log.raw_items.tolist()]
    if not any(p is not None for p in paths):
        raise DataError(f"none of the {log.num_items} logged items has a cover here; expected files named "
                        f"{{raw item id}}.jpg|jpeg|png, e.g. {log.raw_items[0]}.jpg", path=str(d))
    return paths


def _l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def _pca128(text: np.ndarray, image: Optional[np.ndarray], seed: int) -> Tuple[np.ndarray, float]:
    """(I + 1, 128) item_emb_d128 (row 0 zero) and the explained variance kept."""
    from model_zoo.embeddings.pca import fit_pca
    x = _l2(text) if image is None else np.concatenate([_l2(text), _l2(image)], axis=1)
    n_comp = min(ITEM_EMB_DIM, x.shape[0], x.shape[1])
    scores, evr = fit_pca(np.ascontiguousarray(x, dtype=np.float32), n_comp, seed=seed)
    out = np.zeros((x.shape[0] + 1, ITEM_EMB_DIM), dtype=np.float32)
    out[1:, :n_comp] = scores
    return out, float(evr.sum())


# ---------------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------------
def _list_column(block: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """A list column from a (n, width) block (every list of length width)."""
    n, width = block.shape
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32)) if n else pa.array([0], pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(block).reshape(-1), type=value_type))


def _histories(item: np.ndarray, user_start: np.ndarray, idx: np.ndarray, length: int) -> np.ndarray:
    """(len(idx), length) previous items of each interaction, left-padded with 0, most recent last."""
    window = idx[:, None] + np.arange(-length, 0)[None, :]
    valid = window >= user_start[idx][:, None]
    return np.where(valid, item[np.maximum(window, 0)], 0).astype(np.int64)


def _chunks(n: int, size: int) -> Iterator[Tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def _write_split(path: Path, log: _Log, rows: _Rows, split: int, likes: np.ndarray, views: np.ndarray,
                 max_len: int) -> Dict[str, Any]:
    """Write one split: per emitted interaction its positive/labelled row, then its negatives (same history)."""
    idx = rows.emitted[split]
    neg = rows.negatives[split]
    lab = rows.labels[split]
    k = neg.shape[1]
    n_rows = n_pos = 0
    with pq.ParquetWriter(str(path), SPLIT_SCHEMA, compression="zstd") as writer:
        for a, b in _chunks(idx.size, _POSITIVES_PER_CHUNK):
            part = idx[a:b]
            hist = _histories(log.item, rows.user_start, part, max_len)
            targets = np.concatenate([log.item[part][:, None], neg[a:b]], axis=1).reshape(-1)
            labels = np.concatenate([lab[a:b][:, None], np.zeros((b - a, k), dtype=np.int64)], axis=1).reshape(-1)
            reps = k + 1
            table = pa.Table.from_arrays([
                pa.array(np.repeat(log.user[part], reps)), _list_column(np.repeat(hist, reps, axis=0), pa.int64()),
                pa.array(targets), pa.array(likes[targets]), pa.array(views[targets]), pa.array(labels)],
                schema=SPLIT_SCHEMA)
            writer.write_table(table, row_group_size=table.num_rows)
            n_rows += table.num_rows
            n_pos += int(labels.sum())
    return {"rows": n_rows, "positives": n_pos, "label_rate": round(n_pos / n_rows, 6)}


def _write_items(data_dir: Path, log: _Log, items: _ItemTable, tags: np.ndarray, likes: np.ndarray,
                 views: np.ndarray, emb: np.ndarray, text: np.ndarray, image: Optional[np.ndarray],
                 encoders: Mapping[str, Any]) -> None:
    """item_info.parquet (dense, all-zero row 0), item_feature.parquet (ids 1..I) and the two id maps."""
    n = log.num_items
    info = pa.Table.from_arrays([pa.array(np.arange(n + 1, dtype=np.int64)), _list_column(tags, pa.int64()),
                                 _list_column(emb, pa.float32())], schema=ITEM_INFO_SCHEMA)
    pq.write_table(info, data_dir / "item_info.parquet", compression="zstd")
    names = ["item_id", TITLE_COLUMN, "item_tags", "likes_level", "views_level", TEXT_COLUMN]
    arrays = [pa.array(np.arange(1, n + 1, dtype=np.int64)), pa.array(items.titles, pa.string()),
              _list_column(tags[1:], pa.int64()), pa.array(likes[1:]), pa.array(views[1:]),
              _list_column(text, pa.float32())]
    if image is not None:
        names.append(IMAGE_COLUMN)
        arrays.append(_list_column(image, pa.float32()))
    stable = {k: {f: v[f] for f in ("column", "encoder", "precomputed", "dim", "pca_of") if f in v}
              for k, v in encoders.items()}   # what made the vectors, not how much of it came from the cache
    schema = pa.schema([ITEM_FEATURE_SCHEMA.field(name) for name in names]).with_metadata(
        {b"mmctr.encoders": json.dumps(stable, sort_keys=True, default=str).encode()})
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), data_dir / "item_feature.parquet",
                   compression="zstd")
    for fname, col, raw in (("item_ids.parquet", "item_id", log.raw_items), ("user_ids.parquet", "user_id",
                                                                                log.raw_users)):
        pq.write_table(pa.table({col: pa.array(np.arange(1, len(raw) + 1, dtype=np.int64)),
                                 f"raw_{col}": pa.array([str(v) for v in raw.tolist()], pa.string())}),
                       data_dir / fname, compression="zstd")


def _model_block(model: str) -> Tuple[str, Dict[str, Any]]:
    """The CPU-sized template expid of ``model``: ``<Model>_MicroLens_seqneg``, else ``<Model>_MicroLens_synth``,
    else ``<Model>_test``."""
    from model_zoo.config import read_yaml
    from model_zoo.registry import get_model
    path = Path(inspect.getfile(get_model(model))).parent / "model_config.yaml"
    blocks = read_yaml(path)
    candidates = [f"{model}{suffix}" for suffix in TEMPLATE_EXPID_SUFFIXES] + [f"{model}_test"]
    for expid in candidates:
        if isinstance(blocks.get(expid), dict):
            return expid, dict(blocks[expid])
    raise ConfigError(f"{path}: model '{model}' has none of {candidates}; expected one to derive the generated "
                      f"expid from")


def _write_configs(tmp: Path, out: Path, name: str, vocab: Mapping[str, int], has_image: bool,
                   opts: BuildOptions) -> Dict[str, str]:
    """dataset_config.yaml and model_config.yaml; returns expid -> template expid."""
    import yaml

    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.registry import list_models

    data_dir = out / name
    block: Dict[str, Any] = {
        "data_root": str(out), "data_format": "parquet", "rebuild_dataset": False,
        "train_data": str(data_dir / "train.parquet"), "valid_data": str(data_dir / "valid.parquet"),
        "test_data": str(data_dir / "test.parquet"), "item_info": str(data_dir / "item_info.parquet"),
        "item_feature": str(data_dir / "item_feature.parquet"), "test_has_labels": True,
        "feature_cols": feature_cols(vocab), "label_col": {"name": LABEL_COLUMN, "dtype": "float"},
    }
    header = (f"# Written by model_zoo.datasets.builder (version {BUILDER_VERSION}); see manifest.json.\n"
              f"# vocab sizes: item_id = I + 1, item_tags = T + 2, likes/views levels {LEVEL_VOCAB}.\n")
    (tmp / "dataset_config.yaml").write_text(header + yaml.safe_dump({name: block}, sort_keys=False,
                                                                     default_flow_style=None, width=120))
    blocks: Dict[str, Any] = {}
    templates: Dict[str, str] = {}
    mm_columns = [TEXT_COLUMN, IMAGE_COLUMN] if has_image else [TEXT_COLUMN]
    for model in list_models():
        template, params = _model_block(model)
        params["dataset_id"] = name
        if model == "DMF" and params.get("mm_source", "item_feature") == "item_feature":
            params["mm_feature_columns"] = list(mm_columns)
        if opts.model_root is not None:
            params["model_root"] = str(Path(opts.model_root).absolute())
        if opts.epochs is not None:
            params["epochs"] = int(opts.epochs)
        blocks[f"{model}_{name}"] = params
        templates[f"{model}_{name}"] = template
    header = (f"# Written by model_zoo.datasets.builder: one expid per registered model, each its CPU-sized "
              f"<Model>{TEMPLATE_EXPID_SUFFIXES[0]} block\n# with dataset_id: {name}"
              + ("" if has_image else " (no images: DMF uses the text vectors only)") + ".\n")
    body = "\n".join(yaml.safe_dump({expid: params}, sort_keys=False, default_flow_style=None, width=120)
                     for expid, params in blocks.items())
    (tmp / "model_config.yaml").write_text(header + body)
    return templates


def _validate_outputs(tmp: Path, name: str, vocab: Mapping[str, int], max_len: int, text_dim: int,
                      image_dim: Optional[int], expids: Sequence[str]) -> None:
    """Read every file back with the zoo's readers and resolve + validate every expid (config dir = ``tmp``)."""
    from model_zoo.datasets.microlens import (ColumnSpec, item_info_specs, read_item_info, read_optional_item_table,
                                              read_split, split_specs)
    from model_zoo.experiment import validated_params

    data_dir = tmp / name
    for split in SPLITS:
        read_split(data_dir / f"{split}.parquet", split_specs(vocab, seq_length=max_len))
    read_item_info(data_dir / "item_info.parquet", item_info_specs(vocab), num_items=vocab["item_id"])
    specs = [ColumnSpec(TITLE_COLUMN, "str"),
             ColumnSpec("item_tags", "int_list", vocab_size=vocab["item_tags"], length=ITEM_TAGS_LENGTH),
             ColumnSpec("likes_level", "int", vocab_size=vocab["likes_level"]),
             ColumnSpec("views_level", "int", vocab_size=vocab["views_level"]),
             ColumnSpec(TEXT_COLUMN, "float_list", length=text_dim)]
    if image_dim is not None:
        specs.append(ColumnSpec(IMAGE_COLUMN, "float_list", length=image_dim))
    read_optional_item_table(data_dir / "item_feature.parquet", specs, has_padding_row=False,
                             num_items=vocab["item_id"])
    read_optional_item_table(data_dir / "item_ids.parquet", [ColumnSpec("raw_item_id", "str")],
                             has_padding_row=False, num_items=vocab["item_id"])
    for expid in expids:
        validated_params(expid, config_dir=tmp, work_dir=tmp)


# ---------------------------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------------------------
# The build's stages, in order (a progress bar step and a manifest timing each).
BUILD_STAGES = ("read", "rows", "levels_tags", "text", "image", "pca", "write", "validate")


def _quiet_transformers() -> None:
    """No "Loading weights" bar from transformers when progress bars are off (a process-wide setting)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def _check_out_dir(out: Path) -> None:
    """Refuse to replace a directory that is not a previous build (it would be deleted on publish)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError("exists and is not a directory; expected a new or previously built dataset directory",
                        path=str(out))
    if not any(out.iterdir()):
        return
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or "builder_version" not in manifest:
        raise DataError(f"not empty and not a dataset built here (no {MANIFEST} from the builder); refusing to "
                        f"replace it, expected a new, empty or previously built directory", path=str(out))


def _input_record(path: Optional[str | os.PathLike]) -> Optional[Dict[str, Any]]:
    if path is None:
        return None
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file())
        return {"path": str(p.absolute()), "files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    return {"path": str(p.absolute()), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def build_dataset(interactions: InteractionSource, items: ItemSource, out_dir: str | os.PathLike,
                  options: BuildOptions, *, text_encoder: Any = None, image_encoder: Any = None) -> BuildResult:
    """Build the MMCTR files, configs and manifest into ``out_dir`` (published atomically); see the module docstring.

    Args:
        interactions: the log.
        items: the item table and extras.
        out_dir: output directory (new, empty, or a previous build, which is replaced only once all checks passed).
        options: :class:`BuildOptions`.
        text_encoder: an encoder with ``encode(texts) -> (n, D)``, ``dim``, ``name``, ``fingerprint()``; default
            :class:`~model_zoo.embeddings.encoders.MiniLMTextEncoder` (loaded only when text must be encoded).
        image_encoder: likewise for images; default
            :class:`~model_zoo.embeddings.encoders.EfficientNetLite0ImageEncoder`.

    Raises:
        DataError: bad input (names file, column, row, value and what was expected).
        ConfigError: inconsistent options.
    """
    started = time.perf_counter()
    out = Path(out_dir).absolute()
    rule = parse_label_rule(options.label_rule) if options.label_rule is not None else None
    if options.model_root is not None and Path(options.model_root).absolute().is_relative_to(out):
        raise ConfigError(f"model_root={options.model_root} lies inside out_dir {out}, which a rebuild replaces as a "
                          f"whole; expected checkpoints outside it")
    _check_out_dir(out)
    stages = Stages(make_bar("build", len(BUILD_STAGES), options.progress), advance=True)
    try:
        stages.start("read")
        log = _read_log(interactions, rule)
        item_table = _read_items(items, log, interactions)
        extra_tags = _read_extra_tags(items, log, options.min_tag_items)
        text_vectors = (_read_vectors(items.text_vectors, items.item_col, log, "text")
                        if items.text_vectors is not None else None)
        image_vectors = (_read_vectors(items.image_vectors, items.item_col, log, "image")
                         if items.image_vectors is not None else None)
        image_paths = _image_paths(items.images_dir, log) if items.images_dir is not None else None

        stages.start("rows")
        rows, train_counts = _make_rows(log, options, rule, interactions)

        stages.start("levels_tags")
        likes, views, level_stats = _item_levels(rows, log, train_counts, options.prior_strength)
        tags, tag_names = _tag_matrix(item_table.categories, extra_tags)
        vocab = {"item_id": log.num_items + 1, "item_tags": len(tag_names) + 2, "likes_level": LEVEL_VOCAB,
                 "views_level": LEVEL_VOCAB}

        remove_stale_temp(out)
        tmp = temp_dir_for(out)
    except BaseException:
        stages.finish()
        raise
    try:
        data_dir = tmp / options.name
        data_dir.mkdir()
        cache_root = Path(options.cache_dir).absolute() if options.cache_dir else (
            out / ENCODER_CACHE if (out / ENCODER_CACHE).is_dir() else tmp / ENCODER_CACHE)
        encoders: Dict[str, Any] = {}
        stages.start("text")
        if text_vectors is None:
            from model_zoo.embeddings.encoders import CachedEncoder, MiniLMTextEncoder
            if not options.progress:
                _quiet_transformers()
            enc = text_encoder if text_encoder is not None else MiniLMTextEncoder(batch_size=options.text_batch_size)
            cached = CachedEncoder(enc, cache_root / "text", progress=options.progress)
            text_vectors = cached.encode(item_table.titles)
            encoders["text"] = {"column": TEXT_COLUMN, "encoder": enc.fingerprint(), "dim": int(enc.dim),
                                "encoded_items": cached.stats.encoded_items,
                                "reused_shards": cached.stats.reused_shards}
        else:
            encoders["text"] = {"column": TEXT_COLUMN, "precomputed": str(Path(items.text_vectors).absolute()),
                                "dim": int(text_vectors.shape[1])}
        stages.start("image")
        missing_images = 0
        if image_paths is not None:
            from model_zoo.embeddings.encoders import CachedEncoder, EfficientNetLite0ImageEncoder
            enc = (image_encoder if image_encoder is not None
                   else EfficientNetLite0ImageEncoder(batch_size=options.image_batch_size))
            present = [k for k, p in enumerate(image_paths) if p is not None]
            missing_images = log.num_items - len(present)
            cached = CachedEncoder(enc, cache_root / "image", progress=options.progress)
            image_vectors = np.zeros((log.num_items, int(enc.dim)), dtype=np.float32)
            image_vectors[present] = cached.encode([image_paths[k] for k in present])
            encoders["image"] = {"column": IMAGE_COLUMN, "encoder": enc.fingerprint(), "dim": int(enc.dim),
                                 "items_without_image": missing_images, "encoded_items": cached.stats.encoded_items}
        elif image_vectors is not None:
            encoders["image"] = {"column": IMAGE_COLUMN, "precomputed": str(Path(items.image_vectors).absolute()),
                                 "dim": int(image_vectors.shape[1])}

        stages.start("pca")
        emb, evr = _pca128(text_vectors, image_vectors, options.seed)
        encoders["item_emb_d128"] = {"pca_of": "text" if image_vectors is None else "l2(text) || l2(image)",
                                     "explained_variance": round(evr, 6)}

        stages.start("write")
        split_stats = {name: _write_split(data_dir / f"{name}.parquet", log, rows, code, likes, views,
                                          options.max_len)
                       for code, name in zip((_TRAIN, _VALID, _TEST), SPLITS)}
        _write_items(data_dir, log, item_table, tags, likes, views, emb, text_vectors, image_vectors, encoders)
        templates = _write_configs(tmp, out, options.name, vocab, image_vectors is not None, options)

        stages.start("validate")
        _validate_outputs(tmp, options.name, vocab, options.max_len, int(text_vectors.shape[1]),
                          int(image_vectors.shape[1]) if image_vectors is not None else None, list(templates))
        seconds = stages.finish()
        manifest = _manifest(interactions, items, options, log, rows, split_stats, vocab, tags, tag_names, item_table,
                             encoders, level_stats, templates, seconds, data_dir, started)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n",
                                    encoding="utf-8")
        os.chmod(tmp, 0o755)   # mkdtemp made it private; the published dataset is readable like any other
        old_cache = out / ENCODER_CACHE
        if options.cache_dir is None and cache_root == old_cache and old_cache.is_dir():
            os.rename(old_cache, tmp / ENCODER_CACHE)   # keep the cache across rebuilds
        publish_dir(tmp, out)
    except BaseException:
        stages.finish()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildResult(out_dir=out, data_dir=out / options.name, expids=tuple(templates), manifest=manifest)


def _cold_rows(log: _Log, rows: _Rows, max_len: int) -> Dict[str, Dict[str, float]]:
    """Shares of valid/test rows whose target never occurs in train.parquet (``cold``: as a target of any label or
    in a stored history) and whose target is never interacted with there (``new``: no positive target, no history);
    the definitions of :func:`model_zoo.baselines.cold_item_mask`."""
    in_history = np.zeros(log.num_items + 1, dtype=bool)
    train = rows.emitted[_TRAIN]
    for a, b in _chunks(train.size, _POSITIVES_PER_CHUNK):
        in_history[_histories(log.item, rows.user_start, train[a:b], max_len)] = True
    positive = np.zeros(log.num_items + 1, dtype=bool)
    positive[log.item[train[rows.labels[_TRAIN] == 1]]] = True
    any_target = np.zeros(log.num_items + 1, dtype=bool)
    any_target[log.item[train]] = True
    any_target[rows.negatives[_TRAIN].reshape(-1)] = True
    seen = {"cold": in_history | any_target, "new": in_history | positive}
    out: Dict[str, Dict[str, float]] = {"cold": {}, "new": {}}
    for code, name in ((_VALID, "valid"), (_TEST, "test")):
        targets = np.concatenate([log.item[rows.emitted[code]][:, None], rows.negatives[code]], axis=1).reshape(-1)
        for kind in out:
            mask = seen[kind].copy()
            mask[0] = False
            out[kind][name] = round(float((~mask[targets]).mean()), 6)
    return out


def _manifest(interactions: InteractionSource, items: ItemSource, opts: BuildOptions, log: _Log, rows: _Rows,
              split_stats: Mapping[str, Any], vocab: Mapping[str, int], tags: np.ndarray, tag_names: Sequence[str],
              item_table: _ItemTable, encoders: Mapping[str, Any], level_stats: Mapping[str, float],
              templates: Mapping[str, str], seconds: Mapping[str, float], data_dir: Path,
              started: float) -> Dict[str, Any]:
    options = dataclasses.asdict(opts)
    options["negatives"] = opts.num_negatives
    for key in ("cache_dir", "model_root"):
        options[key] = str(options[key]) if options[key] is not None else None
    lengths = np.bincount(log.user, minlength=log.num_users + 1)[1:]
    return {
        "builder_version": BUILDER_VERSION,
        "dataset_id": opts.name,
        "mode": "label_rule" if opts.label_rule is not None else "sampled_negatives",
        "options": options,
        "inputs": {"interactions": {**_input_record(interactions.path), **{
                       k: getattr(interactions, k) for k in ("user_col", "item_col", "time_col", "rating_col")}},
                   "items": {**_input_record(items.path), "item_col": items.item_col,
                             "text_cols": list(items.text_cols), "category_col": items.category_col},
                   "tags": _input_record(items.tags_path), "images": _input_record(items.images_dir),
                   "text_vectors": _input_record(items.text_vectors),
                   "image_vectors": _input_record(items.image_vectors)},
        "counts": {"interactions": int(len(log.user)), "users": log.num_users, "items": log.num_items,
                   "tags": len(tag_names), "items_without_tags": int((tags[1:] == 0).all(axis=1).sum()),
                   "blank_texts": int(sum(1 for t in item_table.titles if not t)),
                   "interactions_per_user": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                                             "max": int(lengths.max())},
                   "splits": dict(split_stats),
                   **{f"{kind}_target_share": v for kind, v in _cold_rows(log, rows, opts.max_len).items()}},
        "vocab_sizes": dict(vocab),
        "levels": {"likes_level": "Beta-smoothed train label rate, 1 = no train row, 2..9 equal-frequency",
                   "views_level": "train interaction count, 1 = none, 2..9 equal-frequency", **level_stats},
        "encoders": dict(encoders),
        "expids": dict(templates),
        "files": {f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size}
                  for f in sorted(data_dir.iterdir()) if f.is_file()},
        "stage_seconds": dict(seconds),
        "seconds": round(time.perf_counter() - started, 3),
    }
