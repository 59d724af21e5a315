"""Multi-seed comparison: the same expids trained under several seeds, as mean ± std and paired differences.

    python -m model_zoo.apps.seeds --run config/seeds.yaml [--gpu -1 -1]   # run what is missing, then report
    python -m model_zoo.apps.seeds --run config/seeds.yaml --no-train        # report from the results CSV only
    python -m model_zoo.apps.seeds --run config/seeds.yaml --out benchmarks/seeds   # the committed report

A single-seed table cannot tell a 0.002 AUC gap from noise. Every expid of the config runs once per seed through the
tuner's run module (``model_zoo.apps.tuner.run``) as ``--set seed=N``: one result row each (with ``overrides``
``{"seed": N}``), runs already finished skipped, no config files generated. The report has, per expid, the number of
seeds, mean, sample standard deviation, min and max of valid and test AUC, the mean cold-item valid AUC, the devices,
and, against the ``reference`` expid, the **paired** difference over the seeds both ran (same seed = same
initialisation stream and shuffle order for both, the data fixed): its mean, its standard deviation and how many seeds
the expid won. Written to ``<out>.md``, ``<out>.csv`` and ``<out>.png`` (each seed's valid AUC as a dot, the mean as a
bar, the oracle AUC as a dashed line), atomically; ``--out`` defaults to ``<output-dir>/seeds`` and ``--results`` to
``<output-dir>/results/results.csv`` (``--output-dir``: default the current directory).

The results file must be a zoo results file with rows for the study (``read_results(required=True)``): a missing,
empty or unrelated file is exit 2 with one line and the existing report files are left untouched; so is a study with
a failed run (exit 1). Damaged lines are reported (``file:line``) and skipped.

The seed varies the model (initialisation, dropout, shuffle), not the world: a synthetic world is generated from its
own seed (``synthetic.seed`` of its dataset block), fixed here.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from model_zoo.config import load_keyed_config
from model_zoo.errors import ConfigError, DataError
from model_zoo.fileio import atomic_write_figure, atomic_write_text

__all__ = ["SEED_CONFIG_KEYS", "SUMMARY_COLUMNS", "load_seed_config", "seed_jobs", "seed_rows", "summarize",
           "render_markdown", "render_csv", "render_png", "write_report", "main"]

SEED_CONFIG_KEYS = ("expids", "seeds", "reference", "gpus", "threads", "config")
SUMMARY_COLUMNS = ("expid", "model", "dataset_id", "seeds", "n", "valid_AUC_mean", "valid_AUC_std", "valid_AUC_min",
                   "valid_AUC_max", "test_AUC_mean", "test_AUC_std", "diff_valid_AUC_mean", "diff_valid_AUC_std",
                   "diff_test_AUC_mean", "diff_test_AUC_std", "wins_valid", "paired_n", "valid_cold_AUC_mean",
                   "devices", "oracle_valid_AUC")


def load_seed_config(path: str | os.PathLike) -> Dict[str, Any]:
    """Read and check a seed-study config (keys ``SEED_CONFIG_KEYS``): as given, else the zoo's shipped one."""
    cfg = load_keyed_config(path, "seed config", SEED_CONFIG_KEYS)
    for key in ("expids", "seeds"):
        if not isinstance(cfg.get(key), list) or not cfg[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty list, got {cfg.get(key)!r}")
    if len(set(cfg["seeds"])) != len(cfg["seeds"]) or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in cfg["seeds"]):
        raise ConfigError(f"{path}: 'seeds' must be distinct integers >= 0, got {cfg['seeds']!r}")
    cfg.setdefault("reference", cfg["expids"][0])
    if cfg["reference"] not in cfg["expids"]:
        raise ConfigError(f"{path}: reference {cfg['reference']!r} is not one of the expids {cfg['expids']}")
    cfg.setdefault("gpus", [-1])
    cfg.setdefault("threads", 1)
    if isinstance(cfg["threads"], bool) or not isinstance(cfg["threads"], int) or cfg["threads"] < 1:
        raise ConfigError(f"{path}: 'threads' must be an integer >= 1, got {cfg['threads']!r}")
    return cfg


