"""Leaderboard: our result rows as Markdown, CSV and a PNG, with the published figures in their own section.

    python -m model_zoo.leaderboard                                  # results/results.csv -> benchmarks/leaderboard.*
    python -m model_zoo.leaderboard --run config/leaderboard.yaml    # first run the listed expids that are missing
    python -m model_zoo.leaderboard --select best --filter 'DMF_*'   # best row per expid, DMF expids only

One row per expid: by default its **latest** row (the current code's result; re-running an expid replaces it),
or with ``--select best`` its row with the highest valid AUC (an optimistic pick across reruns, labelled as such).
Rows are grouped by dataset id; synthetic worlds are labelled synthetic everywhere (their numbers are never MicroLens
numbers) and carry the oracle AUC (true click probability vs label), the ceiling a model can reach there.
The published figures (challenge baseline, Zhou's V1-V4, the top teams) are constants from
shared/reference/microlens_mmctr.md sections 7-8, shown only in the Markdown's "published, not re-run here" section,
never in the CSV or the plot. Every file is written atomically (temp file, then rename).
"""
from __future__ import annotations

import argparse
import fnmatch
import io
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from model_zoo.config import CONFIG_DIR, REPO_ROOT, load_keyed_config, resolve_path
from model_zoo.errors import ConfigError, ZooError
from model_zoo.fileio import atomic_write

__all__ = ["LEADERBOARD_COLUMNS", "PUBLISHED", "PUBLISHED_ZHOU", "select_rows", "leaderboard_rows",
           "render_markdown", "render_csv", "render_png", "write_leaderboard", "main"]

DEFAULT_RESULTS = REPO_ROOT / "results" / "results.csv"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "leaderboard"
SELECT_MODES = ("latest", "best")
LEADERBOARD_COLUMNS = (
    "dataset_id", "synthetic", "model", "embedding_variant", "expid", "valid_AUC", "valid_logloss", "test_AUC",
    "test_logloss", "num_params", "train_seconds", "oracle_valid_AUC", "oracle_test_AUC", "seed", "timestamp",
)


@dataclass(frozen=True)
class PublishedResult:
    """A figure reported by others, quoted as published (valid = the 10k valid set, test = Codabench hidden test)."""

    team: str
    model: str
    valid_auc: Optional[str]
    test_auc: Optional[str]
    source: str


# shared/reference/microlens_mmctr.md section 8 ("Leaderboard (published figures, not re-run)").
PUBLISHED = (
    PublishedResult("FuxiCTR challenge baseline", "DIN", "0.8655", "0.8797", "reczoo/WWW2025_MMCTR_Challenge README"),
    PublishedResult("momo (1st)", "Transformer_DCN", "0.976603", "0.9839", "repo README, arXiv 2505.03543"),
    PublishedResult("momo, RQ variant (untuned)", "Transformer_DCN_Quant", None, "0.9814", "repo"),
    PublishedResult("DISCO.AHU (2nd)", "QIN_variety_v9", "0.9701 / 0.9695 (two logs)", "0.9798", "repo logs"),
    PublishedResult("jzzx.NTU (3rd)", "DIN_DCN + Jina-CLIP-v2", None, None, "ZiaoGao/MMCTR"),
    PublishedResult("zhou123 (Task-2 model winner)", "DIN + MH target attn + SENet, V4", "0.9306", None,
                    "arXiv 2504.18961 Table 1"),
    PublishedResult("delorean (Task-1 winner)", "DIN + Qwen2.5-VL-7B embeddings", None, None, "repo"),
    PublishedResult("tolive666 (inferred: Tol1ve/MM-CTR-MMCTRers)", "DIN + RMSNorm cross-attn + aux loss",
                    "0.986201", "0.9892 (third-party)", "student README"),
    PublishedResult("jiyuqian (inferred: Gavin113/WWW2025_MMCTR)", "DIN_att6", "0.985333", "0.9887", "repo README"),
    PublishedResult("QVQ (inferred: Hsyy04/WWW25MMCTR)", "VQ-VAE codes -> DIN", "0.984437", "0.9885 (third-party)",
                    "student README"),
)
# Zhou, "Rethinking Feature Fusion in Multimodal CTR Prediction" (arXiv 2504.18961), Table 1: valid AUC per variant.
PUBLISHED_ZHOU = (
    ("V1", "PCA(BERT)", "0.9247"),
    ("V2", "PCA(CLIP)", "0.9231"),
    ("V3", "PCA(BERT+CLIP), PCA of the concatenation (= the baseline item_emb_d128)", "0.9124"),
    ("V4", "PCA(BERT) ‖ PCA(CLIP)", "0.9306"),
)


