"""Zhou's Table 1 on a synthetic world: the same models under the same budget with each item-embedding variant.

Usage::

    python benchmarks/table1_study.py --dataset tiny                  # smoke run: <Model>_test sizes, seconds
    python benchmarks/table1_study.py --dataset small [--epochs 3]    # the study: <Model>_MicroLens_synth sizes

For every model (default DIN_SENet and DMF) and variant (default V1 V2 V3 V4 V5 V5c; see
``model_zoo/embeddings/variants.py``), an expid ``<Model>_<Vn>_table1`` is written to a temporary ``--config``
directory: the model's base block (``<Model>_test`` for tiny, ``<Model>_MicroLens_synth`` otherwise) with
``embedding_variant`` set and the same ``epochs`` / ``batch_size`` / ``seed`` for every variant; codes-only variants
also drop the ``item_emb_d128`` settings (``model_zoo.embeddings.expids.codes_only_block``). Each expid runs through
``run_expid.run`` (which builds the variant file on first use); the table shows valid AUC, the world's oracle valid
AUC and the variant's explained variance. Synthetic numbers are never MicroLens numbers. The last line is one JSON
object ``{"dataset", "epochs", "results": [{model, variant, valid_AUC, oracle_valid_AUC, explained_variance, ...}]}``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

from model_zoo.config import CONFIG_DIR, resolve_path  # noqa: E402
from model_zoo.embeddings.expids import codes_only_block  # noqa: E402
from model_zoo.embeddings.variants import VARIANTS, canonical_variant  # noqa: E402
from model_zoo.errors import ConfigError, ZooError  # noqa: E402

DATASETS = {"tiny": "MicroLens_synth_tiny", "small": "MicroLens_synth_small", "full": "MicroLens_synth_full"}


def write_dataset_config(cfg_dir: Path, dataset_id: str, data_root: Optional[str]) -> None:
    """``cfg_dir/dataset_config.yaml`` with the repo's block for ``dataset_id``, its files moved to ``data_root``."""
    block = dict(yaml.safe_load((CONFIG_DIR / "dataset_config.yaml").read_text())[dataset_id])
    if data_root:
        block["data_root"] = data_root
        for key in ("train_data", "valid_data", "test_data", "item_info", "item_feature"):
            if block.get(key):
                block[key] = str(Path(data_root) / dataset_id / Path(block[key]).name)
    (cfg_dir / "dataset_config.yaml").write_text(yaml.safe_dump({dataset_id: block}))


def write_config(cfg_dir: Path, dataset: str, models: Sequence[str], variants: Sequence[str], *,
                 epochs: Optional[int], batch_size: Optional[int], data_root: Optional[str],
                 model_root: str) -> List[Dict[str, str]]:
    """A --config dir with the dataset block (optionally moved to ``data_root``) and one expid per (model, variant)."""
    dataset_id = DATASETS[dataset]
    write_dataset_config(cfg_dir, dataset_id, data_root)
    base_suffix = "test" if dataset == "tiny" else "MicroLens_synth"
    expids: Dict[str, Any] = {}
    runs = []
    for model in models:
        blocks = yaml.safe_load((REPO_ROOT / "model_zoo" / model / "model_config.yaml").read_text())
        base_name = f"{model}_{base_suffix}"
        if base_name not in blocks:
            raise ConfigError(f"model '{model}' has no expid '{base_name}' in model_zoo/{model}/model_config.yaml")
        for variant in variants:
            base = dict(blocks[base_name])
            if VARIANTS[variant].codes_only:
                base = codes_only_block(model, base)
            base.update(dataset_id=dataset_id, embedding_variant=variant, model_root=model_root, verbose=0)
            if epochs is not None:
                base["epochs"] = epochs
            if batch_size is not None:
                base["batch_size"] = batch_size
            expid = f"{model}_{variant}_table1"
            expids[expid] = base
            runs.append({"expid": expid, "model": model, "variant": variant})
    (cfg_dir / "model_config.yaml").write_text(yaml.safe_dump(expids, sort_keys=False))
    return runs


def explained_variance(params_file: str) -> Optional[float]:
    """The variant's explained variance, read from the sidecar next to the item_info file the run used."""
    params = yaml.safe_load(Path(params_file).read_text())
    sidecar = Path(params["item_info"]).with_suffix(".json")
    try:
        return json.loads(sidecar.read_text()).get("explained_variance")
    except (OSError, ValueError):
        return None


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    def f(v: Any) -> str:
        return "-" if v in (None, "") else f"{float(v):.4f}"
    lines = [f"{'model':18} {'variant':7} {'valid AUC':>9} {'oracle':>7} {'gap':>7} {'EV':>7} {'secs':>6}  item vector"]
    for r in rows:
        gap = (float(r["oracle_valid_AUC"]) - float(r["valid_AUC"])) if r["oracle_valid_AUC"] not in (None, "") \
            else None
        lines.append(f"{r['model']:18} {r['variant']:7} {f(r['valid_AUC']):>9} {f(r['oracle_valid_AUC']):>7} "
                     f"{f(gap):>7} {f(r['explained_variance']):>7} {r['seconds']:>6.1f}  "
                     f"{VARIANTS[r['variant']].description}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="tiny")
    parser.add_argument("--models", nargs="+", default=["DIN_SENet", "DMF"])
    parser.add_argument("--variants", nargs="+", default=["V1", "V2", "V3", "V4", "V5", "V5c"])
    parser.add_argument("--epochs", type=int, default=None, help="same for every run (default: the base expid's)")
    parser.add_argument("--batch-size", type=int, default=None, help="same for every run (default: the base's)")
    parser.add_argument("--data-root", default=None, help="where the world lives (default: the dataset config's)")
    parser.add_argument("--model-root", default=None, help="checkpoints (default: a temp dir, removed)")
    parser.add_argument("--results", default=str(REPO_ROOT / "results" / "table1_study.csv"))
    args = parser.parse_args(argv)

    import run_expid

    try:
        variants = [canonical_variant(v) for v in args.variants]
        with tempfile.TemporaryDirectory(prefix="table1_") as tmp:
            cfg_dir = Path(tmp) / "config"
            cfg_dir.mkdir()
            model_root = args.model_root or str(Path(tmp) / "ckpt")
            data_root = str(resolve_path(args.data_root)) if args.data_root else None
            runs = write_config(cfg_dir, args.dataset, args.models, variants, epochs=args.epochs,
                                batch_size=args.batch_size, data_root=data_root, model_root=model_root)
            rows = []
            for run in runs:
                started = time.perf_counter()
                row = run_expid.run(run["expid"], str(cfg_dir), results=Path(args.results),
                                    command=f"python benchmarks/table1_study.py --dataset {args.dataset}")
                rows.append({**run, "valid_AUC": row["valid_AUC"], "valid_logloss": row["valid_logloss"],
                             "oracle_valid_AUC": row["oracle_valid_AUC"], "test_AUC": row["test_AUC"],
                             "explained_variance": explained_variance(row["params_file"]),
                             "num_params": row["num_params"], "seconds": time.perf_counter() - started})
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    print(json.dumps({"dataset": DATASETS[args.dataset], "epochs": args.epochs,
                      "results": [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                                  for r in rows]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
