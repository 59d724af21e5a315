"""Experiment configuration: where YAML comes from, FuxiCTR's ``Base`` < expid < dataset merge, overrides, checks.

Sources, in the order they are searched:

* ``--config DIR`` (FuxiCTR layout: ``model_config.yaml`` or ``model_config/*.yaml``, ``dataset_config.yaml`` or
  ``dataset_config/*.yaml``), e.g. a tuner's expanded dir or a dataset built by ``model_zoo.apps.build_dataset``;
* the zoo's own config, shipped with the package: ``Base`` and every dataset in ``config/`` (``model_zoo/_config`` in an
  installed wheel) and each model's expids in ``model_zoo/<Model>/model_config.yaml`` (an expid defined twice is an
  error).

Merge (FuxiCTR's ``load_config`` order): our ``Base`` < the user's ``Base`` < the expid block < the dataset block <
``--set key=value`` overrides. Relative paths in a user's file are taken relative to that file's folder; in the zoo's
own files (``./data/...``, ``./checkpoints/``) relative to the work dir (``--output-dir``, default the current
directory), so an installed zoo writes into the directory it is run from, never into its own package.

Checks (:func:`validate_params`) run before any data is read or any model is built and report every problem at once:
each key must be read by the runner, the data path or the concrete model (its constructor signature is its schema:
``model_zoo.params``), and each value must fit its type and range. Names FuxiCTR would ``eval`` are allow-listed.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import yaml

from model_zoo.errors import ConfigError, did_you_mean
from model_zoo.fileio import atomic_write_text
from model_zoo.schema import DATA_FILES, SPLITS
from model_zoo.params import (Metric, Name, NonNegativeInt, PositiveFloat, PositiveInt, Range, check_value,
                              coerce_value, describe)

__all__ = ["PACKAGE_DIR", "CONFIG_DIR", "read_yaml", "config_file", "dataset_block", "list_expids", "Resolved",
           "resolve_params", "load_params", "validate_params", "parse_overrides", "dump_params", "RUNNER_SCHEMA",
           "PATH_KEYS", "load_keyed_config", "list_dataset_ids", "dataset_params", "absolute_paths",
           "config_blocks"]

PACKAGE_DIR = Path(__file__).resolve().parent


def _find_config_dir() -> Path:
    shipped = PACKAGE_DIR / "_config"  # an installed wheel (setup.py maps config/ to model_zoo/_config)
    return shipped if shipped.is_dir() else PACKAGE_DIR.parent / "config"  # a source checkout


CONFIG_DIR = _find_config_dir()
class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available: about 10x faster
    """Safe YAML with YAML 1.2 floats: ``1e-3`` and ``1e30`` read as numbers (YAML 1.1 reads them as strings)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))

# Keys holding file or directory paths (resolved to absolute paths while loading).
PATH_KEYS = ("data_root", "model_root", "train_data", "valid_data", "test_data", "item_info", "item_feature")

_Path = str

