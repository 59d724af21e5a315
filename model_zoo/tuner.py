"""Grid search over expids: FuxiCTR's tuner file format and ``enumerate_params``, run through our own runner.

A tuner file (``config/tuner/*.yaml``) has FuxiCTR's keys::

    base_config: model_zoo/DMF/      # a dir with model_config.yaml (a model folder works); relative to the repo
                                     # root (else the tuner file); default: every expid the runner knows
    base_expid: DMF_test             # the expid whose block is varied
    dataset_id: MicroLens_synth_tiny # optional; default: the expid's dataset_id
    model_config: {...}              # optional inline expid block(s) (win over base_config)
    dataset_config: {...}            # optional inline dataset block(s) (win over base_config and config/)
    tuner_space:                     # scalar = fixed value, list = grid, a list-valued param as [[...]]
      learning_rate: [1.e-3, 2.e-3]
    backend: local                   # our addition: local (subprocesses) | ray (Ray tasks); --backend wins

Expansion is FuxiCTR's own ``fuxictr.autotuner.enumerate_params`` (same expid names ``<base_expid>_<NNN>_<md5[:8]>``,
same ``model_config.yaml``/``dataset_config.yaml`` layout, readable by ``run_expid.py --config <dir>``), fed a
normalised tuner file that avoids its traps:

* our configs are split (``Base`` in config/, expids in model_zoo/<Model>/, datasets in config/): the normalised
  file carries the merged ``Base`` + expid block and the dataset block inline, so ``base_config`` may point at a model
  folder that has no dataset_config.yaml;
* a dataset block read from ``base_config`` carries ``dataset_id``, which overwrites a hashed dataset id: the inline
  block never carries it; a dataset-level grid on unhashed data (``rebuild_dataset: False``, the MMCTR set-up)
  would collapse into one data dir, so it is refused;
* a tuner key absent from the base block is an error in FuxiCTR (typo guard): a key the model or the runner accepts is
  added to the block instead, a typo still fails, with a did-you-mean;
* children are started with ``sys.executable`` (never a bare ``python``), each exit code is checked and the sweep
  exits non-zero naming every failed expid; a child that exits 0 without writing its result row also counts as failed;
* datasets (synthetic worlds, feature maps) are built once, serially, before the parallel runs;
* FuxiCTR's expid hash is the md5 of the *sorted characters* of the params JSON, so two grid points whose values are
  anagrams of each other collide (``learning_rate: 0.003, num_heads: 1`` vs ``0.001, 3`` at the same index): a
  finished expid of one tuner file would wrongly skip a different point of another. Expids keep FuxiCTR's form
  ``<base_expid>_<NNN>_<8 hex>`` but the hash is re-computed over the params JSON itself (``debug_mode`` points keep
  FuxiCTR's salted name).

Finished expids (a row with a valid AUC in the results CSV) are skipped, so a rerun resumes an interrupted sweep.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import queue
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from model_zoo.config import (CONFIG_DIR, DATASET_KEYS, REPO_ROOT, RUNNER_KEYS, list_expids, load_params,
                              resolve_path, validate_params)
from model_zoo.errors import ConfigError, did_you_mean
from model_zoo.fileio import atomic_write_text
from model_zoo.results import RESULT_FIELDS

__all__ = ["TUNER_FILE_KEYS", "RunOutcome", "SweepReport", "load_tuner_file", "normalize_tuner_config",
           "expand", "prepare_datasets", "finished_expids", "read_result_rows", "run_expids", "sweep",
           "init_local_ray"]

RUNNER = REPO_ROOT / "run_expid.py"
DEFAULT_RESULTS = REPO_ROOT / "results" / "results.csv"
TUNER_FILE_KEYS = ("base_config", "base_expid", "dataset_id", "tuner_space", "model_config", "dataset_config",
                   "backend", "ray_address")
BACKENDS = ("local", "ray")
STDERR_TAIL_LINES = 15
log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# Tuner file -> normalised FuxiCTR tuner file -> expanded config dir
# ---------------------------------------------------------------------------------------------------------------
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on our config files


def _read_yaml(path: Path) -> Dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def load_tuner_file(path: str | os.PathLike) -> Dict[str, Any]:
    """The tuner file as a dict; unknown top-level keys fail with a did-you-mean."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"tuner file {path}: not found")
    cfg = _read_yaml(path)
    unknown = sorted(k for k in cfg if k not in TUNER_FILE_KEYS)
    if unknown:
        hints = "; ".join(f"'{k}'{did_you_mean(k, TUNER_FILE_KEYS)}" for k in unknown)
        raise ConfigError(f"{path}: unknown tuner keys {hints}; expected a subset of {', '.join(TUNER_FILE_KEYS)}")
    for key in ("base_expid", "tuner_space"):
        if key not in cfg:
            raise ConfigError(f"{path}: missing key '{key}'")
    if not isinstance(cfg["tuner_space"], dict) or not cfg["tuner_space"]:
        raise ConfigError(f"{path}: 'tuner_space' must be a non-empty mapping of param -> value or list of values")
    if cfg.get("backend", "local") not in BACKENDS:
        raise ConfigError(f"{path}: backend={cfg['backend']!r}; expected one of {BACKENDS}")
    return cfg


