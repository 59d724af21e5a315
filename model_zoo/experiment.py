"""The one place that turns validated params into an experiment: data, feature map, item tables, loaders, model.

Every caller (the runner, submissions, the tuner through the runner, the seed study, tests and benchmarks) builds its
experiment here, so a model that needs more than the batches declares it once
(:meth:`~model_zoo.layers.mmctr_base.MMCTRModel.data_requirements`) and receives it in its constructor.

Example::

    exp = experiment_from_expid("DMF_test", work_dir=tmp, overrides={"seed": 1})   # resolve, validate, build
    batch = exp.loader("valid").batch(slice(0, 64))
    y = exp.model(batch)["y_pred"]             # (64, 1)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch

from model_zoo.datasets import prepare
from model_zoo.datasets.loader import ItemInfoTable, MMCTRDataLoader
from model_zoo.errors import ConfigError
from model_zoo.layers.mmctr_base import TRAINING_KEYS, MMCTRModel, ModelData
from model_zoo.registry import get_model

__all__ = ["Experiment", "build_experiment", "experiment_from_expid", "validated_params", "prepare_data",
           "model_kwargs", "SPLIT_NAMES"]

SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class Experiment:
    """A built experiment. ``params`` are the effective params (an embedding variant may have changed
    ``feature_cols`` and ``item_info``); loaders are built on first use."""

    params: Dict[str, Any]
    files: prepare.DatasetFiles
    feature_map: Any
    item_table: ItemInfoTable
    model: MMCTRModel
    _loaders: Dict[str, MMCTRDataLoader] = field(default_factory=dict, repr=False)
    _train_items: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def test_has_labels(self) -> bool:
        return self.params.get("test_has_labels") is not False

    def has_split(self, split: str) -> bool:
        return split != "test" or self.files.test is not None

    def loader(self, split: str) -> MMCTRDataLoader:
        """The loader of ``split`` ("train" shuffles with the seed; "test" without labels when they are hidden)."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"split={split!r}; expected one of {SPLIT_NAMES}")
        if split not in self._loaders:
            path = {"train": self.files.train, "valid": self.files.valid, "test": self.files.test}[split]
            if path is None:
                raise ConfigError(f"dataset '{self.params['dataset_id']}' has no test_data")
            self._loaders[split] = prepare.make_loader(path, self.params, self.item_table, train=split == "train",
                                                       with_label=split != "test" or self.test_has_labels)
        return self._loaders[split]

    def train_items(self, *, positives_only: bool = False) -> np.ndarray:
        """(I + 1,) bool: item ids that occur in train (target or history); False = cold. ``positives_only``: as a
        positive target or in a history; False = new (see ``prepare.train_item_mask``)."""
        key = "positive" if positives_only else "any"
        if key not in self._train_items:
            self._train_items[key] = prepare.train_item_mask(self.files.train, self.item_table.num_rows,
                                                             positives_only=positives_only)
        return self._train_items[key]


def prepare_data(params: Mapping[str, Any], *, cache_dir: Path, progress: bool = True,
                 files: Optional[prepare.DatasetFiles] = None):
    """Data steps only (no model): files (generating a synthetic world if declared; ``files`` when the caller already
    located them), the embedding variant, the feature map and the item table.
    Returns (effective params, files, feature_map, item_table)."""
    params = dict(params)
    files = files or prepare.locate_data(params, progress=progress)
    cache = Path(cache_dir) / params["dataset_id"]
    params, files = prepare.apply_embedding_variant(params, files, cache, progress=progress)
    feature_map = prepare.build_feature_map(params, cache)
    item_table = prepare.load_item_table(params, files)
    return params, files, feature_map, item_table


def _model_data(model_cls: type, params: Mapping[str, Any], files: prepare.DatasetFiles,
                item_table: ItemInfoTable) -> ModelData:
    needs = model_cls.data_requirements(params)
    data = ModelData()
    if needs.item_feature_columns:
        vectors = prepare.load_item_feature_vectors(params, needs.item_feature_columns, item_table.num_rows)
        data.item_vectors.update({k: torch.from_numpy(v) for k, v in vectors.items()})
    for column in needs.item_info_columns:
        data.item_vectors[column] = item_table.columns[column].float()
    if needs.train_sample_rows:
        history, target = prepare.sample_train_rows(params, files, needs.train_sample_rows)
        data.train_history, data.train_target = torch.from_numpy(history), torch.from_numpy(target)
    if needs.train_item_mask:
        data.train_items = torch.from_numpy(prepare.train_item_mask(files.train, item_table.num_rows))
    return data


def model_kwargs(params: Mapping[str, Any], model_cls: type) -> Dict[str, Any]:
    """The constructor arguments of ``model_cls`` from validated params: its config schema's keys, FuxiCTR's
    training keys, ``model_id`` and ``gpu``; nothing else reaches the model."""
    schema = model_cls.config_schema()
    kwargs = {k: v for k, v in params.items() if k in schema}
    kwargs.update({k: params[k] for k in TRAINING_KEYS if params.get(k) is not None})
    kwargs.update(model_id=params["model_id"], gpu=params.get("gpu", -1))
    return kwargs


def build_experiment(params: Mapping[str, Any], *, cache_dir: Path, progress: bool = True,
                     model_cls: Optional[type] = None, files: Optional[prepare.DatasetFiles] = None) -> Experiment:
    """Data + model from validated params (``model_zoo.config.validate_params``) plus ``gpu``.

    The model is built after ``seed_everything(params["seed"])``, so the same params give the same initial weights.
    Only the keys of the model's config schema and FuxiCTR's training keys reach its constructor.
    """
    from fuxictr.pytorch.torch_utils import seed_everything

    model_cls = model_cls or get_model(params["model"])
    params, files, feature_map, item_table = prepare_data(params, cache_dir=cache_dir, progress=progress, files=files)
    data = _model_data(model_cls, params, files, item_table)
    seed_everything(seed=params["seed"])
    model = model_cls(feature_map, data=data, **model_kwargs(params, model_cls))
    known = {"any": data.train_items.numpy()} if data.train_items is not None else {}  # computed once
    return Experiment(params=params, files=files, feature_map=feature_map, item_table=item_table, model=model,
                      _train_items=known)


def validated_params(expid: str, *, config_dir: Optional[str | Path] = None,
                     overrides: Optional[Mapping[str, Any]] = None, work_dir: Optional[str | Path] = None,
                     gpu: int = -1) -> Dict[str, Any]:
    """Resolve and validate ``expid`` (``model_zoo.config``), with ``gpu`` set: what :func:`build_experiment` takes."""
    from model_zoo.config import resolve_params, validate_params

    resolved = resolve_params(expid, config_dir, overrides=overrides, work_dir=work_dir)
    if "model" not in resolved.params:
        raise ConfigError(f"expid '{expid}': missing key 'model'")
    params = validate_params(resolved, get_model(resolved.params["model"]))
    params["gpu"] = gpu
    return params


def experiment_from_expid(expid: str, *, config_dir: Optional[str | Path] = None,
                          overrides: Optional[Mapping[str, Any]] = None, work_dir: Optional[str | Path] = None,
                          gpu: int = -1, progress: bool = False) -> Experiment:
    """Resolve, validate and build ``expid`` (outputs and caches under ``work_dir``, default the cwd)."""
    work = Path(work_dir) if work_dir else Path.cwd()
    params = validated_params(expid, config_dir=config_dir, overrides=overrides, work_dir=work, gpu=gpu)
    return build_experiment(params, cache_dir=work / "cache", progress=progress)
