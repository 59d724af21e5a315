"""Tuner files: read and check them, normalise them for FuxiCTR's ``enumerate_params``, expand them into a config dir.

A tuner file (``config/tuner/*.yaml``) has FuxiCTR's keys::

    base_config: model_zoo/DMF/      # a dir with model_config.yaml (optional; default: every expid the runner knows)
    base_expid: DMF_test             # the expid whose block is varied
    dataset_id: MicroLens_synth_tiny # optional; default: the expid's dataset_id
    model_config: {...}              # optional inline expid block(s) (win over base_config)
    dataset_config: {...}            # optional inline dataset block(s) (win over base_config and the zoo's)
    tuner_space:                     # scalar = fixed value, list = grid, a list-valued param as [[...]]
      learning_rate: [1.e-3, 2.e-3]
    backend: local                   # our addition: local (subprocesses) | ray (Ray tasks); --backend wins
    ray_address: null                # our addition: a Ray cluster address; --ray-address wins

``base_config`` is looked up as given (absolute, or relative to the current directory, then to the tuner file's
folder); ``model_zoo/<Model>/`` and ``config/...`` name the zoo's own folders first. A tuner file given as
``config/tuner/x.yaml`` that is not found from the current directory is the zoo's shipped one.

The expid is resolved by the config layer (``model_zoo.config.resolve_params``: our ``Base`` < the user's ``Base`` <
the expid block; the dataset block from ``model_zoo.config.dataset_block``), so the expanded expids mean exactly what
the runner would run. FuxiCTR's traps are avoided on the way in (see ``model_zoo.apps.tuner``):

* the normalised tuner file carries the merged ``Base`` + expid block and the dataset block inline, with every path
  absolute (relative to the work dir for the zoo's files, to their own folder for the user's), so the expanded dir
  works from any directory; the dataset block never carries ``dataset_id`` (it would overwrite a hashed id);
* a tuner key must be read by the model (``config_schema()``) or the runner (``RUNNER_SCHEMA``), else it fails with a
  did-you-mean before anything runs; a valid key absent from the base block is added to it (FuxiCTR would refuse it);
* a dataset-level grid on pre-encoded data (``rebuild_dataset: False``) would collapse into one data dir: refused;
* FuxiCTR hashes the *sorted characters* of the params JSON, so grid points whose values are anagrams collide: the
  expids keep FuxiCTR's form ``<base_expid>_<NNN>_<8 hex>`` with the md5 of the params JSON itself;
* ``debug_mode`` (read by ``enumerate_params``, by nothing in the zoo) and ``model_id``/``gpu`` never reach the files.

The expanded dir ``<output dir>/tuner/<tuner file stem>/`` holds ``model_config.yaml``, ``dataset_config.yaml`` and
the normalised ``tuner.yaml``; each is replaced atomically, so a re-expansion never leaves a half-written dir.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from model_zoo.config import (CONFIG_DIR, PACKAGE_DIR, PATH_KEYS, RUNNER_SCHEMA, absolute_paths, config_blocks,
                              config_file, dataset_block,
                              read_yaml, resolve_params)
from model_zoo.errors import ConfigError, did_you_mean
from model_zoo.fileio import atomic_write_text, temp_dir_for

__all__ = ["TUNER_FILE_KEYS", "BACKENDS", "DATASET_KEYS", "Expansion", "find_tuner_file", "load_tuner_file",
           "normalize_tuner_file", "expand", "list_tuner_expids", "params_hash"]

TUNER_FILE_KEYS = ("base_config", "base_expid", "dataset_id", "tuner_space", "model_config", "dataset_config",
                   "backend", "ray_address")
BACKENDS = ("local", "ray")
# Keys FuxiCTR reads from a dataset block (the "data" part of RUNNER_SCHEMA).
DATASET_KEYS = ("data_root", "data_format", "rebuild_dataset", "train_data", "valid_data", "test_data", "item_info",
                "item_feature", "test_has_labels", "feature_cols", "label_col", "synthetic")


@dataclass(frozen=True)
class Expansion:
    """An expanded tuner file: the runner config dir and its expids (FuxiCTR's sorted order)."""

    tuner_file: Path
    config_dir: Path
    expids: List[str]
    backend: str
    ray_address: Optional[str]


# ---------------------------------------------------------------------------------------------------------------------
# The tuner file
# ---------------------------------------------------------------------------------------------------------------------
def _shipped(path: Path) -> bool:
    """A file or folder of the zoo itself (relative paths in it are relative to the work dir)."""
    return path.resolve().is_relative_to(CONFIG_DIR.resolve()) or path.resolve().is_relative_to(PACKAGE_DIR)


def find_tuner_file(path: str | os.PathLike) -> Path:
    """The tuner file as given, else the zoo's shipped one (``config/tuner/x.yaml`` or ``tuner/x.yaml``)."""
    given = Path(path).expanduser()
    if given.is_file():
        return given.resolve()
    if not given.is_absolute():
        parts = given.parts
        shipped = config_file(str(Path(*parts[1:]))) if parts[:1] == ("config",) and len(parts) > 1 \
            else config_file(str(given))
        if shipped.is_file():
            return shipped
    known = sorted(p.stem for p in (CONFIG_DIR / "tuner").glob("*.yaml"))
    raise ConfigError(f"tuner file {path}: not found{did_you_mean(given.stem, known)}; shipped tuner files: "
                      f"{', '.join(f'config/tuner/{k}.yaml' for k in known)}")


def load_tuner_file(path: str | os.PathLike) -> Tuple[Path, Dict[str, Any]]:
    """(path, contents) of a tuner file; unknown keys fail with a did-you-mean, required keys are checked."""
    path = find_tuner_file(path)
    cfg = read_yaml(path)
    unknown = [k for k in cfg if k not in TUNER_FILE_KEYS]
    if unknown:
        hints = "; ".join(f"'{k}'{did_you_mean(str(k), TUNER_FILE_KEYS)}" for k in unknown)
        raise ConfigError(f"{path}: unknown tuner key(s) {hints}; expected a subset of {', '.join(TUNER_FILE_KEYS)}")
    for key in ("base_expid", "tuner_space"):
        if key not in cfg:
            raise ConfigError(f"{path}: missing key '{key}'")
    space = cfg["tuner_space"]
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{path}: tuner_space must be a non-empty mapping of key: value or [values], "
                          f"found {space!r}")
    for key, values in space.items():
        if isinstance(values, list) and not values:
            raise ConfigError(f"{path}: tuner_space key '{key}' is an empty list (a grid needs at least one value)")
    backend = cfg.get("backend") or "local"
    if backend not in BACKENDS:
        raise ConfigError(f"{path}: backend={backend!r}; expected one of {BACKENDS}")
    for key in ("model_config", "dataset_config"):
        if key in cfg and not isinstance(cfg[key], dict):
            raise ConfigError(f"{path}: {key} must be a mapping of block name: block, found {cfg[key]!r}")
    return path, cfg


