"""Experiment configuration: FuxiCTR's ``Base`` < expid < dataset merge, plus validation.

Where blocks come from (all paths relative to the repository root, whatever the cwd):

* ``config/model_config.yaml``: the ``Base`` block shared by every expid;
* ``model_zoo/<Model>/model_config.yaml``: each model's expids (a duplicate expid across files is an error);
* ``config/dataset_config.yaml``: every dataset id, declared once.

``--config DIR`` (a FuxiCTR-style directory, e.g. the one the tuner writes) is searched first, for both expids and
datasets; our ``Base`` stays underneath. The merge order is FuxiCTR's (``fuxictr.utils.load_config``): dataset keys
override model keys. Unlike FuxiCTR, an unknown key fails with a did-you-mean instead of being swallowed by ``**kwargs``.
"""
from __future__ import annotations

import glob
import inspect
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from model_zoo.errors import ConfigError, did_you_mean
from model_zoo.fileio import atomic_write_text

__all__ = ["REPO_ROOT", "load_params", "validate_params", "list_expids", "dump_params", "resolve_path",
           "RUNNER_KEYS", "DATASET_KEYS", "read_yaml", "config_file", "dataset_block"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"
MODEL_ZOO_DIR = REPO_ROOT / "model_zoo"

# Keys read by the runner, the data layer or BaseModel.fit rather than by a model constructor.
DATASET_KEYS = frozenset({
    "dataset_id", "data_root", "data_format", "train_data", "valid_data", "test_data", "item_info", "item_feature",
    "item_emb", "rebuild_dataset", "feature_cols", "label_col", "synthetic", "test_has_labels", "min_categr_count",
    "data_block_size", "streaming", "num_items", "embedding_variant",
})
RUNNER_KEYS = DATASET_KEYS | frozenset({
    "model", "model_id", "model_root", "num_workers", "batch_size", "eval_batch_size", "epochs", "shuffle", "seed",
    "max_len", "group_id", "use_features", "feature_specs", "feature_config", "pickle_feature_encoder", "debug_mode",
    "max_gradient_norm", "gpu", "optimizer", "loss", "metrics", "verbose",
})
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: about 10x faster
PATH_KEYS = ("data_root", "train_data", "valid_data", "test_data", "item_info", "item_feature", "item_emb", "model_root")


def resolve_path(path: str | os.PathLike) -> Path:
    """Absolute path; a relative one is taken relative to the repository root (never to the cwd)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


def read_yaml(path: str | os.PathLike) -> Dict[str, Any]:
    """The one YAML reader of the zoo: a mapping at the top level, or ConfigError naming the file."""
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_YamlLoader) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of blocks at the top level, found {type(data).__name__}")
    return data


def config_file(name: str) -> Path:
    """A config file shipped with the zoo, e.g. ``config_file("embeddings.yaml")`` or ``"tuner/x.yaml"``."""
    return CONFIG_DIR / name


def dataset_block(dataset_id: str, config_dir: Optional[str | os.PathLike] = None) -> Dict[str, Any]:
    """The dataset block ``dataset_id`` (``config_dir``'s dataset_config first, then the zoo's), as declared."""
    cdir = resolve_path(config_dir) if config_dir else None
    files = (_yaml_files(cdir, "dataset_config") if cdir else []) + _yaml_files(CONFIG_DIR, "dataset_config")
    datasets, _ = _collect_blocks(files, first_wins=True)
    if dataset_id not in datasets:
        raise ConfigError(f"unknown dataset_id '{dataset_id}'{did_you_mean(dataset_id, datasets)}; "
                          f"declared: {', '.join(sorted(datasets))}")
    return dict(datasets[dataset_id] or {})


def load_keyed_config(path: str | os.PathLike, kind: str, allowed: Iterable[str]) -> Dict[str, Any]:
    """A small YAML config (``kind`` names it in errors): found as given, else relative to the repository root;
    a key outside ``allowed`` fails with a did-you-mean."""
    path = Path(path) if Path(path).is_file() else resolve_path(path)
    if not path.is_file():
        raise ConfigError(f"{kind} {path}: not found")
    cfg = read_yaml(path)
    allowed = tuple(allowed)
    for key in sorted(set(cfg) - set(allowed)):
        raise ConfigError(f"{path}: unknown key '{key}'{did_you_mean(key, allowed)}; expected a subset of {allowed}")
    return cfg


def _yaml_files(config_dir: Path, stem: str) -> List[Path]:
    """FuxiCTR layout: ``<stem>.yaml`` or every ``<stem>/*.yaml`` in ``config_dir``."""
    single = config_dir / f"{stem}.yaml"
    if single.is_file():
        return [single]
    return [Path(p) for p in sorted(glob.glob(str(config_dir / stem / "*.yaml")))]


def _model_config_files(config_dir: Optional[Path]) -> List[Path]:
    files = _yaml_files(config_dir, "model_config") if config_dir else []
    files += _yaml_files(CONFIG_DIR, "model_config")
    files += sorted(MODEL_ZOO_DIR.glob("*/model_config.yaml"))
    return list(dict.fromkeys(files))


def _collect_blocks(files: Iterable[Path], *, first_wins: bool) -> Tuple[Dict[str, Any], Dict[str, Path]]:
    """Blocks by name over ``files``; with ``first_wins`` an earlier file shadows a later one (``--config`` first),
    otherwise a block defined in two files is an error."""
    blocks: Dict[str, Any] = {}
    origin: Dict[str, Path] = {}
    for path in files:
        for name, block in read_yaml(path).items():
            if name in origin:
                if first_wins or name == "Base":
                    continue
                raise ConfigError(f"block '{name}' is defined twice: {origin[name]} and {path}")
            blocks[name], origin[name] = block, path
    return blocks, origin


def list_expids(config_dir: Optional[str | os.PathLike] = None) -> List[str]:
    """All expids visible to the runner (every block except ``Base``)."""
    cdir = resolve_path(config_dir) if config_dir else None
    blocks, _ = _collect_expid_blocks(cdir)
    return sorted(b for b in blocks if b != "Base")


def _collect_expid_blocks(cdir: Optional[Path]) -> Tuple[Dict[str, Any], Dict[str, Path]]:
    own = [p for p in _model_config_files(None)]
    if cdir is None:
        return _collect_blocks(own, first_wins=False)
    # The --config directory shadows our own files (a tuner dir re-declares expids with new values).
    theirs, theirs_origin = _collect_blocks(_yaml_files(cdir, "model_config"), first_wins=True)
    ours, ours_origin = _collect_blocks(own, first_wins=False)
    merged = {**ours, **theirs}
    origin = {**ours_origin, **theirs_origin}
    if "Base" in ours:  # our Base stays underneath a tuner dir's Base
        merged["Base"] = {**ours["Base"], **(theirs.get("Base") or {})}
    return merged, origin


def load_params(expid: str, config_dir: Optional[str | os.PathLike] = None) -> Dict[str, Any]:
    """Resolved flat params for ``expid``: Base < expid block < dataset block; paths made absolute."""
    cdir = resolve_path(config_dir) if config_dir else None
    if cdir is not None and not cdir.is_dir():
        raise ConfigError(f"--config {config_dir}: not a directory")
    blocks, origin = _collect_expid_blocks(cdir)
    if expid not in blocks or expid == "Base":
        known = sorted(b for b in blocks if b != "Base")
        raise ConfigError(f"unknown expid '{expid}'{did_you_mean(expid, known)}; known expids: {', '.join(known)}")
    params: Dict[str, Any] = dict(blocks.get("Base") or {})
    params.update(blocks[expid] or {})
    if "dataset_id" not in params:
        raise ConfigError(f"expid '{expid}' ({origin[expid]}): missing key 'dataset_id'")
    if "model" not in params:
        raise ConfigError(f"expid '{expid}' ({origin[expid]}): missing key 'model'")
    params["model_id"] = expid
    dataset_id = params["dataset_id"]
    ds_files = (_yaml_files(cdir, "dataset_config") if cdir else []) + _yaml_files(CONFIG_DIR, "dataset_config")
    datasets, _ = _collect_blocks(ds_files, first_wins=True)
    if dataset_id not in datasets:
        raise ConfigError(f"expid '{expid}': unknown dataset_id '{dataset_id}'{did_you_mean(dataset_id, datasets)}; "
                          f"declared in config/dataset_config.yaml: {', '.join(sorted(datasets))}")
    params.update(datasets[dataset_id] or {})
    params["dataset_id"] = dataset_id
    for key in PATH_KEYS:
        if params.get(key):
            params[key] = str(resolve_path(params[key]))
    return params


def _ctor_keys(cls: type) -> set:
    keys = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for name, prm in inspect.signature(init).parameters.items():
            if name != "self" and prm.kind not in (prm.VAR_KEYWORD, prm.VAR_POSITIONAL):
                keys.add(name)
    return keys


def validate_params(params: Mapping[str, Any], model_cls: type) -> None:
    """Fail on any key that neither the model (and its bases) nor the runner reads."""
    allowed = _ctor_keys(model_cls) | RUNNER_KEYS
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        hints = "; ".join(f"'{k}'{did_you_mean(k, allowed)}" for k in unknown)
        raise ConfigError(f"unknown keys for {model_cls.__name__} (expid '{params.get('model_id')}'): {hints}")


def dump_params(params: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the resolved params as YAML, atomically (temp file, then rename)."""
    return atomic_write_text(path, yaml.safe_dump(dict(params), sort_keys=True))
