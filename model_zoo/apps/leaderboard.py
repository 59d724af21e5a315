"""Leaderboard: our result rows as Markdown, CSV and a PNG, with the published figures in their own section.

    python -m model_zoo.apps.leaderboard                                # ./results/results.csv -> ./leaderboard.*
    python -m model_zoo.apps.leaderboard --run config/leaderboard.yaml  # first run the listed expids not yet finished
    python -m model_zoo.apps.leaderboard --select best --filter 'DMF_*' # best row per expid, DMF expids only
    python -m model_zoo.apps.leaderboard --seeds benchmarks/seeds.csv   # error bars from the seed study
    python -m model_zoo.apps.leaderboard --run config/leaderboard.yaml --out benchmarks/leaderboard \
        --seeds benchmarks/seeds.csv                                    # the committed one

Paths follow the runner: ``--results`` defaults to ``<output-dir>/results/results.csv`` and ``--out`` (a prefix) to
``<output-dir>/leaderboard``; ``--output-dir`` defaults to the current directory. The results file must be a zoo
results file with rows (``model_zoo.apps.results.read_results(required=True)``): a missing, empty or unrelated file,
or a filter that keeps no row, is exit 2 with one line, and the existing leaderboard files are left untouched.
Damaged lines of the results file are reported (``file:line``) and skipped; the other rows count.

One row per expid: by default its **latest** row (the current code's result; re-running an expid replaces it), or with
``--select best`` its row with the highest valid AUC (an optimistic pick across reruns, labelled as such). Rows run
with ``--set`` overrides (e.g. the seed study's ``seed=N``; ``verbose``, and a value equal to the expid's own, do not
count) are variants of their expid and are left out unless ``--with-overrides`` (then each expid + overrides is its
own entry). Rows are grouped by dataset id; synthetic worlds (dataset blocks with a ``synthetic:`` key, or rows with
an oracle AUC) are labelled synthetic everywhere (their numbers are never MicroLens numbers) and carry the oracle AUC
(true click probability vs label), the ceiling a model can reach there. Each row also shows the valid AUC on cold-item
rows (targets never seen in train) and the device. The published figures (challenge baseline, Zhou's V1-V4, the top
teams) are constants from shared/reference/microlens_mmctr.md sections 7-8 (``PUBLISHED``, the one copy), shown only
in the Markdown's "published, not re-run here" section, never in the CSV or the plot; each names the zoo expid and
command that run its method on the real data, or why it cannot be run. The PNG is a sorted dot chart per dataset, the
axis zoomed to the data, values written beside the panel, the oracle AUC a labelled dashed line; with ``--seeds``
(seed-study CSVs of ``python -m model_zoo.apps.seeds``) an expid of the study is drawn as its seed mean ± std. Every
file is written atomically (temp file, then rename).

Exit codes: 0 written; 1 a ``--run`` expid failed (nothing written); 2 bad input (nothing written); 130/143 stopped.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from model_zoo.config import dataset_block, list_dataset_ids, load_keyed_config
from model_zoo.defaults import DATASET_EMBEDDING
from model_zoo.errors import ConfigError, DataError
from model_zoo.fileio import atomic_write_figure, atomic_write_text

__all__ = ["LEADERBOARD_COLUMNS", "PUBLISHED", "PUBLISHED_ZHOU", "ZHOU_EXPID", "PublishedResult", "published_expids",
           "drop_default_overrides", "SeedSummary", "read_seed_summaries", "auc_axis_range", "select_rows",
           "leaderboard_rows", "synthetic_dataset_ids", "render_markdown", "render_csv", "render_png", "write_leaderboard",
           "load_run_config", "main"]

SELECT_MODES = ("latest", "best")
LEADERBOARD_COLUMNS = (
    "dataset_id", "synthetic", "model", "embedding_variant", "expid", "overrides", "valid_AUC", "valid_logloss",
    "test_AUC", "test_logloss", "valid_cold_AUC", "valid_cold_rows", "num_params", "train_seconds", "device",
    "oracle_valid_AUC", "oracle_test_AUC", "seed", "timestamp",
)


RUN_COMMAND = "python run_expid.py --expid {expid} --gpu 0"  # how a published method is run on the real data


@dataclass(frozen=True)
class PublishedResult:
    """A figure reported by others, quoted as published (valid = the 10k valid set, test = Codabench hidden test),
    with how the zoo runs that method: exactly one of ``expid`` (plus ``overrides``) or ``not_runnable``.

    Attributes:
        expid: the zoo expid that runs this method on MicroLens_1M_x1 (``RUN_COMMAND``).
        overrides: ``--set key=value`` pairs added to the command (e.g. an embedding variant).
        not_runnable: why no zoo expid runs it.
        note: what the zoo's run does differently from the team's (shown next to the command).
    """

    team: str
    model: str
    valid_auc: Optional[str]
    test_auc: Optional[str]
    source: str
    expid: Optional[str] = None
    overrides: Tuple[Tuple[str, str], ...] = ()
    not_runnable: Optional[str] = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.expid is None) == (self.not_runnable is None):
            raise ValueError(f"published row {self.team!r}: give exactly one of expid={self.expid!r} and "
                             f"not_runnable={self.not_runnable!r}")

    @property
    def command(self) -> Optional[str]:
        """The command that runs this method in the zoo, or None when it is not runnable."""
        if self.expid is None:
            return None
        return RUN_COMMAND.format(expid=self.expid) + "".join(f" --set {k}={v}" for k, v in self.overrides)

    def how_to_run(self) -> str:
        """The Markdown cell: the command (and note), or "not runnable: <why>"."""
        if self.command is None:
            return f"not runnable: {self.not_runnable}"
        return f"`{self.command}`" + (f" ({self.note})" if self.note else "")


# shared/reference/microlens_mmctr.md section 8 ("Leaderboard (published figures, not re-run)"): the one copy of the
# published table; each row names the zoo expid that runs its method or why none does.
PUBLISHED = (
    PublishedResult("FuxiCTR challenge baseline", "DIN", "0.8655", "0.8797", "reczoo/WWW2025_MMCTR_Challenge README",
                    expid="DIN_MicroLens"),
    PublishedResult("momo (1st)", "Transformer_DCN", "0.976603", "0.9839", "repo README, arXiv 2505.03543",
                    expid="Transformer_DCN_MicroLens"),
    PublishedResult("momo, RQ variant (untuned)", "Transformer_DCN_Quant", None, "0.9814", "repo",
                    not_runnable="Transformer_DCN_Quant (K-means residual quantisation + top-k VQ codes) is not "
                                 "implemented in the zoo"),
    PublishedResult("DISCO.AHU (2nd)", "QIN_variety_v9", "0.9701 / 0.9695 (two logs)", "0.9798", "repo logs",
                    expid="QIN_MicroLens"),
    PublishedResult("jzzx.NTU (3rd)", "DIN_DCN + Jina-CLIP-v2", None, None, "ZiaoGao/MMCTR",
                    expid="DIN_DCN_MicroLens",
                    note="with the dataset's item_emb_d128: their Jina-CLIP-v2 vectors need a model hub"),
    PublishedResult("zhou123 (Task-2 model winner)", "DIN + MH target attn + SENet, V4", "0.9306", None,
                    "arXiv 2504.18961 Table 1", expid="DIN_SENet_MicroLens",
                    overrides=(("embedding_variant", "V4"),),
                    note="heads, sizes and training values unpublished: challenge-baseline scale"),
    PublishedResult("delorean (Task-1 winner)", "DIN + Qwen2.5-VL-7B embeddings", None, None, "repo",
                    not_runnable="Qwen2.5-VL-7B item embeddings: no model hub here to make them and too large to "
                                 "ship (their DIN itself is DIN_MicroLens with other values)"),
    PublishedResult("tolive666 (inferred: Tol1ve/MM-CTR-MMCTRers)", "DIN + RMSNorm cross-attn + aux loss",
                    "0.986201", "0.9892 (third-party)", "student README",
                    not_runnable="RMSNorm cross-attention and the auxiliary loss are not implemented in the zoo"),
    PublishedResult("jiyuqian (inferred: Gavin113/WWW2025_MMCTR)", "DIN_att6", "0.985333", "0.9887", "repo README",
                    not_runnable="needs an extra user_id feature, their item_info_v3 vectors and a 2-layer "
                                 "RMSNorm target-attention encoder, none of which the zoo has"),
    PublishedResult("QVQ (inferred: Hsyy04/WWW25MMCTR)", "VQ-VAE codes -> DIN", "0.984437", "0.9885 (third-party)",
                    "student README",
                    not_runnable="VQ-VAE codes over closed OpenAI text-embedding-3-large vectors (not obtainable "
                                 "offline)"),
)
# Zhou, "Rethinking Feature Fusion in Multimodal CTR Prediction" (arXiv 2504.18961), Table 1: valid AUC per variant;
# each variant runs as ZHOU_EXPID with --set embedding_variant=<variant> (config/embeddings.yaml builds the vectors).
ZHOU_EXPID = "DIN_SENet_MicroLens"
PUBLISHED_ZHOU = (
    ("V1", "PCA(BERT)", "0.9247"),
    ("V2", "PCA(CLIP)", "0.9231"),
    ("V3", "PCA(BERT+CLIP), PCA of the concatenation (= the baseline item_emb_d128)", "0.9124"),
    ("V4", "PCA(BERT) ‖ PCA(CLIP)", "0.9306"),
)


def published_expids() -> List[str]:
    """Every zoo expid the published section names (a test checks that each exists)."""
    return list(dict.fromkeys([p.expid for p in PUBLISHED if p.expid] + [ZHOU_EXPID]))


# ---------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------
def _float(value: Any) -> Optional[float]:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# --set keys that cannot change a result: a row run with only these is the expid's plain row.
NEUTRAL_OVERRIDES = ("verbose",)


def _overrides(row: Mapping[str, str]) -> str:
    """The row's ``--set`` overrides as ``k=v, ...`` ("" for none; an unreadable value is shown as written), without
    ``NEUTRAL_OVERRIDES``."""
    text = (row.get("overrides") or "").strip()
    if not text:
        return ""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if not isinstance(parsed, dict):
        return text
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(parsed.items()) if k not in NEUTRAL_OVERRIDES)


def drop_default_overrides(rows: Sequence[Mapping[str, str]],
                           config_dir: Optional[str] = None) -> List[Dict[str, str]]:
    """The rows with every ``--set`` override that equals the expid's own config value removed (e.g. the seed
    study's ``seed=20242025`` on an expid whose seed is 20242025: that run is the plain expid). Expids unknown to the
    config keep their overrides as written."""
    from model_zoo.config import load_params

    defaults: Dict[str, Optional[Dict[str, Any]]] = {}
    out = []
    for row in rows:
        row = dict(row)
        try:
            parsed = json.loads(row.get("overrides") or "{}")
        except ValueError:
            parsed = None
        expid = row.get("expid") or ""
        if isinstance(parsed, dict) and parsed:
            if expid not in defaults:
                try:
                    defaults[expid] = load_params(expid, config_dir)
                except ConfigError:
                    defaults[expid] = None
            params = defaults[expid]
            if params is not None:
                kept = {k: v for k, v in parsed.items() if k not in params or params[k] != v}
                row["overrides"] = json.dumps(kept, sort_keys=True) if kept else ""
        out.append(row)
    return out


def plain_expids(results: Path, config_dir: Optional[str] = None) -> set:
    """Expids with a finished row that is the plain expid (no override, or only ``verbose`` and values equal to the
    expid's own, such as the seed study's run at the expid's seed): ``--run`` does not run them again."""
    from model_zoo.apps.results import read_results

    if not Path(results).is_file():
        return set()
    rows = drop_default_overrides(read_results(results).rows, config_dir)
    return {row["expid"] for row in rows if row.get("expid") and not _overrides(row)
            and _float(row.get("valid_AUC")) is not None}


def select_rows(rows: Sequence[Mapping[str, str]], select: str = "latest",
                with_overrides: bool = False) -> List[Dict[str, str]]:
    """One row per expid (per expid + overrides with ``with_overrides``): the last one in file order (``latest``)
    or the one with the best valid AUC (``best``). Rows without a valid AUC are skipped."""
    if select not in SELECT_MODES:
        raise ConfigError(f"select={select!r}; expected one of {SELECT_MODES}")
    chosen: Dict[Tuple[str, str], Dict[str, str]] = {}
    for row in rows:
        expid, overrides = row.get("expid"), _overrides(row)
        if not expid or _float(row.get("valid_AUC")) is None or (overrides and not with_overrides):
            continue
        key = (expid, overrides)
        if select == "latest" or key not in chosen or \
                _float(row["valid_AUC"]) > _float(chosen[key]["valid_AUC"]):
            chosen[key] = dict(row)
    return list(chosen.values())


def synthetic_dataset_ids(config_dir: Optional[str | os.PathLike] = None) -> set:
    """Dataset ids whose block has a ``synthetic:`` key (the zoo's, plus ``config_dir``'s)."""
    return {d for d in list_dataset_ids(config_dir) if dataset_block(d, config_dir).get("synthetic")}


def _is_synthetic(row: Mapping[str, str], declared: set) -> bool:
    # A row with an oracle AUC came from a generated world, whatever its dataset id is called.
    return row.get("dataset_id") in declared or _float(row.get("oracle_valid_AUC")) is not None


def leaderboard_rows(rows: Sequence[Mapping[str, str]], select: str = "latest", expid_filter: Optional[str] = None,
                     with_overrides: bool = False, config_dir: Optional[str] = None) -> List[Dict[str, Any]]:
    """The leaderboard table: selected rows, real datasets first, then by dataset id and valid AUC (best first)."""
    declared = synthetic_dataset_ids(config_dir)
    table = []
    for row in select_rows(rows, select, with_overrides):
        if expid_filter and not fnmatch.fnmatchcase(row["expid"], expid_filter):
            continue
        entry: Dict[str, Any] = {col: row.get(col, "") for col in LEADERBOARD_COLUMNS}
        entry["overrides"] = _overrides(row)
        entry["synthetic"] = "yes" if _is_synthetic(row, declared) else "no"
        entry["embedding_variant"] = row.get("embedding_variant") or DATASET_EMBEDDING
        table.append(entry)
    table.sort(key=lambda r: (r["synthetic"] == "yes", r["dataset_id"], -(_float(r["valid_AUC"]) or 0.0),
                              r["expid"], r["overrides"]))
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


def _name(row: Mapping[str, Any]) -> str:
    return f"{row['expid']} [{row['overrides']}]" if row.get("overrides") else str(row["expid"])


def _cold(row: Mapping[str, Any]) -> str:
    rows = _float(row.get("valid_cold_rows"))
    return f"{_fmt(row.get('valid_cold_AUC'), 'auc')} ({int(rows)} rows)" if rows is not None else "n/a"


def render_markdown(table: Sequence[Mapping[str, Any]], *, select: str, results: str, command: str,
                    left_out: int = 0) -> str:
    """The leaderboard page; ``left_out`` = rows with ``--set`` overrides that were not shown."""
    pick = "its **latest** row" if select == "latest" else "its row with the **best valid AUC** (optimistic)"
    note = (f" {left_out} row(s) run with `--set` overrides (e.g. the seed study) are not shown "
            f"(`--with-overrides`)." if left_out else "")
    lines = [
        "# Leaderboard",
        "",
        f"Generated by `{command}` from `{results}` ({len(table)} entries; one row per expid: {pick}).{note} "
        "Cold valid AUC: valid rows whose target item never occurs in train. Do not edit by hand: rerun the command.",
        "",
        "## Our runs",
        "",
    ]
    for dataset_id in dict.fromkeys(r["dataset_id"] for r in table):
        group = [r for r in table if r["dataset_id"] == dataset_id]
        synthetic = group[0]["synthetic"] == "yes"
        lines += [f"### {_dataset_title(dataset_id, synthetic)}", ""]
        header = ["model", "embedding variant", "expid", "valid AUC", "valid logloss", "test AUC", "test logloss",
                  "cold valid AUC", "params", "train s", "device"]
        if synthetic:
            header += ["oracle valid AUC", "oracle test AUC"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in group:
            cells = [r["model"], r["embedding_variant"], f"`{_name(r)}`", _fmt(r["valid_AUC"], "auc"),
                     _fmt(r["valid_logloss"], "auc"), _fmt(r["test_AUC"], "auc"), _fmt(r["test_logloss"], "auc"),
                     _cold(r), _fmt(r["num_params"], "int"), _fmt(r["train_seconds"], "s"), r.get("device") or "n/a"]
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
        "How to run each method here: the zoo expid on the real files (`data/MicroLens_1M_x1/`, a GPU), or why "
        "it cannot be run.",
        "",
        "| team | model | valid AUC | test AUC | source | run in the zoo |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in (p.team, p.model, p.valid_auc or "unknown", p.test_auc or "unknown",
                                                   p.source, p.how_to_run())) + " |" for p in PUBLISHED]
    lines += [
        "",
        "Zhou, *Rethinking Feature Fusion in Multimodal CTR Prediction* (arXiv 2504.18961), Table 1, valid AUC "
        "(as given in the project's seed report; its training budget is unknown and below the other teams', "
        "so do not compare across):",
        "",
        "| variant | item embedding | valid AUC | run in the zoo |",
        "|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row + (
        f"`{RUN_COMMAND.format(expid=ZHOU_EXPID)} --set embedding_variant={row[0]}`",)) + " |"
        for row in PUBLISHED_ZHOU]
    return "\n".join(lines) + "\n"