def _base_config_dir(value: str, tuner_path: Path) -> Path:
    given = Path(value).expanduser()
    candidates: List[Path] = []
    if given.is_absolute():
        candidates.append(given)
    else:
        parts = given.parts
        if parts[:1] == ("model_zoo",):
            candidates.append(PACKAGE_DIR.joinpath(*parts[1:]))
        elif parts[:1] == ("config",):
            candidates.append(CONFIG_DIR.joinpath(*parts[1:]))
        candidates += [Path.cwd() / given, tuner_path.parent / given]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise ConfigError(f"{tuner_path}: base_config '{value}' is not a directory (tried "
                      f"{', '.join(str(c) for c in candidates)})")


def _staging_blocks(cfg: Mapping[str, Any], tuner_path: Path, user_dir: Optional[Path]) -> Tuple[Dict, Dict]:
    """The user's model and dataset blocks (base_config dir < inline), every path absolute."""
    model: Dict[str, Any] = {}
    datasets: Dict[str, Any] = {}
    if user_dir is not None:
        for stem, target in (("model_config", model), ("dataset_config", datasets)):
            for name, (block, path) in config_blocks(user_dir, stem).items():
                target[name] = absolute_paths(block, path.parent) if isinstance(block, dict) else block
    inline_base = tuner_path.parent
    for key, target in (("model_config", model), ("dataset_config", datasets)):
        for name, block in (cfg.get(key) or {}).items():
            target[str(name)] = absolute_paths(block, inline_base) if isinstance(block, dict) else block
    return model, datasets


# ---------------------------------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------------------------------
def _split_resolved(resolved: Any, dataset_keys: List[str]) -> Dict[str, Any]:
    """The model side of resolved params: Base + expid keys (not the dataset block's, nor keys derived from it)."""
    dataset_origins = {resolved.origin[k] for k in dataset_keys if k in resolved.origin}
    return {k: v for k, v in resolved.params.items()
            if k != "model_id" and k not in dataset_keys
            and not any(resolved.origin.get(k, "").startswith(o) for o in dataset_origins)}


