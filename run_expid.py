"""The one runner of the zoo: FuxiCTR's CLI (``--config``, ``--expid``, ``--gpu``) for every model.

    python run_expid.py --expid DMF_MicroLens_synth            # synthetic world (generated on first use)
    python run_expid.py --expid DIN_MicroLens --gpu 0          # the real MicroLens_1M_x1 files in data/
    python run_expid.py --config config/tuner/x --expid ...    # a FuxiCTR-style config dir (e.g. from the tuner)

Flow (FuxiCTR's ``model_zoo/*/run_expid.py``, without ``os.chdir``): resolve + validate params -> logger -> seed ->
data (+ feature map) -> model -> fit (best checkpoint reloaded) -> evaluate valid and test -> one results row.
Bad input or config: a one-line error on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

from model_zoo.config import REPO_ROOT, dump_params, load_params, validate_params
from model_zoo.errors import ZooError

DEFAULT_RESULTS = REPO_ROOT / "results" / "results.csv"


def run(expid: str, config_dir: Optional[str] = None, gpu: int = -1, results: Path = DEFAULT_RESULTS,
        command: str = "", submission: Optional[Path] = None) -> Dict[str, Any]:
    """Train and evaluate ``expid``; returns the result row (also appended to ``results``).

    ``submission``: a folder that receives ``prediction.csv`` (ID,Task2) and ``<expid>.zip`` (model_zoo.submission).
    """
    import model_zoo  # noqa: F401  (registers the models)
    from fuxictr.pytorch.torch_utils import seed_everything
    from fuxictr.utils import set_logger

    from model_zoo.datasets import prepare
    from model_zoo.registry import get_model
    from model_zoo.results import append_result

    params = load_params(expid, config_dir)
    params["gpu"] = gpu
    model_cls = get_model(params["model"])
    validate_params(params, model_cls)
    set_logger(params)
    logging.info("Params: %s", {k: params[k] for k in sorted(params) if k != "feature_cols"})
    seed_everything(seed=params.get("seed", 2025))

    files = prepare.locate_data(params, progress=params.get("verbose", 1) > 0)
    params, files = prepare.apply_embedding_variant(params, files, progress=params.get("verbose", 1) > 0)
    feature_map = prepare.build_feature_map(params, files.data_dir)
    item_table = prepare.load_item_table(params, files)
    train_gen = prepare.make_loader(files.train, params, item_table, train=True)
    valid_gen = prepare.make_loader(files.valid, params, item_table, train=False)
    test_has_labels = params.get("test_has_labels", True)
    test_gen = (prepare.make_loader(files.test, params, item_table, train=False, with_label=test_has_labels)
                if files.test else None)

    seed_everything(seed=params.get("seed", 2025))  # again: generating a dataset above may have drawn numbers
    model = model_cls(feature_map, **params)
    if hasattr(model, "attach_data"):
        model.attach_data(files, params)  # models with extra item-side tables (e.g. DMF's multimodal vectors)
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logging.info("Model %s: %d trainable parameters", params["model"], num_params)
    params_file = dump_params(params, Path(model.checkpoint).with_suffix(".params.yaml"))

    started = time.perf_counter()
    model.fit(train_gen, epochs=params.get("epochs", 1), validation_data=valid_gen,
              max_gradient_norm=params.get("max_gradient_norm", 10.0))
    train_seconds = time.perf_counter() - started

    logging.info("****** Validation evaluation ******")
    valid_logs = model.evaluate(valid_gen)
    test_logs: Dict[str, float] = {}
    if test_gen is not None and test_has_labels:
        logging.info("******** Test evaluation ********")
        test_logs = model.evaluate(test_gen)
    if submission is not None:
        from model_zoo.submission import make_submission
        if test_gen is None:
            raise ZooError(f"--submission: dataset '{params['dataset_id']}' has no test_data")
        make_submission(model, test_gen, files, submission, expid, reference_auc=test_logs.get("AUC"))
    oracle = prepare.oracle_metrics(files)
    row = {
        "timestamp": datetime.now().strftime("%Y%m%d-%H%M%S"), "expid": expid, "model": params["model"],
        "dataset_id": params["dataset_id"], "embedding_variant": params.get("embedding_variant", "V3"),
        "seed": params.get("seed", ""),
        "valid_AUC": valid_logs.get("AUC", ""), "valid_logloss": valid_logs.get("logloss", ""),
        "test_AUC": test_logs.get("AUC", ""), "test_logloss": test_logs.get("logloss", ""),
        "oracle_valid_AUC": oracle.get("oracle_valid_AUC", ""), "oracle_test_AUC": oracle.get("oracle_test_AUC", ""),
        "num_params": num_params, "train_seconds": round(train_seconds, 2), "checkpoint": model.checkpoint,
        "params_file": str(params_file), "command": command,
    }
    append_result(results, row)
    summary = f"[{expid}] valid AUC {valid_logs.get('AUC', float('nan')):.6f}"
    if "oracle_valid_AUC" in oracle:
        summary += f" | oracle valid AUC {oracle['oracle_valid_AUC']:.6f}"
    if test_logs:
        summary += f" | test AUC {test_logs.get('AUC'):.6f}"
    logging.info(summary)
    print(summary, flush=True)
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None,
                        help="FuxiCTR-style config dir searched first (default: config/ + model_zoo/*/model_config.yaml)")
    parser.add_argument("--expid", required=True, help="experiment id, e.g. DMF_MicroLens_synth")
    parser.add_argument("--gpu", type=int, default=-1, help="GPU index; -1 = CPU")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help="results CSV to append to")
    parser.add_argument("--submission", default=None, metavar="DIR",
                        help="also write DIR/prediction.csv (ID,Task2, test row order) and DIR/<expid>.zip")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from model_zoo.datasets.loader import keep_large_allocations_on_heap
    keep_large_allocations_on_heap()  # per-batch join buffers are reused instead of page-faulted (see its docstring)
    command = "python " + " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:]))
    try:
        run(args.expid, args.config, args.gpu, Path(args.results), command=command,
            submission=Path(args.submission) if args.submission else None)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
