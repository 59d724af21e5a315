"""One markdown row per run from a zoo results CSV: valid / test / cold-item valid AUC and train seconds, by seed.

Usage::

    python benchmarks/results_table.py --results /tmp/mws/results/results.csv --match _MicroLens_seqneg

Selects the rows whose expid contains ``--match`` (all rows by default), keeps the latest row per (expid, overrides)
(the seed studies re-run nothing that finished), and prints them sorted by expid and seed, so that per-seed figures
in a report are generated from the result rows, never typed.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Dict, Optional, Sequence, Tuple


def _fmt(value: str, digits: int = 4) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "n/a"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="results CSV written by the runner")
    parser.add_argument("--match", default="", help="keep expids containing this text")
    args = parser.parse_args(argv)
    try:
        with open(args.results, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if args.match in (r.get("expid") or "")]
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    latest: Dict[Tuple[str, str], Dict[str, str]] = {}
    for row in rows:  # run order: a later row replaces an earlier one
        latest[(row["expid"], row.get("overrides") or "")] = row
    print("| expid | seed | overrides | valid AUC | test AUC | cold valid AUC (rows) | train s | device |")
    print("|---|---|---|---|---|---|---|---|")
    for (expid, overrides), row in sorted(latest.items(), key=lambda kv: (kv[0][0], int(kv[1]["seed"]), kv[0][1])):
        extra = {k: v for k, v in json.loads(overrides or "{}").items() if k != "seed"}
        print(f"| `{expid}` | {row['seed']} | {json.dumps(extra) if extra else ''} | {_fmt(row['valid_AUC'])} | "
              f"{_fmt(row['test_AUC'])} | {_fmt(row['valid_cold_AUC'])} ({row.get('valid_cold_rows', '')}) | "
              f"{_fmt(row['train_seconds'], 1)} | {row.get('device', '')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
