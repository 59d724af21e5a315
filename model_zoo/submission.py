"""Challenge submission: ``prediction.csv`` (``ID,Task2``) in test.parquet row order, zipped as ``<expid>.zip``.

The Codabench scorer of the WWW 2025 MMCTR challenge (Track 2) reads ``prediction.csv`` with columns ``ID,Task2``:
``ID`` = 0..N-1 in test.parquet row order, ``Task2`` = the predicted click probability. On the synthetic world the
file is also scored against the dataset's ``ground_truth.csv`` (``ID,label``), which must give exactly the test AUC
of the evaluation (same predictions, same order: a different value means rows were reordered).

Two ways to make one:

    python run_expid.py --expid DMF_MicroLens_synth --submission results/submission     # after training
    python -m model_zoo.submission --expid DMF_MicroLens_synth [--config DIR] [--out DIR] # from the saved checkpoint

The second rebuilds the model from ``<model_root>/<dataset_id>/<expid>.params.yaml`` (the resolved params the runner
saved) and loads ``<expid>.model``; nothing is retrained.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from model_zoo.errors import ConfigError, DataError, ZooError
from model_zoo.fileio import atomic_write

__all__ = ["PREDICTION_FILE", "AUC_TOLERANCE", "write_prediction", "score_prediction", "make_submission",
           "load_trained", "main"]

PREDICTION_FILE = "prediction.csv"
AUC_TOLERANCE = 1e-9
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "submission"




def write_prediction(predictions: np.ndarray, out_dir: str | os.PathLike, expid: str) -> Dict[str, Path]:
    """Write ``out_dir/prediction.csv`` (``ID,Task2``, one row per test row in order) and ``out_dir/<expid>.zip``.

    Values are written with Python's shortest round-trip repr, so reading the file back gives the exact float64
    predictions (and exactly the same AUC).
    """
    preds = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(preds)):
        bad = int(np.flatnonzero(~np.isfinite(preds))[0])
        raise DataError(f"prediction for test row {bad} is {preds[bad]}; expected a finite probability")
    out_dir = Path(out_dir)
    body = "ID,Task2\n" + "".join(f"{i},{p!r}\n" for i, p in enumerate(preds.tolist()))
    csv_path, zip_path = out_dir / PREDICTION_FILE, out_dir / f"{expid}.zip"
    atomic_write(csv_path, lambda tmp: tmp.write_text(body, encoding="ascii"))

    def write_zip(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(PREDICTION_FILE, body)

    atomic_write(zip_path, write_zip)
    return {"prediction": csv_path, "zip": zip_path}


def _read_id_column_csv(path: Path, value_column: str) -> np.ndarray:
    """The ``value_column`` of an ``ID,<value_column>`` CSV, ordered by ID; IDs must be exactly 0..N-1."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header != ["ID", value_column]:
            raise DataError(f"header {header}; expected ['ID', '{value_column}']", path=str(path))
        ids, values = [], []
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise DataError(f"{len(row)} fields; expected 2", path=str(path), row=lineno)
            ids.append(int(row[0]))
            values.append(float(row[1]))
    ids_arr = np.asarray(ids, dtype=np.int64)
    if not np.array_equal(np.sort(ids_arr), np.arange(len(ids_arr))):
        raise DataError(f"IDs are not exactly 0..{len(ids_arr) - 1}", path=str(path), column="ID")
    out = np.empty(len(ids_arr), dtype=np.float64)
    out[ids_arr] = values
    return out


def score_prediction(prediction_csv: str | os.PathLike, ground_truth_csv: str | os.PathLike) -> float:
    """AUC of ``prediction.csv`` (``ID,Task2``) against ``ground_truth.csv`` (``ID,label``), joined on ID.

    Computed as FuxiCTR's ``AUC`` metric (sklearn ``roc_auc_score`` on float64), like the evaluation.
    """
    from sklearn.metrics import roc_auc_score

    preds = _read_id_column_csv(Path(prediction_csv), "Task2")
    labels = _read_id_column_csv(Path(ground_truth_csv), "label")
    if len(preds) != len(labels):
        raise DataError(f"{len(preds)} predictions but {len(labels)} ground-truth rows in {ground_truth_csv}",
                        path=str(prediction_csv))
    return float(roc_auc_score(labels, preds))


