"""Build the PCA embedding variants (V1-V4) of a data dir from scratch; report wall time and peak RSS.

Usage::

    python -m model_zoo.apps.generate --preset full --out /tmp/synth_full
    python benchmarks/bench_variants.py --data-dir /tmp/synth_full [--variants V1 V2 V3 V4 V5]

The variant files go to a fresh temporary directory (``--out-dir`` to keep them), so every run is a cold build:
ingestion checks, one PCA per modality / variant, parquet writes. The acceptance budget for the four PCA variants at
MicroLens scale (91,717 items, 768-d text + 1024-d image) on 2 cores is < 2 minutes and < 6 GiB. The last line is
one JSON object: ``{"data_dir", "items", "variants", "seconds", "peak_rss_gib", "per_variant_seconds",
"explained_variance", "within_budget"}``.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence


from model_zoo.apps.variants import format_table, summary_rows  # noqa: E402
from model_zoo.embeddings.variants import build_variants  # noqa: E402
from model_zoo.errors import ZooError  # noqa: E402

BUDGET_SECONDS = 120.0
BUDGET_RSS_GIB = 6.0


def peak_rss_gib() -> float:
    """Peak resident set size of this process in GiB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 30) if sys.platform == "darwin" else rss / (1 << 20)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="directory with item_info.parquet and item_feature.parquet")
    parser.add_argument("--variants", nargs="+", default=["V1", "V2", "V3", "V4"])
    parser.add_argument("--out-dir", default=None, help="keep the variant files here (default: a temp dir, removed)")
    parser.add_argument("--seed", type=int, default=20242025, help="PCA seed (the runner's Base seed by default)")
    parser.add_argument("--config", default=None, help="embeddings YAML merged over config/embeddings.yaml")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    out_dir = Path(args.out_dir) if args.out_dir else Path(tempfile.mkdtemp(prefix="bench_variants_"))
    rss_before = peak_rss_gib()
    try:
        start = time.perf_counter()
        infos, builder = build_variants(args.variants, out_dir, item_info=data_dir / "item_info.parquet",
                                        item_feature=data_dir / "item_feature.parquet", seed=args.seed,
                                        progress=args.progress, config=args.config, force=True)
        seconds = time.perf_counter() - start
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.out_dir:
            shutil.rmtree(out_dir, ignore_errors=True)
    rows = summary_rows(infos, builder)
    print(format_table(rows))
    rss = peak_rss_gib()
    result = {
        "data_dir": str(data_dir), "items": infos[0].report.get("num_items"), "variants": [i.name for i in infos],
        "seconds": round(seconds, 2), "peak_rss_gib": round(rss, 3), "rss_before_build_gib": round(rss_before, 3),
        "per_variant_seconds": {k: round(v, 2) for k, v in builder.timings.items()},
        "explained_variance": {r["variant"]: round(r["explained_variance"], 4) for r in rows},
        "within_budget": seconds < BUDGET_SECONDS and rss < BUDGET_RSS_GIB,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
