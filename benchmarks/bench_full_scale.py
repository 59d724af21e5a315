"""Every model at CPU-sized dims on a challenge-sized world: train samples/s, loader share, evaluation rows/s, peak RSS.

    python benchmarks/bench_full_scale.py --output-dir /tmp/full                   # MicroLens_synth_full, 200 steps each
    python benchmarks/bench_full_scale.py --world seqneg --output-dir /tmp/full    # MicroLens_seqneg_full
    python benchmarks/bench_full_scale.py --size tiny --steps 5 --expids DIN_MicroLens_synth   # smoke run

Each ``<Model>_MicroLens_<world>`` expid (the CPU-sized dims of the results tables) runs in its own process (so peak
RSS is that model's) on ``MicroLens_<world>_<size>`` (the ``full`` worlds: 3,600,000 train rows, 91,717 items, test
379,142 rows): ``--steps`` training steps in training order after ``--warmup`` steps, the loader's batch assembly
timed apart from ``train_step``, then ``predict_split`` over the whole test split. Reported per model: train samples/s,
the loader's share of step time, the epoch time extrapolated from the timed steps (train rows / samples/s), test
evaluation rows/s and the process's peak RSS (whole splits held in memory). Goals (issue): >= 15,000 train samples/s,
peak RSS < 12 GiB, loader <= 10 % of step time. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_train_step.py)

from benchlib import (BenchParser, non_negative_int, peak_rss_gib, positive_int, print_result,  # noqa: E402
                      runner_process_settings, step_experiment, usage_error, work_dir)

from model_zoo.errors import ZooError  # noqa: E402

MODELS = ("DIN", "DIN_SENet", "DIN_CrossNet", "FiBiNET_Bilinear", "DMF", "DIN_DCN", "QIN", "Transformer_DCN")
GOALS = {"train_samples_per_s": 15_000, "peak_rss_gib": 12.0, "loader_share": 0.10}


def measure(expid: str, dataset_id: str, steps: int, warmup: int, sets: Sequence[str], work: str) -> Dict[str, Any]:
    """One model in this process: timed steps straight from the zoo's train loader, then the whole test split."""
    from model_zoo.device import deterministic_cpu

    started = time.perf_counter()
    exp = step_experiment(expid, work, [*sets, f"dataset_id={dataset_id}"])
    loader, model = exp.loader("train"), exp.model.train()
    loader.shuffle = True  # batches gathered from a shuffled order, as in training
    load_seconds = time.perf_counter() - started
    loader_seconds = step_seconds = 0.0
    batches = iter(loader)
    with deterministic_cpu(exp.params["deterministic"]):
        for i in range(warmup + steps):
            start = time.perf_counter()
            batch = next(batches)
            fetched = time.perf_counter()
            model._batch_index = i
            model.train_step(batch)
            if i >= warmup:
                loader_seconds += fetched - start
                step_seconds += time.perf_counter() - fetched
        timed_rows = steps * loader.batch_size
        start = time.perf_counter()
        test = exp.loader("test")
        rows = len(model.predict_split(test).y_pred)
        eval_seconds = time.perf_counter() - start
    samples_per_s = timed_rows / (loader_seconds + step_seconds)
    return {"model": exp.params["model"], "batch_size": loader.batch_size, "max_len": exp.params["max_len"],
            "train_rows": loader.num_rows, "timed_steps": steps, "train_samples_per_s": round(samples_per_s),
            "loader_share": round(loader_seconds / (loader_seconds + step_seconds), 3),
            "epoch_minutes_extrapolated": round(loader.num_rows / samples_per_s / 60, 1),
            "test_rows": rows, "eval_rows_per_s": round(rows / eval_seconds), "data_and_model_load_s":
            round(load_seconds, 1), "peak_rss_gib": round(peak_rss_gib(), 2)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="models; expid <Model>_MicroLens_<world>")
    parser.add_argument("--expids", nargs="+", default=None, help="explicit expids instead of --models")
    parser.add_argument("--world", choices=("synth", "seqneg"), default="synth")
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="full")
    parser.add_argument("--steps", type=positive_int, default=200, help="timed training steps per model")
    parser.add_argument("--warmup", type=non_negative_int, default=5)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: the child measuring one expid
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature maps")
    args = parser.parse_args(argv)
    dataset_id = f"MicroLens_{args.world}_{args.size}"
    if args.one:  # a child: one model, one JSON line
        runner_process_settings(args.threads)
        try:
            result = measure(args.one, dataset_id, args.steps, args.warmup, args.overrides, args.output_dir)
        except ZooError as exc:
            return usage_error(str(exc))
        print(json.dumps(result), flush=True)
        return 0
    expids = args.expids or [f"{m}_MicroLens_{args.world}" for m in args.models]
    results: Dict[str, Any] = {}
    with work_dir(args.output_dir, "bench_full_scale_") as work:
        for expid in expids:
            cmd = [sys.executable, __file__, "--one", expid, "--world", args.world, "--size", args.size,
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads),
                   "--output-dir", str(work), *[f"--set={s}" for s in args.overrides]]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                results[expid] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
                if proc.returncode == 2:
                    print(f"error: {expid}: {results[expid]['error']}", file=sys.stderr)
                    return 2
            else:
                results[expid] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{expid:34s} {results[expid]}", flush=True)
    ok = [r for r in results.values() if "error" not in r]
    print_result({"benchmark": "full_scale", "dataset_id": dataset_id, "threads": args.threads, "steps": args.steps,
                  "results": results, "goals": GOALS,
                  "goals_met": {k: all((r[k] <= v) if k != "train_samples_per_s" else (r[k] >= v) for r in ok)
                                for k, v in GOALS.items()},
                  "load_avg_1min_after": os.getloadavg()[0]})
    return 1 if len(ok) < len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
