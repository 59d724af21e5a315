"""Simple baselines on any declared dataset, as rows of the results CSV (so every table shows them next to the models).

    python -m model_zoo.apps.baselines --dataset MicroLens_seqneg_small
    python -m model_zoo.apps.baselines --config data/MovieLens_small_build --dataset MovieLens_small

Item popularity, the Beta-smoothed item train CTR and a logistic regression on six features
(:mod:`model_zoo.baselines`), fitted on train and scored on valid and test, overall, on cold-item rows and on
new-item rows, exactly as the runner scores a model. Each baseline appends one row (expid ``<Baseline>_<dataset_id>``,
model ``Baseline_<name>``); a synthetic world's oracle AUC is recorded beside it. A deep model's AUC means little
without these. Exit codes: 0 done, 2 bad input, 130 / 143 Ctrl-C / SIGTERM (nothing appended for an unfinished one).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from model_zoo.apps.results import append_result, check_results_target
from model_zoo.apps.signals import Terminated, sigterm_raises
from model_zoo.defaults import DATASET_EMBEDDING, DEFAULT_SEED
from model_zoo.errors import ZooError

__all__ = ["baseline_rows", "main", "MODEL_PREFIX"]

MODEL_PREFIX = "Baseline_"


def baseline_rows(dataset_id: str, *, config_dir: Optional[str] = None, work_dir: Optional[Path] = None,
                  names: Optional[Sequence[str]] = None, seed: int = DEFAULT_SEED,
                  progress: bool = False) -> List[Dict[str, Any]]:
    """One result row per baseline on ``dataset_id`` (a synthetic world is generated or verified first)."""
    from model_zoo.baselines import BASELINES, run_baselines
    from model_zoo.config import dataset_params
    from model_zoo.datasets.prepare import locate_data, oracle_metrics

    params = dataset_params(dataset_id, config_dir, work_dir=work_dir)
    files = locate_data(params, progress=progress)
    oracle = oracle_metrics(files)
    rows = []
    for result in run_baselines(files.data_dir, tuple(names or BASELINES), seed=seed):
        m = result.metrics

        def count(split: str, kind: str) -> Optional[int]:
            share, total = m.get(f"{split}_{kind}_share"), m.get(f"{split}_rows")
            return None if share is None or total is None else int(round(share * total))

        name = MODEL_PREFIX + result.name
        rows.append({
            "timestamp": datetime.now().strftime("%Y%m%d-%H%M%S"), "expid": f"{name}_{dataset_id}", "model": name,
            "dataset_id": dataset_id, "embedding_variant": DATASET_EMBEDDING, "seed": seed,
            "valid_AUC": m.get("valid_AUC"), "test_AUC": m.get("test_AUC"),
            "oracle_valid_AUC": oracle.get("oracle_valid_AUC"), "oracle_test_AUC": oracle.get("oracle_test_AUC"),
            "num_params": result.num_params, "train_seconds": round(result.seconds, 2), "device": "cpu",
            "valid_cold_AUC": m.get("valid_cold_AUC"), "test_cold_AUC": m.get("test_cold_AUC"),
            "valid_cold_rows": count("valid", "cold"), "test_cold_rows": count("test", "cold"),
            "valid_new_AUC": m.get("valid_new_AUC"), "test_new_AUC": m.get("test_new_AUC"),
            "valid_new_rows": count("valid", "new"), "test_new_rows": count("test", "new"),
        })
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_zoo.apps.baselines", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, nargs="+", help="dataset id(s), e.g. MicroLens_seqneg_small")
    parser.add_argument("--config", default=None, help="a config dir declaring the dataset (e.g. a built dataset)")
    parser.add_argument("--baselines", nargs="+", default=None, help="popularity item_ctr logistic_regression "
                                                                     "(default: all)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="logistic regression seed")
    parser.add_argument("--output-dir", default=None, help="work dir (default: cwd): data/, results/")
    parser.add_argument("--results", default=None, help="results CSV (default <output-dir>/results/results.csv)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    work = Path(args.output_dir).expanduser().resolve() if args.output_dir else Path.cwd()
    results = Path(args.results).expanduser().resolve() if args.results else work / "results" / "results.csv"
    try:
        with sigterm_raises():
            check_results_target(results)
            for dataset_id in args.dataset:
                for row in baseline_rows(dataset_id, config_dir=args.config, work_dir=work, names=args.baselines,
                                         seed=args.seed, progress=True):
                    append_result(results, row)
                    print(f"[{row['expid']}] valid AUC {row['valid_AUC']} | test AUC {row['test_AUC']} | "
                          f"cold valid AUC {row['valid_cold_AUC']} | new valid AUC {row['valid_new_AUC']}", flush=True)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        print(f"interrupted: baselines stopped by {'SIGTERM' if isinstance(exc, Terminated) else 'SIGINT'}; rows "
              f"already printed are in {results}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
