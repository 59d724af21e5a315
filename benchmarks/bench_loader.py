"""Data-path benchmark: our tensor join vs the challenge baseline's per-batch pandas join, side by side in one run.

The baseline data path is re-implemented from the behaviour of ``reczoo/WWW2025_MMCTR_Challenge:src/mmctr_dataloader.py``
(read at 4e0b2b4): the split is read with polars and column-stacked into one numpy matrix (list columns exploded to one
column per position) and served row by row through a torch ``DataLoader``; a collate function stacks the rows, cuts
``item_seq[:, -max_len:]``, builds the mask, looks up every history and target item with ``item_info.iloc[ids]`` in
pandas and turns each joined column into a tensor with ``np.stack`` over its per-row arrays.

Three data paths, same rows, same DIN:
* ``ours``: the zoo's loader (tensor ``index_select`` join);
* ``baseline``: the challenge's path as above;
* ``baseline_tolist``: the same with ``np.array(column.to_list())`` in place of ``np.stack`` (about 3x faster on
  list columns), a stricter reference than the challenge's own code.

Measured: loader only (batches/s over the first ``--batches`` batches of an epoch) and end to end (training samples/s,
forward + backward + Adam step, over the same batches).

    python benchmarks/bench_loader.py [--dataset small] [--batch-size 1024] [--batches 40] [--max-len 64]
                                      [--baseline-workers 3]

Prints a table and a final JSON line with the ratios.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Union

import numpy as np
import pandas as pd
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from model_zoo.config import load_params, validate_params
from model_zoo.datasets import prepare
from model_zoo.datasets.loader import MMCTRBatch, keep_large_allocations_on_heap
from model_zoo.registry import get_model

PATHS = ("ours", "baseline", "baseline_tolist")


class _ColumnStackedSplit(Dataset):
    """The whole split as one matrix; list columns expand to one column per position (baseline layout)."""

    def __init__(self, path: Path) -> None:
        frame = pl.read_parquet(path)
        blocks, offset = [], 0
        column_index: Dict[str, Union[int, List[int]]] = {}
        for col in frame.columns:
            if isinstance(frame[col].dtype, (pl.List, pl.Array)):
                block = frame[col].explode().to_numpy().reshape(frame.height, -1)
                column_index[col] = list(range(offset, offset + block.shape[1]))
            else:
                block = frame[col].to_numpy().reshape(-1, 1)
                column_index[col] = offset
            offset += block.shape[1]
            blocks.append(block)
        self.column_index = column_index
        self.matrix = np.column_stack(blocks)

    def __len__(self) -> int:
        return len(self.matrix)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.matrix[index]


class _PandasJoinCollate:
    """Stack rows, then join item_info rows per batch with ``DataFrame.iloc`` (the baseline's collate).

    ``to_tensor`` is how a joined object column (one numpy array per row) becomes one array: ``"stack"`` as the
    challenge does (``np.stack``), ``"tolist"`` through ``np.array(column.to_list())``.
    """

    def __init__(self, column_index, item_info: Path, item_columns: List[str], max_len: int,
                 to_tensor: str = "stack") -> None:
        self.column_index = column_index
        self.item_info = pd.read_parquet(item_info)[item_columns]
        self.max_len = max_len
        self.to_array = {"stack": lambda col: np.stack(col.to_numpy()),
                         "tolist": lambda col: np.array(col.to_list())}[to_tensor]

    def __call__(self, rows: List[np.ndarray]) -> MMCTRBatch:
        stacked = default_collate(rows)
        batch_dict = {col: stacked[:, idx] for col, idx in self.column_index.items()}
        seq = batch_dict.pop("item_seq")[:, -self.max_len:]
        mask = (seq > 0).float()
        target = batch_dict.pop("item_id").numpy().reshape(-1, 1)
        ids = np.hstack([seq.numpy(), target]).reshape(-1)
        joined = self.item_info.iloc[ids]
        item_dict = {col: torch.from_numpy(self.to_array(joined[col])) for col in joined.columns}
        return MMCTRBatch(batch_dict, item_dict, mask)


def baseline_loader(files, params, batch_size: int, to_tensor: str = "stack", num_workers: int = 0) -> DataLoader:
    dataset = _ColumnStackedSplit(files.train)
    item_cols = [spec.name for spec in prepare.item_columns(params)]
    collate = _PandasJoinCollate(dataset.column_index, files.item_info, item_cols, params["max_len"], to_tensor)
    gen = torch.Generator().manual_seed(0)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, collate_fn=collate,
                      generator=gen)


def take(loader: Iterable, n: int) -> Iterator:
    for i, batch in enumerate(loader):
        if i >= n:
            return
        yield batch


def time_loader(make: Callable[[], Iterable], n: int) -> float:
    started = time.perf_counter()
    count = sum(1 for _ in take(make(), n))
    return count / (time.perf_counter() - started)


def time_training(model, make: Callable[[], Iterable], n: int, batch_size: int) -> float:
    model.train()
    model._batch_index, model._steps_per_epoch, model._max_gradient_norm = 0, n, 10.0
    started = time.perf_counter()
    rows = 0
    for i, batch in enumerate(take(make(), n)):
        model._batch_index = i
        model.train_step(batch)
        rows += len(batch.mask)
    return rows / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--expid", default="DIN_MicroLens_synth")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-len", type=int, default=None,
                        help="history length kept (default: the expid's; the challenge baseline used 64)")
    parser.add_argument("--baseline-workers", type=int, default=0,
                        help="DataLoader worker processes of the baseline paths (the challenge's Base used 3); "
                             "ours always runs in the training process")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    keep_large_allocations_on_heap()  # as run_expid.py does; process-wide, so every path gets it

    params = load_params(args.expid)
    dataset_id = f"MicroLens_synth_{args.dataset}"
    if params["dataset_id"] != dataset_id:
        params.update({k: v.replace(params["dataset_id"], dataset_id) if isinstance(v, str) else v
                       for k, v in params.items()})
    params["verbose"] = 0
    if args.max_len:
        params["max_len"] = args.max_len
    validate_params(params, get_model(params["model"]))
    files = prepare.locate_data(params, progress=True)
    feature_map = prepare.build_feature_map(params, files.data_dir)

    loaders, setup_s = {}, {}
    t0 = time.perf_counter()
    table = prepare.load_item_table(params, files)
    loaders["ours"] = prepare.make_loader(files.train, params, table, train=True)
    loaders["ours"].batch_size = args.batch_size
    setup_s["ours"] = time.perf_counter() - t0
    for name, to_tensor in (("baseline", "stack"), ("baseline_tolist", "tolist")):
        t0 = time.perf_counter()
        loaders[name] = baseline_loader(files, params, args.batch_size, to_tensor, args.baseline_workers)
        setup_s[name] = time.perf_counter() - t0

    # Same batch contents from every path (sanity check before timing).
    probe = torch.arange(5)
    mine = loaders["ours"].batch(probe)
    for name in PATHS[1:]:
        ref = loaders[name].collate_fn([loaders[name].dataset[i] for i in probe.tolist()])
        for col in mine.item_dict:
            assert torch.equal(ref.item_dict[col].to(mine.item_dict[col].dtype), mine.item_dict[col]), (name, col)
        assert torch.equal(ref.mask, mine.mask), name

    results: Dict[str, Dict[str, float]] = {name: {"setup_s": setup_s[name]} for name in PATHS}
    for name in PATHS:
        results[name]["loader_batches_per_s"] = statistics.median(
            time_loader(lambda: loaders[name], args.batches) for _ in range(args.repeats))
    model_cls = get_model(params["model"])
    for name in PATHS:
        torch.manual_seed(0)
        model = model_cls(feature_map, **params)
        results[name]["train_samples_per_s"] = statistics.median(
            time_training(model, lambda: loaders[name], args.batches, args.batch_size) for _ in range(args.repeats))

    print(f"{'data path':<16} {'loader batches/s':>17} {'train samples/s':>16} {'setup s':>8}")
    for name in PATHS:
        r = results[name]
        print(f"{name:<16} {r['loader_batches_per_s']:>17.1f} {r['train_samples_per_s']:>16.0f} {r['setup_s']:>8.2f}")

    def ratio(metric: str, reference: str) -> float:
        return results["ours"][metric] / results[reference][metric]

    summary = {
        "benchmark": "loader", "dataset": dataset_id, "expid": args.expid, "batch_size": args.batch_size,
        "max_len": params["max_len"], "batches": args.batches, "repeats": args.repeats,
        "baseline_workers": args.baseline_workers,
        "loader_speedup": ratio("loader_batches_per_s", "baseline"),
        "train_speedup": ratio("train_samples_per_s", "baseline"),
        "loader_speedup_vs_tolist": ratio("loader_batches_per_s", "baseline_tolist"),
        "train_speedup_vs_tolist": ratio("train_samples_per_s", "baseline_tolist"),
        **results,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