def render_csv(table: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LEADERBOARD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: row.get(k, "") for k in LEADERBOARD_COLUMNS})
    return buf.getvalue()


@dataclass(frozen=True)
class SeedSummary:
    """One expid's seed study (``python -m model_zoo.apps.seeds``): valid AUC mean and sample std over ``n`` seeds."""

    mean: float
    std: float
    n: int


SEED_COLUMNS = ("expid", "dataset_id", "n", "valid_AUC_mean", "valid_AUC_std")


def read_seed_summaries(paths: Sequence[str | os.PathLike]) -> Dict[Tuple[str, str], SeedSummary]:
    """(expid, dataset_id) -> SeedSummary from seed-study CSVs (``benchmarks/seeds.csv``); a later file wins.

    Raises DataError naming the file when it is missing or lacks the columns; a row without a std (one seed) is
    skipped, since it has no error bar to give.
    """
    out: Dict[Tuple[str, str], SeedSummary] = {}
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                missing = [c for c in SEED_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise DataError(f"seeds {path}: not a seed-study summary (python -m model_zoo.apps.seeds): "
                                    f"missing columns {missing}")
                for row in reader:
                    mean, std, n = _float(row["valid_AUC_mean"]), _float(row["valid_AUC_std"]), _float(row["n"])
                    if mean is not None and std is not None and n:
                        out[(row["expid"], row["dataset_id"])] = SeedSummary(mean, std, int(n))
        except FileNotFoundError:
            raise DataError(f"seeds {path}: no such file") from None
    return out


def auc_axis_range(points: Sequence[Tuple[float, float]], oracle: Optional[float] = None,
                   margin: float = 0.08, min_span: float = 0.005) -> Tuple[float, float]:
    """AUC axis limits zoomed to the data: every ``value ± error`` of ``points`` and the oracle fit, with ``margin``
    of the span on each side (at least ``min_span`` wide), clipped to [0, 1]."""
    lows = [v - e for v, e in points] + ([oracle] if oracle is not None else [])
    highs = [v + e for v, e in points] + ([oracle] if oracle is not None else [])
    low, high = min(lows), max(highs)
    pad = margin * max(high - low, min_span)
    return max(0.0, low - pad), min(1.0, high + pad)


class _ChartEntry(NamedTuple):
    value: float                    # where the dot sits: the seed mean, else the shown run's valid AUC
    shown: float                    # the valid AUC of the row in the table
    summary: Optional[SeedSummary]  # the expid's seed study, if any
    label: str


def render_png(table: Sequence[Mapping[str, Any]], path: Path,
               seeds: Optional[Mapping[Tuple[str, str], SeedSummary]] = None) -> None:
    """Sorted dot chart of valid AUC, one panel per dataset, the axis zoomed to the data.

    Each entry is a dot (best at the top) with its value written right of the panel, so values never collide with
    the dots or the oracle line. With ``seeds``, an expid of the seed study is drawn as its seed mean ± std (error
    bar) and its shown run as a small cross. The oracle valid AUC (synthetic worlds) is a dashed vertical line,
    labelled in the panel title.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    seeds = seeds or {}
    datasets = list(dict.fromkeys(r["dataset_id"] for r in table))
    groups = [[r for r in table if r["dataset_id"] == d] for d in datasets]
    heights = [len(g) + 1.5 for g in groups]
    fig, axes = plt.subplots(len(datasets), 1, squeeze=False, gridspec_kw={"height_ratios": heights},
                             figsize=(10.0, 0.32 * sum(heights) + 0.9))
    used_seeds = False
    for ax, dataset_id, group in zip(axes[:, 0], datasets, groups):
        entries = []
        for r in group:
            shown = _float(r["valid_AUC"]) or 0.0
            # the study varies the seed of the plain expid: a row with other overrides is not what it measured
            summary = None if r.get("overrides") else seeds.get((r["expid"], r["dataset_id"]))
            variant = r["embedding_variant"]
            label = _name(r) + (f" [{variant}]" if variant and variant != DATASET_EMBEDDING else "")
            entries.append(_ChartEntry(summary.mean if summary else shown, shown, summary, label))
        entries.sort(key=lambda e: e.value)  # ascending: the best ends at the top of the panel
        y = list(range(len(entries)))
        for yi, (value, shown, summary, _) in zip(y, entries):
            if summary:
                used_seeds = True
                ax.errorbar(value, yi, xerr=summary.std, fmt="o", color="#4C72B0", ecolor="#4C72B0", capsize=3,
                            markersize=5, zorder=3)
                ax.plot(shown, yi, marker="x", color="#555555", markersize=5, linestyle="none", zorder=4)
            else:
                ax.plot(value, yi, marker="o", color="#4C72B0", markersize=5, linestyle="none", zorder=3)
        ax.set_yticks(y, [e.label for e in entries], fontsize=8)
        for yi, (value, shown, summary, _) in zip(y, entries):
            text = (f"{value:.4f} ± {summary.std:.4f} ({summary.n} seeds), run {shown:.4f}" if summary
                    else f"{value:.4f}")
            ax.text(1.01, yi, text, transform=ax.get_yaxis_transform(), va="center", fontsize=8, family="monospace")
        oracle = [_float(r["oracle_valid_AUC"]) for r in group if _float(r["oracle_valid_AUC"]) is not None]
        title = _dataset_title(dataset_id, group[0]["synthetic"] == "yes")
        if oracle:
            ax.axvline(max(oracle), color="#C44E52", linestyle="--", linewidth=1.2, zorder=2)
            title += f"; dashed line: oracle valid AUC {max(oracle):.4f}"
        points = [(e.value, e.summary.std if e.summary else 0.0) for e in entries] + [(e.shown, 0.0) for e in entries]
        ax.set_xlim(*auc_axis_range(points, max(oracle) if oracle else None))
        ax.set_ylim(-0.7, len(entries) - 0.3)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("valid AUC", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    if used_seeds:
        handles = [Line2D([], [], marker="o", color="#4C72B0", label="seed mean ± std (seed study)"),
                   Line2D([], [], marker="x", color="#555555", linestyle="none", label="the run in the table")]
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04 if used_seeds else 0, 1, 1))
    atomic_write_figure(path, fig)


# ---------------------------------------------------------------------------------------------------------------
# Leaderboard config (--run) and entry points
# ---------------------------------------------------------------------------------------------------------------
RUN_CONFIG_KEYS = ("expids", "config", "gpus", "only_listed", "select", "baselines")


def load_run_config(path: str | os.PathLike) -> Dict[str, Any]:
    """A leaderboard config (``config/leaderboard.yaml``): as given, else the zoo's shipped one."""
    cfg = load_keyed_config(path, "leaderboard config", RUN_CONFIG_KEYS)
    if not isinstance(cfg.get("expids"), list) or not cfg["expids"] or \
            not all(isinstance(e, str) for e in cfg["expids"]):
        raise ConfigError(f"{path}: 'expids' must be a non-empty list of expids, got {cfg.get('expids')!r}")
    if cfg.get("select", "latest") not in SELECT_MODES:
        raise ConfigError(f"{path}: select={cfg['select']!r}; expected one of {SELECT_MODES}")
    if not isinstance(cfg.get("baselines", True), bool):
        raise ConfigError(f"{path}: baselines={cfg['baselines']!r}; expected true or false")
    return cfg


def ensure_baselines(expids: Sequence[str], results: Path, *, config_dir: Optional[str], work: Path) -> List[str]:
    """Append the simple baselines' rows for every dataset of ``expids`` that has none in ``results`` yet; returns
    the baseline expids of those datasets (to list next to the models)."""
    from model_zoo.apps.baselines import MODEL_PREFIX, baseline_rows
    from model_zoo.apps.results import append_result, read_results
    from model_zoo.config import load_params

    datasets = sorted({load_params(e, config_dir, work_dir=work)["dataset_id"] for e in expids})
    present = {(r["dataset_id"], r["model"]) for r in read_results(results).rows}
    listed: List[str] = []
    for dataset_id in datasets:
        if not any(d == dataset_id and m.startswith(MODEL_PREFIX) for d, m in present):
            for row in baseline_rows(dataset_id, config_dir=config_dir, work_dir=work):
                append_result(results, row)
        listed += [r["expid"] for r in read_results(results).rows
                   if r["dataset_id"] == dataset_id and r["model"].startswith(MODEL_PREFIX)]
    return sorted(set(listed))


def write_leaderboard(results: str | os.PathLike, out: str | os.PathLike, *, select: str = "latest",
                      expid_filter: Optional[str] = None, only_expids: Optional[Sequence[str]] = None,
                      with_overrides: bool = False, config_dir: Optional[str] = None, shown_results: str = "",
                      command: str = "python -m model_zoo.apps.leaderboard",
                      seeds: Sequence[str | os.PathLike] = ()) -> Tuple[Dict[str, Path], List[str]]:
    """Write ``<out>.md``, ``<out>.csv`` and ``<out>.png``; returns their paths and the damaged-line warnings.
    ``seeds``: seed-study CSVs whose mean ± std become the chart's error bars.

    Raises DataError, before writing anything, when the results file is missing, empty or not a zoo results file,
    when a seeds file is missing or not a seed summary, or when no row is left to show.
    """
    from model_zoo.apps.results import read_results

    summaries = read_seed_summaries(seeds)
    table_in = read_results(results, required=True)
    rows = drop_default_overrides(table_in.rows, config_dir)
    if only_expids is not None:
        wanted = set(only_expids)
        rows = [r for r in rows if r.get("expid") in wanted]
    table = leaderboard_rows(rows, select, expid_filter, with_overrides, config_dir)
    if not table:
        what = [f"matching --filter {expid_filter!r}" if expid_filter else "",
                "of the listed expids" if only_expids is not None else "",
                "" if with_overrides else "without --set overrides"]
        raise DataError(f"results {results}: no row with a valid AUC "
                        f"{' and '.join(w for w in what if w) or 'to show'} ({len(table_in.rows)} rows read); "
                        f"the leaderboard files were not touched")
    left_out = 0 if with_overrides else len({(r.get("expid"), _overrides(r)) for r in rows if _overrides(r)})
    out = Path(out)
    paths = {ext: out.with_name(out.name + f".{ext}") for ext in ("md", "csv", "png")}
    md = render_markdown(table, select=select, results=shown_results or str(results), command=command,
                         left_out=left_out)
    atomic_write_text(paths["md"], md)
    atomic_write_text(paths["csv"], render_csv(table))
    render_png(table, paths["png"], summaries)
    return paths, table_in.warnings()


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (so a committed page names no home dir)."""
    absolute = path.resolve()
    return str(absolute.relative_to(Path.cwd())) if absolute.is_relative_to(Path.cwd()) else str(absolute)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.leaderboard",
                                     description="Leaderboard (.md/.csv/.png) from the results CSV")
    parser.add_argument("--output-dir", default=None,
                        help="work dir (default: the current directory): default results and outputs, runs of --run")
    parser.add_argument("--results", default=None, help="results CSV (default <output-dir>/results/results.csv)")
    parser.add_argument("--out", default=None,
                        help="output prefix (default <output-dir>/leaderboard; the committed one: "
                             "benchmarks/leaderboard)")
    parser.add_argument("--select", choices=SELECT_MODES, default=None,
                        help="row per expid: latest (default) or best valid AUC")
    parser.add_argument("--filter", default=None, help="only expids matching this glob, e.g. 'DMF_*'")
    parser.add_argument("--with-overrides", action="store_true",
                        help="also show rows run with --set overrides, one entry per expid + overrides")
    parser.add_argument("--run", default=None, metavar="YAML",
                        help="leaderboard config: run its expids not yet finished, then show only those")
    parser.add_argument("--gpu", type=int, nargs="+", default=None,
                        help="with --run: one worker per entry (default: the config's gpus)")
    parser.add_argument("--seeds", nargs="+", default=(), metavar="CSV",
                        help="seed-study summaries (python -m model_zoo.apps.seeds, e.g. benchmarks/seeds.csv): "
                             "the chart shows their valid AUC mean ± std as error bars")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from model_zoo.apps.tuner.run import APP_STOPS, Job, app_exit, run_jobs, sigterm_raises

    args = build_parser().parse_args(argv)
    shown = ["python -m model_zoo.apps.leaderboard"] + list(argv if argv is not None else sys.argv[1:])
    work = Path(args.output_dir).expanduser().resolve() if args.output_dir else Path.cwd()
    results = Path(args.results).expanduser() if args.results else work / "results" / "results.csv"
    out = Path(args.out).expanduser() if args.out else work / "leaderboard"
    try:
        with sigterm_raises():
            only, config_dir = None, None
            select = args.select or "latest"
            if args.run:
                cfg = load_run_config(args.run)
                select = args.select or cfg.get("select", "latest")
                config_dir = cfg.get("config")
                done = plain_expids(results, config_dir)  # e.g. the seed study's run at the expid's own seed
                jobs = [Job(e) for e in cfg["expids"] if e not in done]
                if jobs:
                    report = run_jobs(jobs, config_dir=config_dir, gpus=args.gpu or cfg.get("gpus", [-1]),
                                      output_dir=work, results=results, progress=not args.quiet,
                                      name="leaderboard runs")
                    print(report.text(), file=sys.stderr if report.failed else sys.stdout, flush=True)
                    if report.failed:
                        return report.exit_code
                only = cfg["expids"] if cfg.get("only_listed", True) else None
                if cfg.get("baselines", True):
                    listed = ensure_baselines(cfg["expids"], results, config_dir=config_dir, work=work)
                    only = None if only is None else list(only) + listed
            paths, warnings = write_leaderboard(results, out, select=select, expid_filter=args.filter,
                                                only_expids=only, with_overrides=args.with_overrides,
                                                config_dir=config_dir,
                                                shown_results=_shown(results),
                                                command=" ".join(shown), seeds=args.seeds)
    except APP_STOPS as exc:
        return app_exit(exc, "leaderboard")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("\n".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
