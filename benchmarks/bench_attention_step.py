"""Train-step time of every target-attention model, padding-free vs padded history, against DIN, in one run.

    python benchmarks/bench_attention_step.py                       # max_len 100 (MicroLens' own), 2 threads
    python benchmarks/bench_attention_step.py --quick --set max_len=32

Each expid is built once (``experiment_from_expid``; ``--set`` overrides every expid, default ``max_len=100``, ``batch_size=1024``) and
stepped over the same pre-built batches of the first expid's train split, its attention in turn padding-free
(``TargetAttention.pool_valid``: only the valid history items are embedded and scored) and padded (FuxiCTR's layer on
the (B, L, D) history), all models taking turns step by step. Reported: median step times, packed/DIN ratio (goal
<= 1.5) and padded/packed speed-up (goal >= 2). The last line is one JSON object.
"""
from __future__ import annotations

import os
import statistics
import sys
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (as bench_train_step.py)

import torch  # noqa: E402
from benchlib import (BenchParser, interleaved_times, positive_int, print_result, runner_process_settings,  # noqa: E402
                      step_experiment, timed_repeats, train_batches, usage_error, work_dir)

from model_zoo.errors import ConfigError, ZooError  # noqa: E402
from model_zoo.layers.target_attention import TargetAttentionModel  # noqa: E402

EXPIDS = ("DIN_MicroLens_synth", "DIN_SENet_MicroLens_synth", "DIN_CrossNet_MicroLens_synth",
          "FiBiNET_Bilinear_MicroLens_synth", "DIN_DCN_MicroLens_synth")
LOADER_KEYS = ("dataset_id", "batch_size", "max_len")


def attention_share(model_and_attention: Tuple[Any, Any], batches: Sequence[Any]) -> Dict[str, Any]:
    """Profile 3 padding-free train steps: the share of CPU time in the attention's forward (``pool_valid``; its
    backward is not scoped) and the 3 most expensive operators overall (self time)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    model, attention = model_and_attention
    original = attention.pool_valid  # what the padding-free path calls

    def scoped(*args: Any, **kwargs: Any) -> Any:
        with record_function("target_attention"):
            return original(*args, **kwargs)

    attention.pool_valid = scoped
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("step"):
                for i in range(3):
                    model.train_step(batches[i % len(batches)])
    finally:
        del attention.pool_valid
    events = prof.key_averages()
    total = next(e.cpu_time_total for e in events if e.key == "step")
    in_attention = next((e.cpu_time_total for e in events if e.key == "target_attention"), 0.0)
    top = sorted((e for e in events if e.key not in ("step", "target_attention")), key=lambda e: -e.self_cpu_time_total)
    return {"attention_forward_share": round(in_attention / total, 3),
            "top_ops": [f"{e.key} {100 * e.self_cpu_time_total / total:.0f}%" for e in top[:3]]}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expids", nargs="+", default=list(EXPIDS), help="target-attention expids; the first "
                                                                          "is the reference (DIN)")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_step_timing(num_batches=6, warmup=2, repeats=12, quick=5)
    parser.add_argument("--profile", action="store_true", help="also profile 3 padding-free steps per model: the "
                                                               "share of step time in the attention vs the rest")
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature maps")
    args = parser.parse_args(argv)
    repeats = timed_repeats(args)
    sets = ["max_len=100", "batch_size=1024", *args.overrides]
    runner_process_settings(args.threads)
    steps: Dict[str, Callable[[int], object]] = {}
    step_fns: Dict[str, Tuple[Any, Any]] = {}
    models: Dict[str, str] = {}
    try:
        with work_dir(args.output_dir, "bench_attention_step_") as work:
            batches, loader_params = [], None
            for expid in args.expids:
                exp = step_experiment(expid, work, sets)
                model = exp.model.train()
                if not isinstance(model, TargetAttentionModel):
                    raise ConfigError(f"{expid}: model {exp.params['model']} has no TargetAttention backbone")
                key = {k: exp.params.get(k) for k in LOADER_KEYS}
                if loader_params is None:
                    loader_params, batches = key, train_batches(exp, args.num_batches)
                elif key != loader_params:
                    raise ConfigError(f"{expid}: {key} differs from {loader_params}; the models must see the same "
                                      f"batches")
                attention = model.backbone.attention
                if not attention.packed:
                    raise ConfigError(f"{expid}: its attention has no padding-free path (DIN softmax or Dice)")
                models[expid] = f"{exp.params['model']}/{attention.attention_type}"

                def step(i: int, packed: bool, model=model, attention=attention) -> None:
                    attention.packed = packed
                    model.train_step(batches[i % len(batches)])
                    attention.packed = True

                step_fns[expid] = (model, attention)
                steps[f"{expid}:packed"] = lambda i, step=step: step(i, True)
                steps[f"{expid}:padded"] = lambda i, step=step: step(i, False)
            times = interleaved_times(steps, repeats, args.warmup)
            shares = {expid: attention_share(step_fns[expid], batches) for expid in models} if args.profile else {}
    except ZooError as exc:
        return usage_error(exc)
    median_ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    reference = median_ms[f"{args.expids[0]}:packed"]
    results = {}
    for expid, name in models.items():
        packed, padded = median_ms[f"{expid}:packed"], median_ms[f"{expid}:padded"]
        results[expid] = {"model": name, "packed_ms": round(packed, 2), "padded_ms": round(padded, 2),
                          "packed_vs_reference": round(packed / reference, 3),
                          "speedup_vs_padded": round(padded / packed, 3), **shares.get(expid, {})}
        print(f"{expid:34s} {name:24s} packed {packed:8.1f} ms  padded {padded:8.1f} ms  "
              f"x{padded / packed:.2f} faster  {packed / reference:.2f} x {args.expids[0]}", flush=True)
    others = [r for e, r in results.items() if e != args.expids[0]]
    print_result({"benchmark": "attention_step", "torch": torch.__version__, "threads": args.threads,
                  "batch": loader_params, "repeats": repeats, "load_avg_1min_after": os.getloadavg()[0],
                  "results": results,
                  "max_packed_vs_reference": max((r["packed_vs_reference"] for r in others), default=None),
                  "min_speedup_vs_padded": min(r["speedup_vs_padded"] for r in results.values())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
