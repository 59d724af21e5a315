"""DIN training step with its three history paths side by side: what the padding-free path saves.

    python benchmarks/bench_din_step.py [--max-len 64] [--repeats 20]

One DIN (``DIN_MicroLens_synth``: batch 1024, embedding 16, scorer [64, 32]; built by ``experiment_from_expid``,
``--set`` overrides the expid) steps over the same pre-built batches (forward + loss + backward + clipping + Adam,
``model.train_step``) with the history handled three ways, taking turns step by step:

* ``fuxictr_padded``: every joined row embedded, FuxiCTR's ``DIN_Attention`` over the padded (B, L, D) history;
* ``packed_scorer``: every joined row embedded, the scorer run on the valid positions gathered from (B, L, D);
* ``padding_free``: only the valid items and the targets embedded and scored, nothing of size (B, L, D) built
  (``MMCTRModel.embed_valid_items`` + ``TargetAttention.pool_valid``; what DIN runs by default).

The three give the same predictions (checked first, eval mode). Last line: one JSON object with the medians and ratios.
"""
from __future__ import annotations

import os
import statistics
import sys
from typing import Optional, Sequence

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see bench_train_step.py)

import torch  # noqa: E402
from benchlib import (BenchParser, interleaved_times, non_negative_int, positive_int, print_result,  # noqa: E402
                      runner_process_settings, step_experiment, train_batches, usage_error, work_dir)

from model_zoo.errors import ConfigError, ZooError  # noqa: E402

MODES = {"fuxictr_padded": (False, False), "packed_scorer": (False, True), "padding_free": (True, True)}


def set_mode(model, mode: str) -> None:
    model.skip_padding_items, model.backbone.attention.packed = MODES[mode]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expid", default="DIN_MicroLens_synth", help="a DIN expid (default DIN_MicroLens_synth)")
    parser.add_argument("--max-len", type=positive_int, default=None, help="history kept (default: the expid's, 32)")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--num-batches", type=positive_int, default=8, help="distinct batches cycled through")
    parser.add_argument("--warmup", type=non_negative_int, default=3)
    parser.add_argument("--repeats", type=positive_int, default=20)
    parser.add_overrides()
    parser.add_output_dir("the synthetic world and feature map")
    args = parser.parse_args(argv)
    runner_process_settings(args.threads)
    try:
        with work_dir(args.output_dir, "bench_din_step_") as work:
            exp = step_experiment(args.expid, work, args.overrides, max_len=args.max_len)
            model, params = exp.model, exp.params
            if params["model"] != "DIN":
                raise ConfigError(f"--expid {args.expid}: model {params['model']}; expected a DIN expid")
            batches = train_batches(exp, args.num_batches)
    except ZooError as exc:
        return usage_error(exc)
    model.eval()
    with torch.no_grad():
        preds = {}
        for mode in MODES:
            set_mode(model, mode)
            preds[mode] = model(batches[0])["y_pred"]
    for mode in MODES:
        if not torch.allclose(preds[mode], preds["fuxictr_padded"], atol=1e-5):
            print(f"error: {mode} predicts differently from fuxictr_padded (max abs diff "
                  f"{(preds[mode] - preds['fuxictr_padded']).abs().max().item():.2e})", file=sys.stderr)
            return 1
    model.train()

    def step(mode: str):
        def run(i: int) -> None:
            set_mode(model, mode)
            model.train_step(batches[i % len(batches)])
        return run

    # turns: load changes on a shared machine hit every mode alike
    times = interleaved_times({mode: step(mode) for mode in MODES}, args.repeats, args.warmup)
    step_ms = {mode: round(1e3 * statistics.median(t), 2) for mode, t in times.items()}
    valid = float(batches[0].mask.mean())
    for mode, ms in step_ms.items():
        print(f"{mode:16s} median step {ms:8.1f} ms")
    print_result({"benchmark": "din_step", "expid": args.expid, "dataset_id": params["dataset_id"],
                  "batch_size": params["batch_size"], "max_len": params["max_len"],
                  "valid_history_fraction": round(valid, 3), "threads": args.threads, "repeats": args.repeats,
                  "num_batches": len(batches), "step_ms": step_ms,
                  "speedup_padding_free_vs_fuxictr": round(step_ms["fuxictr_padded"] / step_ms["padding_free"], 2),
                  "speedup_padding_free_vs_packed": round(step_ms["packed_scorer"] / step_ms["padding_free"], 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
