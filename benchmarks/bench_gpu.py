"""GPU-ready check: every model's training step at its published (``_MicroLens``) dimensions, with and without AMP.

    python benchmarks/bench_gpu.py                         # CUDA device 0, every model, off / bf16 / fp16, 20 steps
    python benchmarks/bench_gpu.py --gpu 1 --amp off bf16 --output-dir /tmp/full   # keep the generated world
    python benchmarks/bench_gpu.py --gpu -1 --steps 2 --warmup 0 --dataset MicroLens_synth_tiny --batch-size 64 \\
        --expids DIN_MicroLens DMF_MicroLens               # CPU smoke run (off / bf16), seconds

Every registered model runs its ``<Model>_MicroLens`` expid (the published or challenge-scale hyper-parameters: its
own dimensions, batch size and ``max_len``; DIN_CrossNet's is ``DIN_DCN_MicroLens``) on the synthetic world
``--dataset`` (default ``MicroLens_synth_full``, MicroLens_1M_x1's size, generated on first use into ``--output-dir``:
about 80 s). For every precision of ``--amp`` the model is built afresh on the device (``--gpu N``; -1 = CPU; a missing
CUDA device or fp16 on the CPU is refused with exit code 2, as the runner does) and trained ``--warmup`` then
``--steps`` timed ``train_step`` calls (forward, loss, backward, clipping, optimizer step; the device is synchronised
before each clock reading) over the first few batches of the train split, pre-built so loading is not timed.
Reported per expid and precision: median step ms, samples/s and peak memory (``torch.cuda.max_memory_allocated``,
reset per model and precision, on CUDA; the process's peak RSS so far on the CPU). A model or precision that fails
(out of memory, diverged) is reported with its error and the others still run; exit code 1 then. The last stdout line
is one JSON object.
"""
from __future__ import annotations

import gc
import os
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_train_step.py)

import torch  # noqa: E402
from benchlib import (BenchParser, non_negative_int, overrides, peak_rss_gib, positive_int,  # noqa: E402
                      print_result, runner_process_settings, step_experiment, train_batches, usage_error, work_dir)

from model_zoo import list_models  # noqa: E402
from model_zoo.config import list_expids  # noqa: E402
from model_zoo.device import resolve_device  # noqa: E402
from model_zoo.errors import ZooError  # noqa: E402
from model_zoo.experiment import validated_params  # noqa: E402

PRECISIONS = ("off", "bf16", "fp16")
REAL_DATA_EXPID = {"DIN_CrossNet": "DIN_DCN_MicroLens"}  # DIN_CrossNet_MicroLens is an alias of it
MAX_BATCHES = 8  # distinct pre-built batches cycled through