def _config_files(config_dir: Path, stem: str) -> List[Path]:
    single = config_dir / f"{stem}.yaml"
    return [single] if single.is_file() else sorted(config_dir.glob(f"{stem}/*.yaml"))


def _blocks(files: Sequence[Path]) -> Dict[str, Any]:
    blocks: Dict[str, Any] = {}
    for path in files:
        for name, block in _read_yaml(path).items():
            blocks.setdefault(name, block)
    return blocks


def _resolve_base_config(value: str, tuner_path: Path) -> Path:
    """``base_config`` as a directory: absolute, else relative to the repository root, else to the tuner file."""
    given = Path(value).expanduser()
    candidates = [given] if given.is_absolute() else [resolve_path(value), (tuner_path.parent / given).resolve()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"{tuner_path}: base_config '{value}' is not a directory (tried it relative to the repository "
                      f"root {REPO_ROOT} and to the tuner file's folder)")


def _base_block(cfg: Mapping[str, Any], base_dir: Optional[Path], tuner_path: Path) -> Dict[str, Any]:
    """Our ``Base`` < the base dir's ``Base`` < the expid block (FuxiCTR's ``load_model_config`` merge)."""
    expid = cfg["base_expid"]
    ours = _blocks(_config_files(CONFIG_DIR, "model_config"))
    base = dict(ours.get("Base") or {})
    if "model_config" in cfg:
        inline = cfg["model_config"] or {}
        if expid not in inline:
            raise ConfigError(f"{tuner_path}: inline model_config has no block '{expid}'"
                              f"{did_you_mean(expid, inline)}")
        base.update(inline.get("Base") or {})
        return {**base, **(inline[expid] or {})}
    if base_dir is not None:
        theirs = _blocks(_config_files(base_dir, "model_config"))
        if not theirs:
            raise ConfigError(f"{tuner_path}: base_config {base_dir} has no model_config.yaml or model_config/*.yaml")
        if expid not in theirs:
            known = sorted(k for k in theirs if k != "Base")
            raise ConfigError(f"{tuner_path}: base_expid '{expid}' is not in {base_dir}{did_you_mean(expid, known)}; "
                              f"expids there: {', '.join(known)}")
        base.update(theirs.get("Base") or {})
        return {**base, **(theirs[expid] or {})}
    # No base_config: any expid the runner knows (config/ and model_zoo/*/model_config.yaml).
    known = list_expids()
    if expid not in known:
        raise ConfigError(f"{tuner_path}: unknown base_expid '{expid}'{did_you_mean(expid, known)}")
    for path in sorted((REPO_ROOT / "model_zoo").glob("*/model_config.yaml")) + _config_files(CONFIG_DIR,
                                                                                              "model_config"):
        block = _read_yaml(path).get(expid)
        if block is not None:
            return {**base, **block}
    raise ConfigError(f"{tuner_path}: base_expid '{expid}' not found")  # pragma: no cover (list_expids agreed)