def normalize_tuner_file(tuner_file: str | os.PathLike, work_dir: Path, staging_dir: Path) -> Dict[str, Any]:
    """A self-contained FuxiCTR tuner dict: one inline expid block (Base merged) and one inline dataset block.

    ``staging_dir`` receives the user's blocks (base_config dir and inline ones) as a config dir for the config layer.
    """
    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.registry import get_model

    tuner_path, cfg = load_tuner_file(tuner_file)
    expid = str(cfg["base_expid"])
    base_dir = _base_config_dir(str(cfg["base_config"]), tuner_path) if cfg.get("base_config") else None
    if base_dir is not None:
        blocks = config_blocks(base_dir, "model_config")
        if not blocks:
            raise ConfigError(f"{tuner_path}: base_config {base_dir} has no model_config.yaml or model_config/*.yaml")
        inline = cfg.get("model_config") or {}
        if expid not in blocks and expid not in inline:
            known = sorted(k for k in blocks if k != "Base")
            raise ConfigError(f"{tuner_path}: base_expid '{expid}' is not in {base_dir}{did_you_mean(expid, known)}; "
                              f"expids there: {', '.join(known)}")
    user_dir = base_dir if base_dir is not None and not _shipped(base_dir) else None
    model_blocks, dataset_blocks = _staging_blocks(cfg, tuner_path, user_dir)
    cdir: Optional[Path] = None
    if model_blocks or dataset_blocks:
        staging_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(staging_dir / "model_config.yaml", yaml.safe_dump(model_blocks, sort_keys=False))
        atomic_write_text(staging_dir / "dataset_config.yaml", yaml.safe_dump(dataset_blocks, sort_keys=False))
        cdir = staging_dir
    try:
        resolved = resolve_params(expid, cdir, work_dir=work_dir)
    except ConfigError as exc:
        raise ConfigError(f"{tuner_path}: base_expid '{expid}': {exc}") from None
    if "model" not in resolved.params:
        raise ConfigError(f"{tuner_path}: base expid '{expid}' has no 'model' key")
    model_cls = get_model(resolved.params["model"])
    own_dataset = dataset_block(resolved.params["dataset_id"], cdir)
    model_side = _split_resolved(resolved, list(own_dataset))
    dataset_id = str(cfg.get("dataset_id") or resolved.params["dataset_id"])
    try:
        dataset_side = dataset_block(dataset_id, cdir)
    except ConfigError as exc:
        raise ConfigError(f"{tuner_path}: {exc}") from None
    dataset_side.pop("dataset_id", None)  # FuxiCTR trap: a carried dataset_id overwrites the hashed one
    dataset_side = absolute_paths(dataset_side, work_dir)  # the zoo's blocks; the user's are absolute already
    model_side["dataset_id"] = dataset_id

    space = {str(k): (v if isinstance(v, list) else [v]) for k, v in cfg["tuner_space"].items()}
    path_base = work_dir if _shipped(tuner_path) else tuner_path.parent
    for key in PATH_KEYS:
        if key in space:
            space[key] = [absolute_paths({key: v}, path_base)[key] for v in space[key]]
    allowed = {**RUNNER_SCHEMA, **model_cls.config_schema()}
    bad = [k for k in space if k not in allowed]
    if bad:
        hints = "; ".join(f"'{k}'{did_you_mean(k, allowed)}" for k in bad)
        raise ConfigError(f"{tuner_path}: tuner_space key(s) {hints}: read by neither {model_cls.__name__} nor the "
                          f"runner")
    for key, values in space.items():
        if key in model_side or key in dataset_side:
            continue
        (dataset_side if key in DATASET_KEYS else model_side)[key] = values[0]  # tunable, as FuxiCTR requires
    dataset_grid = sorted(k for k, v in space.items() if k in dataset_side and len(v) > 1)
    pre_encoded = dataset_side.get("data_format") == "npz" or dataset_side.get("rebuild_dataset") is False
    if dataset_grid and pre_encoded:
        raise ConfigError(f"{tuner_path}: tuner_space varies dataset keys {dataset_grid} of '{dataset_id}', whose data "
                          f"is pre-encoded (FuxiCTR keeps one unhashed dataset id, so every variant would share one "
                          f"data dir); declare one dataset id per variant and sweep them in separate tuner files")
    model_side["model_id"] = expid       # enumerate_params deletes it
    model_side["debug_mode"] = False     # enumerate_params reads it; removed again after the expansion
    return {"base_expid": expid, "dataset_id": dataset_id, "tuner_space": space,
            "model_config": {expid: model_side}, "dataset_config": {dataset_id: dataset_side},
            "backend": cfg.get("backend") or "local", "ray_address": cfg.get("ray_address")}