def seed_jobs(expids: Sequence[str], seeds: Sequence[int]) -> List[Any]:
    """One tuner job per expid x seed: the expid with ``--set seed=N``."""
    from model_zoo.apps.tuner.run import Job

    return [Job.of(expid, {"seed": seed}) for expid in expids for seed in seeds]


def seed_rows(results_rows: Sequence[Mapping[str, str]], expid: str, seeds: Sequence[int]) -> Dict[int, Dict[str, str]]:
    """{seed: the latest result row of ``expid`` run with overrides exactly ``{"seed": seed}``}."""
    by_seed: Dict[int, Dict[str, str]] = {}
    for row in results_rows:  # the CSV is in run order: a later row replaces an earlier one
        if row.get("expid") != expid:
            continue
        try:
            overrides = json.loads(row.get("overrides") or "{}")
        except ValueError:
            continue
        if isinstance(overrides, dict) and set(overrides) == {"seed"} and overrides["seed"] in seeds:
            by_seed[int(overrides["seed"])] = dict(row)
    return by_seed


def _float(value: Any) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _stats(values: Sequence[float]) -> Dict[str, Optional[float]]:
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values) if values else None, "max": max(values) if values else None}


def summarize(runs: Mapping[str, Mapping[int, Mapping[str, Any]]], reference: str) -> List[Dict[str, Any]]:
    """One summary row per expid from ``{expid: {seed: result row}}``; differences are paired with ``reference``.

    Example: valid AUCs {1: 0.80, 2: 0.82} for ``A`` and {1: 0.79, 2: 0.80} for the reference ``R`` give A a mean of
    0.81, a standard deviation of 0.0141 and a paired difference of +0.015 (std 0.0071), 2 wins out of 2. A missing
    test AUC (hidden test labels) or cold AUC (one class among cold rows) is left out of its statistics.
    """
    ref = runs.get(reference, {})

    def metric(rows: Mapping[int, Mapping[str, Any]], seed: int, key: str) -> Optional[float]:
        return _float(rows[seed].get(key))

    table = []
    for expid, by_seed in runs.items():
        seeds = sorted(by_seed)
        valid = [metric(by_seed, s, "valid_AUC") for s in seeds]
        test = [v for v in (metric(by_seed, s, "test_AUC") for s in seeds) if v is not None]
        cold = [v for v in (metric(by_seed, s, "valid_cold_AUC") for s in seeds) if v is not None]
        shared = [s for s in seeds if s in ref]
        diff_valid = [metric(by_seed, s, "valid_AUC") - metric(ref, s, "valid_AUC") for s in shared]
        diff_test = [metric(by_seed, s, "test_AUC") - metric(ref, s, "test_AUC") for s in shared
                     if metric(by_seed, s, "test_AUC") is not None and metric(ref, s, "test_AUC") is not None]
        first = by_seed[seeds[0]] if seeds else {}
        v, t, dv, dt = _stats(valid), _stats(test), _stats(diff_valid), _stats(diff_test)
        table.append({
            "expid": expid, "model": first.get("model", ""), "dataset_id": first.get("dataset_id", ""),
            "seeds": " ".join(str(s) for s in seeds), "n": len(seeds),
            "valid_AUC_mean": v["mean"], "valid_AUC_std": v["std"], "valid_AUC_min": v["min"],
            "valid_AUC_max": v["max"], "test_AUC_mean": t["mean"], "test_AUC_std": t["std"],
            "diff_valid_AUC_mean": dv["mean"], "diff_valid_AUC_std": dv["std"],
            "diff_test_AUC_mean": dt["mean"], "diff_test_AUC_std": dt["std"],
            "wins_valid": sum(d > 0 for d in diff_valid), "paired_n": len(shared),
            "valid_cold_AUC_mean": _stats(cold)["mean"],
            "devices": " ".join(sorted({str(by_seed[s].get("device") or "") for s in seeds} - {""})),
            "oracle_valid_AUC": _float(first.get("oracle_valid_AUC")),
            "valid_AUCs": valid,
        })
    return table


