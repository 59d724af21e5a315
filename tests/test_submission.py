"""Submission files: ID,Task2 in test row order, zipped; their AUC vs ground_truth.csv equals the evaluation's."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import List

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from conftest import run_cli, shared_data_args
from model_zoo.apps.results import read_results
from model_zoo.apps.submission import AUC_TOLERANCE, make_submission, score_prediction, write_prediction
from model_zoo.errors import ConfigError, DataError

DATASET = "MicroLens_synth_tiny"
EXPID = "DIN_test"


def read_prediction(path: Path) -> List[List[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def write_ground_truth(path: Path, labels) -> Path:
    path.write_text("ID,label\n" + "".join(f"{i},{int(y)}\n" for i, y in enumerate(labels)))
    return path


# ---------------------------------------------------------------------------------------------------------------
# Fast: the writer and the scorer
# ---------------------------------------------------------------------------------------------------------------
def test_prediction_csv_round_trips_exactly(tmp_path):
    preds = np.random.default_rng(0).random(50).astype(np.float32).astype(np.float64)
    paths = write_prediction(preds, tmp_path, "X")
    rows = read_prediction(paths["prediction"])
    assert rows[0] == ["ID", "Task2"]
    assert [int(r[0]) for r in rows[1:]] == list(range(50))
    assert np.array_equal(np.array([float(r[1]) for r in rows[1:]]), preds)      # bit-exact
    with zipfile.ZipFile(paths["zip"]) as zf:
        assert zf.namelist() == ["prediction.csv"]
        assert zf.read("prediction.csv") == paths["prediction"].read_bytes()
    labels = (np.random.default_rng(1).random(50) < preds).astype(int)
    truth = write_ground_truth(tmp_path / "ground_truth.csv", labels)
    assert score_prediction(paths["prediction"], truth) == roc_auc_score(labels, preds)


def test_scorer_rejects_bad_ids_and_non_finite_predictions(tmp_path):
    (tmp_path / "prediction.csv").write_text("ID,Task2\n0,0.1\n2,0.9\n")
    truth = write_ground_truth(tmp_path / "ground_truth.csv", [0, 1])
    with pytest.raises(DataError, match="IDs are not exactly 0..1"):
        score_prediction(tmp_path / "prediction.csv", truth)
    with pytest.raises(DataError, match="test row 1 is nan"):
        write_prediction(np.array([0.1, np.nan]), tmp_path, "X")


def test_reordered_predictions_are_caught(tmp_path):
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    preds = np.array([0.1, 0.8, 0.3, 0.6, 0.9, 0.2, 0.4, 0.7])
    write_ground_truth(tmp_path / "ground_truth.csv", labels)
    files = SimpleNamespace(data_dir=tmp_path, test=tmp_path / "test.parquet", synthetic_manifest={"seed": 1})
    gen = SimpleNamespace(shuffle=False, num_rows=len(preds))
    model = SimpleNamespace(predict=lambda _gen: preds[::-1].copy())   # rows out of order
    with pytest.raises(DataError, match="test rows were reordered"):
        make_submission(model, gen, files, tmp_path / "out", "X", reference_auc=roc_auc_score(labels, preds))
    with pytest.raises(ConfigError, match="shuffles"):
        make_submission(model, SimpleNamespace(shuffle=True), files, tmp_path / "out", "X")


# ---------------------------------------------------------------------------------------------------------------
# Slow: through the runner on the tiny synthetic world, then again from the saved checkpoint
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_submission_rows_in_test_order_and_auc_equals_evaluation(tmp_path, work_dir):
    results, out_dir = tmp_path / "results" / "results.csv", tmp_path / "submission"
    common = ["--output-dir", str(tmp_path)]
    run = run_cli(["--expid", EXPID, *common, *shared_data_args(work_dir), "--submission", str(out_dir)],
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = read_results(results, required=True).rows

    data_dir = work_dir / "data" / DATASET
    num_test = pq.ParquetFile(data_dir / "test.parquet").metadata.num_rows
    rows = read_prediction(out_dir / "prediction.csv")
    assert rows[0] == ["ID", "Task2"]
    assert len(rows) - 1 == num_test
    assert [int(r[0]) for r in rows[1:]] == list(range(num_test))            # one row per test row, in order
    preds = np.array([float(r[1]) for r in rows[1:]])
    assert np.all((preds > 0) & (preds < 1))

    with open(data_dir / "ground_truth.csv", newline="") as fh:
        truth = {int(r["ID"]): int(r["label"]) for r in csv.DictReader(fh)}
    labels = np.array([truth[i] for i in range(num_test)])
    assert np.array_equal(labels, pq.read_table(data_dir / "test.parquet", columns=["label"])["label"].to_numpy())
    auc = roc_auc_score(labels, preds)
    assert abs(auc - float(row["test_AUC"])) <= AUC_TOLERANCE, (auc, row["test_AUC"])
    assert score_prediction(out_dir / "prediction.csv", data_dir / "ground_truth.csv") == auc

    with zipfile.ZipFile(out_dir / f"{EXPID}.zip") as zf:
        assert zf.namelist() == ["prediction.csv"]
        assert zf.read("prediction.csv") == (out_dir / "prediction.csv").read_bytes()

    # From the saved checkpoint, without retraining: the same file, byte for byte.
    again = run_cli(["--run-dir", row["run_dir"], *common, "--out", str(tmp_path / "again")], cwd=tmp_path,
                    module="model_zoo.apps.submission")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(match)" in again.stdout
    assert (tmp_path / "again" / "prediction.csv").read_bytes() == (out_dir / "prediction.csv").read_bytes()
    assert len(read_results(results).rows) == 1, "no retraining, no new result row"
    latest = run_cli(["--expid", EXPID, *common, "--out", str(tmp_path / "latest")], cwd=tmp_path,
                     module="model_zoo.apps.submission")
    assert latest.returncode == 0, latest.stderr[-3000:]  # --expid: its latest finished run under model_root
    assert (tmp_path / "latest" / "prediction.csv").read_bytes() == (out_dir / "prediction.csv").read_bytes()
    other = run_cli(["--expid", "DMF_test", *common], cwd=tmp_path, module="model_zoo.apps.submission")
    assert other.returncode == 2 and "no finished run of 'DMF_test'" in other.stderr


def test_unfinished_run_is_refused(tmp_path):
    from model_zoo.apps.run_record import RunRecord
    record = RunRecord.create(tmp_path / "ckpt", DATASET, EXPID)
    record.write_params({"model": "DIN"})
    record.set_status("interrupted", signal="SIGINT")
    out = run_cli(["--run-dir", str(record.dir)], cwd=tmp_path, module="model_zoo.apps.submission")
    assert out.returncode == 2 and "is 'interrupted', not finished" in out.stderr
