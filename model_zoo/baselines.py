"""Simple baselines for any MMCTR dataset directory (a synthetic world or a built dataset), with cold-item AUC.

Three baselines, each fitted on ``train.parquet`` only and scored on ``valid.parquet`` and ``test.parquet``:

* ``popularity``: the target item's number of positive train rows (its train clicks; in a dataset built from a
  positive-only log, its train interactions).
* ``item_ctr``: the target item's train label rate smoothed by a Beta(a, b) prior, (clicks + a) / (rows + a + b);
  a, b by the method of moments over the rates of items with at least ``min_rows`` train rows (falling back to a
  prior of strength 10 around the train label rate when the rates do not vary more than binomial noise allows).
  An item with no train row scores the prior mean.
* ``logistic_regression``: scikit-learn ``LogisticRegression`` on six standardised features: ``likes_level``,
  ``views_level``, log(1 + popularity), the smoothed item CTR, the history length (non-zero ``item_seq`` entries) and
  the mean cosine between the target's ``item_emb_d128`` and those of its history items (0 without history). On
  train rows, popularity and CTR are leave-one-out (the row's own label removed), so the model is not fitted on a
  feature that contains its target.

Every evaluation reports the AUC over all rows and over **cold-item rows**: rows whose target item never occurs in
train.parquet, neither as a target (of any label) nor in any stored train history; and over **new-item rows**, whose
target is never a positive train target nor in a train history (with sampled negatives, where almost every item is
some train row's negative, cold rows are rare but new items are not). ``num_params`` counts the fitted
numbers: one count per item (popularity), two counts per item plus the prior (item CTR), seven weights on top of
those tables (logistic regression).
The runner (``model_zoo.apps.runner``) scores a trained model on the same three row sets, and
``python -m model_zoo.apps.baselines`` writes these baselines' rows into the same results CSV.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow.parquet as pq

from model_zoo.errors import ConfigError, DataError, did_you_mean
from model_zoo.schema import LABEL_COLUMN, SEQ_COLUMN, SPLITS, TARGET_COLUMN

__all__ = ["MMCTRData", "BaselineResult", "BASELINES", "load_mmctr", "cold_item_mask", "evaluate",
           "popularity_baseline", "item_ctr_baseline", "logistic_regression_baseline", "run_baselines",
           "EVAL_SPLITS"]

EVAL_SPLITS: Tuple[str, ...] = ("valid", "test")
_FEATURES = ("likes_level", "views_level", "log_popularity", "item_ctr", "history_length", "mean_history_cosine")


@dataclass(frozen=True)
class MMCTRData:
    """The splits of one dataset directory as arrays, plus the item table's ``item_emb_d128``.

    Attributes:
        name: the directory name (the dataset id for a zoo dataset).
        splits: split -> column -> array (``item_seq`` int32 (N, L); ``label`` float32, absent for an unlabelled test).
        item_emb: (I + 1, 128) float32, row 0 padding.
    """

    name: str
    splits: Mapping[str, Mapping[str, np.ndarray]]
    item_emb: np.ndarray

    @property
    def num_items(self) -> int:
        """I + 1 (the item vocab)."""
        return int(self.item_emb.shape[0])


@dataclass(frozen=True)
class BaselineResult:
    """One baseline on one dataset: predictions per split (row order) and metrics."""

    name: str
    dataset: str
    predictions: Mapping[str, np.ndarray]
    metrics: Mapping[str, Optional[float]]
    num_params: int
    seconds: float
    info: Mapping[str, Any] = field(default_factory=dict)

    def as_row(self) -> Dict[str, Any]:
        """A flat result dict: baseline, dataset, ``<split>_AUC``, ``<split>_cold_AUC``, ``<split>_cold_share``, ..."""
        return {"baseline": self.name, "dataset": self.dataset, **dict(self.metrics), "num_params": self.num_params,
                "seconds": round(self.seconds, 3)}


def load_mmctr(data_dir: str | Path) -> MMCTRData:
    """Read train/valid/test.parquet and item_info.parquet of ``data_dir`` with the zoo's readers.

    A test file without a ``label`` column (the challenge's hidden labels) is read without labels; it is then
    predicted but not scored.
    """
    from model_zoo.datasets.microlens import ColumnSpec, read_item_info, read_split

    d = Path(data_dir)
    info = read_item_info(d / "item_info.parquet", [ColumnSpec("item_emb_d128", "float_list")])
    vocab = int(info["item_id"].shape[0])
    splits: Dict[str, Dict[str, np.ndarray]] = {}
    for split in SPLITS:
        path = d / f"{split}.parquet"
        if split == "test" and not path.is_file():
            continue
        has_label = path.is_file() and LABEL_COLUMN in pq.read_schema(path).names
        specs = [ColumnSpec(SEQ_COLUMN, "int_list", vocab_size=vocab),
                 ColumnSpec(TARGET_COLUMN, "int", vocab_size=vocab, min_value=1),
                 ColumnSpec("likes_level", "int"), ColumnSpec("views_level", "int")]
        if has_label:
            specs.append(ColumnSpec(LABEL_COLUMN, "label"))
        elif split != "test":
            raise DataError(f"no '{LABEL_COLUMN}' column; expected labels in the {split} split", path=str(path),
                            column=LABEL_COLUMN)
        splits[split] = read_split(path, specs, allow_extra=True)
    return MMCTRData(name=d.name, splits=splits, item_emb=info["item_emb_d128"])


def cold_item_mask(data: MMCTRData, split: str, *, positives_only: bool = False) -> np.ndarray:
    """(N,) bool: rows of ``split`` whose target never occurs in train, neither as a target nor in a stored history.

    ``positives_only=True`` counts only positive train targets (and histories): a "new" item, never interacted
    with in train. With sampled negatives nearly every item is some train row's negative target, so almost no row
    is cold, while new items remain (the targets of users' latest interactions).
    """
    train = data.splits["train"]
    seen = np.zeros(data.num_items, dtype=bool)
    targets = train[TARGET_COLUMN][train[LABEL_COLUMN] == 1] if positives_only else train[TARGET_COLUMN]
    seen[targets] = True
    seen[train[SEQ_COLUMN][train[SEQ_COLUMN] != 0]] = True
    return ~seen[data.splits[split][TARGET_COLUMN]]


def _auc(labels: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """sklearn ROC AUC, or None when fewer than two classes are present."""
    from sklearn.metrics import roc_auc_score
    if labels.size == 0 or labels.min() == labels.max():
        return None
    return float(roc_auc_score(labels, scores))


def evaluate(data: MMCTRData, split: str, predictions: np.ndarray) -> Dict[str, Optional[float]]:
    """``{split}_AUC``; ``{split}_cold_AUC`` and ``{split}_cold_share`` (cold items, see :func:`cold_item_mask`);
    ``{split}_new_AUC`` and ``{split}_new_share`` (items never interacted with in train); ``{split}_rows``.
    An AUC is None for an unlabelled split or when its rows hold one class only."""
    rows = data.splits[split]
    preds = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if preds.shape[0] != rows[TARGET_COLUMN].shape[0]:
        raise DataError(f"{preds.shape[0]} predictions for the {rows[TARGET_COLUMN].shape[0]} rows of {split}")
    cold = cold_item_mask(data, split)
    out: Dict[str, Optional[float]] = {f"{split}_rows": int(cold.size), f"{split}_cold_share": float(cold.mean())}
    labels = rows.get(LABEL_COLUMN)
    new = cold_item_mask(data, split, positives_only=True)
    out[f"{split}_new_share"] = float(new.mean())
    out[f"{split}_AUC"] = _auc(labels, preds) if labels is not None else None
    out[f"{split}_cold_AUC"] = _auc(labels[cold], preds[cold]) if labels is not None else None
    out[f"{split}_new_AUC"] = _auc(labels[new], preds[new]) if labels is not None else None
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Item statistics
# ---------------------------------------------------------------------------------------------------------------------
def _item_counts(data: MMCTRData) -> Tuple[np.ndarray, np.ndarray]:
    """(train rows, train positives) per item id 0..I."""
    train = data.splits["train"]
    rows = np.bincount(train[TARGET_COLUMN], minlength=data.num_items).astype(np.float64)
    pos = np.bincount(train[TARGET_COLUMN], weights=train[LABEL_COLUMN], minlength=data.num_items)
    return rows, pos


def _beta_prior(rows: np.ndarray, pos: np.ndarray, mean_label: float, min_rows: int) -> Tuple[float, float]:
    """Method-of-moments Beta(a, b) from the rates of items with >= ``min_rows`` rows; strength 10 as a fallback."""
    enough = rows >= min_rows
    if enough.sum() >= 2:
        rates = pos[enough] / rows[enough]
        m, v = float(rates.mean()), float(rates.var())
        if 0.0 < m < 1.0 and 0.0 < v < m * (1.0 - m):
            strength = m * (1.0 - m) / v - 1.0
            return m * strength, (1.0 - m) * strength
    mu = min(max(mean_label, 1e-6), 1 - 1e-6)
    return 10.0 * mu, 10.0 * (1.0 - mu)


def _fit(name: str, data: MMCTRData, score: Callable[[str], np.ndarray], num_params: int, started: float,
         info: Optional[Mapping[str, Any]] = None) -> BaselineResult:
    preds: Dict[str, np.ndarray] = {}
    metrics: Dict[str, Optional[float]] = {}
    for split in EVAL_SPLITS:
        if split not in data.splits:
            continue
        preds[split] = score(split)
        metrics.update(evaluate(data, split, preds[split]))
    return BaselineResult(name=name, dataset=data.name, predictions=preds, metrics=metrics, num_params=num_params,
                          seconds=time.perf_counter() - started, info=dict(info or {}))


def popularity_baseline(data: MMCTRData) -> BaselineResult:
    """Score = the target's number of positive train rows."""
    started = time.perf_counter()
    _, pos = _item_counts(data)
    return _fit("popularity", data, lambda s: pos[data.splits[s][TARGET_COLUMN]], data.num_items - 1, started)


def item_ctr_baseline(data: MMCTRData, *, min_rows: int = 5) -> BaselineResult:
    """Score = the target's Beta-smoothed train label rate (prior fitted by the method of moments)."""
    started = time.perf_counter()
    rows, pos = _item_counts(data)
    a, b = _beta_prior(rows, pos, float(data.splits["train"][LABEL_COLUMN].mean()), min_rows)
    ctr = (pos + a) / (rows + a + b)
    return _fit("item_ctr", data, lambda s: ctr[data.splits[s][TARGET_COLUMN]], 2 * (data.num_items - 1) + 2,
                started, {"prior_a": a, "prior_b": b})


def _mean_history_cosine(data: MMCTRData, split: str, unit: np.ndarray) -> np.ndarray:
    """Mean cosine between each row's target and its history items (0 without history), via a sparse sum."""
    from scipy.sparse import csr_matrix
    rows = data.splits[split]
    seq = rows[SEQ_COLUMN]
    mask = seq != 0
    lengths = mask.sum(axis=1)
    indptr = np.r_[0, np.cumsum(lengths)]
    hist = csr_matrix((np.ones(int(indptr[-1]), dtype=np.float32), seq[mask].astype(np.int64), indptr),
                      shape=(seq.shape[0], data.num_items))
    summed = np.asarray(hist @ unit)                        # (N, 128): sum of the history's unit vectors
    dots = np.einsum("nd,nd->n", summed, unit[rows[TARGET_COLUMN]])
    return np.where(lengths > 0, dots / np.maximum(lengths, 1), 0.0)


def _features(data: MMCTRData, split: str, rows_per_item: np.ndarray, pos_per_item: np.ndarray, a: float, b: float,
              unit: np.ndarray) -> np.ndarray:
    r = data.splits[split]
    target = r[TARGET_COLUMN]
    n, p = rows_per_item[target], pos_per_item[target]
    if split == "train":   # leave-one-out: the row's own label is not part of its features
        n, p = n - 1.0, p - r[LABEL_COLUMN]
    history_length = (r[SEQ_COLUMN] != 0).sum(axis=1)
    return np.column_stack([r["likes_level"], r["views_level"], np.log1p(p), (p + a) / (n + a + b),
                            history_length, _mean_history_cosine(data, split, unit)]).astype(np.float64)


def logistic_regression_baseline(data: MMCTRData, *, seed: int = 2025, min_rows: int = 5,
                                 max_iter: int = 1000) -> BaselineResult:
    """Standardised features (see the module docstring) -> sklearn LogisticRegression (lbfgs, seeded)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    rows, pos = _item_counts(data)
    labels = data.splits["train"][LABEL_COLUMN]
    if labels.min() == labels.max():
        raise DataError(f"{data.name}: train labels are all {labels[0]:g}; logistic regression needs both classes")
    a, b = _beta_prior(rows, pos, float(labels.mean()), min_rows)
    norms = np.linalg.norm(data.item_emb, axis=1, keepdims=True)
    unit = (data.item_emb / np.maximum(norms, 1e-12)).astype(np.float32)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    model.fit(_features(data, "train", rows, pos, a, b, unit), labels)
    coef = model[-1].coef_.reshape(-1)
    info = {"features": list(_FEATURES), "coef_standardised": [round(float(c), 6) for c in coef],
            "intercept": float(model[-1].intercept_[0])}
    return _fit("logistic_regression", data,
                lambda s: model.predict_proba(_features(data, s, rows, pos, a, b, unit))[:, 1],
                coef.size + 1, started, info)


BASELINES: Mapping[str, Callable[..., BaselineResult]] = {
    "popularity": popularity_baseline, "item_ctr": item_ctr_baseline,
    "logistic_regression": logistic_regression_baseline,
}


def run_baselines(data_dir: str | Path, names: Sequence[str] = tuple(BASELINES), *,
                  seed: int = 2025) -> List[BaselineResult]:
    """Run the named baselines on the dataset in ``data_dir`` (train/valid/test.parquet, item_info.parquet)."""
    for n in names:
        if n not in BASELINES:
            raise ConfigError(f"unknown baseline '{n}'{did_you_mean(n, BASELINES)}; expected one of {tuple(BASELINES)}")
    data = load_mmctr(data_dir)
    out = []
    for n in names:
        fn = BASELINES[n]
        kwargs = {"seed": seed} if "seed" in inspect.signature(fn).parameters else {}
        out.append(fn(data, **kwargs))
    return out