# ---------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------
def _float(value: Any) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def select_rows(rows: Sequence[Mapping[str, str]], select: str = "latest") -> List[Dict[str, str]]:
    """One row per expid: the last one in file order (``latest``) or the one with the best valid AUC (``best``)."""
    if select not in SELECT_MODES:
        raise ConfigError(f"select={select!r}; expected one of {SELECT_MODES}")
    chosen: Dict[str, Dict[str, str]] = {}
    for row in rows:
        expid = row.get("expid")
        if not expid or _float(row.get("valid_AUC")) is None:
            continue
        if select == "latest" or expid not in chosen or \
                _float(row["valid_AUC"]) > _float(chosen[expid]["valid_AUC"]):
            chosen[expid] = dict(row)
    return list(chosen.values())


def synthetic_dataset_ids() -> set:
    """Dataset ids declared with a ``synthetic:`` block in config/dataset_config.yaml."""
    path = CONFIG_DIR / "dataset_config.yaml"
    blocks = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    return {name for name, block in blocks.items() if isinstance(block, dict) and block.get("synthetic")}


def _is_synthetic(row: Mapping[str, str], declared: set) -> bool:
    # A row with an oracle AUC came from a generated world, whatever its dataset id is called.
    return row.get("dataset_id") in declared or _float(row.get("oracle_valid_AUC")) is not None


def leaderboard_rows(rows: Sequence[Mapping[str, str]], select: str = "latest",
                     expid_filter: Optional[str] = None) -> List[Dict[str, Any]]:
    """The leaderboard table: selected rows, real datasets first, then by dataset id and valid AUC (best first)."""
    declared = synthetic_dataset_ids()
    table = []
    for row in select_rows(rows, select):
        if expid_filter and not fnmatch.fnmatchcase(row["expid"], expid_filter):
            continue
        entry: Dict[str, Any] = {col: row.get(col, "") for col in LEADERBOARD_COLUMNS}
        entry["synthetic"] = "yes" if _is_synthetic(row, declared) else "no"
        entry["embedding_variant"] = row.get("embedding_variant") or "V3"  # rows from before the column existed
        table.append(entry)
    table.sort(key=lambda r: (r["synthetic"] == "yes", r["dataset_id"], -(_float(r["valid_AUC"]) or 0.0),
                              r["expid"]))
    return table


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------
def _fmt(value: Any, kind: str) -> str:
    number = _float(value)
    if number is None:
        return "n/a"
    if kind == "auc":
        return f"{number:.6f}"
    if kind == "int":
        return f"{int(number):,}"
    return f"{number:.1f}"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")  # a literal pipe would split a Markdown table cell


def _dataset_title(dataset_id: str, synthetic: bool) -> str:
    return (f"{dataset_id} (synthetic world: not MicroLens results)" if synthetic
            else f"{dataset_id} (real data)")