def default_expids() -> List[str]:
    """Every registered model's real-data (``_MicroLens``) expid that exists."""
    known = set(list_expids())
    expids = [REAL_DATA_EXPID.get(model, f"{model}_MicroLens") for model in list_models()]
    return [expid for expid in expids if expid in known]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _release(device: torch.device) -> None:
    """Free the previous model's memory, so the next peak is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def time_steps(model: Any, batches: Sequence[Any], device: torch.device, warmup: int, steps: int) -> Dict[str, Any]:
    """Median ms (and rows/s) of ``steps`` ``train_step`` calls after ``warmup``, cycling through ``batches``."""
    model.train()
    seconds, loss = [], None
    for i in range(warmup + steps):
        model._batch_index = i
        _sync(device)
        start = time.perf_counter()
        loss = model.train_step(batches[i % len(batches)])
        _sync(device)
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
    step = statistics.median(seconds)
    return {"step_ms": round(1e3 * step, 2), "samples_per_s": round(len(batches[0].mask) / step, 1),
            "last_loss": round(loss.detach().item(), 5)}


def step_overrides(args: Any, precision: str = "off") -> Dict[str, Any]:
    """The config overrides of every expid: ``--set`` items, the world, the precision and ``--batch-size``."""
    return overrides(args.overrides, dataset_id=args.dataset, amp=precision, batch_size=args.batch_size)


def run_one(expid: str, precision: str, work: Path, args: Any, device: torch.device,
            batches: List[Any]) -> Dict[str, Any]:
    """Build ``expid`` at ``precision`` on the device and time its steps; fills ``batches`` on first use."""
    exp = step_experiment(expid, work, args.overrides, gpu=args.gpu, dataset_id=args.dataset, amp=precision,
                          batch_size=args.batch_size)
    if not batches:  # the same batches for every precision of this expid
        batches.extend(train_batches(exp, min(MAX_BATCHES, args.warmup + args.steps)))
    size = exp.params["batch_size"]
    result = {"model": exp.params["model"], "params": int(sum(p.numel() for p in exp.model.parameters())),
              "batch_size": size, **time_steps(exp.model, batches, device, args.warmup, args.steps)}
    if device.type == "cuda":
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / (1 << 30), 3)
    else:
        result["peak_rss_gib"] = round(peak_rss_gib(), 3)  # the process's high-water mark so far
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpu", type=int, default=0, help="CUDA device index; -1 = CPU (default 0)")
    parser.add_argument("--steps", type=positive_int, default=20,
                        help="timed steps per model and precision (default 20)")
    parser.add_argument("--warmup", type=non_negative_int, default=3, help="untimed steps before them (default 3)")
    parser.add_argument("--expids", nargs="+", default=None, help="default: every model's _MicroLens expid")
    parser.add_argument("--amp", nargs="+", choices=PRECISIONS, default=None,
                        help="precisions (default: off bf16 on the CPU, off bf16 fp16 on CUDA)")
    parser.add_argument("--dataset", default="MicroLens_synth_full", metavar="DATASET_ID",
                        help="the world the batches come from (default %(default)s; MicroLens_synth_tiny for a "
                             "smoke run); wins over --set dataset_id")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="default: each expid's own")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature maps")
    args = parser.parse_args(argv)
    amp = args.amp or [p for p in PRECISIONS if p != "fp16" or args.gpu >= 0]
    expids = args.expids or default_expids()
    results: Dict[str, Dict[str, Any]] = {}
    failed: List[str] = []
    try:
        device, device_name = resolve_device(args.gpu)  # a missing CUDA device or fp16 on the CPU: exit 2
        for precision in amp:
            resolve_device(args.gpu, precision)
        runner_process_settings(args.threads)
        with work_dir(args.output_dir, "bench_gpu_") as work:
            for expid in expids:  # every expid resolved and validated before anything runs
                validated_params(expid, overrides=step_overrides(args), work_dir=work)
            for expid in expids:
                batches: List[Any] = []
                results[expid] = {}
                for precision in amp:
                    _release(device)
                    try:
                        out = run_one(expid, precision, work, args, device, batches)
                    except ZooError:
                        raise
                    except Exception as exc:  # noqa: BLE001  (out of memory, diverged: reported, the rest still run)
                        out = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"}
                        failed.append(f"{expid}/{precision}")
                    results[expid][precision] = out
                    shown = (f"{out['step_ms']:9.1f} ms/step {out['samples_per_s']:10.1f} samples/s"
                             if "error" not in out else f"FAILED {out['error'][:200]}")
                    print(f"{expid:28s} {precision:4s} {shown}", flush=True)
                del batches
    except ZooError as exc:
        return usage_error(str(exc))
    print_result({"benchmark": "gpu_check", "device": device_name, "torch": torch.__version__,
                  "cuda": torch.version.cuda, "dataset_id": args.dataset, "batch_size": args.batch_size,
                  "steps": args.steps, "warmup": args.warmup, "amp": amp, "threads": torch.get_num_threads(),
                  "results": results, "failed": failed, "peak_rss_gib": round(peak_rss_gib(), 2)})
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
