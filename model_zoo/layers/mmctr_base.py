"""The FuxiCTR ``BaseModel`` adapted to the MMCTR batch layout, shared by every model of the zoo.

The challenge baseline (``reczoo/WWW2025_MMCTR_Challenge:src/DIN.py``) overrides ``get_inputs``, ``get_labels``,
``get_group_id`` and ``train_step`` of FuxiCTR's BaseModel because its loader yields ``(batch_dict, item_dict, mask)``
instead of one dict. Those overrides live here once, with the item-side embedding that turns ``item_dict`` into
target and history vectors, the config schema every model inherits (:meth:`MMCTRModel.config_schema`), the declaration
of extra data a model needs (:meth:`MMCTRModel.data_requirements`), atomic checkpoints and optional mixed precision.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import pickle
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from fuxictr.metrics import evaluate_metrics
from fuxictr.pytorch.layers import FeatureEmbedding
from fuxictr.pytorch.models import BaseModel
from fuxictr.utils import not_in_whitelist
from torch import Tensor, nn

from model_zoo.datasets.loader import MMCTRBatch
from model_zoo.distributed import DataParallel
from model_zoo.fileio import atomic_write
from model_zoo.errors import ConfigError, DataError, TrainingDiverged
from model_zoo.params import (DropoutRate, Loss, Optimizer, PositiveFloat, PositiveInt, Regularizer, annotations_of,
                              check_value)

__all__ = ["MMCTRModel", "DataRequirements", "ModelData", "Predictions", "TRAINING_KEYS"]

# BaseModel keys owned by the runner (declared in model_zoo.config.RUNNER_SCHEMA) that the model object receives.
TRAINING_KEYS = ("task", "monitor", "monitor_mode", "save_best_only", "early_stop_patience", "eval_steps",
                 "reduce_lr_on_plateau", "verbose", "model_root", "metrics", "amp")
# Constructor parameters that are not config keys.
_NOT_CONFIG = frozenset({"self", "feature_map", "model_id", "gpu", "data"})
ITEM_ID = "item_id"  # the item id feature of the MicroLens schema; id 0 = padding


@dataclass(frozen=True)
class DataRequirements:
    """What a model needs beyond the batches, declared by :meth:`MMCTRModel.data_requirements` and loaded by the
    experiment (``model_zoo.experiment``) before the model is built.

    Attributes:
        item_feature_columns: item_feature.parquet vector columns, delivered as dense (I + 1, dim) float tables by
            item id (row 0 and items without a row are zero).
        item_info_columns: item_info columns delivered the same way (the table the loader joins).
        train_sample_rows: a seeded sample of this many train rows (history ids and target ids), e.g. to fit
            data-dependent bucket edges; 0 = none.
        train_item_mask: the (I + 1,) bool "item id occurs in train" mask (``prepare.train_item_mask``), e.g. to
            score items unseen in train from their content.
    """

    item_feature_columns: Tuple[str, ...] = ()
    item_info_columns: Tuple[str, ...] = ()
    train_sample_rows: int = 0
    train_item_mask: bool = False


@dataclass
class ModelData:
    """The data of a :class:`DataRequirements`: ``item_vectors[column]`` (I + 1, dim); ``train_history`` (n, L) and
    ``train_target`` (n,) item ids of the sampled train rows; ``train_items`` (I + 1,) bool, True for the item ids
    that occur in train (False for id 0, the padding)."""

    item_vectors: Dict[str, Tensor] = field(default_factory=dict)
    train_history: Optional[Tensor] = None
    train_target: Optional[Tensor] = None
    train_items: Optional[Tensor] = None


@dataclass
class Predictions:
    """Per-row outputs of a split: labels, predicted probabilities, target item ids and group ids (user ids)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    target: np.ndarray
    group: Optional[np.ndarray]


