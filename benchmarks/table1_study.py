"""Zhou's Table 1 on a synthetic world: the same models under the same budget with each item-embedding variant.

Usage::

    python benchmarks/table1_study.py --dataset tiny                  # smoke run: <Model>_test sizes, seconds
    python benchmarks/table1_study.py --dataset small --output-dir table1/ [--epochs 3]   # the study
    python benchmarks/table1_study.py --dataset tiny --world seqneg --models DIN_SENet --variants V1 V4

For every model (default DIN_SENet and DMF) and variant (default V1 V2 V3 V4 V5 V5c; see
``model_zoo/embeddings/variants.py``), the model's base expid (``<Model>_test`` for tiny, ``<Model>_MicroLens_<world>``
otherwise) runs through the runner app (``python -m model_zoo.apps.runner``, one process per run, started by the
tuner's ``run_jobs`` as in the seed study) with ``--set dataset_id=MicroLens_<world>_<size> --set
embedding_variant=<Vn>`` and the same shared overrides for every variant (``--epochs``, ``--batch-size``, ``--set``).
Codes-only variants (V5c, V6c) drop ``item_emb_d128`` from the features; for DMF they also switch off what reads it
(``--set target_mm_in_head=false --set mm_in_keys=false``). The world and each variant file are built once, before
the runs. The table shows valid AUC, the world's oracle valid AUC and the variant's explained variance. Synthetic
numbers are never MicroLens numbers.

Outputs (world, variant files, checkpoints, run logs, ``results/table1_study.csv``) go to ``--output-dir``
(default: a temp dir, removed at the end); a rerun with the same ``--output-dir`` skips the runs already finished.
The last line is one JSON object ``{"dataset", "epochs", "results": [{model, variant, valid_AUC, oracle_valid_AUC,
explained_variance, ...}]}``. Exit codes: 0 done; 2 bad input (one line on stderr, nothing run); 1 a run failed (the
sweep report on stderr); 130 / 143 interrupted.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from benchlib import BenchParser, overrides, positive_int, print_result, work_dir

from model_zoo.embeddings.variant_config import VARIANTS, canonical_variant

SIZES = ("tiny", "small", "full")
WORLDS = ("synth", "seqneg")
# What reads item_emb_d128 besides the feature itself, switched off for the codes-only variants (V5c, V6c).
CODES_ONLY_OVERRIDES: Mapping[str, Mapping[str, Any]] = {"DMF": {"target_mm_in_head": False, "mm_in_keys": False}}


def study_jobs(models: Sequence[str], variants: Sequence[str], size: str, world: str, dataset_id: str,
               shared: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """One runner job per (model, variant): the base expid (the world's own CPU-sized expid,
    ``<Model>_MicroLens_<world>``, or ``<Model>_test`` on tiny) with the shared overrides, the dataset and the
    variant."""
    from model_zoo.apps.tuner.run import Job

    suffix = "test" if size == "tiny" else f"MicroLens_{world}"
    runs = []
    for model in models:
        for variant in variants:
            sets = {**shared, "dataset_id": dataset_id, "embedding_variant": variant, "verbose": 0}
            if VARIANTS[variant].codes_only:
                sets.update(CODES_ONLY_OVERRIDES.get(model, {}))
            runs.append({"model": model, "variant": variant, "job": Job.of(f"{model}_{suffix}", sets)})
    return runs


def explained_variances(runs: Sequence[Dict[str, Any]], work: Path) -> Dict[str, Optional[float]]:
    """Variant -> explained variance, from the report next to the variant's item_info file (already built)."""
    from model_zoo.apps.tuner.run import plan_jobs
    from model_zoo.experiment import prepare_data

    out: Dict[str, Optional[float]] = {}
    for run, planned in zip(runs, plan_jobs([r["job"] for r in runs], None, work)):
        if run["variant"] in out:
            continue
        params, *_ = prepare_data(planned.params, cache_dir=work / "cache", progress=False)  # cached: reads only
        sidecar = Path(params["item_info"]).with_suffix(".json")  # written by model_zoo.embeddings.variants
        try:
            out[run["variant"]] = json.loads(sidecar.read_text(encoding="utf-8")).get("explained_variance")
        except (OSError, ValueError):
            out[run["variant"]] = None
    return out


