"""The one runner of the zoo: FuxiCTR's CLI (``--config``, ``--expid``, ``--gpu``) for every model.

    mmctr-run --expid DMF_MicroLens_synth                      # synthetic world (generated on first use)
    mmctr-run --expid DIN_MicroLens --gpu 0                    # the real MicroLens_1M_x1 files in ./data/
    mmctr-run --expid DIN_SENet_MicroLens_synth --set embedding_variant=V4 --set seed=1
    mmctr-run --config my_dataset/ --expid DMF_my_dataset      # a FuxiCTR-style config dir (builder, tuner)
    python run_expid.py ...                                    # the same, FuxiCTR-style
    mmctr-run --expid DIN_test --nproc 2                       # data-parallel over 2 processes (model_zoo.distributed)
    torchrun --nproc-per-node 2 run_expid.py --expid DIN_test  # the same under torchrun (or Ray Train, see README)

Flow: resolve and validate every key (nothing read or written before) -> device (``--gpu N`` honoured or exit 2) -> data
(a synthetic world is generated or verified; every split opens; both classes in valid, and in test when it is scored) ->
a new run record (``model_zoo.apps.run_record``) -> experiment (``model_zoo.experiment``) -> fit -> evaluate valid and
test, overall and on cold-item rows -> ``metrics.json`` -> one appended results row.

Outputs go under ``--output-dir`` (default: the current directory): ``checkpoints/``, ``results/results.csv``,
``data/`` (synthetic worlds) and ``cache/`` (feature maps, embedding variants), unless a config sets other paths.

Exit codes: 0 done; 2 bad input, config or data (one line on stderr, nothing half-written); 1 an unexpected failure
or a failed write such as a full disk (one line; the run's ``status.json`` holds the error; after training the
checkpoint is kept); 130 Ctrl-C; 143 SIGTERM (the run's ``status.json`` says ``interrupted``; no result row).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from model_zoo.apps.signals import Terminated, sigterm_raises, signals_deferred
from model_zoo.errors import ConfigError, DataError, TrainingDiverged, ZooError

__all__ = ["run", "main", "build_parser", "split_metrics", "prepare_process"]

EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPT, EXIT_TERMINATED = 2, 1, 130, 143


def split_metrics(pred, metrics: Sequence[str], train_items: np.ndarray,
                  train_positive_items: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """FuxiCTR's metrics of a split's predictions, plus AUC and row count on cold-item rows (target never in train)
    and on new-item rows (target never a positive train target nor in a train history).

    A subset's AUC is None when its rows hold one class only (or none).
    """
    from fuxictr.metrics import evaluate_metrics
    from sklearn.metrics import roc_auc_score

    if len(np.unique(pred.y_true)) < 2:
        raise DataError(f"the split has labels of one class only ({int(pred.y_true[0]) if len(pred.y_true) else '-'}"
                        f"); AUC is undefined")
    out: Dict[str, Any] = dict(evaluate_metrics(pred.y_true, pred.y_pred, list(metrics), pred.group))
    subsets = {"cold": train_items}
    if train_positive_items is not None:
        subsets["new"] = train_positive_items
    for name, seen in subsets.items():
        rows = ~seen[np.clip(pred.target, 0, len(seen) - 1)]
        labels = pred.y_true[rows]
        out[f"{name}_rows"] = int(rows.sum())
        out[f"{name}_AUC"] = (float(roc_auc_score(labels, pred.y_pred[rows])) if len(np.unique(labels)) == 2
                              else None)
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in out.items()}


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.6f}"


def run(expid: str, *, config_dir: Optional[str] = None, gpu: int = -1, overrides: Sequence[str] = (),
        output_dir: Optional[str | os.PathLike] = None, results: Optional[str | os.PathLike] = None,
        submission: Optional[str | os.PathLike] = None, command: str = "") -> Dict[str, Any]:
    """Train and evaluate ``expid`` in a new run record; returns the result row (also appended to ``results``)."""
    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.apps.results import append_result, check_results_target, read_results
    from model_zoo.apps.run_record import RunRecord, environment
    from model_zoo.config import parse_overrides
    from model_zoo.datasets import prepare
    from model_zoo.defaults import DATASET_EMBEDDING
    from model_zoo.device import deterministic_cpu, resolve_device
    from model_zoo.distributed import data_parallel_from_env
    from model_zoo.experiment import build_experiment, validated_params
    from model_zoo.registry import get_model

    work = Path(output_dir).expanduser().resolve() if output_dir else Path.cwd()
    if work.exists() and not work.is_dir():
        raise ConfigError(f"--output-dir {output_dir}: exists and is not a directory")
    results_path = Path(results).expanduser().resolve() if results else work / "results" / "results.csv"
    overrides_given = parse_overrides(overrides)
    world, local_rank = int(os.environ.get("WORLD_SIZE", "1") or 1), int(os.environ.get("LOCAL_RANK", "0") or 0)
    if gpu >= 0 and world > 1:
        gpu += local_rank  # one CUDA device per rank on this node
    params = validated_params(expid, config_dir=config_dir, overrides=overrides_given, work_dir=work, gpu=gpu)
    model_cls = get_model(params["model"])
    device, device_name = resolve_device(gpu, params["amp"])
    if device.type == "cuda":
        import torch
        torch.cuda.set_device(device)
    data_parallel = data_parallel_from_env(device)
    if data_parallel is not None:
        # logs go to rank 0's train.log only: without a handler, a first logging.info() would add one on stderr
        logging.getLogger().addHandler(logging.NullHandler())
        params["batch_size"] = rank_batch_size(params["batch_size"], data_parallel.world_size)
        if data_parallel.is_main:  # data, feature map and embedding caches once, before any other rank reads them
            from model_zoo.experiment import prepare_data
            prepare_data(params, cache_dir=work / "cache", progress=params["verbose"] > 0)
        data_parallel.barrier()
        if not data_parallel.is_main:
            return _train_rank(params, data_parallel, model_cls, work, device)
    check_results_target(results_path)
    damaged = read_results(results_path).summary()
    if damaged:  # never repaired here: the file is append-only, readers skip these lines
        print(f"warning: {damaged}", file=sys.stderr, flush=True)
    if submission is not None and Path(submission).exists() and not Path(submission).is_dir():
        raise ConfigError(f"--submission {submission}: exists and is not a directory")
    verbose = params["verbose"]
    # missing or unreadable files, a synthetic world, labels of one class: all before any record is written
    files = prepare.locate_data(params, progress=verbose > 0)
    prepare.check_splits(params, files)

    record = RunRecord.create(params["model_root"], params["dataset_id"], expid)
    with record.logging_to_file(verbose), deterministic_cpu(params["deterministic"] and device.type == "cpu") as pinned:
        logging.info("Run %s of %s on %s%s", record.run_id, expid, device_name,
                     " (deterministic: MKL GEMMs single-threaded)" if pinned else "")
        record.write_params(params)
        record.write_json("env.json", environment(device_name, command))
        record.set_status("running")
        trained = False
        try:
            exp = build_experiment(params, cache_dir=work / "cache", progress=verbose > 0, model_cls=model_cls,
                                   files=files)
            model = exp.model
            model.checkpoint = str(record.checkpoint)
            if data_parallel is not None:
                _join_data_parallel(exp, data_parallel)
            scored_test = exp.has_split("test") and exp.test_has_labels
            num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            logging.info("Model %s: %d trainable parameters", params["model"], num_params)
            started = time.perf_counter()
            model.fit(exp.loader("train"), epochs=params["epochs"], validation_data=exp.loader("valid"),
                      max_gradient_norm=params["max_gradient_norm"])
            train_seconds = time.perf_counter() - started
            trained = True
            train_items, train_positive_items = exp.train_items(), exp.train_items(positives_only=True)
            split_logs: Dict[str, Dict[str, Any]] = {}
            for split in ("valid", "test"):
                if split == "test" and not scored_test:
                    continue
                logging.info("****** %s evaluation ******", split)
                split_logs[split] = split_metrics(model.predict_split(exp.loader(split)), params["metrics"],
                                                  train_items, train_positive_items)
                logging.info("[%s] %s", split, split_logs[split])
            sub_info: Dict[str, Any] = {}
            if submission is not None:
                from model_zoo.apps.submission import make_submission
                if not exp.has_split("test"):
                    raise ConfigError(f"--submission: dataset '{params['dataset_id']}' has no test_data")
                sub_info = make_submission(model, exp.loader("test"), exp.files, Path(submission), expid,
                                           reference_auc=split_logs.get("test", {}).get("AUC"))
            oracle = prepare.oracle_metrics(exp.files)
            metrics = {"splits": split_logs, "oracle": oracle, "num_params": num_params,
                       "train_seconds": round(train_seconds, 3), "submission": {k: str(v) for k, v in sub_info.items()}}
            record.write_json("metrics.json", metrics)
            valid, test = split_logs.get("valid", {}), split_logs.get("test", {})
            row = {
                "timestamp": datetime.now().strftime("%Y%m%d-%H%M%S"), "expid": expid, "model": params["model"],
                "dataset_id": params["dataset_id"],
                "embedding_variant": params.get("embedding_variant") or DATASET_EMBEDDING, "seed": params["seed"],
                "valid_AUC": valid.get("AUC"), "valid_logloss": valid.get("logloss"),
                "test_AUC": test.get("AUC"), "test_logloss": test.get("logloss"),
                "oracle_valid_AUC": oracle.get("oracle_valid_AUC"), "oracle_test_AUC": oracle.get("oracle_test_AUC"),
                "num_params": num_params, "train_seconds": round(train_seconds, 2),
                "checkpoint": str(record.checkpoint), "params_file": str(record.params_file), "command": command,
                "run_id": record.run_id, "run_dir": str(record.dir), "device": device_name,
                "valid_cold_AUC": valid.get("cold_AUC"), "test_cold_AUC": test.get("cold_AUC"),
                "valid_cold_rows": valid.get("cold_rows"), "test_cold_rows": test.get("cold_rows"),
                "overrides": overrides_given or None,
                "valid_new_AUC": valid.get("new_AUC"), "test_new_AUC": test.get("new_AUC"),
                "valid_new_rows": valid.get("new_rows"), "test_new_rows": test.get("new_rows"),
                "nproc": data_parallel.world_size if data_parallel is not None else 1,
            }
            checkpoint_sha256 = record.checkpoint_sha256()
            with signals_deferred():  # the row and the "finished" status are written together or not at all
                append_result(results_path, row)
                record.set_status("finished", results=str(results_path), checkpoint_sha256=checkpoint_sha256)
        except KeyboardInterrupt:
            record.set_status("interrupted", signal="SIGINT", trained=trained)
            raise
        except Terminated:
            record.set_status("interrupted", signal="SIGTERM", trained=trained)
            raise
        except BaseException as exc:
            record.set_status("failed", error=f"{type(exc).__name__}: {exc}", trained=trained,
                              checkpoint=str(record.checkpoint) if record.checkpoint.is_file() else None)
            raise
    summary = f"[{expid}] valid AUC {_fmt(valid.get('AUC'))}"
    if "oracle_valid_AUC" in oracle:
        summary += f" | oracle valid AUC {_fmt(oracle['oracle_valid_AUC'])}"
    if test:
        summary += f" | test AUC {_fmt(test.get('AUC'))}"
    summary += f" | cold valid AUC {_fmt(valid.get('cold_AUC'))} ({valid.get('cold_rows')} rows) | run {record.dir}"
    print(summary, flush=True)
    return row


def rank_batch_size(batch_size: int, world_size: int) -> int:
    """Rows per rank and step: ``batch_size`` is the global batch, split evenly over the ranks."""
    if batch_size % world_size:
        raise ConfigError(f"batch_size={batch_size} is the global batch of a data-parallel run; it must be divisible "
                          f"by the number of processes ({world_size})")
    return batch_size // world_size


def _join_data_parallel(exp: Any, data_parallel: Any) -> None:
    """Shard the train loader and make the model one rank; ranks > 0 draw their own dropout numbers."""
    import torch
    exp.loader("train").shard(data_parallel.rank, data_parallel.world_size)
    exp.model.set_data_parallel(data_parallel)
    if data_parallel.rank:
        torch.manual_seed(exp.params["seed"] + data_parallel.rank)


def _train_rank(params: Dict[str, Any], data_parallel: Any, model_cls: type, work: Path, device: Any) -> Dict[str, Any]:
    """A rank > 0 of a data-parallel run: train on its shard, nothing written (rank 0 keeps the record)."""
    import tempfile

    from model_zoo.datasets import prepare
    from model_zoo.device import deterministic_cpu
    from model_zoo.experiment import build_experiment

    files = prepare.locate_data(params, progress=False)  # rank 0 generated and verified them (ranks start together)
    with deterministic_cpu(params["deterministic"] and device.type == "cpu"), \
            tempfile.TemporaryDirectory(prefix="mmctr_rank_") as scratch:
        exp = build_experiment(params, cache_dir=work / "cache", progress=False, model_cls=model_cls, files=files)
        exp.model.checkpoint = str(Path(scratch) / "never_written.model")
        _join_data_parallel(exp, data_parallel)
        exp.model.fit(exp.loader("train"), epochs=params["epochs"], validation_data=exp.loader("valid"),
                      max_gradient_norm=params["max_gradient_norm"])
    return {}


def launch_data_parallel(argv: Sequence[str], nproc: int) -> int:
    """Run this CLI (``argv`` without ``--nproc``) as ``nproc`` local ranks (torchrun's environment variables,
    gloo on CPU / nccl on GPU); returns the first non-zero exit code of a rank, else 0. A failing rank stops the
    others."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        mp.start_processes(_rank_main, args=(list(argv), nproc, port, threads), nprocs=nproc, join=True,
                           start_method="spawn")
    except mp.ProcessExitedException as exc:
        return exc.exit_code if exc.exit_code and exc.exit_code > 0 else EXIT_FAILURE
    except mp.ProcessRaisedException as exc:
        print(f"error: a data-parallel rank failed: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _rank_main(rank: int, argv: List[str], nproc: int, port: int, threads: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch
    torch.set_num_threads(int(threads))
    code = main(argv)
    if code:
        sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmctr-run", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None,
                        help="FuxiCTR-style config dir searched first (model_config.yaml, dataset_config.yaml)")
    parser.add_argument("--expid", help="experiment id, e.g. DMF_MicroLens_synth")
    parser.add_argument("--gpu", type=int, default=-1, help="CUDA device index; -1 = CPU (default)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (YAML value), e.g. --set embedding_variant=V4; repeatable")
    parser.add_argument("--output-dir", default=None,
                        help="where relative outputs go: checkpoints/, results/, data/, cache/ (default: cwd)")
    parser.add_argument("--results", default=None, help="results CSV to append to (default <output-dir>/results/"
                                                        "results.csv)")
    parser.add_argument("--submission", default=None, metavar="DIR",
                        help="also write DIR/prediction.csv (ID,Task2, test row order) and DIR/<expid>.zip")
    parser.add_argument("--nproc", type=int, default=1,
                        help="data-parallel processes (gloo on CPU, nccl with --gpu: one device per process from "
                             "--gpu on); batch_size stays the global batch")
    parser.add_argument("--list", action="store_true", help="list the expids and exit")
    return parser