def render_markdown(table: Sequence[Mapping[str, Any]], *, select: str, results: str,
                    command: str = "python -m model_zoo.leaderboard") -> str:
    lines = [
        "# Leaderboard",
        "",
        f"Generated by `{command}` from `{results}` ({len(table)} expids; one row per expid: "
        + ("its **latest** row" if select == "latest" else "its row with the **best valid AUC** (optimistic)")
        + "). Do not edit by hand: rerun the command.",
        "",
        "## Our runs",
        "",
    ]
    if not table:
        lines += ["No result rows yet: run `python run_expid.py --expid <expid>` or a sweep first.", ""]
    datasets = list(dict.fromkeys(r["dataset_id"] for r in table))
    for dataset_id in datasets:
        group = [r for r in table if r["dataset_id"] == dataset_id]
        synthetic = group[0]["synthetic"] == "yes"
        lines += [f"### {_dataset_title(dataset_id, synthetic)}", ""]
        header = ["model", "embedding variant", "expid", "valid AUC", "valid logloss", "test AUC", "test logloss",
                  "params", "train s"]
        if synthetic:
            header += ["oracle valid AUC", "oracle test AUC"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in group:
            cells = [r["model"], r["embedding_variant"], f"`{r['expid']}`", _fmt(r["valid_AUC"], "auc"),
                     _fmt(r["valid_logloss"], "auc"), _fmt(r["test_AUC"], "auc"), _fmt(r["test_logloss"], "auc"),
                     _fmt(r["num_params"], "int"), _fmt(r["train_seconds"], "s")]
            if synthetic:
                cells += [_fmt(r["oracle_valid_AUC"], "auc"), _fmt(r["oracle_test_AUC"], "auc")]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    lines += [
        "## Published figures (published, not re-run here)",
        "",
        "Quoted from the challenge and the teams' own reports (shared/reference/microlens_mmctr.md sections 7-8); "
        "valid = the 10k MicroLens_1M_x1 valid set, test = the Codabench hidden test set. They are not comparable "
        "with the synthetic rows above and none of them was reproduced by this repository.",
        "",
        "| team | model | valid AUC | test AUC | source |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in (p.team, p.model, p.valid_auc or "unknown", p.test_auc or "unknown",
                                                   p.source)) + " |" for p in PUBLISHED]
    lines += [
        "",
        "Zhou, *Rethinking Feature Fusion in Multimodal CTR Prediction* (arXiv 2504.18961), Table 1, valid AUC "
        "(as given in the project's seed report; its training budget is unknown and below the other teams', "
        "so do not compare across):",
        "",
        "| variant | item embedding | valid AUC |",
        "|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in PUBLISHED_ZHOU]
    return "\n".join(lines) + "\n"


def render_csv(table: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: row.get(k, "") for k in LEADERBOARD_COLUMNS})
    return buf.getvalue()