def _dataset_block(cfg: Mapping[str, Any], dataset_id: str, base_dir: Optional[Path],
                   tuner_path: Path) -> Dict[str, Any]:
    sources: List[Tuple[str, Mapping[str, Any]]] = []
    if "dataset_config" in cfg:
        sources.append(("the inline dataset_config", cfg["dataset_config"] or {}))
    if base_dir is not None:
        sources.append((str(base_dir), _blocks(_config_files(base_dir, "dataset_config"))))
    sources.append((str(CONFIG_DIR / "dataset_config.yaml"), _blocks(_config_files(CONFIG_DIR, "dataset_config"))))
    for _, blocks in sources:
        if dataset_id in blocks:
            block = dict(blocks[dataset_id] or {})
            block.pop("dataset_id", None)  # FuxiCTR trap: a carried dataset_id overwrites the hashed one
            return block
    known = sorted({k for _, blocks in sources for k in blocks})
    raise ConfigError(f"{tuner_path}: dataset_id '{dataset_id}' is declared in none of "
                      f"{', '.join(name for name, _ in sources)}{did_you_mean(dataset_id, known)}")


def _unhashed(dataset_block: Mapping[str, Any]) -> bool:
    """FuxiCTR keeps the plain dataset id (no hash suffix) for npz and for pre-encoded parquet."""
    fmt = dataset_block.get("data_format")
    return fmt == "npz" or (fmt == "parquet" and dataset_block.get("rebuild_dataset") is False)


def normalize_tuner_config(tuner_path: str | os.PathLike) -> Dict[str, Any]:
    """A self-contained FuxiCTR tuner dict: inline ``model_config`` (Base merged) and ``dataset_config``."""
    tuner_path = Path(tuner_path).resolve()
    cfg = load_tuner_file(tuner_path)
    base_dir = _resolve_base_config(str(cfg["base_config"]), tuner_path) if cfg.get("base_config") else None
    expid = cfg["base_expid"]
    model_block = _base_block(cfg, base_dir, tuner_path)
    if "model" not in model_block:
        raise ConfigError(f"{tuner_path}: base expid '{expid}' has no 'model' key")
    dataset_id = cfg.get("dataset_id") or model_block.get("dataset_id")
    if not dataset_id or dataset_id == "TBD":
        raise ConfigError(f"{tuner_path}: no dataset_id (set 'dataset_id' in the tuner file or in '{expid}')")
    dataset_block = _dataset_block(cfg, dataset_id, base_dir, tuner_path)
    if "data_format" not in dataset_block:
        raise ConfigError(f"{tuner_path}: dataset '{dataset_id}' has no 'data_format'")

    space = {k: (v if isinstance(v, list) else [v]) for k, v in cfg["tuner_space"].items()}
    for key, values in space.items():
        if not values:
            raise ConfigError(f"{tuner_path}: tuner_space '{key}' is an empty list")
    model_block.setdefault("debug_mode", False)  # enumerate_params reads it (salts the hash when True)
    model_block["model_id"] = expid               # enumerate_params deletes it
    model_block["dataset_id"] = dataset_id

    from model_zoo.registry import get_model  # imports torch: only after the cheap checks
    import model_zoo  # noqa: F401  (registers the models)
    from model_zoo.config import _ctor_keys

    allowed = _ctor_keys(get_model(model_block["model"])) | RUNNER_KEYS
    for key, values in space.items():
        if key in model_block or key in dataset_block:
            continue
        if key in DATASET_KEYS:
            raise ConfigError(f"{tuner_path}: tuner_space '{key}' is a dataset key absent from dataset "
                              f"'{dataset_id}'; declare it in an inline dataset_config block")
        if key not in allowed:
            raise ConfigError(f"{tuner_path}: tuner_space key '{key}'{did_you_mean(key, allowed)} is accepted by "
                              f"neither {model_block['model']} nor the runner")
        model_block[key] = values[0]  # a valid key the base block leaves at its default: make it tunable
    ds_grid = sorted(k for k, v in space.items() if k in dataset_block and k not in model_block and len(v) > 1)
    if ds_grid and _unhashed(dataset_block):
        raise ConfigError(f"{tuner_path}: tuner_space varies dataset keys {ds_grid} of '{dataset_id}', whose data "
                          f"is pre-encoded (FuxiCTR keeps one unhashed dataset id, so every variant would share one "
                          f"data dir); declare one dataset id per variant and sweep them in separate tuner files")
    return {"base_expid": expid, "dataset_id": dataset_id, "tuner_space": space,
            "model_config": {expid: model_block}, "dataset_config": {dataset_id: dataset_block}}


