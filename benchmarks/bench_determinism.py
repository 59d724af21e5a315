"""Step-time cost of ``deterministic: True`` (MKL GEMMs single-threaded in the training thread), every model, one run.

    python benchmarks/bench_determinism.py                 # the *_MicroLens_synth expids, 2 threads
    python benchmarks/bench_determinism.py --quick --expids DIN_MicroLens_synth DMF_MicroLens_synth

Each model is built once (``experiment_from_expid``, ``--set`` overrides every expid) and stepped over the same
pre-built batches with the switch off and on in turn (``model_zoo.device.deterministic_cpu`` around each step), so
load changes hit both alike; the median step time of each and the on/off ratio are reported. The last line is one
JSON object (``max_ratio``: the worst model; the goal is <= 1.10).
"""
from __future__ import annotations

import os
import statistics
import sys
from typing import Dict, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (as bench_train_step.py)

import torch  # noqa: E402
from benchlib import (BenchParser, interleaved_times, positive_int, print_result, runner_process_settings,  # noqa: E402
                      step_experiment, timed_repeats, train_batches, usage_error, work_dir)

from model_zoo.device import deterministic_cpu  # noqa: E402
from model_zoo.errors import ZooError  # noqa: E402

EXPIDS = ("DIN_MicroLens_synth", "DIN_SENet_MicroLens_synth", "DIN_CrossNet_MicroLens_synth",
          "FiBiNET_Bilinear_MicroLens_synth", "DMF_MicroLens_synth", "DIN_DCN_MicroLens_synth", "QIN_MicroLens_synth",
          "Transformer_DCN_MicroLens_synth")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expids", nargs="+", default=list(EXPIDS))
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_step_timing()
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature maps")
    args = parser.parse_args(argv)
    repeats = timed_repeats(args)
    runner_process_settings(args.threads)
    results: Dict[str, Dict[str, float]] = {}
    try:
        with work_dir(args.output_dir, "bench_determinism_") as work:
            for expid in args.expids:
                exp = step_experiment(expid, work, args.overrides)
                model, batches = exp.model.train(), train_batches(exp, args.num_batches)

                def step(i: int, exact: bool, model=model, batches=batches) -> None:
                    with deterministic_cpu(exact):
                        model.train_step(batches[i % len(batches)])

                times = interleaved_times({"off": lambda i: step(i, False), "on": lambda i: step(i, True)},
                                          repeats, args.warmup)
                off, on = (1e3 * statistics.median(times[k]) for k in ("off", "on"))
                results[expid] = {"model": exp.params["model"], "off_ms": round(off, 2), "on_ms": round(on, 2),
                                  "ratio": round(on / off, 3)}
                print(f"{expid:34s} off {off:8.1f} ms  on {on:8.1f} ms  ratio {on / off:.3f}", flush=True)
    except ZooError as exc:
        return usage_error(exc)
    max_ratio = max(r["ratio"] for r in results.values())
    print_result({"benchmark": "determinism_cost", "torch": torch.__version__, "threads": args.threads,
                  "repeats": repeats, "load_avg_1min_after": os.getloadavg()[0], "results": results,
                  "max_ratio": max_ratio, "target_met": max_ratio <= 1.10})
    return 0


if __name__ == "__main__":
    sys.exit(main())