def prepare_process() -> None:
    """Process-wide settings of a training process, set by the application, never by importing the library.

    MKL strict conditional reproducibility (the same product rounds the same way from call to call on a loaded CPU;
    see benchmarks/README.md) unless the user set MKL_CBWR; glibc keeps per-batch buffers on the heap.
    """
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
    from model_zoo.datasets.loader import keep_large_allocations_on_heap
    keep_large_allocations_on_heap()


def _without_nproc(argv: Sequence[str]) -> List[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        from model_zoo.config import list_expids
        try:
            print("\n".join(list_expids(args.config)))
        except ZooError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return 0
    if not args.expid:
        print("error: --expid is required (or --list)", file=sys.stderr)
        return EXIT_USAGE
    argv = list(argv) if argv is not None else sys.argv[1:]
    if args.nproc < 1:
        print(f"error: --nproc {args.nproc}: expected a number of processes >= 1", file=sys.stderr)
        return EXIT_USAGE
    if args.nproc > 1:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            print("error: --nproc inside a launched rank (WORLD_SIZE is set); use either torchrun or --nproc",
                  file=sys.stderr)
            return EXIT_USAGE
        try:  # every key, the device and the batch split checked once, before any process starts
            from model_zoo.device import resolve_device
            from model_zoo.config import parse_overrides
            from model_zoo.experiment import validated_params
            params = validated_params(args.expid, config_dir=args.config, overrides=parse_overrides(args.overrides),
                                      work_dir=args.output_dir, gpu=args.gpu)
            for rank in range(args.nproc):
                resolve_device(args.gpu + rank if args.gpu >= 0 else -1, params["amp"])
            rank_batch_size(params["batch_size"], args.nproc)
        except ZooError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return launch_data_parallel(_without_nproc(argv), args.nproc)
    prepare_process()
    command = " ".join(["python", Path(sys.argv[0]).name] + argv)
    try:
        with sigterm_raises():
            run(args.expid, config_dir=args.config, gpu=args.gpu, overrides=args.overrides,
                output_dir=args.output_dir, results=args.results, submission=args.submission, command=command)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"interrupted: {args.expid} stopped by Ctrl-C; earlier runs and results are untouched", file=sys.stderr)
        return EXIT_INTERRUPT
    except Terminated:
        print(f"terminated: {args.expid} stopped by SIGTERM; earlier runs and results are untouched", file=sys.stderr)
        return EXIT_TERMINATED
    except OSError as exc:  # disk full, permissions: one line, the run's status.json has the details
        print(f"error: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""), file=sys.stderr)
        return EXIT_FAILURE
    except TrainingDiverged as exc:  # a runtime failure, not bad input: exit 1, the run's status.json says why
        print(f"error: [{args.expid}] {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