def expand(tuner_path: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """Expand a tuner file with FuxiCTR's ``enumerate_params``; returns ``<workdir>/<tuner name>/``.

    The normalised tuner file is written to ``<workdir>/<tuner name>.yaml`` (FuxiCTR writes the expanded dir next to
    the tuner file, so it lands in ``workdir`` rather than in config/tuner/). The first expanded expid is then
    resolved and validated by our config layer (all expids share one key set), so a bad key fails here, before
    anything runs; a bad value fails in its own run.
    """
    from fuxictr.autotuner import enumerate_params

    tuner_path = Path(tuner_path).resolve()
    normalized = normalize_tuner_config(tuner_path)
    workdir = Path(workdir).resolve()
    if ".yaml" in str(workdir):
        raise ConfigError(f"workdir {workdir}: must not contain '.yaml' (enumerate_params strips every occurrence)")
    workdir.mkdir(parents=True, exist_ok=True)
    norm_file = workdir / f"{tuner_path.stem}.yaml"
    atomic_write_text(norm_file, "# Normalised from " + str(tuner_path) + " by model_zoo.tuner; do not edit.\n"
                       + yaml.safe_dump(normalized, sort_keys=False))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Enumerate all tuner configurations done."
        config_dir = Path(enumerate_params(str(norm_file)))
    _rehash_expids(config_dir)
    expids = list_tuner_expids(config_dir)
    if not expids:
        raise ConfigError(f"{tuner_path}: the grid expanded to no expids")
    from model_zoo.registry import get_model

    params = load_params(expids[0], config_dir)
    validate_params(params, get_model(params["model"]))
    return config_dir


def params_hash(params: Mapping[str, Any]) -> str:
    """md5[:8] of the params as canonical JSON (FuxiCTR hashes the JSON's sorted characters: anagrams collide)."""
    return hashlib.md5(json.dumps(params, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:8]


def _rehash_expids(config_dir: Path) -> None:
    """Rename ``<base>_<NNN>_<fuxictr hash>`` to ``<base>_<NNN>_<params_hash>`` in the expanded model_config.yaml."""
    path = config_dir / "model_config.yaml"
    blocks = _read_yaml(path)
    renamed: Dict[str, Any] = {}
    for name, block in blocks.items():
        stem, _, _ = name.rpartition("_")
        new = name if block.get("debug_mode") else f"{stem}_{params_hash(block)}"
        if new in renamed:
            raise ConfigError(f"{path}: two grid points map to expid {new}")  # pragma: no cover (NNN differs)
        renamed[new] = block
    atomic_write_text(path, yaml.safe_dump(renamed, default_flow_style=None, indent=4))


def list_tuner_expids(config_dir: str | os.PathLike) -> List[str]:
    """The expids of an expanded dir, in FuxiCTR's (sorted) order."""
    return sorted(k for k in _blocks(_config_files(Path(config_dir), "model_config")) if k != "Base")


# ---------------------------------------------------------------------------------------------------------------
# Results CSV and datasets
# ---------------------------------------------------------------------------------------------------------------
def read_result_rows(path: str | os.PathLike) -> List[Dict[str, str]]:
    """Rows of a results CSV, tolerant of a header written by an older ``RESULT_FIELDS``.

    ``results.append_result`` writes the header only into an empty file, so a file started before a field was added
    holds rows longer than its header: such rows are read with the current ``RESULT_FIELDS``; other rows whose
    length matches neither are skipped with a warning.
    """
    import csv

    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        records = list(csv.reader(fh))
    if not records:
        return []
    header, rows = records[0], []
    for lineno, values in enumerate(records[1:], start=2):
        if len(values) == len(header):
            rows.append(dict(zip(header, values)))
        elif len(values) == len(RESULT_FIELDS):
            rows.append(dict(zip(RESULT_FIELDS, values)))
        elif values:
            log.warning("%s line %d: %d values, header has %d; row skipped", path, lineno, len(values), len(header))
    return rows


def finished_expids(results: str | os.PathLike) -> set:
    """Expids with at least one row carrying a valid AUC."""
    return {r["expid"] for r in read_result_rows(results) if r.get("expid") and r.get("valid_AUC")}


def prepare_datasets(expids: Sequence[str], config_dir: Optional[str | os.PathLike],
                     progress: bool = True) -> List[str]:
    """Build every dataset the expids need (synthetic world, feature map), once each, serially.

    Parallel runs would otherwise race to generate the same world. Returns the data dirs prepared.
    """
    from model_zoo.datasets import prepare

    # One load_params per dataset id, not per expid (it parses every config file: ~1 s each on 2 cores).
    blocks = _blocks(_config_files(Path(config_dir), "model_config")) if config_dir else {}
    representatives: Dict[str, str] = {}
    for expid in expids:
        dataset_id = (blocks.get(expid) or {}).get("dataset_id")
        representatives.setdefault(dataset_id or f"?{expid}", expid)
    done: Dict[Tuple[str, str], str] = {}
    for expid in representatives.values():
        params = load_params(expid, config_dir)
        key = (str(Path(params["data_root"]) / params["dataset_id"]), yaml.safe_dump(params["feature_cols"]))
        if key in done:
            continue
        files = prepare.locate_data(params, progress=progress)
        prepare.build_feature_map(params, files.data_dir)
        done[key] = str(files.data_dir)
    return sorted(set(done.values()))


# ---------------------------------------------------------------------------------------------------------------
# Running expids: one subprocess of run_expid.py each, locally or as Ray tasks
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    """How one expid's run ended."""

    expid: str
    returncode: int
    seconds: float
    stdout_log: str
    stderr_log: str
    stderr_tail: str = ""
    summary: str = ""          # the runner's last stdout line, e.g. "[X] valid AUC 0.71 | ..."
    runner_log: str = ""       # <model_root>/<dataset_id>/<expid>.log when it exists
    error: str = ""            # why a zero exit still counts as a failure

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.error


@dataclass
class SweepReport:
    """What a sweep did: the expids run, skipped and failed, and where its files are."""

    config_dir: Optional[str]
    results: str
    expids: List[str]
    skipped: List[str] = field(default_factory=list)
    outcomes: List[RunOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> List[RunOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def text(self) -> str:
        ran = len(self.outcomes)
        lines = [f"sweep: {len(self.expids)} expids, {ran} run, {len(self.skipped)} skipped (already in "
                 f"{self.results}), {len(self.failed)} failed, {self.seconds:.1f} s"]
        if self.config_dir:
            lines.append(f"config dir: {self.config_dir}")
        rows = {r["expid"]: r for r in read_result_rows(self.results)}
        scored = [(float(rows[e]["valid_AUC"]), e) for e in self.expids if e in rows and rows[e].get("valid_AUC")]
        if scored:
            auc, best = max(scored)
            lines.append(f"best valid AUC: {auc:.6f} ({best})")
        for o in self.failed:
            reason = o.error or f"exit code {o.returncode}"
            lines.append(f"FAILED {o.expid}: {reason}")
            lines.append(f"  stderr: {o.stderr_log}" + (f"   runner log: {o.runner_log}" if o.runner_log else ""))
            lines.extend("  | " + line for line in o.stderr_tail.splitlines())
        return "\n".join(lines)




def _tail(path: Path, n: int = STDERR_TAIL_LINES) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _child_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    # One intra-op thread budget per run, whichever backend: same arithmetic, so both give the same numbers.
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    return env


def run_one(expid: str, config_dir: Optional[str], gpu: int, results: str, log_dir: str,
            threads: int = 1, python: Optional[str] = None, runner: Optional[str] = None) -> Dict[str, Any]:
    """Run ``run_expid.py`` for one expid in a subprocess; stdout/stderr go to ``log_dir/<expid>.{stdout,stderr}``.

    Plain data in and out, so it runs the same in a thread and in a Ray task. ``python`` defaults to the
    interpreter running this function (never a bare ``python`` from PATH).
    """
    log_path = Path(log_dir)
    log_path.mkdir(parents=True, exist_ok=True)
    out_file, err_file = log_path / f"{expid}.stdout", log_path / f"{expid}.stderr"
    cmd = [python or sys.executable, "-u", runner or str(RUNNER), "--expid", expid, "--gpu", str(gpu),
           "--results", str(results)]
    if config_dir:
        cmd[3:3] = ["--config", str(config_dir)]
    started = time.perf_counter()
    with open(out_file, "w", encoding="utf-8") as out, open(err_file, "w", encoding="utf-8") as err:
        proc = subprocess.run(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=_child_env(threads))
    stdout_lines = out_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return {"expid": expid, "returncode": proc.returncode, "seconds": time.perf_counter() - started,
            "stdout_log": str(out_file), "stderr_log": str(err_file), "stderr_tail": _tail(err_file),
            "summary": stdout_lines[-1] if stdout_lines else ""}


def _runner_log(expid: str, config_dir: Optional[str]) -> str:
    """The runner's own log, ``<model_root>/<dataset_id>/<expid>.log``, when it was written."""
    block = _blocks(_config_files(Path(config_dir), "model_config")).get(expid) if config_dir else None
    try:
        params = block if block and "model_root" in block else load_params(expid, config_dir)
        path = resolve_path(params["model_root"]) / params["dataset_id"] / f"{expid}.log"
    except Exception:  # noqa: BLE001 (only a hint for the report)
        return ""
    return str(path) if path.is_file() else ""


def _run_local(expids: Sequence[str], config_dir: Optional[str], gpus: Sequence[int], results: str,
               log_dir: str, threads: int, on_done: Callable[[Dict[str, Any]], None]) -> None:
    """One worker thread per ``--gpu`` entry, each running its subprocess on that device."""
    slots: "queue.Queue[int]" = queue.Queue()
    for gpu in gpus:
        slots.put(gpu)

    def job(expid: str) -> Dict[str, Any]:
        gpu = slots.get()
        try:
            return run_one(expid, config_dir, gpu, results, log_dir, threads)
        finally:
            slots.put(gpu)

    with ThreadPoolExecutor(max_workers=len(gpus)) as pool:
        futures = [pool.submit(job, e) for e in expids]
        for fut in as_completed(futures):
            on_done(fut.result())


def init_local_ray(num_cpus: int = 2, num_gpus: int = 0, object_store_mb: int = 256) -> None:
    """A bounded local Ray instance with the repository on the workers' PYTHONPATH (no dashboard, quiet workers)."""
    import ray

    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False, log_to_driver=False,
             object_store_memory=object_store_mb * 1024 * 1024, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})


def _run_ray(expids: Sequence[str], config_dir: Optional[str], gpus: Sequence[int], results: str, log_dir: str,
             threads: int, address: Optional[str], on_done: Callable[[Dict[str, Any]], None]) -> None:
    """Each run is a Ray task reserving ``threads`` CPUs (and a GPU share when GPUs are requested).

    On a cluster (``address``) the repository, the data and the results CSV must sit on a filesystem every node
    sees at the same path. Without an address a local instance is started with bounded resources and shut down at
    the end; an instance the caller already started (``ray.is_initialized()``) is used as is and left running.
    """
    import ray

    devices = [g for g in gpus if g >= 0]
    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}})
        else:
            init_local_ray(num_cpus=max(1, len(gpus)) * threads, num_gpus=len(set(devices)))
        started_here = True
    try:
        # --gpu 0 0: two runs share GPU 0 (0.5 each). Ray sets CUDA_VISIBLE_DEVICES, so the run sees its GPU as 0.
        gpu_share = 1.0 / max(devices.count(d) for d in set(devices)) if devices else 0.0
        task = ray.remote(run_one).options(num_cpus=threads, num_gpus=gpu_share, max_retries=0)
        # run_one needs only the standard library: ship it by value, so a worker never imports model_zoo (whose
        # __init__ pulls in torch and every model: ~6 s per worker on 2 cores) just to start a subprocess.
        this_module = sys.modules[__name__]
        ray.cloudpickle.register_pickle_by_value(this_module)
        try:
            # python=None: the worker's own interpreter (on a local instance, this venv's).
            pending = {task.remote(e, config_dir, 0 if devices else -1, results, log_dir, threads): e for e in expids}
        finally:
            ray.cloudpickle.unregister_pickle_by_value(this_module)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                expid = pending.pop(ref)
                try:
                    on_done(ray.get(ref))
                except ray.exceptions.RayError as exc:  # the task itself died (worker lost, runtime env failed)
                    on_done({"expid": expid, "returncode": -1, "seconds": 0.0, "stdout_log": "",
                             "stderr_log": "", "stderr_tail": str(exc)[-2000:], "summary": ""})
    finally:
        if started_here:
            ray.shutdown()