def make_submission(model: Any, test_gen: Any, files: Any, out_dir: str | os.PathLike, expid: str,
                    reference_auc: Optional[float] = None) -> Dict[str, Any]:
    """Predict the test split in row order, write the submission, and score it where ground truth exists.

    Args:
        model: a trained zoo model (its ``predict`` runs the loader once, in order).
        test_gen: the test loader; it must not shuffle.
        files: the dataset's ``DatasetFiles`` (ground truth is looked up only for a synthetic world).
        out_dir: folder for ``prediction.csv`` and ``<expid>.zip``.
        expid: names the zip.
        reference_auc: the evaluation's test AUC; the ground-truth AUC must equal it (to ``AUC_TOLERANCE``).

    Returns:
        ``{"prediction", "zip", "rows", "ground_truth_AUC" (synthetic only)}``.
    """
    if getattr(test_gen, "shuffle", False):
        raise ConfigError("the test loader shuffles; a submission needs test.parquet row order")
    preds = model.predict(test_gen)
    expected_rows = getattr(test_gen, "num_rows", len(preds))
    if len(preds) != expected_rows:
        raise DataError(f"{len(preds)} predictions for {expected_rows} test rows", path=str(files.test))
    info: Dict[str, Any] = dict(write_prediction(preds, out_dir, expid), rows=len(preds))
    truth = Path(files.data_dir) / "ground_truth.csv"
    if files.synthetic_manifest and truth.is_file():
        auc = score_prediction(info["prediction"], truth)
        info["ground_truth_AUC"] = auc
        if reference_auc is not None and abs(auc - float(reference_auc)) > AUC_TOLERANCE:
            raise DataError(f"prediction.csv scores AUC {auc!r} against ground_truth.csv but the evaluation's test "
                            f"AUC is {float(reference_auc)!r}: test rows were reordered", path=str(info["prediction"]))
    logging.info("Submission: %s (%d rows)%s", info["zip"], info["rows"],
                 f"; AUC vs ground_truth.csv {info['ground_truth_AUC']:.6f}" if "ground_truth_AUC" in info else "")
    return info


# ---------------------------------------------------------------------------------------------------------------
# From a saved checkpoint
# ---------------------------------------------------------------------------------------------------------------
def _saved_params_file(expid: str, config_dir: Optional[str]) -> Path:
    from model_zoo.config import load_params

    params = load_params(expid, config_dir)
    path = Path(params["model_root"]) / params["dataset_id"] / f"{expid}.params.yaml"
    if not path.is_file():
        hint = f" --config {config_dir}" if config_dir else ""
        raise DataError(f"no trained run of '{expid}': {path} does not exist; train it first with "
                        f"'python run_expid.py{hint} --expid {expid}'")
    return path


def load_trained(expid: Optional[str] = None, config_dir: Optional[str] = None,
                 params_file: Optional[str | os.PathLike] = None, gpu: int = -1):
    """Rebuild a trained model from its saved params and checkpoint; returns ``(model, params, files, test_gen)``."""
    import yaml
    from fuxictr.pytorch.torch_utils import seed_everything

    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.datasets import prepare
    from model_zoo.registry import get_model

    path = Path(params_file) if params_file else _saved_params_file(expid, config_dir)
    params: Dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if expid and params.get("model_id") != expid:
        raise ConfigError(f"{path}: model_id '{params.get('model_id')}' is not the requested expid '{expid}'")
    params["gpu"] = gpu
    files = prepare.locate_data(params, progress=params.get("verbose", 1) > 0)
    if files.test is None:
        raise ConfigError(f"dataset '{params['dataset_id']}' has no test_data: nothing to submit")
    feature_map = prepare.build_feature_map(params, files.data_dir)
    item_table = prepare.load_item_table(params, files)
    test_gen = prepare.make_loader(files.test, params, item_table, train=False,
                                   with_label=params.get("test_has_labels", True))
    seed_everything(seed=params.get("seed", 2025))
    model = get_model(params["model"])(feature_map, **params)
    if hasattr(model, "attach_data"):
        model.attach_data(files, params)
    if not Path(model.checkpoint).is_file():
        raise DataError(f"checkpoint {model.checkpoint} not found (params from {path})")
    model.load_weights(model.checkpoint)
    return model, params, files, test_gen


def _recorded_test_auc(results: Path, expid: str) -> Optional[float]:
    from model_zoo.tuner import read_result_rows

    rows = [r for r in read_result_rows(results) if r.get("expid") == expid and r.get("test_AUC")]
    return float(rows[-1]["test_AUC"]) if rows else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Write prediction.csv (ID,Task2) + <expid>.zip from a trained "
                                                 "checkpoint, without retraining")
    parser.add_argument("--expid", required=True, help="a trained expid (its .params.yaml and .model must exist)")
    parser.add_argument("--config", default=None, help="the --config dir it was trained with (e.g. a tuner dir)")
    parser.add_argument("--params", default=None, help="the saved <expid>.params.yaml (default: found via config)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--gpu", type=int, default=-1, help="GPU index; -1 = CPU")
    parser.add_argument("--results", default=str(Path(DEFAULT_OUT).parent / "results.csv"),
                        help="results CSV holding the run's test AUC, for the cross-check (synthetic only)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        model, params, files, test_gen = load_trained(args.expid, args.config, args.params, args.gpu)
        info = make_submission(model, test_gen, files, args.out, args.expid)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line = f"[{args.expid}] {info['zip']} ({info['rows']} rows, {info['prediction']})"
    if "ground_truth_AUC" in info:
        line += f" | AUC vs ground_truth.csv {info['ground_truth_AUC']:.6f}"
        recorded = _recorded_test_auc(Path(args.results), args.expid)
        if recorded is not None:
            same = abs(recorded - info["ground_truth_AUC"]) <= AUC_TOLERANCE
            line += f" | recorded test AUC {recorded:.6f} ({'match' if same else 'MISMATCH: checkpoint changed?'})"
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