def _fmt(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _synthetic(table: Sequence[Mapping[str, Any]]) -> bool:
    from model_zoo.apps.leaderboard import synthetic_dataset_ids

    declared = synthetic_dataset_ids()
    return any(r["oracle_valid_AUC"] is not None or r["dataset_id"] in declared for r in table)


def render_markdown(table: Sequence[Mapping[str, Any]], reference: str, command: str,
                    synthetic: bool = False) -> str:
    datasets = sorted({r["dataset_id"] for r in table})
    label = " (synthetic world: not MicroLens results)" if synthetic else ""
    lines = ["# Multi-seed comparison", "",
             f"Generated by `{command}`. Do not edit by hand: rerun the command. Datasets: "
             + ", ".join(f"`{d}`" for d in datasets) + f"{label}. The seed varies initialisation, dropout and "
             "shuffle order; the data is fixed. Differences are paired by seed against "
             f"`{reference}`. Cold valid AUC: valid rows whose target item never occurs in train.", "",
             "| expid | seeds | valid AUC mean ± std | min - max | test AUC mean ± std | "
             f"valid diff vs `{reference}` | test diff | wins (valid) | cold valid AUC mean | device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        is_ref = r["expid"] == reference
        diff = "reference" if is_ref else f"{_fmt(r['diff_valid_AUC_mean'], True)} ± {_fmt(r['diff_valid_AUC_std'])}"
        tdiff = "" if is_ref else f"{_fmt(r['diff_test_AUC_mean'], True)} ± {_fmt(r['diff_test_AUC_std'])}"
        wins = "" if is_ref else f"{r['wins_valid']}/{r['paired_n']}"
        lines.append(f"| `{r['expid']}` | {r['n']} | {_fmt(r['valid_AUC_mean'])} ± {_fmt(r['valid_AUC_std'])} | "
                     f"{_fmt(r['valid_AUC_min'])} - {_fmt(r['valid_AUC_max'])} | "
                     f"{_fmt(r['test_AUC_mean'])} ± {_fmt(r['test_AUC_std'])} | {diff} | {tdiff} | {wins} | "
                     f"{_fmt(r['valid_cold_AUC_mean'])} | {r['devices'] or '-'} |")
    oracle = [r["oracle_valid_AUC"] for r in table if r["oracle_valid_AUC"] is not None]
    if oracle:
        lines += ["", f"Oracle valid AUC (true click probabilities): {max(oracle):.4f}."]
    return "\n".join(lines) + "\n"


def render_csv(table: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def render_png(table: Sequence[Mapping[str, Any]], path: Path, synthetic: bool = False) -> None:
    """Each seed's valid AUC as a dot, the mean as a bar with ± std, the oracle valid AUC as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(table) + 2), 3.6))
    means = [r["valid_AUC_mean"] or 0.0 for r in table]
    ax.bar(range(len(table)), means, yerr=[r["valid_AUC_std"] or 0.0 for r in table], color="#4C72B0", alpha=0.35,
           capsize=4)
    for i, r in enumerate(table):
        ax.scatter([i] * len(r["valid_AUCs"]), r["valid_AUCs"], color="#4C72B0", s=14, zorder=3)
    values = [v for r in table for v in r["valid_AUCs"]]
    oracle = [r["oracle_valid_AUC"] for r in table if r["oracle_valid_AUC"] is not None]
    if oracle:
        ax.axhline(max(oracle), color="#C44E52", linestyle="--", linewidth=1.2)
        ax.text(len(table) - 0.5, max(oracle), f"oracle valid AUC {max(oracle):.4f}", color="#C44E52", fontsize=8,
                ha="right", va="bottom")
    if values:
        ax.set_ylim(min(values) - 0.01, max(values + oracle) + 0.01)
    ax.set_xticks(range(len(table)), [r["expid"] for r in table], fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("valid AUC")
    datasets = ", ".join(sorted({r["dataset_id"] for r in table}))
    label = " (synthetic world, not MicroLens results)" if synthetic else ""
    ax.set_title(f"{datasets}{label}: valid AUC over {max([r['n'] for r in table] or [0])} seeds "
                 "(dots: seeds, bars: mean ± std)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_write_figure(path, fig)


def write_report(results: str | os.PathLike, out: str | os.PathLike, cfg: Mapping[str, Any],
                 command: str) -> Tuple[Dict[str, Path], Dict[str, List[int]], List[str]]:
    """Write ``<out>.{md,csv,png}`` from the results file; returns (paths, {expid: missing seeds}, warnings).

    Raises DataError, before writing anything, when the file is missing, empty or unrelated, or has no row of the
    study.
    """
    from model_zoo.apps.results import read_results

    table_in = read_results(results, required=True)
    runs = {expid: seed_rows(table_in.rows, expid, cfg["seeds"]) for expid in cfg["expids"]}
    missing = {e: sorted(set(cfg["seeds"]) - set(r)) for e, r in runs.items() if set(r) != set(cfg["seeds"])}
    table = summarize({e: r for e, r in runs.items() if r}, cfg["reference"])
    if not table:
        raise DataError(f"results {results}: no row of the study (expids {', '.join(cfg['expids'])} run with "
                        f"--set seed=N for N in {cfg['seeds']}; {len(table_in.rows)} rows read); run without "
                        f"--no-train; the report files were not touched")
    synthetic = _synthetic(table)
    out = Path(out)
    paths = {ext: out.with_name(out.name + f".{ext}") for ext in ("md", "csv", "png")}
    atomic_write_text(paths["md"], render_markdown(table, cfg["reference"], command, synthetic))
    atomic_write_text(paths["csv"], render_csv(table))
    render_png(table, paths["png"], synthetic)
    return paths, missing, table_in.warnings()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="seed-study config, e.g. config/seeds.yaml")
    parser.add_argument("--output-dir", default=None,
                        help="work dir of the runs and default outputs (default: the current directory)")
    parser.add_argument("--results", default=None, help="results CSV (default <output-dir>/results/results.csv)")
    parser.add_argument("--out", default=None,
                        help="output prefix (default <output-dir>/seeds; the committed one: benchmarks/seeds)")
    parser.add_argument("--gpu", type=int, nargs="+", default=None,
                        help="one worker per entry, -1 = CPU (default: the config's gpus)")
    parser.add_argument("--config", default=None,
                        help="a --config dir searched first for the expids (wins over the study config's 'config')")
    parser.add_argument("--no-train", action="store_true", help="only report the runs already in the results CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    from model_zoo.apps.tuner.run import APP_STOPS, app_exit, plan_jobs, run_jobs, sigterm_raises

    args = build_parser().parse_args(argv)
    work = Path(args.output_dir).expanduser().resolve() if args.output_dir else Path.cwd()
    results = Path(args.results).expanduser() if args.results else work / "results" / "results.csv"
    out = Path(args.out).expanduser() if args.out else work / "seeds"
    failed: List[str] = []
    try:
        with sigterm_raises():
            cfg = load_seed_config(args.run)
            config = args.config or cfg.get("config")
            jobs = seed_jobs(cfg["expids"], cfg["seeds"])
            if args.no_train:
                plan_jobs(jobs, str(Path(config).resolve()) if config else None, work)  # unknown expids: exit 2
            else:
                report = run_jobs(jobs, config_dir=config, gpus=args.gpu or cfg["gpus"], output_dir=work,
                                  results=results, threads=cfg["threads"], progress=not args.quiet,
                                  name="seed study")
                print(report.text(), file=sys.stderr if report.failed else sys.stdout, flush=True)
                failed = [o.label for o in report.failed]
                if failed:
                    return report.exit_code  # a partial study would replace a complete report: nothing written
            command = f"python -m model_zoo.apps.seeds --run {args.run}"
            paths, missing, warnings = write_report(results, out, cfg, command)
    except APP_STOPS as exc:
        return app_exit(exc, "seed study")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(paths["md"].read_text(encoding="utf-8"))
    if missing:
        print(f"missing seeds (no row in {results}): {missing}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
