"""Time the synthetic MicroLens generator in-process and report wall time and peak RSS.

Usage::

    python benchmarks/bench_generate.py --preset full --out /tmp/synth_full

Always regenerates (no cache). The last line printed is one JSON object:
``{"preset", "seconds", "peak_rss_gib", "rows", "oracle_auc_valid"}`` plus a few extras (train positive rate,
items, users, output bytes).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from typing import Optional, Sequence


from model_zoo.datasets.synthetic import PRESETS, generate, make_config  # noqa: E402
from model_zoo.errors import ZooError  # noqa: E402


def peak_rss_gib() -> float:
    """Peak resident set size of this process in GiB (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 30) if sys.platform == "darwin" else rss / (1 << 20)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one generation and print the benchmark JSON line; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--out", required=True, help="output directory (replaced if it holds a synthetic world)")
    parser.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    parser.add_argument("--progress", action="store_true", help="show the generator's progress bar")
    parser.add_argument("--cleanup", action="store_true", help="delete the output directory afterwards")
    args = parser.parse_args(argv)
    try:
        config = make_config(args.preset, seed=args.seed)
        start = time.perf_counter()
        manifest = generate(config, args.out, progress=args.progress)
        seconds = time.perf_counter() - start
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {
        "preset": args.preset,
        "seconds": round(seconds, 2),
        "peak_rss_gib": round(peak_rss_gib(), 3),
        "rows": manifest["rows"],
        "oracle_auc_valid": round(manifest["oracle_auc"]["valid"], 4),
        "oracle_auc_test": round(manifest["oracle_auc"]["test"], 4),
        "positive_rate_train": manifest["positive_rate"]["train"],
        "num_items": manifest["num_items"],
        "num_users": manifest["num_users"],
        "output_bytes": sum(f["bytes"] for f in manifest["files"].values()),
    }
    if args.cleanup:
        shutil.rmtree(args.out, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
