"""Challenge submission: ``prediction.csv`` (``ID,Task2``) in test.parquet row order, zipped as ``<expid>.zip``.

The Codabench scorer of the WWW 2025 MMCTR challenge (Track 2) reads ``prediction.csv`` with columns ``ID,Task2``:
``ID`` = 0..N-1 in test.parquet row order, ``Task2`` = the predicted click probability. On the synthetic world the
file is also scored against the dataset's ``ground_truth.csv`` (``ID,label``), which must give exactly the test AUC
of the evaluation (same predictions, same order: a different value means rows were reordered).

Two ways to make one:

    mmctr-run --expid DMF_MicroLens_synth --submission submission/                  # after training
    mmctr-submit --expid DMF_MicroLens_synth [--config DIR] [--out DIR]             # from the latest finished run
    mmctr-submit --run-dir checkpoints/MicroLens_synth_small/DMF_MicroLens_synth/<run id>

The second rebuilds the experiment from the run's ``params.yaml`` (the validated params the runner saved) and loads
its ``model.pt``; nothing is retrained.
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
# From a saved run
# ---------------------------------------------------------------------------------------------------------------
def load_trained(run_dir: str | os.PathLike, gpu: int = -1, output_dir: Optional[str | os.PathLike] = None):
    """Rebuild the experiment of a finished run from its ``params.yaml`` and load its ``model.pt``.

    The saved params are validated again like a config (a run directory is input too: an edited ``params.yaml``
    gets the same checks, so no string in it reaches FuxiCTR's ``eval``), and the checkpoint must still have the
    sha256 recorded when the run finished.

    Returns the :class:`~model_zoo.experiment.Experiment` (its model holds the trained weights).
    """
    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.apps.run_record import RunRecord
    from model_zoo.config import Resolved, validate_params
    from model_zoo.device import resolve_device
    from model_zoo.experiment import build_experiment
    from model_zoo.registry import get_model

    record = RunRecord(Path(run_dir))
    if not record.dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: not a directory")
    saved = record.read_params()
    state = record.status().get("state")
    if state != "finished":
        raise ConfigError(f"run {record.dir} is {state!r}, not finished; pick a finished run")
    saved.pop("gpu", None)  # set from --gpu
    if not isinstance(saved.get("model"), str):
        raise ConfigError(f"{record.params_file}: missing key 'model'")
    where = str(record.params_file)
    try:
        params = validate_params(Resolved(str(saved.get("model_id", record.dir.parent.name)), saved,
                                          origin={k: where for k in saved}), get_model(saved["model"]))
    except ConfigError as exc:
        raise ConfigError(f"{where} (edited since the run finished?): {exc}") from None
    record.verify_checkpoint()
    resolve_device(gpu, params.get("amp") or "off")
    params["gpu"] = gpu
    work = Path(output_dir).resolve() if output_dir else Path.cwd()
    exp = build_experiment(params, cache_dir=work / "cache", progress=params.get("verbose", 0) > 0)
    exp.model.load_weights(str(record.checkpoint))
    return exp


def _run_dir_of(expid: str, config_dir: Optional[str], output_dir: Optional[str]) -> Path:
    from model_zoo.apps.run_record import latest_finished_run
    from model_zoo.config import load_params

    params = load_params(expid, config_dir, work_dir=output_dir)
    return latest_finished_run(params["model_root"], params["dataset_id"], expid).dir


def _recorded_test_auc(results: Path, run_dir: Path) -> Optional[float]:
    from model_zoo.apps.results import read_results

    rows = [r for r in read_results(results).rows if r.get("run_dir") == str(run_dir) and r.get("test_AUC")]
    return float(rows[-1]["test_AUC"]) if rows else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmctr-submit", description="Write prediction.csv (ID,Task2) + <expid>.zip "
                                                                      "from a trained run, without retraining")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--expid", help="use the latest finished run of this expid")
    which.add_argument("--run-dir", help="a finished run directory (with params.yaml and model.pt)")
    parser.add_argument("--config", default=None, help="the --config dir the expid was trained with")
    parser.add_argument("--output-dir", default=None, help="the --output-dir it was trained with (default: cwd)")
    parser.add_argument("--out", default=None, help="output folder (default <output-dir>/submission)")
    parser.add_argument("--gpu", type=int, default=-1, help="CUDA device index; -1 = CPU")
    parser.add_argument("--results", default=None, help="results CSV holding the run's test AUC, for the cross-check "
                                                        "(synthetic only; default <output-dir>/results/results.csv)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from model_zoo.apps.runner import prepare_process
    prepare_process()  # the runner's numerics, so predictions equal the training run's bit for bit
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    work = Path(args.output_dir).resolve() if args.output_dir else Path.cwd()
    try:
        run_dir = Path(args.run_dir) if args.run_dir else _run_dir_of(args.expid, args.config, str(work))
        exp = load_trained(run_dir, args.gpu, work)
        if not exp.has_split("test"):
            raise ConfigError(f"dataset '{exp.params['dataset_id']}' has no test_data: nothing to submit")
        expid = exp.params["model_id"]
        info = make_submission(exp.model, exp.loader("test"), exp.files, Path(args.out or work / "submission"), expid)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line = f"[{expid}] {info['zip']} ({info['rows']} rows, {info['prediction']})"
    if "ground_truth_AUC" in info:
        line += f" | AUC vs ground_truth.csv {info['ground_truth_AUC']:.6f}"
        recorded = _recorded_test_auc(Path(args.results) if args.results else work / "results" / "results.csv",
                                      run_dir.resolve())
        if recorded is not None:
            same = abs(recorded - info["ground_truth_AUC"]) <= AUC_TOLERANCE
            line += f" | recorded test AUC {recorded:.6f} ({'match' if same else 'MISMATCH: checkpoint changed?'})"
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
