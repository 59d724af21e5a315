"""Baselines (model_zoo.baselines): popularity, smoothed item CTR, logistic regression; cold-item rows."""
from __future__ import annotations

from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_zoo.baselines import (BASELINES, cold_item_mask, item_ctr_baseline, load_mmctr,
                                 logistic_regression_baseline, popularity_baseline, run_baselines)
from model_zoo.errors import ConfigError
from model_zoo.schema import ITEM_INFO_SCHEMA, SPLIT_SCHEMA

NUM_ITEMS = 200
COLD = np.arange(181, 201)       # items never in train (neither target nor history)
HISTORY_ONLY = 180               # an item that occurs only in train histories: not cold
NEGATIVE_ONLY = 179              # an item that is only ever a negative train target: not cold, but new
COLD_ROWS = 5                    # valid/test rows per cold item


def _lists(mat: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    n, d = mat.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32)),
                                    pa.array(mat.reshape(-1), value_type))


def _write_split(path: Path, targets: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 history_pool: np.ndarray) -> None:
    n, length = targets.size, 10
    seq = np.zeros((n, length), dtype=np.int64)
    lengths = rng.integers(0, length + 1, size=n)
    for r, k in enumerate(lengths):
        if k:
            seq[r, length - k:] = rng.choice(history_pool, size=k)
    levels = np.ones(n, dtype=np.int64)
    pq.write_table(pa.Table.from_arrays([pa.array(rng.integers(1, 50, n)), _lists(seq, pa.int64()),
                                         pa.array(targets.astype(np.int64)), pa.array(levels), pa.array(levels),
                                         pa.array(labels.astype(np.int64))], schema=SPLIT_SCHEMA), path)