def _checked_init(init: Any) -> Any:
    """Wrap a model constructor so that every argument passed explicitly is checked against its annotation
    (``model_zoo.params``): a model built from Python gets the same value checks as one built from a config."""
    @functools.wraps(init)
    def checked(self, *args: Any, **kwargs: Any) -> None:
        hints = annotations_of(init)
        bound = inspect.signature(init).bind_partial(self, *args, **kwargs)
        owner = init.__qualname__.split(".")[0]
        for name, value in bound.arguments.items():
            if name in _NOT_CONFIG or name not in hints or _takes_module(hints[name]):
                continue
            expected = check_value(value, hints[name])
            if expected:
                raise ConfigError(f"{owner}: {name}={value!r}; expected {expected}")
        init(self, *args, **kwargs)
    return checked


def _takes_module(annotation: Any) -> bool:
    args = typing.get_args(annotation) or (annotation,)
    return any(isinstance(a, type) and issubclass(a, nn.Module) for a in args)


class MMCTRModel(BaseModel):
    """BaseModel for ``MMCTRBatch`` inputs, with the shared item-side embedding.

    Shapes: B batch, L history length, D = ``item_info_dim`` (sum of the item features' embedding sizes).

    Subclasses call ``super().__init__`` first, build their layers, then call ``self.finish()``. A subclass's
    constructor signature is its config schema (``model_zoo.params`` annotations); these keys are common to all:

    Args:
        feature_map: FuxiCTR ``FeatureMap``; features with ``source: item`` form the item vector.
        embedding_dim: default embedding size of a field.
        accumulation_steps: gradient accumulation (the challenge's ``train_step``); 1 = none.
        embedding_regularizer: L2 (or "l1(x)", "l2(x)", "l1_l2(x, y)") on FuxiCTR embedding tables.
        net_regularizer: the same on every other weight.
        learning_rate, optimizer, loss: FuxiCTR ``compile`` settings (allow-listed names, never evaluated).
        item_id_dropout: in training mode only, each real item occurrence (target or history) has its ``item_id``
            embedding replaced by the learned unknown-item vector with this probability (global torch RNG, so
            seeded by ``seed``); the other item features (tags, multimodal vector) stay. 0 = off.
        unknown_item: item ids absent from train (the experiment's train item mask) get the learned unknown-item
            vector instead of their never-trained ``item_id`` row, in training and evaluation; only the ID part
            changes, so such items are scored from their content. Needs ``item_id_dropout`` > 0 to train the vector.
        data: the extra data of :meth:`data_requirements` (loaded by ``model_zoo.experiment``).
        **kwargs: FuxiCTR BaseModel keys owned by the runner (``TRAINING_KEYS``): task, monitor, metrics, ...
    """

    # Implementation switch (not a config key): embed only real history items (tested equal to embedding all rows).
    skip_padding_items: bool = True
    # Keys of *other* classes a subclass exposes (name -> owning class); see TargetAttentionModel.
    exposed_keys: ClassVar[Dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls.__dict__["__init__"])

    def __init__(self, feature_map, model_id: str = "MMCTRModel", gpu: int = -1, embedding_dim: PositiveInt = 64,
                 accumulation_steps: PositiveInt = 1, embedding_regularizer: Regularizer = 0.0,
                 net_regularizer: Regularizer = 0.0, learning_rate: PositiveFloat = 1e-3,
                 optimizer: Optimizer = "adam", loss: Loss = "binary_crossentropy", item_id_dropout: DropoutRate = 0.0,
                 unknown_item: bool = False, data: Optional[ModelData] = None, **kwargs) -> None:
        amp = kwargs.pop("amp", "off") or "off"
        # 0 means off: FuxiCTR would otherwise add 0 * ||W||^2 for every weight at every step
        super().__init__(feature_map, model_id=model_id, gpu=gpu, embedding_regularizer=embedding_regularizer or None,
                         net_regularizer=net_regularizer or None, **kwargs)
        self.accumulation_steps = int(accumulation_steps)
        self.embedding_dim = embedding_dim
        self._compile_args = (optimizer, loss, learning_rate)
        self.amp = amp
        self._grad_scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
        self.item_features: List[str] = [f for f, spec in feature_map.features.items()
                                         if spec.get("source") == "item" and spec["type"] != "meta"]
        self.row_features: List[str] = [f for f, spec in feature_map.features.items()
                                        if spec.get("source") != "item" and spec["type"] != "meta"]
        if not self.item_features:
            raise ValueError("feature_map has no feature with 'source: item'; MMCTR models need the item features")
        self.item_info_dim = sum(self._emb_dim(f) for f in self.item_features)
        self.row_emb_dim = sum(self._emb_dim(f) for f in self.row_features)
        self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
        self.item_id_dropout, self.unknown_item = float(item_id_dropout), bool(unknown_item)
        # The unknown-item ID vector (zeros: no random numbers drawn, so with both options off nothing changes).
        # FuxiCTR's identity vocab puts its OOV slot on the last real item id: a separate vector, not that row.
        self.unknown_item_embedding: Optional[nn.Parameter] = None
        self.register_buffer("train_items", None, persistent=False)  # (I + 1,) bool, reloaded from data
        if item_id_dropout > 0 or unknown_item:
            if ITEM_ID not in self.item_features:
                raise ConfigError(f"item_id_dropout / unknown_item replace the '{ITEM_ID}' embedding; the feature map "
                                  f"has no '{ITEM_ID}' item feature ({self.item_features})")
            self.unknown_item_embedding = nn.Parameter(torch.zeros(self._emb_dim(ITEM_ID)))
        if unknown_item and data is not None and data.train_items is not None:
            self.set_train_items(data.train_items)

    # ---- config schema --------------------------------------------------------------------------------------------
    @classmethod
    def config_schema(cls) -> Dict[str, Any]:
        """Config keys this model reads -> their annotation: the concrete class's own constructor parameters, the
        common ones of :class:`MMCTRModel` and the ``exposed_keys`` of intermediate classes (nothing else)."""
        schema: Dict[str, Any] = {}
        for owner in (MMCTRModel, cls):
            hints = annotations_of(owner.__init__)
            for name, prm in inspect.signature(owner.__init__).parameters.items():
                if name in _NOT_CONFIG or prm.kind in (prm.VAR_KEYWORD, prm.VAR_POSITIONAL):
                    continue
                if name not in hints:
                    raise TypeError(f"{owner.__name__}.__init__: parameter '{name}' has no annotation; every config "
                                    f"key needs a type (see model_zoo.params)")
                if _takes_module(hints[name]):  # an injected block (torchrec style), not a config value
                    continue
                schema[name] = hints[name]
        for name, owner in cls.exposed_keys.items():
            schema[name] = annotations_of(owner.__init__)[name]
        return schema

    @classmethod
    def config_conflicts(cls, params: Mapping[str, Any]) -> List[Tuple[str, str]]:
        """(key, message) for keys that are valid alone but ignored or contradictory in this combination."""
        if params.get("unknown_item") and not params.get("item_id_dropout"):
            return [("unknown_item", "key 'unknown_item: true' needs item_id_dropout > 0: the unknown-item vector is "
                                     "trained only on dropped ids (every train item is seen)")]
        return []

    @classmethod
    def data_requirements(cls, params: Mapping[str, Any]) -> DataRequirements:
        """The extra data this model needs for ``params``: the train item mask with ``unknown_item``."""
        return DataRequirements(train_item_mask=bool(params.get("unknown_item", False)))

    def _emb_dim(self, feature: str) -> int:
        spec = self.feature_map.features[feature]
        return spec.get("emb_output_dim", spec.get("embedding_dim", self.embedding_dim))

    def finish(self) -> None:
        """FuxiCTR's constructor epilogue: compile, initialise, move to device."""
        self.compile(*self._compile_args)
        self.reset_parameters()
        self.model_to_device()

    # ---- batch plumbing (the challenge's overrides) -------------------------------------------------------------
    def get_inputs(self, inputs: MMCTRBatch, feature_source=None) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Tensor]:
        batch_dict, item_dict, mask = inputs
        row_inputs = {}
        for feature, value in batch_dict.items():
            spec = self.feature_map.features.get(feature)
            if feature in self.feature_map.labels or spec is None or spec["type"] == "meta":
                continue
            if feature_source and not_in_whitelist(spec["source"], feature_source):
                continue
            row_inputs[feature] = value.to(self.device)
        item_inputs = {k: v.to(self.device) for k, v in item_dict.items() if k in self.item_features}
        return row_inputs, item_inputs, mask.to(self.device)

    def get_labels(self, inputs: MMCTRBatch) -> Tensor:
        return inputs.batch_dict[self.feature_map.labels[0]].to(self.device).float().view(-1, 1)

    def get_group_id(self, inputs: MMCTRBatch) -> Tensor:
        return inputs.batch_dict[self.feature_map.group_id]

    # ---- precision ------------------------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context of the ``amp`` setting (bf16 on CPU or CUDA, fp16 on CUDA); a no-op when off."""
        if self.amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _predict(self, batch: MMCTRBatch) -> Dict[str, Tensor]:
        """``forward`` under autocast, with ``y_pred`` back in float32 (BCE is unsafe under autocast)."""
        with self.autocast():
            out = self.forward(batch)
        out["y_pred"] = out["y_pred"].float()
        return out

    # ---- data parallelism (model_zoo.distributed) ------------------------------------------------------------------
    data_parallel: Optional[DataParallel] = None  # set by set_data_parallel; None = a single process

    def set_data_parallel(self, data_parallel: Optional[DataParallel]) -> None:
        """Train as one rank of ``data_parallel``: gradients averaged over the ranks before every optimiser step,
        rank 0 alone evaluates (its metrics broadcast to all) and writes checkpoints. The train loader must be
        sharded (``MMCTRDataLoader.shard``) so the ranks see different rows."""
        self.data_parallel = data_parallel

    def train_step(self, batch_data: MMCTRBatch) -> Tensor:
        """One step with the challenge's gradient accumulation over ``accumulation_steps`` batches."""
        return_dict = self._predict(batch_data)
        finite = bool(torch.isfinite(return_dict["y_pred"]).all())
        if self.data_parallel is not None:  # every rank stops together, none waits in an all-reduce
            finite = self.data_parallel.all_true(finite, self.device)
        if not finite:  # BCE would raise an opaque error on NaN
            self._diverged("predictions are NaN" + (" (on some rank)" if self.data_parallel else ""))
        loss = self.compute_loss(return_dict, self.get_labels(batch_data)) / self.accumulation_steps
        if not torch.isfinite(loss):
            self._diverged(f"the loss is {loss.item()}")
        scaler = self._grad_scaler
        (scaler.scale(loss) if scaler else loss).backward()
        if (self._batch_index + 1) % self.accumulation_steps == 0 or self._batch_index + 1 == self._steps_per_epoch:
            if self.data_parallel is not None:
                self.data_parallel.average_gradients(self.parameters())
            if scaler:
                scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.parameters(), self._max_gradient_norm)
            if scaler:
                scaler.step(self.optimizer)
                scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad()
        return loss * self.accumulation_steps

    def _diverged(self, what: str) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        raise TrainingDiverged(f"training diverged: {what} at batch {self._batch_index + 1} of epoch "
                               f"{self._epoch_index + 1} (learning_rate={lr:g}); lower learning_rate or set amp: off")

    # ---- evaluation -----------------------------------------------------------------------------------------------
    def predict_split(self, data_generator) -> Predictions:
        """Labels, predictions, target ids and group ids of every row of ``data_generator``, in row order."""
        self.eval()
        y_true, y_pred, target, group = [], [], [], []
        with torch.no_grad():
            for batch in data_generator:
                y_pred.append(self._predict(batch)["y_pred"].cpu().numpy().reshape(-1))
                y_true.append(self.get_labels(batch).cpu().numpy().reshape(-1))
                rows = batch.mask.shape[0]
                target.append(batch.item_dict["item_id"].view(rows, -1)[:, -1].numpy())
                if self.feature_map.group_id is not None and self.feature_map.group_id in batch.batch_dict:
                    group.append(self.get_group_id(batch).numpy().reshape(-1))
        cat = (lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
        return Predictions(cat(y_true, np.float64), cat(y_pred, np.float64), cat(target, np.int64),
                           cat(group, np.int64) if group else None)

    def evaluate(self, data_generator, metrics=None) -> Dict[str, float]:
        """FuxiCTR's ``evaluate`` (used by ``fit`` for early stopping) on :meth:`predict_split`; with data
        parallelism rank 0 evaluates and every rank gets its metrics."""
        if self.data_parallel is not None and not self.data_parallel.is_main:
            return self.data_parallel.broadcast(None)
        pred = self.predict_split(data_generator)
        logs = evaluate_metrics(pred.y_true, pred.y_pred, metrics or self.validation_metrics, pred.group)
        logging.info("[Metrics] " + " - ".join(f"{k}: {v:.6f}" for k, v in logs.items()))
        return self.data_parallel.broadcast(logs) if self.data_parallel is not None else logs

    def predict(self, data_generator) -> np.ndarray:
        return self.predict_split(data_generator).y_pred

    # ---- checkpoints ----------------------------------------------------------------------------------------------
    def save_weights(self, checkpoint: str) -> None:
        """``torch.save`` through a temp file, fsync and a rename: a crash or a full disk never leaves half a
        checkpoint, and an earlier checkpoint at ``checkpoint`` stays as it was.

        The bytes go through a Python file object, so a failed write raises ``OSError`` (``ENOSPC``, ``EFBIG``)
        naming the checkpoint; given a path, torch's own writer reports it as an opaque ``RuntimeError``.
        """
        if self.data_parallel is not None and not self.data_parallel.is_main:
            return  # rank 0 holds the same weights and writes them
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                torch.save(self.state_dict(), fh)
                fh.flush()
                os.fsync(fh.fileno())
        try:
            atomic_write(checkpoint, write)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write the checkpoint: {exc.strerror or exc}", str(checkpoint)) \
                from exc

    def load_weights(self, checkpoint: str) -> None:
        """Load a checkpoint of this model (tensors only: ``weights_only``, no pickled code is ever run).

        A damaged, truncated or foreign file raises DataError naming it instead of torch's internal error.
        """
        if self.data_parallel is not None and not self.data_parallel.is_main:
            return  # only rank 0 wrote (and evaluates) the checkpoint
        self.to(self.device)
        try:
            state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError("checkpoint not found", path=str(checkpoint)) from None
        except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise DataError(f"not a loadable checkpoint ({reason}); the file is damaged or was not written by "
                            f"the zoo", path=str(checkpoint)) from None
        try:
            self.load_state_dict(state_dict)
        except (RuntimeError, TypeError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise DataError(f"checkpoint does not fit {type(self).__name__} as configured ({reason})",
                            path=str(checkpoint)) from None

    # ---- unseen items ---------------------------------------------------------------------------------------------
    def set_train_items(self, train_items: Tensor) -> None:
        """Hold the (I + 1,) bool "occurs in train" mask used by ``unknown_item`` (the constructor does this from its
        ``data``)."""
        mask = torch.as_tensor(train_items, dtype=torch.bool).reshape(-1)
        vocab = self.feature_map.features[ITEM_ID].get("vocab_size")
        if vocab is not None and mask.numel() < vocab:
            raise ValueError(f"train_items has {mask.numel()} entries; expected the item_id vocab_size {vocab}")
        self.train_items = mask.to(self.device)

    def unknown_item_rows(self, item_ids: Tensor) -> Optional[Tensor]:
        """(n,) bool: the occurrences whose ``item_id`` embedding becomes the unknown-item vector, or None when
        both options are off. Padding (id 0) is never replaced; ``unknown_item``: ids absent from train;
        ``item_id_dropout`` (training mode only): each real occurrence with that probability."""
        if self.unknown_item_embedding is None:
            return None
        real = item_ids != 0
        replace = torch.zeros_like(real)
        if self.unknown_item:
            if self.train_items is None:
                raise RuntimeError("unknown_item=True: no train item mask; build the model with "
                                   "data=ModelData(train_items=...) (model_zoo.experiment does) or set_train_items()")
            replace = real & ~self.train_items[item_ids]
        if self.training and self.item_id_dropout > 0:
            replace = replace | (real & (torch.rand(item_ids.shape, device=item_ids.device) < self.item_id_dropout))
        return replace

    def embed_item_features(self, inputs: Dict[str, Tensor], features: Optional[Sequence[str]] = None) -> Tensor:
        """Flat embeddings (n, D_f) of the item-side ``features`` (default: every key of ``inputs``), in feature map
        order, with the unknown-item vector in place of the ``item_id`` part where :meth:`unknown_item_rows` says."""
        if features is not None:
            inputs = {f: inputs[f] for f in features}
        replace = self.unknown_item_rows(inputs[ITEM_ID].reshape(-1)) if ITEM_ID in inputs else None
        if replace is None:
            return self.embedding_layer(inputs, flatten_emb=True)
        embedder = self.embedding_layer.embedding_layer  # FuxiCTR FeatureEmbeddingDict
        emb = embedder(inputs)  # feature -> (n, size)
        unknown = self.unknown_item_embedding.to(emb[ITEM_ID].dtype)
        emb[ITEM_ID] = torch.where(replace.unsqueeze(-1), unknown, emb[ITEM_ID])
        return embedder.dict2tensor(emb, flatten_emb=True)

    # ---- shared embeddings --------------------------------------------------------------------------------------
    def embed_rows(self, row_inputs: Dict[str, Tensor]) -> Tensor:
        """Per-row (context) field embeddings stacked as fields: (B, F_row, d); requires equal field sizes."""
        return self.embedding_layer(row_inputs, flatten_emb=False)

    def embed_items(self, item_inputs: Dict[str, Tensor], batch_size: int) -> Tuple[Tensor, Tensor]:
        """Target (B, D) and history (B, L, D) item vectors from the joined item features.

        With ``skip_padding_items`` only the rows of real items are embedded; padding rows (item id 0) are filled
        with zeros. That is what they embed to anyway (FuxiCTR's ``padding_idx`` rows, pooled all-padding tags, the
        all-zero item_info row 0 through a bias-free projection), and it skips most rows: MicroLens-like histories
        are mostly padding.
        """
        if self.skip_padding_items and "item_id" in item_inputs:
            real = (item_inputs["item_id"] != 0).nonzero(as_tuple=True)[0]  # rows of real items
            real_emb = self.embed_item_features({k: v[real] for k, v in item_inputs.items()})
            num_rows = item_inputs["item_id"].shape[0]
            item_emb = real_emb.new_zeros(num_rows, self.item_info_dim).index_copy(0, real, real_emb)
        else:
            item_emb = self.embed_item_features(item_inputs)  # (B * (L + 1), D)
        item_emb = item_emb.view(batch_size, -1, self.item_info_dim)
        # the target is the last of the L + 1 joined rows
        return item_emb[:, -1, :], item_emb[:, :-1, :]

    def embed_valid_items(self, item_inputs: Dict[str, Tensor], mask: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Padding-free item embedding: target (B, D), and the valid history items as rows (n,) and vectors (n, D).

        ``rows``/``seq`` list the valid (row, position) pairs of ``mask`` in row-major order, as
        ``mask.nonzero()`` does, so ``seq[k] == embed_items(...)[1][rows[k], cols[k]]``. Only the n + B real rows
        are gathered and embedded; nothing of size (B, L, D) is allocated, forward or backward.
        """
        batch_size, max_len = mask.shape
        rows, cols = mask.nonzero(as_tuple=True)
        targets = torch.arange(batch_size, device=mask.device)
        picked = torch.cat([rows * (max_len + 1) + cols, targets * (max_len + 1) + max_len])  # flat joined rows
        item_emb = self.embed_item_features({k: v.index_select(0, picked) for k, v in item_inputs.items()})  # (n + B, D)
        num_valid = rows.numel()
        return item_emb[num_valid:], rows, item_emb[:num_valid]


MMCTRModel.__init__ = _checked_init(MMCTRModel.__init__)
