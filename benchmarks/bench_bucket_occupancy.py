"""How DMF's similarity buckets are filled: equal-width vs quantile edges, on the pairs a model really sees.

Usage::

    python benchmarks/bench_bucket_occupancy.py --expid DMF_MicroLens_seqneg --output-dir /tmp/mw

Builds the expid's DMF twice (``bucket_edges: equal_width`` and ``quantile``; edges fitted on the seeded train sample
as in training), bucketizes the target-history cosine of every valid (row, history position) pair of ``--split``
(per modality) and prints one JSON line per setting: pairs, share of pairs in the 5 fullest buckets, buckets holding
95 % of the pairs, the fullest bucket's share, empty buckets, and the normalised entropy (1 = uniform). With
``num_buckets`` 32, a uniform spread puts 5 / 32 = 15.6 % of the pairs into any 5 buckets.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from model_zoo.errors import ZooError


def occupancy(counts: np.ndarray) -> Dict[str, float]:
    """Summary of one modality's bucket counts (n_b,)."""
    share = counts / max(counts.sum(), 1)
    ordered = np.sort(share)[::-1]
    nonzero = share[share > 0]
    return {"top5_share": round(float(ordered[:5].sum()), 4),
            "buckets_for_95pct": int(np.searchsorted(np.cumsum(ordered), 0.95) + 1),
            "max_share": round(float(ordered[0]), 4), "empty_buckets": int((share == 0).sum()),
            "entropy": round(float(-(nonzero * np.log(nonzero)).sum() / np.log(len(share))), 4)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expid", default="DMF_MicroLens_seqneg", help="a DMF expid (default DMF_MicroLens_seqneg)")
    parser.add_argument("--output-dir", default=".", help="work dir of the runner (data/, cache/)")
    parser.add_argument("--split", default="valid", choices=("train", "valid", "test"), help="pairs to count")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as the runner's --set")
    args = parser.parse_args(argv)
    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.config import parse_overrides, resolve_params, validate_params
    from model_zoo.experiment import build_experiment
    from model_zoo.registry import get_model

    work = Path(args.output_dir).resolve()
    out: List[Dict[str, object]] = []
    try:
        for edges in ("equal_width", "quantile"):
            overrides = {**parse_overrides(args.overrides), "bucket_edges": edges, "verbose": 0}
            if edges == "equal_width":
                overrides.pop("quantile_fit_rows", None)
            resolved = resolve_params(args.expid, None, overrides=overrides, work_dir=work)
            if edges == "equal_width":
                resolved.params.pop("quantile_fit_rows", None)
            params = dict(validate_params(resolved, get_model(resolved.params["model"])), gpu=-1)
            exp = build_experiment(params, cache_dir=work / "cache", progress=False)
            model = exp.model.eval()
            num_mod, num_buckets = model.bucketizer.num_modalities, model.bucketizer.num_buckets
            counts = np.zeros((num_mod, num_buckets), dtype=np.int64)
            with torch.no_grad():
                for batch in exp.loader(args.split):
                    _, item_inputs, mask = model.get_inputs(batch)
                    ids = model.bucketizer(model._batch_cosines(item_inputs, mask))  # (B, K, L)
                    for k in range(num_mod):
                        counts[k] += np.bincount(ids[:, k][mask > 0].numpy(), minlength=num_buckets)
            columns = model.mm_feature_columns if model.mm_source == "item_feature" else (model.mm_item_info_column,)
            for k, column in enumerate(columns):
                row = {"expid": args.expid, "split": args.split, "bucket_edges": edges, "modality": column,
                       "num_buckets": num_buckets, "pairs": int(counts[k].sum()), **occupancy(counts[k])}
                out.append(row)
                print(json.dumps(row), flush=True)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