# The keys the runner, the data path and FuxiCTR's BaseModel read, with their types. Defaults live in the Base block
# of config/model_config.yaml; a key marked optional may be absent (it then reads as null).
RUNNER_SCHEMA: Mapping[str, Tuple[Any, bool, str]] = {
    # experiment
    "model": (str, True, "registry name of the model class"),
    "dataset_id": (Name, True, "dataset block in dataset_config.yaml"),
    "model_root": (_Path, True, "checkpoints and run records go to <model_root>/<dataset_id>/<expid>/<run id>/"),
    "seed": (NonNegativeInt, True, "seed of the model initialisation, dropout and shuffle"),
    "verbose": (Literal[0, 1, 2], True, "0 quiet, 1 progress bars"),
    "embedding_variant": (Optional[str], False, "V1..V6c item-embedding variant; null = the dataset's own"),
    "amp": (Literal["off", "bf16", "fp16"], True, "mixed precision (fp16 needs CUDA)"),
    "deterministic": (bool, True, "CPU: same seed and threads -> bit-identical metrics, also on a loaded machine "
                                  "(MKL GEMMs single-threaded; see model_zoo.device.deterministic_cpu)"),
    # training (FuxiCTR BaseModel.fit / the runner)
    "batch_size": (PositiveInt, True, "rows per training batch"),
    "eval_batch_size": (Optional[PositiveInt], False, "rows per evaluation batch; null = batch_size"),
    "epochs": (PositiveInt, True, "training epochs (early stopping may end sooner)"),
    "shuffle": (bool, True, "reshuffle training rows every epoch (seeded)"),
    "max_len": (PositiveInt, True, "most recent history items kept"),
    "max_gradient_norm": (PositiveFloat, True, "gradient clipping"),
    "metrics": (Tuple[Metric, ...], True, "evaluation metrics"),
    "task": (Literal["binary_classification"], True, "sigmoid output, BCE loss"),
    "monitor": (Union[Metric, Dict[Metric, float]], True, "early-stopping metric or weighted metrics"),
    "monitor_mode": (Literal["max", "min"], True, "max | min"),
    "early_stop_patience": (PositiveInt, True, "non-improving evaluations before stopping"),
    "save_best_only": (bool, True, "checkpoint only on improvement"),
    "reduce_lr_on_plateau": (bool, True, "each non-improving evaluation multiplies the lr by 0.1"),
    "eval_steps": (Optional[PositiveInt], False, "evaluate every N batches; null = once per epoch"),
    "group_id": (Optional[str], False, "meta feature used by group metrics (gAUC)"),
    "use_features": (Optional[Tuple[str, ...]], False, "restrict the feature map to these features"),
    "feature_specs": (Optional[Tuple[Dict[str, Any], ...]], False, "per-feature overrides (name, embedding_dim)"),
    # data (the dataset block)
    "data_root": (_Path, True, "synthetic worlds are generated into <data_root>/<dataset_id>/"),
    "data_format": (Literal["parquet"], True, "the MMCTR files are parquet"),
    "rebuild_dataset": (Literal[False], True, "MMCTR files are already id-encoded: vocabularies come from vocab_size"),
    "train_data": (_Path, True, "train split"),
    "valid_data": (_Path, True, "valid split"),
    "test_data": (Optional[_Path], False, "test split"),
    "item_info": (_Path, True, "item_info.parquet (dense, row 0 = padding)"),
    "item_feature": (Optional[_Path], False, "item_feature.parquet (raw text/image vectors)"),
    "test_has_labels": (Optional[bool], False, "false: test is predicted, not scored; null = true"),
    "feature_cols": (Tuple[Dict[str, Any], ...], True, "FuxiCTR feature columns"),
    "label_col": (Dict[str, Any], True, "label column: {name, dtype}"),
    "synthetic": (Optional[Dict[str, Any]], False, "generator of a synthetic world: {world, preset, seed, ...}"),
}
# Files of a synthetic world, inside <data_root>/<dataset_id>/.
SYNTHETIC_FILES = {**{f"{split}_data": f"{split}.parquet" for split in SPLITS},
                   **{Path(name).stem: name for name in DATA_FILES if Path(name).stem in ("item_info", "item_feature")}}
# Set by the loader or the CLI, never by a config file.
_DERIVED_KEYS = {"model_id": "the expid", "gpu": "--gpu"}
# FuxiCTR keys that nothing in the zoo reads: named so that the error says why, not just "unknown".
_UNREAD_FUXICTR_KEYS = ("num_workers", "pickle_feature_encoder", "feature_config", "debug_mode", "min_categr_count",
                        "data_block_size", "streaming", "num_items", "item_emb", "valid_size", "test_size",
                        "split_type")

