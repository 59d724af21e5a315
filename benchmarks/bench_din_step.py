"""DIN training step with its three history paths side by side: what the padding-free path saves.

    python benchmarks/bench_din_step.py [--max-len 64] [--repeats 20]

One DIN (``DIN_MicroLens_synth``: batch 1024, embedding 16, scorer [64, 32]) steps over the same pre-built batches
(forward + loss + backward + clipping + Adam, ``model.train_step``) with the history handled three ways, taking turns
step by step:

* ``fuxictr_padded``: every joined row embedded, FuxiCTR's ``DIN_Attention`` over the padded (B, L, D) history;
* ``packed_scorer``: every joined row embedded, the scorer run on the valid positions gathered from (B, L, D);
* ``padding_free``: only the valid items and the targets embedded and scored, nothing of size (B, L, D) built
  (``MMCTRModel.embed_valid_items`` + ``TargetAttention.pool_valid``; what DIN runs by default).

The three give the same predictions (checked first, eval mode). Last line: one JSON object with the medians and ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Dict, List

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_train_step.py)

import torch  # noqa: E402
from bench_train_step import build  # noqa: E402  (same directory: benchmarks/)

from model_zoo.datasets import prepare  # noqa: E402
from model_zoo.datasets.loader import keep_large_allocations_on_heap  # noqa: E402

MODES = {"fuxictr_padded": (False, False), "packed_scorer": (False, True), "padding_free": (True, True)}


def set_mode(model, mode: str) -> None:
    model.skip_padding_items, model.backbone.attention.packed = MODES[mode]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expid", default="DIN_MicroLens_synth")
    parser.add_argument("--max-len", type=int, default=None, help="history kept (default: the expid's, 32)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--num-batches", type=int, default=8, help="distinct batches cycled through")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_large_allocations_on_heap()  # as run_expid.py does
    with tempfile.TemporaryDirectory() as tmp:
        model, params, files = build(args.expid, tmp)
        if args.max_len:
            params["max_len"] = args.max_len
        loader = prepare.make_loader(files.train, {**params, "shuffle": False}, prepare.load_item_table(params, files),
                                     train=True)
        size = params["batch_size"]
        batches = [loader.batch(slice(i * size, (i + 1) * size)) for i in range(args.num_batches)]
        model.eval()
        with torch.no_grad():
            preds = {}
            for mode in MODES:
                set_mode(model, mode)
                preds[mode] = model(batches[0])["y_pred"]
        for mode in MODES:
            assert torch.allclose(preds[mode], preds["fuxictr_padded"], atol=1e-5), mode
        model.train()
        times: Dict[str, List[float]] = {mode: [] for mode in MODES}
        for i in range(args.warmup + args.repeats):
            for mode in MODES:  # turns: load changes on a shared machine hit every mode alike
                set_mode(model, mode)
                start = time.perf_counter()
                model.train_step(batches[i % len(batches)])
                if i >= args.warmup:
                    times[mode].append(time.perf_counter() - start)
    step_ms = {mode: round(1e3 * statistics.median(t), 2) for mode, t in times.items()}
    valid = float(batches[0].mask.mean())
    for mode, ms in step_ms.items():
        print(f"{mode:16s} median step {ms:8.1f} ms")
    print(json.dumps({"benchmark": "din_step", "expid": args.expid, "batch_size": size, "max_len": params["max_len"],
                      "valid_history_fraction": round(valid, 3), "threads": args.threads, "repeats": args.repeats,
                      "step_ms": step_ms,
                      "speedup_padding_free_vs_fuxictr": round(step_ms["fuxictr_padded"] / step_ms["padding_free"], 2),
                      "speedup_padding_free_vs_packed": round(step_ms["packed_scorer"] / step_ms["padding_free"], 2)}))


if __name__ == "__main__":
    main()
