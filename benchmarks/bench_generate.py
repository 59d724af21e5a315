"""Time a synthetic world's generator in-process and report wall time and peak RSS.

Usage::

    python benchmarks/bench_generate.py --preset full --out /tmp/synth_full
    python benchmarks/bench_generate.py --world seqneg --preset small --out /tmp/seqneg_small

Always regenerates (no cache): ``model_zoo.datasets.synthetic.generate`` writes the world of ``--world``
(``microlens_synth`` or ``seqneg``) and ``--preset`` into ``--out`` atomically, replacing a previous synthetic world
there (any other non-empty directory is refused). The last line printed is one JSON object:
``{"world", "preset", "seconds", "peak_rss_gib", "rows", "oracle_auc_valid"}`` plus a few extras (train positive
rate, items, users, output bytes).
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import Optional, Sequence

from benchlib import BenchParser, peak_rss_gib, print_result, usage_error

from model_zoo.datasets.synthetic import DEFAULT_WORLD, WORLDS, generate, make_config
from model_zoo.errors import ZooError


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one generation and print the benchmark JSON line; returns the exit code (2 on bad input)."""
    parser = BenchParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default=DEFAULT_WORLD, choices=tuple(WORLDS),
                        help=f"generator (default {DEFAULT_WORLD})")
    parser.add_argument("--preset", default="full", help="tiny, small or full (default full)")
    parser.add_argument("--out", required=True, help="output directory (replaced if it holds a synthetic world)")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--progress", action="store_true", help="show the generator's progress bar")
    parser.add_argument("--cleanup", action="store_true", help="delete the output directory afterwards")
    args = parser.parse_args(argv)
    try:
        config = make_config(args.preset, seed=args.seed, world=args.world)
        start = time.perf_counter()
        manifest = generate(config, args.out, progress=args.progress)
        seconds = time.perf_counter() - start
    except ZooError as exc:
        return usage_error(exc)
    oracle = manifest["oracle_auc"]
    result = {
        "world": args.world,
        "preset": args.preset,
        "seconds": round(seconds, 2),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "rows": manifest["rows"],
        "oracle_auc_valid": round(oracle["valid"], 4) if oracle.get("valid") is not None else None,
        "oracle_auc_test": round(oracle["test"], 4) if oracle.get("test") is not None else None,
        "positive_rate_train": manifest["positive_rate"]["train"],
        "num_items": manifest["num_items"],
        "num_users": manifest["num_users"],
        "output_bytes": sum(f["bytes"] for f in manifest["files"].values()),
    }
    if args.cleanup:
        shutil.rmtree(args.out, ignore_errors=True)
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
