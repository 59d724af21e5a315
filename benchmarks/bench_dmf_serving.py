"""DMF serving throughput: DTA vs early fusion for one user and N candidates (dmf_spec.md sections 9 to 11).

    python benchmarks/bench_dmf_serving.py            # N in {100, 1200} x L in {50, 100}
    python benchmarks/bench_dmf_serving.py --quick    # N = 1200, L = 100 only (< 2 minutes)
    python benchmarks/bench_dmf_serving.py --set dataset_id=MicroLens_synth_tiny --candidates 100 --lengths 50

Three ways to score one request (one user history of L items, N candidates), each as candidates per second:

* ``dta_serving``: :meth:`DMF.forward_serving`: K^id, V^id, history MM vectors and context computed once;
* ``ef_serving``: the same model with ``attention_mode: early_fusion`` through the same serving entry point: the
  bucket embedding z_{t,j} is concatenated to e_j before the K/V projections, so nothing can be cached
  (comparator variant: target-aware bucket embedding, d_s = d_a);
* ``dta_batched``: the DMF training path on the request expanded to N rows (K^id, V^id recomputed per row).

The models are ``--expid`` (default ``DMF_MicroLens``: the real MicroLens feature columns and vocabularies; no data
file is read), resolved and validated by ``model_zoo.config`` with the dimensions below as overrides, built from the
feature map with their modality tables passed in as ``ModelData`` (random vectors, held in memory).
Both for the attention module alone (inputs e_t, H, bucket ids precomputed; DTA includes its once-per-user K/V
projection) and for the full model with the same head (similarities, bucketing, histogram, CMM, MLP). Dimensions:
ID item vector d = 64 (2 fields of 32), d_a = 64, n_b = 32, n_t = 20, K = 2 modalities of 768 and 1024 dims over the
91,718-item MicroLens vocabulary (random vectors), head MLP [512, 256, 128]. Median of ``--repeats`` timed runs after
warm-up, the six paths taking turns in every round; ``torch.set_num_threads(--threads)``, ``torch.inference_mode()``.
The last line is one JSON object: medians (``speedup``; the targets are checked on these) and, as a check on a shared
machine where other jobs stall the short paths most, the best run of each path (``best_run_speedup``).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

# Before torch loads OpenMP: sleeping (not spinning) worker threads. On a shared machine a spinning thread stalls
# every parallel op whenever the other core is busy, which swamps short paths (DTA serving: ~3 ms) far more than long
# ones; with PASSIVE the numbers match --threads 1 under load. Set OMP_WAIT_POLICY=ACTIVE to measure spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from benchlib import (BenchParser, interleaved_times, non_negative_int, overrides, positive_int,  # noqa: E402
                      print_result, usage_error, work_dir)

from model_zoo.datasets import prepare  # noqa: E402
from model_zoo.DMF.DMF import DMF  # noqa: E402
from model_zoo.errors import ConfigError, ZooError  # noqa: E402
from model_zoo.experiment import model_kwargs, validated_params  # noqa: E402
from model_zoo.layers.mmctr_base import ModelData  # noqa: E402


class PathsDisagree(Exception):
    """Two paths that compute the same function gave different scores."""


def build_models(args, work: Path) -> Dict[str, DMF]:
    """``args.expid`` in both attention modes (same seed), its modality tables random vectors of ``args.mm_dims``.

    Only the feature map is built (``prepare.build_feature_map``, from the validated params' feature columns): the
    serving paths need the vocabularies, not the data files, and the tables come in memory through ``ModelData``.
    """
    from fuxictr.pytorch.torch_utils import seed_everything

    dims = dict(verbose=0, embedding_dim=args.embedding_dim, attention_dim=args.attention_dim,
                num_buckets=args.num_buckets, num_tiers=20, dnn_hidden_units=list(args.dnn_hidden_units),
                net_dropout=0.0)
    runs = {mode: validated_params(args.expid, work_dir=work, overrides=overrides(args.overrides, **dims,
                                                                                   attention_mode=mode))
            for mode in ("decoupled", "early_fusion")}
    params = runs["decoupled"]
    if params["model"] != "DMF":
        raise ConfigError(f"--expid {args.expid}: model {params['model']}; expected a DMF expid")
    columns = DMF.data_requirements(params).item_feature_columns
    if len(columns) != len(args.mm_dims):
        raise ConfigError(f"--mm-dims {' '.join(map(str, args.mm_dims))}: {len(args.mm_dims)} modalities; the "
                          f"expid's DMF reads {len(columns)} (mm_source: item_feature, mm_feature_columns "
                          f"{list(columns)})")
    feature_map = prepare.build_feature_map(params, work / "cache" / params["dataset_id"])
    vocab = int(feature_map.features["item_id"]["vocab_size"])
    gen = torch.Generator().manual_seed(0)
    tables = {}
    for column, dim in zip(columns, args.mm_dims):
        tables[column] = torch.randn(vocab, dim, generator=gen)
        tables[column][0] = 0.0  # padding row
    models = {}
    for mode, mode_params in runs.items():
        seed_everything(seed=mode_params["seed"])
        model = DMF(feature_map, data=ModelData(item_vectors=dict(tables)), **model_kwargs(mode_params, DMF))
        models[mode] = model.eval()
    return models


def make_request(model: DMF, num_cands: int, length: int, seed: int):
    """One user (L valid history items, its context) and N distinct candidates, with random item features."""
    gen = torch.Generator().manual_seed(seed)
    vocab = int(model.feature_map.features["item_id"]["vocab_size"])
    if length + num_cands > vocab - 1:
        raise ConfigError(f"N={num_cands} candidates + L={length} history items need {length + num_cands} distinct "
                          f"items; the item_id vocabulary has {vocab - 1}")
    tag_vocab = int(model.feature_map.features["item_tags"]["vocab_size"])
    ids = torch.randperm(vocab - 1, generator=gen)[:length + num_cands] + 1

    def item_features(item_ids: torch.Tensor) -> Dict[str, torch.Tensor]:
        n = len(item_ids)
        return {"item_id": item_ids, "item_tags": torch.randint(1, tag_vocab - 1, (n, 5), generator=gen),
                "item_emb_d128": torch.randn(n, 128, generator=gen)}

    user = {"history": item_features(ids[:length]), "mask": torch.ones(length),
            "context": {"likes_level": torch.tensor([3]), "views_level": torch.tensor([5])}}
    return user, item_features(ids[length:])


def bench_case(models: Dict[str, DMF], num_cands: int, length: int, args: argparse.Namespace) -> Dict[str, float]:
    dmf, ef_model = models["decoupled"], models["early_fusion"]
    user, cands = make_request(dmf, num_cands, length, seed=num_cands * 1000 + length)
    batch = dmf.request_to_batch(user, cands)
    # module-only inputs: the same item vectors and bucket ids the models would see
    history = dmf._embed(user["history"], dmf.id_features)  # (L, d)
    target = dmf._embed(cands, dmf.id_features)  # (N, d)
    sims = torch.rand(num_cands, dmf.bucketizer.num_modalities, length) * 2 - 1
    bucket_ids = dmf.bucketizer(sims, offset_by_modality=True)  # (N, K, L)
    mask = user["mask"]
    dta, ef = dmf.attention, ef_model.attention
    history_rows, mask_rows = history.expand(num_cands, -1, -1), mask.expand(num_cands, -1)
    fns = {
        "module_dta_serving": lambda i: dta(target, dta.prepare_history(history), bucket_ids, mask),
        "module_ef_serving": lambda i: ef(target, ef.prepare_history(history), bucket_ids, mask),
        "module_dta_batched": lambda i: dta(target, dta.prepare_history(history_rows), bucket_ids, mask_rows),
        "full_dta_serving": lambda i: dmf.forward_serving(user, cands),
        "full_ef_serving": lambda i: ef_model.forward_serving(user, cands),
        "full_dta_batched": lambda i: dmf(batch)["y_pred"],
    }
    # the serving and training paths of DTA must agree: they compute the same function
    serving, batched = fns["full_dta_serving"](0), fns["full_dta_batched"](0)
    if not torch.allclose(serving, batched, atol=1e-4, rtol=1e-4):
        raise PathsDisagree(f"N={num_cands} L={length}: DTA serving and training paths differ (max abs diff "
                           f"{(serving - batched).abs().max().item():.2e})")
    times = interleaved_times(fns, args.repeats, args.warmup)
    median = {name: num_cands / statistics.median(t) for name, t in times.items()}  # candidates per second
    best = {name: num_cands / min(t) for name, t in times.items()}  # fastest run: least disturbed by other load
    return median, best


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expid", default="DMF_MicroLens", help="a DMF expid whose feature columns and vocabularies "
                                                                  "are used (default DMF_MicroLens; no data is read)")
    parser.add_argument("--quick", action="store_true", help="only N = 1200, L = 100 (< 2 minutes)")
    parser.add_argument("--candidates", type=positive_int, nargs="+", default=None, metavar="N",
                        help="candidates per request (default 100 1200; quick 1200)")
    parser.add_argument("--lengths", type=positive_int, nargs="+", default=None, metavar="L",
                        help="history lengths (default 50 100; quick 100)")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=None, help="timed runs per case (default 20, quick 10)")
    parser.add_argument("--warmup", type=non_negative_int, default=3)
    parser.add_argument("--embedding-dim", type=positive_int, default=32, help="per field; ID item vector d = 2x this")
    parser.add_argument("--attention-dim", type=positive_int, default=64)
    parser.add_argument("--num-buckets", type=positive_int, default=32)
    parser.add_argument("--mm-dims", type=positive_int, nargs="+", default=[768, 1024])
    parser.add_argument("--dnn-hidden-units", type=positive_int, nargs="+", default=[512, 256, 128])
    parser.add_overrides()
    parser.add_output_dir("the feature map")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (10 if args.quick else 20)
    torch.set_num_threads(args.threads)
    candidates = args.candidates or ([1200] if args.quick else [100, 1200])
    lengths = args.lengths or ([100] if args.quick else [50, 100])
    cases = [(n, length) for n in candidates for length in lengths]
    rows: List[Dict[str, object]] = []  # medians
    best_rows: List[Dict[str, object]] = []  # best runs
    try:
        with work_dir(args.output_dir, "bench_dmf_serving_") as work, torch.inference_mode():
            models = build_models(args, work)
            for num_cands, length in cases:
                qps, best = bench_case(models, num_cands, length, args)
                rows.append({"N": num_cands, "L": length, **{k: round(v, 1) for k, v in qps.items()}})
                best_rows.append({"N": num_cands, "L": length, **{k: round(v, 1) for k, v in best.items()}})
                print(f"N={num_cands:5d} L={length:4d} | module cand/s: DTA serving "
                      f"{qps['module_dta_serving']:>11,.0f}  EF {qps['module_ef_serving']:>9,.0f}  DTA batched "
                      f"{qps['module_dta_batched']:>9,.0f} | full cand/s: DTA serving "
                      f"{qps['full_dta_serving']:>9,.0f}  EF {qps['full_ef_serving']:>8,.0f}  DTA batched "
                      f"{qps['full_dta_batched']:>8,.0f}", flush=True)
    except ZooError as exc:
        return usage_error(exc)
    except PathsDisagree as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    speedups, best_speedups = ({f"N{r['N']}_L{r['L']}": {
        "module_dta_serving_vs_ef": round(r["module_dta_serving"] / r["module_ef_serving"], 2),
        "module_dta_serving_vs_batched": round(r["module_dta_serving"] / r["module_dta_batched"], 2),
        "full_dta_serving_vs_ef": round(r["full_dta_serving"] / r["full_ef_serving"], 2),
        "full_dta_serving_vs_batched": round(r["full_dta_serving"] / r["full_dta_batched"], 2),
    } for r in table} for table in (rows, best_rows))
    target = speedups.get("N1200_L100", {})
    print_result({
        "benchmark": "dmf_serving", "expid": args.expid, "torch": torch.__version__, "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_avg_1min_after": os.getloadavg()[0],
        "cpu": platform.processor() or platform.machine(), "repeats": args.repeats,
        "dims": {"d": 2 * args.embedding_dim, "d_a": args.attention_dim, "n_b": args.num_buckets,
                 "mm_dims": args.mm_dims, "dnn_hidden_units": args.dnn_hidden_units},
        "candidates_per_s": rows, "speedup": speedups,
        "best_run_candidates_per_s": best_rows, "best_run_speedup": best_speedups,
        "targets_met": {"full_serving_vs_ef_ge_3x": target.get("full_dta_serving_vs_ef", 0) >= 3,
                        "module_serving_vs_ef_ge_30x": target.get("module_dta_serving_vs_ef", 0) >= 30},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