def _float(value: Any) -> Optional[float]:
    return float(value) if value not in (None, "") else None


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    def f(v: Any) -> str:
        return "-" if v is None else f"{float(v):.4f}"
    lines = [f"{'model':18} {'variant':7} {'valid AUC':>9} {'oracle':>7} {'gap':>7} {'EV':>7} {'train s':>7}  "
             f"item vector"]
    for r in rows:
        gap = r["oracle_valid_AUC"] - r["valid_AUC"] if None not in (r["oracle_valid_AUC"], r["valid_AUC"]) else None
        lines.append(f"{r['model']:18} {r['variant']:7} {f(r['valid_AUC']):>9} {f(r['oracle_valid_AUC']):>7} "
                     f"{f(gap):>7} {f(r['explained_variance']):>7} {r['train_seconds'] or 0:>7.1f}  "
                     f"{VARIANTS[r['variant']].description}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from model_zoo.apps.tuner.run import APP_STOPS, app_exit, finished_runs, run_jobs, sigterm_raises

    parser = BenchParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=SIZES, default="tiny",
                        help="world size; tiny runs the <Model>_test expids, small and full <Model>_MicroLens_<world>")
    parser.add_argument("--world", choices=WORLDS, default="synth", help="synthetic world: MicroLens_<world>_<size>")
    parser.add_argument("--models", nargs="+", default=["DIN_SENet", "DMF"])
    parser.add_argument("--variants", nargs="+", default=["V1", "V2", "V3", "V4", "V5", "V5c"])
    parser.add_argument("--epochs", type=positive_int, default=None, help="same for every run (default: the expid's)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="same for every run (default: the "
                                                                               "expid's)")
    parser.add_argument("--threads", type=positive_int, default=2, help="CPU threads per run (default 2)")
    parser.add_argument("--gpu", type=int, nargs="+", default=[-1], help="one worker per entry (-1 = CPU; default -1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_overrides()
    parser.add_output_dir("the world, variant files, checkpoints, logs and results/table1_study.csv")
    args = parser.parse_args(argv)
    dataset_id = f"MicroLens_{args.world}_{args.dataset}"
    try:
        with sigterm_raises(), work_dir(args.output_dir, "table1_") as work:
            variants = [canonical_variant(v) for v in args.variants]
            shared = overrides(args.overrides, epochs=args.epochs, batch_size=args.batch_size)
            runs = study_jobs(args.models, variants, args.dataset, args.world, dataset_id, shared)
            results = work / "results" / "table1_study.csv"
            report = run_jobs([r["job"] for r in runs], gpus=args.gpu, output_dir=work, results=results,
                              threads=args.threads, progress=not args.quiet, name="table1 study")
            if report.failed:
                print(report.text(), file=sys.stderr)
                return report.exit_code
            done, _ = finished_runs(results)
            ev = explained_variances(runs, work)
    except APP_STOPS as exc:
        return app_exit(exc, "table1 study", "finished runs stay in --output-dir (if one was given)")
    rows = []
    for run in runs:
        row = done[run["job"].key]
        rows.append({"model": run["model"], "variant": run["variant"], "expid": run["job"].expid,
                     **{k: _float(row.get(k)) for k in ("valid_AUC", "valid_logloss", "oracle_valid_AUC", "test_AUC",
                                                         "train_seconds")},
                     "explained_variance": ev.get(run["variant"]), "num_params": int(row["num_params"])})
    print(format_table(rows))
    print_result({"dataset": dataset_id, "epochs": args.epochs, "batch_size": args.batch_size,
                  "overrides": shared, "results": [{k: (round(v, 6) if isinstance(v, float) else v)
                                                    for k, v in r.items()} for r in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