# feature_cols entries: allowed keys and values (dtype and feature_encoder strings reach eval inside FuxiCTR).
_FEATURE_COL_KEYS: Mapping[str, Any] = {
    "name": Union[str, Tuple[str, ...]], "active": bool, "dtype": Literal["int", "float", "str"],
    "type": Literal["categorical", "sequence", "embedding", "meta"], "vocab_size": Annotated[int, Range(low=2)],
    "max_len": PositiveInt, "source": Literal["item", "user", "context"], "embedding_dim": PositiveInt,
    "pretrain_dim": PositiveInt, "feature_encoder": type(None), "padding": Literal["pre", "post"],
    "share_embedding": str,
}
_FEATURE_SPEC_KEYS: Mapping[str, Any] = {"name": str, "embedding_dim": PositiveInt, "feature_encoder": type(None)}
_LABEL_COL_KEYS: Mapping[str, Any] = {"name": str, "dtype": Literal["float", "int"]}


# ---------------------------------------------------------------------------------------------------------------------
# Reading YAML
# ---------------------------------------------------------------------------------------------------------------------
def read_yaml(path: str | os.PathLike) -> Dict[str, Any]:
    """The one YAML reader of the zoo: a mapping at the top level, or ConfigError naming the file."""
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_YamlLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of blocks at the top level, found {type(data).__name__}")
    return data


def config_file(name: str) -> Path:
    """A config file shipped with the zoo, e.g. ``config_file("embeddings.yaml")`` or ``"tuner/x.yaml"``."""
    return CONFIG_DIR / name


def load_keyed_config(path: str | os.PathLike, kind: str, allowed: Iterable[str]) -> Dict[str, Any]:
    """A small YAML config (``kind`` names it in errors): found as given, else among the shipped config files;
    a key outside ``allowed`` fails with a did-you-mean."""
    given = Path(path)
    path = given if given.is_file() or given.is_absolute() else (
        config_file(str(given)[len("config/"):]) if str(given).startswith("config/") else given)
    if not path.is_file():
        raise ConfigError(f"{kind} {given}: not found")
    cfg = read_yaml(path)
    allowed = tuple(allowed)
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}'{did_you_mean(unknown[0], allowed)}; "
                          f"expected a subset of {allowed}")
    return cfg


# ---------------------------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Block:
    name: str
    values: Any
    path: Path
    shipped: bool  # the zoo's own file: relative paths are taken relative to the work dir

    def where(self) -> str:
        return f"{self.path} (block '{self.name}')"


def _yaml_files(config_dir: Path, stem: str) -> List[Path]:
    """FuxiCTR layout: ``<stem>.yaml`` or every ``<stem>/*.yaml`` in ``config_dir``."""
    single = config_dir / f"{stem}.yaml"
    if single.is_file():
        return [single]
    return [Path(p) for p in sorted(glob.glob(str(config_dir / stem / "*.yaml")))]


def _shipped_model_files() -> List[Path]:
    return _yaml_files(CONFIG_DIR, "model_config") + sorted(PACKAGE_DIR.glob("*/model_config.yaml"))


def _blocks(files: Iterable[Path], *, shipped: bool, duplicates: str) -> Dict[str, _Block]:
    """Blocks by name; ``duplicates``: "error" (a name in two files fails) or "first" (the first file wins)."""
    out: Dict[str, _Block] = {}
    for path in files:
        for name, values in read_yaml(path).items():
            if name in out:
                if duplicates == "first" or name == "Base":
                    continue
                raise ConfigError(f"block '{name}' is defined twice: {out[name].path} and {path}")
            out[str(name)] = _Block(str(name), values, path, shipped)
    return out


def _user_dir(config_dir: Optional[str | os.PathLike]) -> Optional[Path]:
    if config_dir is None:
        return None
    cdir = Path(config_dir).expanduser().resolve()
    if not cdir.is_dir():
        raise ConfigError(f"--config {config_dir}: not a directory (expected a folder with model_config.yaml "
                          f"and/or dataset_config.yaml)")
    return cdir


def _expid_blocks(cdir: Optional[Path]) -> Tuple[Dict[str, _Block], List[_Block]]:
    """Expid blocks (user's first) and the Base blocks to merge, ours first."""
    ours = _blocks(_shipped_model_files(), shipped=True, duplicates="error")
    bases = [ours.pop("Base")] if "Base" in ours else []
    if cdir is None:
        return ours, bases
    theirs = _blocks(_yaml_files(cdir, "model_config"), shipped=False, duplicates="first")
    if "Base" in theirs:
        bases.append(theirs.pop("Base"))
    return {**ours, **theirs}, bases