# ---------------------------------------------------------------------------------------------------------------------
# Expansion
# ---------------------------------------------------------------------------------------------------------------------
def params_hash(params: Mapping[str, Any]) -> str:
    """md5[:8] of the params as canonical JSON (FuxiCTR hashes the JSON's sorted characters: anagrams collide)."""
    return hashlib.md5(json.dumps(params, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:8]


def _rehash(blocks: Mapping[str, Any], base_expid: str, where: Path) -> Dict[str, Any]:
    """``<base>_<NNN>_<fuxictr hash>`` -> ``<base>_<NNN>_<params_hash>``, without ``debug_mode``."""
    renamed: Dict[str, Any] = {}
    for name, block in blocks.items():
        block = {k: v for k, v in block.items() if k != "debug_mode"}
        index = name[len(base_expid) + 1:].split("_")[0]
        new = f"{base_expid}_{index}_{params_hash(block)}"
        if new in renamed:  # pragma: no cover (the index differs between grid points)
            raise ConfigError(f"{where}: two grid points map to expid {new}")
        renamed[new] = block
    return renamed


def _dump(blocks: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(blocks), default_flow_style=None, sort_keys=True, indent=4)


def expand(tuner_file: str | os.PathLike, output_dir: Optional[str | os.PathLike] = None) -> Expansion:
    """Expand a tuner file with FuxiCTR's ``enumerate_params`` into ``<output_dir>/tuner/<stem>/``.

    ``output_dir`` (default: the current directory) is the work dir: the zoo's relative paths (``./checkpoints/``,
    ``./data/``) are taken relative to it, as the runner's ``--output-dir`` does. Values are checked later, per expid,
    by the sweep (``model_zoo.apps.tuner.run.plan_jobs``); keys are checked here.
    """
    from fuxictr.autotuner import enumerate_params

    work = Path(output_dir).expanduser().resolve() if output_dir else Path.cwd()
    tuner_path = find_tuner_file(tuner_file)
    final = work / "tuner" / tuner_path.stem
    tmp = temp_dir_for(final)
    try:
        normalized = normalize_tuner_file(tuner_path, work, tmp / "source")
        backend, ray_address = normalized.pop("backend"), normalized.pop("ray_address")
        norm_file = tmp / f"{tuner_path.stem}.yaml"
        if str(norm_file).count(".yaml") != 1:
            raise ConfigError(f"--output-dir {work}: must not contain '.yaml' (enumerate_params strips every one)")
        header = f"# Normalised from {tuner_path} by model_zoo.apps.tuner; do not edit.\n"
        atomic_write_text(norm_file, header + yaml.safe_dump(normalized, sort_keys=False))
        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Enumerate all tuner configurations done."
            out_dir = Path(enumerate_params(str(norm_file)))
        expid = normalized["base_expid"]
        blocks = _rehash(read_yaml(out_dir / "model_config.yaml"), expid, tuner_path)
        if not blocks:
            raise ConfigError(f"{tuner_path}: the grid expanded to no expids")
        datasets = read_yaml(out_dir / "dataset_config.yaml")
        final.mkdir(parents=True, exist_ok=True)
        atomic_write_text(final / "dataset_config.yaml", _dump(datasets))
        atomic_write_text(final / "model_config.yaml", _dump(blocks))
        shown = dict(normalized, model_config={expid: {k: v for k, v in normalized["model_config"][expid].items()
                                                       if k not in ("model_id", "debug_mode")}})
        atomic_write_text(final / "tuner.yaml", header + yaml.safe_dump(shown, sort_keys=False))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Expansion(tuner_path, final, sorted(blocks), backend, ray_address)


def list_tuner_expids(config_dir: str | os.PathLike) -> List[str]:
    """The expids of an expanded dir, in FuxiCTR's (sorted) order."""
    path = Path(config_dir) / "model_config.yaml"
    return sorted(k for k in read_yaml(path) if k != "Base")