def run_expids(expids: Sequence[str], config_dir: Optional[str | os.PathLike] = None, gpus: Sequence[int] = (-1,),
               results: str | os.PathLike = DEFAULT_RESULTS, *, backend: str = "local",
               ray_address: Optional[str] = None, threads: int = 1, log_dir: Optional[str | os.PathLike] = None,
               skip_finished: bool = True, progress: bool = True) -> SweepReport:
    """Run ``expids`` through ``run_expid.py`` (datasets built first), skipping those already in ``results``."""
    from tqdm import tqdm

    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}; expected one of {BACKENDS}")
    if not gpus:
        raise ConfigError("gpus: expected at least one entry (-1 = a CPU worker)")
    started = time.perf_counter()
    cdir = str(Path(config_dir).resolve()) if config_dir else None
    results = str(Path(results).resolve())
    log_dir = str(Path(log_dir).resolve()) if log_dir else str(Path(results).parent / "logs")
    done = finished_expids(results) if skip_finished else set()
    report = SweepReport(config_dir=cdir, results=results, expids=list(expids),
                         skipped=[e for e in expids if e in done])
    todo = [e for e in expids if e not in done]
    if todo:
        prepare_datasets(todo, cdir, progress=progress)
    bar = tqdm(total=len(todo), desc=f"sweep ({backend})", unit="run", disable=not progress or not todo,
               file=sys.stderr, dynamic_ncols=True)
    before = {e: n for e, n in _row_counts(results).items()}

    def on_done(res: Dict[str, Any]) -> None:
        outcome = RunOutcome(**res)
        outcome.runner_log = _runner_log(outcome.expid, cdir)
        if outcome.returncode == 0 and _row_counts(results).get(outcome.expid, 0) <= before.get(outcome.expid, 0):
            outcome.error = f"exit code 0 but no result row in {results}"
        report.outcomes.append(outcome)
        status = "ok" if outcome.ok else "FAILED"
        bar.write(f"[{status}] {outcome.expid} ({outcome.seconds:.1f} s) {outcome.summary if outcome.ok else ''}"
                  .rstrip(), file=sys.stderr)
        bar.update(1)

    try:
        if todo and backend == "local":
            _run_local(todo, cdir, list(gpus), results, log_dir, threads, on_done)
        elif todo:
            _run_ray(todo, cdir, list(gpus), results, log_dir, threads, ray_address, on_done)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - started
    return report


