"""Multi-seed comparison: the same expids trained under several seeds, as mean ± std and paired differences.

    python -m model_zoo.seeds --run config/seeds.yaml [--gpus -1 -1]   # run what is missing, then report
    python -m model_zoo.seeds --run config/seeds.yaml --no-train        # report from the results CSV only

A single-seed table cannot tell a 0.002 AUC gap from noise. For every expid of the config, a tuner file varying only
``seed`` is expanded and run through the tuner (``model_zoo.tuner``: expids ``<expid>_<NNN>_<hash>``, one result row
each in the results CSV, finished runs skipped). The report has, per expid, the number of seeds, mean, sample standard
deviation, min and max of valid and test AUC, and, against the ``reference`` expid, the **paired** difference over the
seeds both ran (same seed = same initialisation stream and shuffle order for both, the data fixed): its mean, its
standard deviation and how many seeds the expid won. Written to ``<out>.md``, ``<out>.csv`` and ``<out>.png`` (each
seed's valid AUC as a dot, the mean as a bar, the oracle AUC as a dashed line), atomically.

The seed varies the model (initialisation, dropout, shuffle), not the world: a synthetic world is generated from its
own seed (``synthetic.seed`` in config/dataset_config.yaml), fixed here.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from model_zoo.config import REPO_ROOT, load_keyed_config, load_params
from model_zoo.errors import ConfigError, ZooError
from model_zoo.fileio import atomic_write, atomic_write_text

__all__ = ["SEED_CONFIG_KEYS", "load_seed_config", "expand_seeds", "seed_rows", "summarize", "render_markdown",
           "render_csv", "render_png", "main"]

DEFAULT_RESULTS = REPO_ROOT / "results" / "results.csv"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "seeds"
SEED_CONFIG_KEYS = ("expids", "seeds", "reference", "gpus", "threads", "config")
SUMMARY_COLUMNS = ("expid", "model", "dataset_id", "seeds", "n", "valid_AUC_mean", "valid_AUC_std", "valid_AUC_min",
                   "valid_AUC_max", "test_AUC_mean", "test_AUC_std", "diff_valid_AUC_mean", "diff_valid_AUC_std",
                   "diff_test_AUC_mean", "diff_test_AUC_std", "wins_valid", "paired_n", "oracle_valid_AUC")


def load_seed_config(path: str | os.PathLike) -> Dict[str, Any]:
    """Read and check a seed-study config (keys ``SEED_CONFIG_KEYS``)."""
    cfg = load_keyed_config(path, "seed config", SEED_CONFIG_KEYS)
    for key in ("expids", "seeds"):
        if not isinstance(cfg.get(key), list) or not cfg[key]:
            raise ConfigError(f"{path}: '{key}' must be a non-empty list, got {cfg.get(key)!r}")
    if len(set(cfg["seeds"])) != len(cfg["seeds"]) or not all(isinstance(s, int) for s in cfg["seeds"]):
        raise ConfigError(f"{path}: 'seeds' must be distinct integers, got {cfg['seeds']!r}")
    cfg.setdefault("reference", cfg["expids"][0])
    if cfg["reference"] not in cfg["expids"]:
        raise ConfigError(f"{path}: reference {cfg['reference']!r} is not one of the expids {cfg['expids']}")
    cfg.setdefault("gpus", [-1])
    cfg.setdefault("threads", 1)
    if not isinstance(cfg["threads"], int) or cfg["threads"] < 1:
        raise ConfigError(f"{path}: 'threads' must be an integer >= 1, got {cfg['threads']!r}")
    return cfg


def expand_seeds(expid: str, seeds: Sequence[int], workdir: Path,
                 config: Optional[str | os.PathLike] = None) -> Tuple[Path, Dict[str, int]]:
    """Expand ``expid`` (looked up in ``config`` first, like the runner's ``--config``) over ``seeds`` with the
    tuner; returns the expanded config dir and {expanded expid: seed}."""
    from model_zoo.tuner import expand, list_tuner_expids

    load_params(expid, config)  # an unknown expid fails here, with the runner's did-you-mean
    tuner = {"base_expid": expid, "tuner_space": {"seed": list(seeds)}}
    if config:
        tuner["base_config"] = str(Path(config).resolve())
    tuner_file = workdir / f"{expid}_seeds.yaml"
    atomic_write_text(tuner_file, yaml.safe_dump(tuner))
    config_dir = expand(tuner_file, workdir)
    return config_dir, {e: int(load_params(e, config_dir)["seed"]) for e in list_tuner_expids(config_dir)}


def seed_rows(results_rows: Sequence[Mapping[str, str]], expanded: Mapping[str, int]) -> Dict[int, Dict[str, str]]:
    """{seed: the latest result row} of the expanded expids."""
    by_seed: Dict[int, Dict[str, str]] = {}
    for row in results_rows:  # the CSV is in run order: a later row of an expid replaces an earlier one
        if row.get("expid") in expanded:
            by_seed[expanded[row["expid"]]] = dict(row)
    return by_seed


def _stats(values: Sequence[float]) -> Dict[str, Optional[float]]:
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values) if values else None, "max": max(values) if values else None}


def summarize(runs: Mapping[str, Mapping[int, Mapping[str, Any]]], reference: str) -> List[Dict[str, Any]]:
    """One summary row per expid from ``{expid: {seed: result row}}``; differences are paired with ``reference``.

    Example: valid AUCs {1: 0.80, 2: 0.82} for ``A`` and {1: 0.79, 2: 0.80} for the reference ``R`` give A a mean of
    0.81, a standard deviation of 0.0141 and a paired difference of +0.015 (std 0.0071), 2 wins out of 2.
    """
    ref = runs.get(reference, {})
    table = []
    for expid, by_seed in runs.items():
        seeds = sorted(by_seed)
        valid = [float(by_seed[s]["valid_AUC"]) for s in seeds]
        test = [float(by_seed[s]["test_AUC"]) for s in seeds]
        shared = [s for s in seeds if s in ref]
        diff_valid = [float(by_seed[s]["valid_AUC"]) - float(ref[s]["valid_AUC"]) for s in shared]
        diff_test = [float(by_seed[s]["test_AUC"]) - float(ref[s]["test_AUC"]) for s in shared]
        first = by_seed[seeds[0]] if seeds else {}
        v, t, dv, dt = _stats(valid), _stats(test), _stats(diff_valid), _stats(diff_test)
        oracle = first.get("oracle_valid_AUC")
        table.append({
            "expid": expid, "model": first.get("model", ""), "dataset_id": first.get("dataset_id", ""),
            "seeds": " ".join(str(s) for s in seeds), "n": len(seeds),
            "valid_AUC_mean": v["mean"], "valid_AUC_std": v["std"], "valid_AUC_min": v["min"],
            "valid_AUC_max": v["max"], "test_AUC_mean": t["mean"], "test_AUC_std": t["std"],
            "diff_valid_AUC_mean": dv["mean"], "diff_valid_AUC_std": dv["std"],
            "diff_test_AUC_mean": dt["mean"], "diff_test_AUC_std": dt["std"],
            "wins_valid": sum(d > 0 for d in diff_valid), "paired_n": len(shared),
            "oracle_valid_AUC": float(oracle) if oracle not in (None, "") else None,
            "valid_AUCs": valid,
        })
    return table


def _fmt(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def render_markdown(table: Sequence[Mapping[str, Any]], reference: str, command: str) -> str:
    datasets = sorted({r["dataset_id"] for r in table})
    lines = ["# Multi-seed comparison", "",
             f"Generated by `{command}`. Do not edit by hand: rerun the command. Datasets: "
             + ", ".join(f"`{d}`" for d in datasets) + " (a `MicroLens_synth_*` id is the synthetic world: not "
             "MicroLens results). The seed varies initialisation, dropout and shuffle order; the data is fixed. "
             f"Differences are paired by seed against `{reference}`.", "",
             "| expid | seeds | valid AUC mean ± std | min - max | test AUC mean ± std | "
             f"valid diff vs `{reference}` | test diff | wins (valid) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table:
        is_ref = r["expid"] == reference
        diff = "reference" if is_ref else f"{_fmt(r['diff_valid_AUC_mean'], True)} ± {_fmt(r['diff_valid_AUC_std'])}"
        tdiff = "" if is_ref else f"{_fmt(r['diff_test_AUC_mean'], True)} ± {_fmt(r['diff_test_AUC_std'])}"
        wins = "" if is_ref else f"{r['wins_valid']}/{r['paired_n']}"
        lines.append(f"| `{r['expid']}` | {r['n']} | {_fmt(r['valid_AUC_mean'])} ± {_fmt(r['valid_AUC_std'])} | "
                     f"{_fmt(r['valid_AUC_min'])} - {_fmt(r['valid_AUC_max'])} | "
                     f"{_fmt(r['test_AUC_mean'])} ± {_fmt(r['test_AUC_std'])} | {diff} | {tdiff} | {wins} |")
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


def render_png(table: Sequence[Mapping[str, Any]], path: Path) -> None:
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
    synthetic = " (synthetic world, not MicroLens results)" if "MicroLens_synth" in datasets else ""
    ax.set_title(f"{datasets}{synthetic}: valid AUC over {max([r['n'] for r in table] or [0])} seeds "
                 "(dots: seeds, bars: mean ± std)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="seed-study config, e.g. config/seeds.yaml")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help="results CSV (default results/results.csv)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output prefix (default benchmarks/seeds)")
    parser.add_argument("--workdir", default=None, help="expanded configs and logs (default <results dir>/seeds)")
    parser.add_argument("--gpus", type=int, nargs="+", default=None, help="one worker per entry (-1 = CPU)")
    parser.add_argument("--config", default=None, help="a --config dir searched first for the expids (wins over "
                                                         "the study config's 'config')")
    parser.add_argument("--no-train", action="store_true", help="only report the runs already in the results CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    from model_zoo.tuner import read_result_rows, run_expids

    try:
        cfg = load_seed_config(args.run)
        results = Path(args.results).resolve()
        workdir = Path(args.workdir).resolve() if args.workdir else results.parent / "seeds"
        config = args.config or cfg.get("config")
        expanded = {expid: expand_seeds(expid, cfg["seeds"], workdir, config) for expid in cfg["expids"]}
        failed: List[str] = []
        if not args.no_train:
            for expid, (config_dir, runs) in expanded.items():
                report = run_expids(sorted(runs), config_dir, args.gpus or cfg["gpus"], results,
                                    threads=cfg["threads"], log_dir=config_dir / "logs", progress=not args.quiet)
                failed += [o.expid for o in report.failed]
        rows = read_result_rows(results) if results.is_file() else []
        runs_by_expid = {expid: seed_rows(rows, runs) for expid, (_, runs) in expanded.items()}
        missing = {e: sorted(set(cfg["seeds"]) - set(r)) for e, r in runs_by_expid.items() if set(r) != set(cfg["seeds"])}
        table = summarize({e: r for e, r in runs_by_expid.items() if r}, cfg["reference"])
        if not table:
            raise ConfigError(f"{results}: no result rows for any expid of {args.run}; run without --no-train")
        out = Path(args.out)
        run_path = Path(args.run).resolve()
        shown = run_path.relative_to(REPO_ROOT) if run_path.is_relative_to(REPO_ROOT) else args.run
        command = f"python -m model_zoo.seeds --run {shown}"
        atomic_write_text(out.with_name(out.name + ".md"), render_markdown(table, cfg["reference"], command))
        atomic_write_text(out.with_name(out.name + ".csv"), render_csv(table))
        render_png(table, out.with_name(out.name + ".png"))
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(table, cfg["reference"], command))
    if missing:
        print(f"missing seeds (not in {results}): {missing}", file=sys.stderr)
    if failed:
        print(f"failed runs: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
