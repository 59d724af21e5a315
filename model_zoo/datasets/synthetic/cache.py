"""Generate a synthetic world into a directory atomically, and reuse it only while every file still verifies.

* :func:`generate` writes the world into a fresh temp directory next to the target (``fileio.temp_dir_for``) and
  publishes it as a whole (``fileio.publish_dir``): an interruption at any point leaves either the previous world
  or the new one in place, never neither and never a mix.
* :func:`ensure_synthetic` is the one entry point the runner uses. It first removes temp directories that dead
  generator processes left behind (``fileio.remove_stale_temp``), then reuses the world in ``out_dir`` only if its
  manifest was made from the same config (``config_hash``) and every data and truth file still has the sha256 the
  manifest records. Anything else (missing file, changed size, a single flipped bit) logs a one-line warning naming
  the file(s) and regenerates the world; worlds are deterministic, so the files come back identical.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from model_zoo.errors import DataError
from model_zoo.fileio import (atomic_write_json, directory_lock, publish_dir, remove_stale_temp, sha256_file,
                              temp_dir_for)
from model_zoo.schema import DATA_FILES

from . import seqneg, world
from ._common import make_bar
from .config import DEFAULT_WORLD, WorldConfig, config_hash, make_config, world_of
from .writers import MANIFEST, TRUTH_FILES

__all__ = ["generate", "ensure_synthetic", "ensure_world", "cached_manifest", "verify_files"]

log = logging.getLogger(__name__)

# world name -> (generate_into(config, out, bar) -> manifest, progress_total(config) -> int)
_GENERATORS: Mapping[str, tuple] = {
    "microlens_synth": (world.generate_into, world.progress_total),
    "seqneg": (seqneg.generate_into, seqneg.progress_total),
}


def _read_manifest(out: Path) -> Optional[Dict[str, Any]]:
    """The JSON object in ``out/manifest.json``, or None when it is missing or unreadable."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _check_target(out: Path) -> None:
    """Refuse to replace anything that is not a previous synthetic world (or an empty directory)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError("exists and is not a directory; refusing to overwrite", path=str(out))
    if not any(out.iterdir()):
        return
    manifest = _read_manifest(out)
    if manifest is None or "generator_version" not in manifest:
        raise DataError("is a non-empty directory without a synthetic manifest.json; refusing to overwrite it",
                        path=str(out))


def generate(config: WorldConfig, out_dir: str | Path, *, progress: bool = True) -> Dict[str, Any]:
    """Write the whole world of ``config`` into ``out_dir`` atomically and return its manifest.

    An existing world in ``out_dir`` is replaced only once the new one is complete; a directory that is not a
    synthetic world raises DataError and is left alone.
    """
    name = world_of(config)
    generate_into, progress_total = _GENERATORS[name]
    started = time.perf_counter()
    out = Path(out_dir).absolute()
    _check_target(out)
    remove_stale_temp(out)
    tmp = temp_dir_for(out)
    bar = make_bar(f"{name}[{config.name}]", progress_total(config), progress)
    try:
        manifest = generate_into(config, tmp, bar)
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        atomic_write_json(tmp / MANIFEST, manifest)
        publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    return manifest


def verify_files(out: Path, manifest: Mapping[str, Any]) -> List[str]:
    """Problems of the world's files against ``manifest["files"]``, one ``"<file>: <what>"`` per bad file.

    Every data and truth file must exist with the recorded size and sha256 (the whole file is hashed, so a
    same-size bit flip is found). An empty list means the world verifies.
    """
    entries = manifest.get("files") or {}
    problems = []
    for name in DATA_FILES + TRUTH_FILES:
        entry = entries.get(name)
        path = out / name
        if not isinstance(entry, dict):
            problems.append(f"{name}: not listed in {MANIFEST}")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{name}: {path.stat().st_size} bytes, manifest says {entry.get('bytes')}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems


def cached_manifest(out_dir: str | Path, config: WorldConfig, *, warn: bool = True) -> Optional[Dict[str, Any]]:
    """The manifest of the world in ``out_dir`` if it was made from ``config`` and every file verifies, else None.

    A world made from the same config whose files fail :func:`verify_files` logs one warning line naming them
    (unless ``warn`` is False).
    Manifests written before worlds were named count as world ``microlens_synth``.
    """
    out = Path(out_dir)
    manifest = _read_manifest(out)
    name = world_of(config)
    if manifest is None or manifest.get("config_hash") != config_hash(config) \
            or manifest.get("world", DEFAULT_WORLD) != name:
        return None
    problems = verify_files(out, manifest)
    if problems:
        if warn:
            log.warning("synthetic world %s does not verify (%s); regenerating it", out, "; ".join(problems))
        return None
    manifest.setdefault("world", name)
    return manifest


def ensure_synthetic(out_dir: str | Path, preset: str = "tiny", seed: Optional[int] = None, *,
                     world: str = DEFAULT_WORLD, progress: bool = True, **overrides: Any) -> Dict[str, Any]:
    """Return the manifest of the ``world`` world in ``out_dir``, generating it unless a verified one is there.

    Args:
        out_dir: the world's directory, e.g. ``data/MicroLens_synth_small``.
        preset: a preset name of the world (``tiny``, ``small``, ``full``).
        seed: the generator seed (None = the preset's).
        world: ``microlens_synth`` or ``seqneg``.
        progress: show a tqdm bar while generating.
        **overrides: config fields replacing the preset's values.

    A cache hit (same config hash, every file present with its recorded sha256) touches nothing. An unknown
    ``world``, ``preset`` or override key raises ConfigError naming the allowed values.
    """
    config = make_config(preset, seed=seed, world=world, **overrides)
    return ensure_world(config, out_dir, progress=progress)[0]


def ensure_world(config: WorldConfig, out_dir: str | Path, *, force: bool = False,
                 progress: bool = True) -> Tuple[Dict[str, Any], bool]:
    """``(manifest, reused)``: the verified world of ``config`` in ``out_dir`` (``reused=True``), or a fresh one.

    Temp directories of dead generator processes next to ``out_dir`` are removed first; ``force`` regenerates even
    a world that verifies. A world that has to be made is checked again and generated under a lock on its parent
    directory, so parallel runs that need the same world generate it once and never swap it under each other.
    """
    out = Path(out_dir).absolute()
    remove_stale_temp(out)
    if not force:
        cached = cached_manifest(out, config)
        if cached is not None:
            return cached, True
    out.parent.mkdir(parents=True, exist_ok=True)
    with directory_lock(out.parent):
        if not force:  # another process may have made it while this one waited
            cached = cached_manifest(out, config, warn=False)
            if cached is not None:
                return cached, True
        return generate(config, out, progress=progress), False