def _row_counts(results: str) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for row in read_result_rows(results):
        counts[row.get("expid", "")] = counts.get(row.get("expid", ""), 0) + 1
    return counts


def sweep(tuner_file: str | os.PathLike, gpus: Sequence[int] = (-1,), *, results: str | os.PathLike = DEFAULT_RESULTS,
          backend: Optional[str] = None, ray_address: Optional[str] = None, tag: Optional[str] = None,
          workdir: Optional[str | os.PathLike] = None, threads: int = 1, progress: bool = True) -> SweepReport:
    """Expand ``tuner_file`` and run every expid (``tag``: only expids containing it).

    ``workdir`` (default ``<results dir>/tuner``) receives the normalised tuner file, the expanded config dir and
    ``logs/<expid>.{stdout,stderr}``; checkpoints go to the expids' ``model_root`` as usual.
    """
    cfg = load_tuner_file(tuner_file)
    backend = backend or cfg.get("backend", "local")
    ray_address = ray_address or cfg.get("ray_address")
    workdir = Path(workdir) if workdir else Path(results).resolve().parent / "tuner"
    config_dir = expand(tuner_file, workdir)
    expids = list_tuner_expids(config_dir)
    if tag is not None:
        expids = [e for e in expids if str(tag) in e]
        if not expids:
            raise ConfigError(f"--tag {tag!r} matches none of the {len(list_tuner_expids(config_dir))} expids in "
                              f"{config_dir}")
    return run_expids(expids, config_dir, gpus, results, backend=backend, ray_address=ray_address,
                      threads=threads, log_dir=config_dir / "logs", progress=progress)
