"""Training step time of DMF vs DIN_SENet (and DIN) at the same dimensions on the same batches.

    python benchmarks/bench_train_step.py                 # the *_MicroLens_synth expids on MicroLens_synth_small
    python benchmarks/bench_train_step.py --quick         # fewer repeats
    python benchmarks/bench_train_step.py --set dataset_id=MicroLens_seqneg_small   # another world

One step = forward + loss (with regularisers) + backward + gradient clipping + Adam step (``model.train_step``), on
CPU with ``torch.set_num_threads(--threads)``. Each model is built from its expid by ``experiment_from_expid`` (same
embedding sizes, head [256, 128, 64], batch 1024, max_len 32; ``--set`` overrides every expid) and stepped over the
same pre-built batches (the first ``--num-batches`` of the first expid's train split): ``--warmup`` steps, then the
median of ``--repeats`` timed steps, the models taking turns step by step. The synthetic world is generated on first
use into ``--output-dir`` (about 8 s for ``small``). The last line is one JSON object with the step times and the
DMF / DIN_SENet ratio (target <= 1.5).
"""
from __future__ import annotations

import os
import statistics
import sys
from typing import Dict, Optional, Sequence

# Before torch loads OpenMP: sleeping (not spinning) worker threads, robust on a shared machine (see
# bench_dmf_serving.py). Set OMP_WAIT_POLICY=ACTIVE to measure spinning threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from benchlib import (BenchParser, interleaved_times, positive_int, print_result, runner_process_settings,  # noqa: E402
                      step_experiment, timed_repeats, train_batches, usage_error, work_dir)

from model_zoo.errors import ConfigError, ZooError  # noqa: E402

LOADER_KEYS = ("dataset_id", "batch_size", "max_len")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expids", nargs="+",
                        default=["DMF_MicroLens_synth", "DIN_SENet_MicroLens_synth", "DIN_MicroLens_synth"])
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_step_timing()
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature maps")
    args = parser.parse_args(argv)
    repeats = timed_repeats(args)
    runner_process_settings(args.threads)
    results: Dict[str, Dict[str, float]] = {}
    models, batches, loader_params = {}, [], None
    try:
        with work_dir(args.output_dir, "bench_train_step_") as work:
            for expid in args.expids:
                exp = step_experiment(expid, work, args.overrides)
                key = {k: exp.params.get(k) for k in LOADER_KEYS}
                if loader_params is None:  # the first expid defines the batches every model sees
                    loader_params = key
                    batches = train_batches(exp, args.num_batches)
                elif key != loader_params:
                    raise ConfigError(f"{expid}: {key} differs from {loader_params}; the models must see the same "
                                      f"batches")
                models[expid] = (exp.model.train(), exp.params["model"])
            times = interleaved_times({expid: (lambda i, m=model: m.train_step(batches[i % len(batches)]))
                                       for expid, (model, _) in models.items()}, repeats, args.warmup)
    except ZooError as exc:
        return usage_error(exc)
    for expid, (model, name) in models.items():
        num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        results[expid] = {"model": name, "step_ms": round(1e3 * statistics.median(times[expid]), 2),
                          "trainable_params": num_params}
        print(f"{expid:32s} {name:12s} median step {results[expid]['step_ms']:8.1f} ms  ({num_params:,} params)")
    by_model = {r["model"]: r["step_ms"] for r in results.values()}
    ratios = {f"DMF_vs_{name}": round(by_model["DMF"] / ms, 3) for name, ms in by_model.items()
              if name != "DMF" and "DMF" in by_model}
    print_result({"benchmark": "train_step", "torch": torch.__version__, "threads": args.threads,
                  "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_avg_1min_after": os.getloadavg()[0],
                  "batch": loader_params, "num_batches": len(batches), "repeats": repeats, "results": results,
                  "ratios": ratios, "target_met": ratios.get("DMF_vs_DIN_SENet", float("inf")) <= 1.5})
    return 0


if __name__ == "__main__":
    sys.exit(main())
