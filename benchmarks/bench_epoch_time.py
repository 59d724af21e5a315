"""Time per training epoch of the leaderboard methods at their published settings, on a challenge-sized world.

    python benchmarks/bench_epoch_time.py --output-dir /tmp/full            # MicroLens_synth_full, 5 timed batches each
    python benchmarks/bench_epoch_time.py --world seqneg --batches 3        # MicroLens_seqneg_full
    python benchmarks/bench_epoch_time.py --expids DIN_test --world synth --size tiny   # smoke run, seconds

For every ``<Model>_MicroLens`` expid (the published or challenge-scale hyper-parameters: each model's own batch
size, dimensions and ``max_len``), the expid runs on ``MicroLens_<world>_<size>`` (``--set dataset_id=...``; the
``full`` worlds have MicroLens_1M_x1's 3,600,000 train rows and 91,717 items) and trains ``--batches`` consecutive
batches straight from the zoo's train loader (batch assembly included) after ``--warmup`` batches. The epoch time is
extrapolated: train rows / batch size x the median seconds per batch. A whole epoch at these settings takes hours on
a 2-core CPU, so it is not run; what carries over to a GPU machine is the ratio between methods, not the figure.
The last line is one JSON object: per expid the parameter count, batch size, median seconds per batch, rows/s and
the extrapolated epoch hours.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any, Dict, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_train_step.py)

from benchlib import (BenchParser, non_negative_int, peak_rss_gib, positive_int, print_result,  # noqa: E402
                      runner_process_settings, step_experiment, usage_error, work_dir)

from model_zoo.errors import ZooError  # noqa: E402

LEADERBOARD_EXPIDS = ("DIN_MicroLens", "DIN_SENet_MicroLens", "DIN_DCN_MicroLens", "QIN_MicroLens",
                      "Transformer_DCN_MicroLens", "DMF_MicroLens")


def time_batches(exp: Any, warmup: int, batches: int) -> Dict[str, Any]:
    """Median seconds per training batch (loader batch + ``train_step``) over ``batches`` after ``warmup``."""
    loader = exp.loader("train")
    model = exp.model
    model.train()
    seconds = []
    for i, batch in enumerate(loader):
        if i >= warmup + batches:
            break
        start = time.perf_counter()
        model._batch_index = i
        model.train_step(batch)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    per_batch = statistics.median(seconds)
    size = loader.batch_size
    steps = math.ceil(loader.num_rows / size)
    return {"params": int(sum(p.numel() for p in model.parameters())), "batch_size": size,
            "train_rows": loader.num_rows, "seconds_per_batch": round(per_batch, 4),
            "rows_per_second": round(size / per_batch, 1), "epoch_hours": round(steps * per_batch / 3600, 2)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expids", nargs="+", default=list(LEADERBOARD_EXPIDS))
    parser.add_argument("--world", choices=("synth", "seqneg"), default="synth")
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="full")
    parser.add_argument("--batches", type=positive_int, default=5, help="timed batches per expid")
    parser.add_argument("--warmup", type=non_negative_int, default=2)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature maps")
    args = parser.parse_args(argv)
    runner_process_settings(args.threads)
    dataset_id = f"MicroLens_{args.world}_{args.size}"
    results: Dict[str, Dict[str, Any]] = {}
    try:
        with work_dir(args.output_dir, "bench_epoch_time_") as work:
            for expid in args.expids:
                exp = step_experiment(expid, work, [*args.overrides, f"dataset_id={dataset_id}"])
                results[expid] = time_batches(exp, args.warmup, args.batches)
                print(f"{expid}: {results[expid]}", flush=True)
                del exp
    except ZooError as exc:
        return usage_error(str(exc))
    print_result({"benchmark": "epoch_time", "dataset_id": dataset_id, "threads": args.threads,
                  "batches": args.batches, "results": results, "peak_rss_gib": round(peak_rss_gib(), 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
