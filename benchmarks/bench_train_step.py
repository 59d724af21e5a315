"""Training step time of DMF vs DIN_SENet (and DIN) at the same dimensions on the same batches.

    python benchmarks/bench_train_step.py                 # the *_MicroLens_synth expids on MicroLens_synth_small
    python benchmarks/bench_train_step.py --quick         # fewer repeats

One step = forward + loss (with regularisers) + backward + gradient clipping + Adam step (``model.train_step``), on
CPU with ``torch.set_num_threads(--threads)``. Each model is built from its expid (same embedding sizes, head
[256, 128, 64], batch 1024, max_len 32) and stepped over the same pre-built batches: ``--warmup`` steps, then the
median of ``--repeats`` timed steps, the models taking turns step by step. The synthetic world is generated on
first use (about 30 s). The last line is one JSON object with the step times and the DMF / DIN_SENet ratio
(target <= 1.5).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Dict, List

# Before torch loads OpenMP: sleeping (not spinning) worker threads, robust on a shared machine (see
# bench_dmf_serving.py). Set OMP_WAIT_POLICY=ACTIVE to measure spinning threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import model_zoo  # noqa: F401,E402  (registers the models)
from model_zoo.config import load_params, validate_params  # noqa: E402
from model_zoo.datasets import prepare  # noqa: E402
from model_zoo.datasets.loader import keep_large_allocations_on_heap  # noqa: E402
from model_zoo.registry import get_model  # noqa: E402

LOADER_KEYS = ("dataset_id", "batch_size", "max_len")


def build(expid: str, model_root: str):
    params = load_params(expid)
    params.update(model_root=model_root, verbose=0, gpu=-1)
    model_cls = get_model(params["model"])
    validate_params(params, model_cls)
    files = prepare.locate_data(params, progress=False)
    feature_map = prepare.build_feature_map(params, files.data_dir)
    torch.manual_seed(0)
    model = model_cls(feature_map, **params)
    if hasattr(model, "attach_data"):
        model.attach_data(files, params)
    model._batch_index, model._steps_per_epoch = 0, 1  # fit() sets these; train_step reads them
    model._max_gradient_norm = params.get("max_gradient_norm", 10.0)
    return model, params, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expids", nargs="+",
                        default=["DMF_MicroLens_synth", "DIN_SENet_MicroLens_synth", "DIN_MicroLens_synth"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-batches", type=int, default=8, help="distinct batches cycled through")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 20, quick 8)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = args.repeats or (8 if args.quick else 20)
    torch.set_num_threads(args.threads)
    keep_large_allocations_on_heap()  # as run_expid.py does
    results: Dict[str, Dict[str, float]] = {}
    models, batches, loader_params = {}, [], None
    with tempfile.TemporaryDirectory() as tmp:
        for expid in args.expids:
            model, params, files = build(expid, tmp)
            key = {k: params.get(k) for k in LOADER_KEYS}
            if loader_params is None:  # the first expid defines the batches every model sees
                loader_params = key
                item_table = prepare.load_item_table(params, files)
                loader = prepare.make_loader(files.train, {**params, "shuffle": False}, item_table, train=True)
                batches = [loader.batch(slice(i * key["batch_size"], (i + 1) * key["batch_size"]))
                           for i in range(args.num_batches)]
            elif key != loader_params:
                raise ValueError(f"{expid}: {key} differs from {loader_params}; the models must see the same batches")
            models[expid] = (model.train(), params["model"])
        for i in range(args.warmup):
            for model, _ in models.values():
                model.train_step(batches[i % len(batches)])
        times: Dict[str, List[float]] = {expid: [] for expid in models}
        for i in range(repeats):  # the models take turns, so load changes on a shared machine hit all alike
            for expid, (model, _) in models.items():
                start = time.perf_counter()
                model.train_step(batches[i % len(batches)])
                times[expid].append(time.perf_counter() - start)
        for expid, (model, name) in models.items():
            num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            results[expid] = {"model": name, "step_ms": round(1e3 * statistics.median(times[expid]), 2),
                              "trainable_params": num_params}
            print(f"{expid:32s} {name:12s} median step {results[expid]['step_ms']:8.1f} ms  "
                  f"({num_params:,} params)", flush=True)
    by_model = {r["model"]: r["step_ms"] for r in results.values()}
    ratios = {f"DMF_vs_{name}": round(by_model["DMF"] / ms, 3) for name, ms in by_model.items()
              if name != "DMF" and "DMF" in by_model}
    print(json.dumps({"benchmark": "train_step", "torch": torch.__version__, "threads": args.threads,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_avg_1min_after": os.getloadavg()[0],
                      "batch": loader_params, "repeats": repeats, "results": results, "ratios": ratios,
                      "target_met": ratios.get("DMF_vs_DIN_SENet", float("inf")) <= 1.5}))


if __name__ == "__main__":
    main()