def _popularity_world(root: Path, seed: int = 0) -> Path:
    """Items 1..180 are either 'hits' (click rate 0.95) or 'flops' (0.03); train rows are uniform over them, so a
    hit collects about 30x the clicks of a flop: popularity alone separates the labels. Valid/test add cold items."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    rate = np.zeros(NUM_ITEMS + 1)
    rate[1:181] = np.where(rng.random(180) < 0.4, 0.95, 0.03)
    rate[COLD] = np.where(np.arange(COLD.size) < 3, 0.95, 0.03)   # new items: mostly flops, a few hits
    rate[NEGATIVE_ONLY] = 0.5
    warm = np.arange(1, NEGATIVE_ONLY)             # HISTORY_ONLY is never a target anywhere
    history_pool = np.r_[1:NEGATIVE_ONLY, HISTORY_ONLY]
    train_targets = np.r_[rng.choice(warm, size=20_000), np.full(50, NEGATIVE_ONLY)]
    train_labels = (rng.random(train_targets.size) < rate[train_targets]) & (train_targets != NEGATIVE_ONLY)
    _write_split(root / "train.parquet", train_targets, train_labels, rng, history_pool)
    for split in ("valid", "test"):
        targets = np.concatenate([rng.choice(warm, size=1800), np.repeat(COLD, COLD_ROWS),
                                  np.full(COLD_ROWS, NEGATIVE_ONLY)])
        _write_split(root / f"{split}.parquet", targets, rng.random(targets.size) < rate[targets], rng,
                     history_pool)
    emb = rng.normal(size=(NUM_ITEMS + 1, 128)).astype(np.float32)
    emb[0] = 0
    tags = np.zeros((NUM_ITEMS + 1, 5), dtype=np.int64)
    info = pa.Table.from_arrays([pa.array(np.arange(NUM_ITEMS + 1, dtype=np.int64)), _lists(tags, pa.int64()),
                                 _lists(emb, pa.float32())], schema=ITEM_INFO_SCHEMA)
    pq.write_table(info, root / "item_info.parquet")
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return _popularity_world(tmp_path_factory.mktemp("pop") / "PopWorld")


def test_popularity_is_the_signal(world):
    result = popularity_baseline(load_mmctr(world))
    assert result.metrics["valid_AUC"] > 0.9 and result.metrics["test_AUC"] > 0.9
    assert result.predictions["valid"].shape == (1800 + (COLD.size + 1) * COLD_ROWS,)
    assert result.metrics["valid_cold_AUC"] == pytest.approx(0.5), "every cold item scores 0: a coin flip"
    assert result.as_row()["baseline"] == "popularity" and result.as_row()["dataset"] == "PopWorld"


def test_cold_rows(world):
    data = load_mmctr(world)
    for split in ("valid", "test"):
        cold = cold_item_mask(data, split)
        assert cold.sum() == COLD.size * COLD_ROWS
        assert set(np.unique(data.splits[split]["item_id"][cold])) == set(COLD.tolist())
    train = data.splits["train"]
    assert HISTORY_ONLY not in set(train["item_id"].tolist()) and (train["item_seq"] == HISTORY_ONLY).any()
    row = np.flatnonzero(data.splits["valid"]["item_id"] == 1)[:1]
    assert not cold_item_mask(data, "valid")[row].any()
    new = cold_item_mask(data, "valid", positives_only=True)
    negative_only = data.splits["valid"]["item_id"] == NEGATIVE_ONLY
    assert new[negative_only].all() and not cold_item_mask(data, "valid")[negative_only].any()
    assert new.sum() == (COLD.size + 1) * COLD_ROWS


def test_item_ctr_and_logistic_regression(world):
    data = load_mmctr(world)
    ctr = item_ctr_baseline(data)
    assert ctr.metrics["valid_AUC"] > 0.9 and ctr.metrics["valid_cold_AUC"] == pytest.approx(0.5)
    assert 0 < ctr.info["prior_a"] and 0 < ctr.info["prior_b"]
    lr = logistic_regression_baseline(data, seed=3)
    assert lr.metrics["valid_AUC"] > 0.9 and lr.metrics["test_AUC"] > 0.9
    assert lr.metrics["valid_cold_AUC"] is not None and lr.num_params == 7
    again = logistic_regression_baseline(data, seed=3)
    assert np.array_equal(lr.predictions["test"], again.predictions["test"]), "deterministic"


def test_unlabelled_test_and_unknown_name(world, tmp_path):
    import shutil
    copy = tmp_path / "NoLabels"
    shutil.copytree(world, copy)
    table = pq.read_table(copy / "test.parquet").drop(["label"])
    pq.write_table(table, copy / "test.parquet")
    (result,) = run_baselines(copy, ["popularity"])
    assert result.metrics["test_AUC"] is None and result.predictions["test"].size == table.num_rows
    assert result.metrics["valid_AUC"] > 0.9
    with pytest.raises(ConfigError, match="did you mean 'popularity'"):
        run_baselines(copy, ["populrity"])


def test_baselines_on_the_synthetic_world(tiny_params):
    from model_zoo.datasets.prepare import locate_data
    results = run_baselines(locate_data(tiny_params, progress=False).data_dir)
    assert [r.name for r in results] == list(BASELINES)
    for r in results:
        assert 0.5 < r.metrics["valid_AUC"] <= 1.0, r.as_row()
        assert 0.0 <= r.metrics["valid_cold_share"] < 1.0


def test_baselines_app_appends_rows_like_the_runner(tmp_path, work_dir):
    """One row per baseline in the results CSV, with the oracle and cold/new fields a model row has."""
    from conftest import run_cli
    from model_zoo.apps.results import read_results
    out = run_cli(["--dataset", "MicroLens_seqneg_tiny", "--output-dir", str(tmp_path)], cwd=tmp_path,
                  module="model_zoo.apps.baselines")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = read_results(tmp_path / "results" / "results.csv", required=True).rows
    assert [r["model"] for r in rows] == ["Baseline_popularity", "Baseline_item_ctr", "Baseline_logistic_regression"]
    for row in rows:
        assert row["expid"] == f"{row['model']}_MicroLens_seqneg_tiny" and float(row["oracle_valid_AUC"]) > 0.85
        assert int(row["valid_cold_rows"]) > 0 and row["valid_cold_AUC"] != ""
    bad = run_cli(["--dataset", "MicroLens_seqneg_tnyi", "--output-dir", str(tmp_path)], cwd=tmp_path,
                  module="model_zoo.apps.baselines")
    assert bad.returncode == 2 and "did you mean 'MicroLens_seqneg_tiny'" in bad.stderr