def render_png(table: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Valid AUC bars per model x embedding variant, one panel per dataset, oracle valid AUC as a dashed line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset_id"] for r in table))
    fig, axes = plt.subplots(len(datasets) or 1, 1, squeeze=False,
                             figsize=(max(6.0, 0.9 * max([len([r for r in table if r["dataset_id"] == d])
                                                          for d in datasets] or [1]) + 2), 3.2 * (len(datasets) or 1)))
    if not datasets:
        axes[0][0].text(0.5, 0.5, "no result rows yet", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax, dataset_id in zip(axes[:, 0], datasets):
        group = [r for r in table if r["dataset_id"] == dataset_id]
        keys = [f"{r['model']}\n{r['embedding_variant']}" for r in group]
        if len(set(keys)) < len(keys):  # several expids of one model x variant (a sweep): label by expid
            keys = [f"{r['expid']} ({r['embedding_variant']})" for r in group]
        values = [_float(r["valid_AUC"]) or 0.0 for r in group]
        bars = ax.bar(range(len(group)), values, color="#4C72B0")
        ax.bar_label(bars, labels=[f"{v:.4f}" for v in values], fontsize=7, padding=2)
        oracle = [_float(r["oracle_valid_AUC"]) for r in group if _float(r["oracle_valid_AUC"]) is not None]
        floor = min(values + oracle)
        if oracle:
            ax.axhline(max(oracle), color="#C44E52", linestyle="--", linewidth=1.2)
            ax.text(len(group) - 0.5, max(oracle), f"oracle valid AUC {max(oracle):.4f}", color="#C44E52",
                    fontsize=8, ha="right", va="bottom")
        slanted = max(len(k.split("\n")[0]) for k in keys) > 14 or len(group) > 6
        ax.set_xticks(range(len(group)), keys, fontsize=7, rotation=25 if slanted else 0,
                      ha="right" if slanted else "center")
        ax.set_ylim(max(0.0, min(0.5, floor - 0.02)), min(1.0, max(values + oracle) + 0.04))
        ax.set_ylabel("valid AUC")
        ax.set_title(_dataset_title(dataset_id, group[0]["synthetic"] == "yes"), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=110)

    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)




# ---------------------------------------------------------------------------------------------------------------
# Leaderboard config (--run) and entry points
# ---------------------------------------------------------------------------------------------------------------
RUN_CONFIG_KEYS = ("expids", "config", "gpus", "only_listed", "select")


def load_run_config(path: str | os.PathLike) -> Dict[str, Any]:
    cfg = load_keyed_config(path, "leaderboard config", RUN_CONFIG_KEYS)
    if not isinstance(cfg.get("expids"), list) or not cfg["expids"]:
        raise ConfigError(f"{path}: 'expids' must be a non-empty list")
    return cfg


def write_leaderboard(results: str | os.PathLike = DEFAULT_RESULTS, out: str | os.PathLike = DEFAULT_OUT, *,
                      select: str = "latest", expid_filter: Optional[str] = None,
                      only_expids: Optional[Sequence[str]] = None,
                      command: str = "python -m model_zoo.leaderboard") -> Dict[str, Path]:
    """Write ``<out>.md``, ``<out>.csv`` and ``<out>.png`` from the results CSV; returns their paths."""
    from model_zoo.tuner import read_result_rows

    rows = read_result_rows(results)
    if only_expids is not None:
        wanted = set(only_expids)
        rows = [r for r in rows if r.get("expid") in wanted]
    table = leaderboard_rows(rows, select, expid_filter)
    out = Path(out)
    paths = {ext: out.with_name(out.name + f".{ext}") for ext in ("md", "csv", "png")}
    shown_results = os.path.relpath(results, REPO_ROOT) if str(Path(results).resolve()).startswith(
        str(REPO_ROOT)) else str(results)
    md = render_markdown(table, select=select, results=shown_results, command=command)
    atomic_write(paths["md"], lambda tmp: tmp.write_text(md, encoding="utf-8"))
    text = render_csv(table)
    atomic_write(paths["csv"], lambda tmp: tmp.write_text(text, encoding="utf-8"))
    render_png(table, paths["png"])
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Leaderboard (.md/.csv/.png) from the results CSV")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help="results CSV (default results/results.csv)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output prefix (default benchmarks/leaderboard)")
    parser.add_argument("--select", choices=SELECT_MODES, default=None,
                        help="row per expid: latest (default) or best valid AUC")
    parser.add_argument("--filter", default=None, help="only expids matching this glob, e.g. 'DMF_*'")
    parser.add_argument("--run", default=None, metavar="YAML",
                        help="leaderboard config: run its missing expids first, then show only those")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    shown = ["python -m model_zoo.leaderboard"] + (argv if argv is not None else sys.argv[1:])
    try:
        only = None
        select = args.select or "latest"
        if args.run:
            from model_zoo.tuner import run_expids

            cfg = load_run_config(args.run)
            select = args.select or cfg.get("select", "latest")
            config_dir = str(resolve_path(cfg["config"])) if cfg.get("config") else None
            report = run_expids(cfg["expids"], config_dir, cfg.get("gpus", [-1]), args.results,
                                progress=not args.quiet)
            print(report.text(), file=sys.stderr if report.failed else sys.stdout, flush=True)
            if report.failed:
                return report.exit_code
            only = cfg["expids"] if cfg.get("only_listed", True) else None
        paths = write_leaderboard(args.results, args.out, select=select, expid_filter=args.filter,
                                  only_expids=only, command=" ".join(shown))
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
