"""Build item-embedding variants ahead of a run and report them (table on stdout, JSON report next to the files).

``python -m model_zoo.apps.variants --data-dir DIR [--variants V1 V4 V5]`` or ``--dataset <dataset_id>`` (a dataset
block of ``config/dataset_config.yaml``; a synthetic world is generated first). What the variants are:
:mod:`model_zoo.embeddings.variants`; their settings: ``config/embeddings.yaml`` (``--config`` merges a file over it).
The report goes to ``<out dir>/embedding_variants_report[__<item_feature stem>].json``. Exit codes: 0 built or
reused, 2 bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from model_zoo.config import dataset_params
from model_zoo.datasets.prepare import locate_data
from model_zoo.defaults import DEFAULT_SEED
from model_zoo.embeddings.variants import VARIANTS, VariantBuilder, VariantInfo, build_variants
from model_zoo.errors import ZooError
from model_zoo.fileio import atomic_write_json

__all__ = ["summary_rows", "format_table", "main"]


def summary_rows(infos: Sequence[VariantInfo], builder: Optional[VariantBuilder] = None) -> List[Dict[str, Any]]:
    """One dict per variant: explained variance, sid stats, timings (what the CLI prints and saves)."""
    rows = []
    for info in infos:
        r = info.report
        q = r.get("quantization") or {}
        err = q.get("relative_error_by_level") or ([q["relative_error"]] if "relative_error" in q else [])
        rows.append({
            "variant": info.name, "description": r.get("description"), "file": str(info.item_info),
            "dim": r.get("dim"), "explained_variance": r.get("explained_variance"),
            "explained_variance_text": r.get("explained_variance_text"),
            "explained_variance_image": r.get("explained_variance_image"),
            "sid_levels": r.get("sid_levels"), "codebook_size": q.get("codebook_size_effective"),
            "relative_error": err, "dead_codes": [u["dead"] for u in q.get("usage", [])],
            "features_added": [c["name"] for c in info.extra_feature_cols],
            "features_dropped": list(info.drop_features),
            "usable_items": r.get("usable_items"), "flagged_items": r.get("flagged_items"),
            "cached": builder.cached.get(info.name) if builder else None,
            "build_seconds": round(builder.timings[info.name], 2) if builder and info.name in builder.timings else None,
        })
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows of :func:`summary_rows` as a fixed-width text table (EV = explained variance)."""
    def f(v: Any, spec: str = ".4f") -> str:
        return "-" if v is None else format(v, spec)
    lines = [f"{'variant':7} {'dim':>4} {'EV':>7} {'EV txt':>7} {'EV img':>7} {'sid':>7} {'rel.err by level':24} "
             f"{'dead':10} {'secs':>6}  item vector"]
    for r in rows:
        sid = f"{r['sid_levels']}x{r['codebook_size']}" if r.get("sid_levels") else "-"
        err = ",".join(f"{e:.3f}" for e in r["relative_error"]) or "-"
        dead = ",".join(str(d) for d in r["dead_codes"]) or "-"
        secs = "cached" if r.get("cached") else f(r.get("build_seconds"), ".1f")
        lines.append(f"{r['variant']:7} {r['dim'] or 0:>4} {f(r['explained_variance']):>7} "
                     f"{f(r['explained_variance_text']):>7} {f(r['explained_variance_image']):>7} {sid:>7} "
                     f"{err:24} {dead:10} {secs:>6}  {r['description']}")
    return "\n".join(lines)


def _dataset_paths(dataset_id: str, progress: bool) -> Tuple[Path, Path, Optional[Path]]:
    """(data_dir, item_info, item_feature) of a declared dataset (a synthetic one is generated first)."""
    params = dataset_params(dataset_id)
    files = locate_data(params, progress=progress)
    feature = Path(params["item_feature"]) if params.get("item_feature") else None
    return files.data_dir, files.item_info, feature


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.variants",
                                     description="Build item-embedding variants (item_info_<Vn>.parquet) and report "
                                                 "explained variance, quantization error and code usage.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="directory with item_info.parquet and item_feature.parquet")
    where.add_argument("--dataset", help="a dataset id of config/dataset_config.yaml (a synthetic one is generated)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"default: all ({' '.join(VARIANTS)})")
    parser.add_argument("--config", default=None, help="embeddings YAML merged over config/embeddings.yaml")
    parser.add_argument("--item-info", default=None, help="default: <data-dir>/item_info.parquet")
    parser.add_argument("--item-feature", default=None, help="default: <data-dir>/item_feature.parquet")
    parser.add_argument("--out-dir", default=None, help="where the variant files go (default: the data dir)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"PCA / K-means seed unless config/embeddings.yaml sets one (default: {DEFAULT_SEED}, "
                             f"the runner's)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache matches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build, print the table and a final JSON line, write the report. Returns the exit code (0, or 2 on bad input)."""
    args = _parser().parse_args(argv)
    try:
        if args.dataset:
            data_dir, item_info, item_feature = _dataset_paths(args.dataset, not args.quiet)
        else:
            data_dir = Path(args.data_dir)
            item_info, item_feature = data_dir / "item_info.parquet", None
        item_info = Path(args.item_info) if args.item_info else item_info
        item_feature = Path(args.item_feature) if args.item_feature else item_feature
        out_dir = Path(args.out_dir) if args.out_dir else data_dir
        if item_feature is None:
            item_feature = data_dir / "item_feature.parquet"
        started = time.perf_counter()
        infos, builder = build_variants(args.variants, out_dir, item_info=item_info, item_feature=item_feature,
                                        seed=args.seed, progress=not args.quiet, config=args.config,
                                        force=args.force)
        seconds = time.perf_counter() - started
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = summary_rows(infos, builder)
    report = {"data_dir": str(out_dir), "item_info": str(item_info), "item_feature": str(item_feature),
              "seed": builder.seed, "seconds": round(seconds, 2), "variants": rows}
    path = atomic_write_json(out_dir / f"embedding_variants_report{builder.suffix}.json", report)
    print(format_table(rows))
    print(f"report: {path}  ({seconds:.1f} s)")
    print(json.dumps({k: v for k, v in report.items() if k != "variants"}
                     | {"explained_variance": {r["variant"]: r["explained_variance"] for r in rows}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
