"""Build the PCA embedding variants (V1-V4) of a data dir from scratch; report wall time and peak RSS.

Usage::

    python -m model_zoo.apps.generate --preset full --out /tmp/synth_full
    python benchmarks/bench_variants.py --data-dir /tmp/synth_full [--variants V1 V2 V3 V4 V5]
    python benchmarks/bench_variants.py --dataset MicroLens_seqneg_tiny     # a declared dataset (generated first)

The inputs are ``item_info.parquet`` and ``item_feature.parquet`` of ``--data-dir``, or the files of a dataset block
of the config (``model_zoo.config.dataset_params``; a synthetic world is generated into ``<output-dir>/data/``, and
its generation counts in the peak RSS: measure budgets on a ``--data-dir`` generated beforehand). The
variant files go to ``<output-dir>/variants`` (default: a fresh temporary directory, removed), and every run is a
cold build (``force``): ingestion checks, one PCA per modality / variant, parquet writes. The acceptance budget for
the four PCA variants at MicroLens scale (91,717 items, 768-d text + 1024-d image) on 2 cores is < 2 minutes and
< 6 GiB. The last line is one JSON object: ``{"data_dir", "items", "variants", "seconds", "peak_rss_gib",
"per_variant_seconds", "explained_variance", "within_budget"}``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

from benchlib import BenchParser, peak_rss_gib, print_result, usage_error, work_dir

from model_zoo.apps.variants import format_table, summary_rows
from model_zoo.config import dataset_params
from model_zoo.datasets.prepare import locate_data
from model_zoo.defaults import DEFAULT_SEED
from model_zoo.embeddings.variants import build_variants
from model_zoo.errors import ConfigError, ZooError

BUDGET_SECONDS = 120.0
BUDGET_RSS_GIB = 6.0


def dataset_inputs(dataset_id: str, work: Path, progress: bool) -> Tuple[Path, Path, Path]:
    """(data dir, item_info, item_feature) of a declared dataset, paths resolved against ``work`` like the runner's."""
    params = dataset_params(dataset_id, work_dir=work)
    files = locate_data(params, progress=progress)
    if not params.get("item_feature"):
        raise ConfigError(f"dataset '{dataset_id}' declares no item_feature (the raw text/image vectors)")
    return files.data_dir, files.item_info, Path(params["item_feature"])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = BenchParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-dir", help="directory with item_info.parquet and item_feature.parquet")
    source.add_argument("--dataset", help="a dataset id of the config (a synthetic one is generated first)")
    parser.add_argument("--variants", nargs="+", default=["V1", "V2", "V3", "V4"])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"PCA seed (default {DEFAULT_SEED}, the runner's Base seed)")
    parser.add_argument("--config", default=None, help="embeddings YAML merged over config/embeddings.yaml")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_output_dir("the variant files (variants/) and a --dataset world (data/)")
    args = parser.parse_args(argv)
    try:
        with work_dir(args.output_dir, "bench_variants_") as work:
            if args.dataset:
                data_dir, item_info, item_feature = dataset_inputs(args.dataset, work, args.progress)
            else:
                data_dir = Path(args.data_dir)
                item_info, item_feature = data_dir / "item_info.parquet", data_dir / "item_feature.parquet"
            rss_before = peak_rss_gib()
            start = time.perf_counter()
            infos, builder = build_variants(args.variants, work / "variants", item_info=item_info,
                                            item_feature=item_feature, seed=args.seed, progress=args.progress,
                                            config=args.config, force=True)
            seconds = time.perf_counter() - start
    except ZooError as exc:
        return usage_error(exc)
    rows = summary_rows(infos, builder)
    print(format_table(rows))
    rss = peak_rss_gib()
    print_result({
        "data_dir": str(data_dir), "items": infos[0].report.get("num_items"), "variants": [i.name for i in infos],
        "seconds": round(seconds, 2), "peak_rss_gib": round(rss, 3), "rss_before_build_gib": round(rss_before, 3),
        "per_variant_seconds": {k: round(v, 2) for k, v in builder.timings.items()},
        "explained_variance": {r["variant"]: round(r["explained_variance"], 4) for r in rows
                               if r["explained_variance"] is not None},
        "within_budget": seconds < BUDGET_SECONDS and rss < BUDGET_RSS_GIB,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
