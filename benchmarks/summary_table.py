"""One markdown table, models by dataset: seed means from seed-study summaries, baselines from results CSVs.

Usage::

    python benchmarks/summary_table.py --seeds benchmarks/seeds.csv benchmarks/seeds_synth_top.csv \\
        benchmarks/seeds_seqneg.csv benchmarks/seeds_movielens.csv --results results/results.csv

Rows: every method of the seed studies (the expid without its dataset part) (``python -m model_zoo.apps.seeds``: valid AUC mean ± std over n seeds, cold
valid AUC mean), every ``Baseline_*`` row of the results CSVs (``python -m model_zoo.apps.baselines``), and the
oracle where a synthetic world has one; columns: the datasets in the order first seen. An expid in two summaries
keeps the one with more seeds. The figures in ``benchmarks/README.md`` section 0 are this script's output, never typed.

Claims are marked, not drawn by eye: per dataset the best mean is **bold**; a model whose mean is within twice the
larger seed std of the two (``TIE_STDS``) is marked ≈ (no difference may be claimed); a single-seed cell says
"single seed" and is never compared.
"""
from __future__ import annotations

import argparse
import csv
import sys
from typing import Dict, List, Optional, Sequence, Tuple

Cell = Tuple[str, str]  # (AUC text, cold AUC text)
TIE_STDS = 2.0  # a difference below TIE_STDS x the larger seed std is not a difference


def _f(value: Optional[str], digits: int = 4) -> Optional[float]:
    try:
        return round(float(value), digits) if value not in (None, "") else None
    except ValueError:
        return None


def _method(expid: str, dataset: str) -> str:
    """The row name: the expid without its dataset part (``DIN_DCN_MicroLens_seqneg`` -> ``DIN_DCN``, a
    DIN_CrossNet configuration; ``DMF_MovieLens_small`` -> ``DMF``)."""
    if expid.endswith(f"_{dataset}"):
        return expid[: -len(dataset) - 1]
    return expid.split("_MicroLens_")[0]


def _read(path: str) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        return list(csv.DictReader(fh))


def build(seeds: Sequence[str], results: Sequence[str]) -> str:
    cells: Dict[str, Dict[str, Cell]] = {}
    stats: Dict[Tuple[str, str], Tuple[float, float, int]] = {}  # (model, dataset) -> (mean, std, n)
    seeds_n: Dict[Tuple[str, str], int] = {}
    datasets: List[str] = []
    oracle: Dict[str, float] = {}
    for path in seeds:
        for row in _read(path):
            dataset, n = row["dataset_id"], int(row["n"] or 0)
            model = _method(row["expid"], dataset)
            if n == 0:
                continue
            datasets += [dataset] if dataset not in datasets else []
            if seeds_n.get((model, dataset), 0) >= n:
                continue
            seeds_n[(model, dataset)] = n
            std = _f(row.get("valid_AUC_std"))
            auc = f"{_f(row['valid_AUC_mean']):.4f}" + (f" ± {std:.4f}" if std is not None and n > 1 else "") + \
                (f" ({n})" if n > 1 else " (single seed)")
            stats[(model, dataset)] = (float(row["valid_AUC_mean"]), float(std or 0.0), n)
            cold = _f(row.get("valid_cold_AUC_mean"))
            cells.setdefault(model, {})[dataset] = (auc, f"{cold:.4f}" if cold is not None else "n/a")
            if _f(row.get("oracle_valid_AUC")) is not None:
                oracle[dataset] = float(row["oracle_valid_AUC"])
    for dataset in datasets:  # bold best, ≈ within TIE_STDS x std of it (multi-seed cells only)
        ranked = sorted(((m, v) for (m, d), v in stats.items() if d == dataset and v[2] > 1), key=lambda x: -x[1][0])
        if not ranked:
            continue
        best, (best_mean, best_std, _) = ranked[0]
        auc, cold = cells[best][dataset]
        cells[best][dataset] = (f"**{auc}**", cold)
        for model, (mean, std, _) in ranked[1:]:
            if best_mean - mean < TIE_STDS * max(best_std, std):
                auc, cold = cells[model][dataset]
                cells[model][dataset] = (f"≈ {auc}", cold)
    baselines: Dict[str, Dict[str, Cell]] = {}
    for path in results:
        for row in _read(path):
            expid, dataset = row.get("expid") or "", row.get("dataset_id") or ""
            if not expid.startswith("Baseline_") or dataset not in datasets:
                continue
            name = expid[len("Baseline_"):-len(dataset) - 1]
            cold = _f(row.get("valid_cold_AUC"))
            baselines.setdefault(name, {})[dataset] = (f"{_f(row['valid_AUC']):.4f}",
                                                       f"{cold:.4f}" if cold is not None else "n/a")
    head = "| model | " + " | ".join(f"{d}: valid AUC (seeds) | cold" for d in datasets) + " |"
    lines = [head, "|---|" + "---|---|" * len(datasets)]

    def line(name: str, by_dataset: Dict[str, Cell]) -> str:
        return f"| {name} | " + " | ".join(" | ".join(by_dataset.get(d, ("", ""))) for d in datasets) + " |"

    lines += [line(model, cells[model]) for model in cells]
    lines += [line(f"*{name}* (baseline)", baselines[name]) for name in baselines]
    lines.append(line("*oracle*", {d: (f"{oracle[d]:.4f}", "") for d in oracle}))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", required=True, help="seed-study summary CSVs")
    parser.add_argument("--results", nargs="*", default=[], help="results CSVs holding the Baseline_* rows")
    args = parser.parse_args(argv)
    try:
        print(build(args.seeds, args.results))
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