def _dataset_blocks(cdir: Optional[Path]) -> Dict[str, _Block]:
    ours = _blocks(_yaml_files(CONFIG_DIR, "dataset_config"), shipped=True, duplicates="error")
    if cdir is None:
        return ours
    theirs = _blocks(_yaml_files(cdir, "dataset_config"), shipped=False, duplicates="first")
    return {**ours, **theirs}


def list_expids(config_dir: Optional[str | os.PathLike] = None) -> List[str]:
    """Every expid visible to the runner (our model folders, plus ``config_dir``'s)."""
    return sorted(_expid_blocks(_user_dir(config_dir))[0])


def list_dataset_ids(config_dir: Optional[str | os.PathLike] = None) -> List[str]:
    """Every dataset id declared (ours, plus ``config_dir``'s)."""
    return sorted(_dataset_blocks(_user_dir(config_dir)))


def dataset_block(dataset_id: str, config_dir: Optional[str | os.PathLike] = None) -> Dict[str, Any]:
    """The dataset block ``dataset_id`` as declared (``config_dir``'s dataset_config first, then the zoo's)."""
    datasets = _dataset_blocks(_user_dir(config_dir))
    if dataset_id not in datasets:
        raise ConfigError(f"unknown dataset_id '{dataset_id}'{did_you_mean(dataset_id, datasets)}; "
                          f"declared: {', '.join(sorted(datasets))}")
    block = datasets[dataset_id]
    if not isinstance(block.values, dict):
        raise ConfigError(f"{block.where()}: expected a mapping of key: value, found {type(block.values).__name__}")
    return dict(block.values)


