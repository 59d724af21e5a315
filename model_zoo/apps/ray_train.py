"""One data-parallel run on a Ray cluster: Ray Train's ``TorchTrainer`` starts the ranks, the zoo's runner trains.

    python -m model_zoo.apps.ray_train --workers 2 -- --expid DIN_MicroLens_synth --output-dir /shared/zoo
    python -m model_zoo.apps.ray_train --workers 4 --use-gpu --ray-address auto -- --expid DMF_MicroLens --gpu 0

Everything after ``--`` is the runner's command line (``mmctr-run``), without ``--nproc``: ``TorchTrainer`` makes
the process group (gloo on CPU, nccl with ``--use-gpu``) and each worker runs ``model_zoo.apps.runner.main``, which
joins it (``model_zoo.distributed``): rank 0 keeps the run record and the results row. Ray workers start in their own
working directory, so ``--output-dir`` is made absolute here; on a cluster it, the data and this zoo must be at the
same path on every node (as for the tuner's Ray backend). Without ``--ray-address`` a bounded local Ray instance is
started (``--workers`` CPUs) and stopped at the end.

Exit codes: as the runner's (0 done, 2 bad input: checked here before Ray starts, 1 a failed rank).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from model_zoo.errors import ZooError

__all__ = ["main"]

EXIT_USAGE, EXIT_FAILURE = 2, 1


def _worker_loop(config: Dict[str, Any]) -> None:
    """What each Ray Train worker runs: the zoo's runner on the process group Ray made."""
    from model_zoo.apps.runner import main as runner_main

    code = runner_main(list(config["argv"]))
    if code:
        raise RuntimeError(f"rank exited with code {code} (the run's status.json and train.log say why)")


def _absolute_output_dir(argv: List[str]) -> List[str]:
    out = list(argv)
    for i, item in enumerate(out):
        if item == "--output-dir" and i + 1 < len(out):
            out[i + 1] = str(Path(out[i + 1]).expanduser().resolve())
            return out
        if item.startswith("--output-dir="):
            out[i] = "--output-dir=" + str(Path(item.split("=", 1)[1]).expanduser().resolve())
            return out
    return out + ["--output-dir", str(Path.cwd())]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.ray_train", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="data-parallel ranks (Ray Train workers)")
    parser.add_argument("--use-gpu", action="store_true", help="one GPU per worker (nccl)")
    parser.add_argument("--cpus-per-worker", type=int, default=1)
    parser.add_argument("--ray-address", default=None, help="an existing cluster, e.g. auto; default: local")
    parser.add_argument("runner_args", nargs=argparse.REMAINDER, help="-- then the runner's arguments")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    runner_argv = [a for a in args.runner_args if a != "--"] if args.runner_args else []
    if args.workers < 1 or args.cpus_per_worker < 1:
        print(f"error: --workers {args.workers} / --cpus-per-worker {args.cpus_per_worker}: expected >= 1",
              file=sys.stderr)
        return EXIT_USAGE
    if not runner_argv or any(a == "--nproc" or a.startswith("--nproc=") for a in runner_argv):
        print("error: give the runner's arguments after --, e.g. -- --expid DIN_test (without --nproc: the "
              "workers are the processes)", file=sys.stderr)
        return EXIT_USAGE
    from model_zoo.apps.runner import build_parser as runner_parser, rank_batch_size
    from model_zoo.config import parse_overrides
    from model_zoo.experiment import validated_params

    runner_argv = _absolute_output_dir(runner_argv)
    parsed = runner_parser().parse_args(runner_argv)
    try:  # every key and the batch split checked before Ray starts
        params = validated_params(parsed.expid or "", config_dir=parsed.config,
                                  overrides=parse_overrides(parsed.overrides), work_dir=parsed.output_dir)
        rank_batch_size(params["batch_size"], args.workers)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    started_here = not ray.is_initialized()
    if started_here:
        if args.ray_address:
            ray.init(address=args.ray_address, log_to_driver=True, configure_logging=False)
        else:
            ray.init(num_cpus=args.workers * args.cpus_per_worker, include_dashboard=False, configure_logging=False,
                     object_store_memory=256 * 1024 * 1024)
    try:
        trainer = TorchTrainer(
            _worker_loop, train_loop_config={"argv": runner_argv},
            torch_config=TorchConfig(backend="nccl" if args.use_gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=args.workers, use_gpu=args.use_gpu,
                                         resources_per_worker={"CPU": args.cpus_per_worker}),
            run_config=RunConfig(storage_path=str(Path(parsed.output_dir) / "ray_results"),
                                 name=f"{parsed.expid}_ray"))
        trainer.fit()
    except Exception as exc:  # Ray wraps the rank's error; its first line is enough here
        print(f"error: [{parsed.expid}] a Ray Train worker failed: {str(exc).strip().splitlines()[0][:300]}",
              file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if started_here:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