# ---------------------------------------------------------------------------------------------------------------------
# Resolving one expid
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class Resolved:
    """The flat params of one expid, with where each key came from (for error messages and the run record)."""

    expid: str
    params: Dict[str, Any]
    origin: Dict[str, str] = field(default_factory=dict)
    overrides: Dict[str, Any] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return self.origin.get(key, "(default)")


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``["key=value", ...]`` (``--set``) -> dict; values are YAML scalars or flow collections (``[64, 32]``)."""
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set embedding_variant=V4")
        try:
            out[key] = yaml.load(raw, Loader=_YamlLoader) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML: {' '.join(str(exc).split())}") from exc
    return out


def _absolute(value: Any, base: Path) -> Any:
    if not isinstance(value, str) or not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def absolute_paths(block: Mapping[str, Any], base: Path) -> Dict[str, Any]:
    """``block`` with the values of its path keys (``PATH_KEYS``) made absolute against ``base``."""
    return {k: _absolute(v, base) if k in PATH_KEYS else v for k, v in block.items()}


def config_blocks(config_dir: str | os.PathLike, stem: str) -> Dict[str, Tuple[Any, Path]]:
    """Blocks of a FuxiCTR-style dir (``<stem>.yaml`` or ``<stem>/*.yaml``; the first file wins): name -> (block,
    the file it came from)."""
    blocks = _blocks(_yaml_files(Path(config_dir), stem), shipped=False, duplicates="first")
    return {name: (b.values, b.path) for name, b in blocks.items()}


def resolve_params(expid: str, config_dir: Optional[str | os.PathLike] = None, *,
                   overrides: Optional[Mapping[str, Any]] = None,
                   work_dir: Optional[str | os.PathLike] = None) -> Resolved:
    """Merge ``expid``'s params (see the module docstring); paths made absolute. No value checks yet."""
    problem = check_value(expid, Name)
    if problem:
        raise ConfigError(f"--expid {expid!r}: expected {problem}")
    cdir = _user_dir(config_dir)
    work = Path(work_dir).expanduser().resolve() if work_dir else Path.cwd()
    expids, bases = _expid_blocks(cdir)
    if expid not in expids:
        known = sorted(expids)
        raise ConfigError(f"unknown expid '{expid}'{did_you_mean(expid, known)}; {len(known)} known, e.g. "
                          f"{', '.join(known[:8])} (python -m model_zoo.apps.runner --list)")
    params: Dict[str, Any] = {}
    origin: Dict[str, str] = {}
    for block in bases + [expids[expid]]:
        _merge_block(block, params, origin, work)
    if "dataset_id" in (overrides or {}):  # --set dataset_id=X runs the expid on dataset X
        params["dataset_id"], origin["dataset_id"] = overrides["dataset_id"], "--set"
    if params.get("dataset_id") is None:
        raise ConfigError(f"{expids[expid].where()}: missing key 'dataset_id'")
    _merge_dataset(params, origin, cdir, work, overrides or {})
    for key in _DERIVED_KEYS:
        if key in params:
            raise ConfigError(f"{origin[key]}: key '{key}' is set from {_DERIVED_KEYS[key]}, not in a config file")
    params["model_id"] = expid
    return Resolved(expid, params, origin, dict(overrides or {}))


def _merge_block(block: _Block, params: Dict[str, Any], origin: Dict[str, str], work: Path) -> None:
    if not isinstance(block.values, dict):
        raise ConfigError(f"{block.where()}: expected a mapping of key: value, found "
                          f"{type(block.values).__name__} {block.values!r}")
    base = work if block.shipped else block.path.parent
    for key, value in block.values.items():
        params[str(key)] = _absolute(value, base) if key in PATH_KEYS else value
        origin[str(key)] = block.where()


def _merge_dataset(params: Dict[str, Any], origin: Dict[str, str], cdir: Optional[Path], work: Path,
                   overrides: Mapping[str, Any]) -> None:
    """Merge the block of ``params["dataset_id"]`` (dataset keys override model keys), then ``overrides``; derive
    a synthetic world's file paths from its data_root."""
    dataset_id = params["dataset_id"]
    datasets = _dataset_blocks(cdir)
    if check_value(dataset_id, Name) is not None:
        raise ConfigError(f"{origin.get('dataset_id', 'dataset_id')}: dataset_id={dataset_id!r}; expected "
                          f"{describe(Name)}")
    if dataset_id not in datasets:
        raise ConfigError(f"{origin.get('dataset_id', 'dataset_id')}: dataset_id={dataset_id!r} is not declared"
                          f"{did_you_mean(str(dataset_id), datasets)}; declared: {', '.join(sorted(datasets))}")
    _merge_block(datasets[dataset_id], params, origin, work)
    for key, value in overrides.items():
        params[key] = _absolute(value, Path.cwd()) if key in PATH_KEYS else value
        origin[key] = "--set"
    if isinstance(params.get("synthetic"), dict) and isinstance(params.get("data_root"), str):
        # a synthetic world's files are where its generator writes them: <data_root>/<dataset_id>/<file>
        world = Path(params["data_root"]) / str(dataset_id)
        for key, name in SYNTHETIC_FILES.items():
            if key in params and origin.get(key) != "--set":
                raise ConfigError(f"{origin[key]}: key '{key}' is not allowed in a synthetic dataset block; its files "
                                  f"are {world}/<file> (move them with data_root)")
            params.setdefault(key, str(world / name))
            origin.setdefault(key, f"{origin['synthetic']} (derived from data_root)")


def dataset_params(dataset_id: str, config_dir: Optional[str | os.PathLike] = None, *,
                   work_dir: Optional[str | os.PathLike] = None) -> Dict[str, Any]:
    """The dataset block ``dataset_id`` with paths resolved like the runner's (for tools that need a dataset only)."""
    work = Path(work_dir).expanduser().resolve() if work_dir else Path.cwd()
    params: Dict[str, Any] = {"dataset_id": dataset_id}
    _merge_dataset(params, {}, _user_dir(config_dir), work, {})
    return params


def load_params(expid: str, config_dir: Optional[str | os.PathLike] = None, *,
                overrides: Optional[Mapping[str, Any]] = None,
                work_dir: Optional[str | os.PathLike] = None) -> Dict[str, Any]:
    """Merged params of ``expid`` (not yet validated; see :func:`validate_params`)."""
    return resolve_params(expid, config_dir, overrides=overrides, work_dir=work_dir).params


# ---------------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------------
def _check_mapping_list(entries: Any, allowed: Mapping[str, Any], what: str, problems: List[str]) -> None:
    if entries is None:
        return
    if not isinstance(entries, (list, tuple)):
        problems.append(f"{what}: expected a list of mappings, found {type(entries).__name__}")
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"{what}[{i}]: expected a mapping, found {entry!r}")
            continue
        label = f"{what}[{i}] ({entry.get('name')!r})" if "name" in entry else f"{what}[{i}]"
        if "name" not in entry:
            problems.append(f"{label}: missing key 'name'")
        for key, value in entry.items():
            if key not in allowed:
                problems.append(f"{label}: unknown key '{key}'{did_you_mean(str(key), allowed)}; expected one of "
                                f"{tuple(allowed)}")
                continue
            expected = check_value(value, allowed[key])
            if expected:
                if key in ("feature_encoder",):
                    expected += " (FuxiCTR evaluates feature_encoder strings; the zoo accepts only null)"
                problems.append(f"{label}: {key}={value!r}; expected {expected}")


def _feature_names(params: Mapping[str, Any]) -> List[str]:
    names: List[str] = []
    for col in params.get("feature_cols") or ():
        if isinstance(col, dict):
            name = col.get("name")
            names += [str(n) for n in name] if isinstance(name, list) else [str(name)]
    return names


def _check_features(params: Mapping[str, Any], problems: List[str]) -> None:
    """feature_cols, label_col, feature_specs, use_features, group_id: shapes, allowed keys, allowed values."""
    _check_mapping_list(params.get("feature_cols"), _FEATURE_COL_KEYS, "feature_cols", problems)
    cols = [c for c in params.get("feature_cols") or () if isinstance(c, dict)]
    names = _feature_names(params)
    seen = set()
    for col in cols:
        col_names = col.get("name") if isinstance(col.get("name"), list) else [col.get("name")]
        for n in col_names:
            if n in seen:
                problems.append(f"feature_cols: feature '{n}' is declared twice")
            seen.add(n)
        ftype = col.get("type")
        if ftype in ("categorical", "sequence") and "vocab_size" not in col:
            problems.append(f"feature_cols ({col.get('name')!r}): missing key 'vocab_size' (rebuild_dataset: False "
                            f"takes vocabularies from it: the largest id + 1, padding 0 included)")
        if ftype == "sequence" and "max_len" not in col:
            problems.append(f"feature_cols ({col.get('name')!r}): missing key 'max_len' for a sequence feature")
        if "type" not in col:
            problems.append(f"feature_cols ({col.get('name')!r}): missing key 'type'")
    for required, need in (("item_id", "the target item id (categorical, source: item)"),
                           ("item_seq", "the history (meta)")):
        if cols and required not in names:
            problems.append(f"feature_cols: no feature '{required}' ({need}); the MMCTR data path needs it")
    label = params.get("label_col")
    if isinstance(label, dict):
        for key in label:
            if key not in _LABEL_COL_KEYS:
                problems.append(f"label_col: unknown key '{key}'{did_you_mean(str(key), _LABEL_COL_KEYS)}")
            elif check_value(label[key], _LABEL_COL_KEYS[key]):
                problems.append(f"label_col: {key}={label[key]!r}; expected {describe(_LABEL_COL_KEYS[key])}")
        if "name" not in label:
            problems.append("label_col: missing key 'name'")
    _check_mapping_list(params.get("feature_specs"), _FEATURE_SPEC_KEYS, "feature_specs", problems)
    for i, spec in enumerate(params.get("feature_specs") or ()):
        if isinstance(spec, dict) and "name" in spec and names and spec["name"] not in names:
            problems.append(f"feature_specs[{i}]: name={spec['name']!r} is not a feature"
                            f"{did_you_mean(str(spec['name']), names)}; features: {', '.join(names)}")
    for name in params.get("use_features") or ():
        if names and name not in names:
            problems.append(f"use_features: {name!r} is not a feature{did_you_mean(str(name), names)}")
    group_id = params.get("group_id")
    if group_id is not None and names and group_id not in names:
        problems.append(f"group_id={group_id!r} is not a feature{did_you_mean(str(group_id), names)}")


def validate_params(resolved: Resolved | Mapping[str, Any], model_cls: type) -> Dict[str, Any]:
    """Check every key and value of the merged params against the runner's and ``model_cls``'s schema.

    Returns the params with values coerced to the declared forms (e.g. an integer regularizer becomes a float) and
    optional runner keys filled with null. Raises one ConfigError listing every problem: where the key came from,
    the key, the value and what was expected. Unknown keys get a did-you-mean.
    """
    if not isinstance(resolved, Resolved):
        resolved = Resolved(str(resolved.get("model_id", "?")), dict(resolved))
    params = resolved.params
    model_schema = model_cls.config_schema()
    schema: Dict[str, Any] = {k: v[0] for k, v in RUNNER_SCHEMA.items()}
    schema.update(model_schema)
    problems: List[str] = []
    for key in sorted(params):
        if key == "model_id":
            continue
        if key not in schema:
            if key in _UNREAD_FUXICTR_KEYS:
                problems.append(f"{resolved.where(key)}: key '{key}' is read by nothing in the zoo; remove it")
            else:
                problems.append(f"{resolved.where(key)}: unknown key '{key}' for {model_cls.__name__}"
                                f"{did_you_mean(key, schema)}")
            continue
        expected = check_value(params[key], schema[key])
        if expected:
            problems.append(f"{resolved.where(key)}: {key}={params[key]!r}; expected {expected}")
    for key, (_, required, doc) in RUNNER_SCHEMA.items():
        if required and key not in params:
            problems.append(f"expid '{resolved.expid}': missing key '{key}' ({doc}; expected "
                            f"{describe(RUNNER_SCHEMA[key][0])})")
    feature_problems: List[str] = []
    _check_features(params, feature_problems)
    for problem in feature_problems:  # each message starts with its key: feature_cols[0]..., label_col: ..., group_id=
        key = re.match(r"[a-z_]+", problem).group(0)
        problems.append(f"{resolved.where(key)}: {problem}")
    monitor = params.get("monitor")
    metrics = params.get("metrics") or ()
    for name in (monitor if isinstance(monitor, dict) else [monitor] if monitor else []):
        if isinstance(metrics, (list, tuple)) and name not in metrics and check_value(name, Metric) is None:
            problems.append(f"{resolved.where('monitor')}: monitor metric {name!r} is not among metrics {metrics}")
    variant = params.get("embedding_variant")
    if isinstance(variant, str):
        from model_zoo.embeddings.variant_config import canonical_variant
        try:
            canonical_variant(variant)
        except ConfigError as exc:
            problems.append(f"{resolved.where('embedding_variant')}: {exc}")
    if not problems:  # model-specific combinations need well-typed values
        problems += [f"{resolved.where(k)}: {msg}" for k, msg in model_cls.config_conflicts(params)]
    if problems:
        head = f"{len(problems)} problem(s) in the config of expid '{resolved.expid}' ({model_cls.__name__}):"
        raise ConfigError(head + "\n  - " + "\n  - ".join(problems))
    out = {k: coerce_value(v, schema[k]) if k in schema else v for k, v in params.items()}
    for key, (_, required, _) in RUNNER_SCHEMA.items():
        out.setdefault(key, None)
    return out


def dump_params(params: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the resolved params as YAML (tuples as lists), atomically (temp file, then rename)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return atomic_write_text(path, yaml.safe_dump({k: plain(v) for k, v in params.items()}, sort_keys=True))
