"""A resumable, self-verifying on-disk cache around any encoder.

Items are cut into fixed shards of ``shard_size``. Each finished shard is saved as ``shard_NNNNN.npy`` and recorded
in ``manifest.json`` with two hashes: ``input_sha256`` (of the shard's items, so a changed item re-encodes only its
shard) and ``sha256`` (of the ``.npy`` file itself, checked on every load, so a corrupted or truncated shard is
re-encoded with a warning instead of being used). Both files are written atomically (:mod:`model_zoo.fileio`), so an
interrupted run continues with the first missing shard. The manifest also records the encoder's fingerprint;
another encoder starts a fresh cache in the same directory.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Union

import numpy as np

from model_zoo.errors import ConfigError, DataError
from model_zoo.fileio import atomic_write, atomic_write_json, sha256_file

__all__ = ["Encoder", "CachedEncoder", "CacheStats", "EncodingStopped", "file_id"]

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """What :class:`CachedEncoder` and the CLIs need from an encoder."""

    name: str
    dim: int

    def encode(self, items: Sequence[Any]) -> np.ndarray:  # (len(items), dim) float32
        ...

    def fingerprint(self) -> Dict[str, Any]:  # what makes two encoders produce the same vectors
        ...


def file_id(path: Path) -> Dict[str, Any]:
    """Name and size of a weights file: the part of an encoder's fingerprint that identifies its weights."""
    return {"file": path.name, "bytes": path.stat().st_size}


class EncodingStopped(Exception):
    """Raised by :meth:`CachedEncoder.encode` when ``max_new_shards`` shards were written and more remain."""


@dataclass
class CacheStats:
    """What the last :meth:`CachedEncoder.encode` did."""

    num_items: int = 0
    num_shards: int = 0
    reused_shards: int = 0
    new_shards: int = 0
    repaired_shards: int = 0   # cached shards that failed verification and were re-encoded (counted in new_shards)
    encoded_items: int = 0
    encode_seconds: float = 0.0
    complete: bool = False
    shard_log: List[int] = field(default_factory=list)   # indices of the shards encoded in this run

    @property
    def items_per_second(self) -> Optional[float]:
        """Encoded items per second of encoder time; None when nothing was encoded (all cached)."""
        return round(self.encoded_items / self.encode_seconds, 1) if self.encode_seconds > 0 else None


def _default_key(item: Any) -> bytes:
    """Bytes identifying an item's content: a path object's path, size and mtime; anything else its repr."""
    if isinstance(item, os.PathLike):
        p = Path(item)
        st = p.stat()
        return f"file:{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()
    return repr(item).encode("utf-8", "surrogatepass")


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="item", file=sys.stderr, leave=False, disable=not enabled)


class CachedEncoder:
    """Wrap an encoder (or a bare ``fn(items) -> array`` plus ``dim``) with a resumable shard cache in ``cache_dir``.

    Args:
        encoder: an :class:`Encoder`, or a callable ``fn(items) -> (n, dim)`` (then ``dim`` and ``name`` are needed).
        cache_dir: directory of ``manifest.json`` and ``shard_NNNNN.npy``.
        shard_size: items per shard (the unit of resumption).
        dim: output size, for a bare callable.
        name: display name, for a bare callable.
        fingerprint: what identifies the encoder (defaults to ``encoder.fingerprint()`` or ``{"name": name}``).
        key_fn: item -> bytes used for the per-shard input hash (default: text / file path + size + mtime).
        progress: tqdm bar over items.

    Raises:
        DataError: from :meth:`encode` when ``manifest.json`` exists but cannot be parsed (the message says how to
            clear the cache).

    Example::

        cached = CachedEncoder(MiniLMTextEncoder(), "/tmp/cache", shard_size=256)
        vectors = cached.encode(titles)          # resumes if a previous run was interrupted
    """

    MANIFEST = "manifest.json"
    VERSION = 2   # 2: every shard entry carries the sha256 of its .npy file

    def __init__(self, encoder: Union[Encoder, Callable[[Sequence[Any]], np.ndarray]], cache_dir: str | Path, *,
                 shard_size: int = 256, dim: Optional[int] = None, name: Optional[str] = None,
                 fingerprint: Optional[Mapping[str, Any]] = None, key_fn: Callable[[Any], bytes] = _default_key,
                 progress: bool = True) -> None:
        if shard_size < 1:
            raise ConfigError(f"shard_size={shard_size}; expected an integer >= 1")
        if hasattr(encoder, "encode"):
            self.fn = encoder.encode
            self.dim = int(encoder.dim)
            self.name = str(getattr(encoder, "name", type(encoder).__name__))
            fp = fingerprint or (encoder.fingerprint() if hasattr(encoder, "fingerprint") else {"name": self.name})
        else:
            if dim is None or name is None:
                raise ConfigError("a bare encode function needs dim= and name=")
            self.fn, self.dim, self.name = encoder, int(dim), name
            fp = fingerprint or {"name": name}
        self.fp = {"fingerprint": dict(fp), "dim": self.dim, "shard_size": int(shard_size), "version": self.VERSION}
        self.cache_dir, self.shard_size, self.key_fn, self.progress = Path(cache_dir), int(shard_size), key_fn, progress
        self.stats = CacheStats()

    # -- manifest
    @property
    def manifest_path(self) -> Path:
        """``cache_dir/manifest.json``."""
        return self.cache_dir / self.MANIFEST

    def _load_manifest(self) -> Dict[str, Any]:
        """The manifest of this encoder; a fresh one when there is none or it belongs to another encoder."""
        path = self.manifest_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"encoder": self.fp, "shards": {}}
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read the encoder cache manifest ({exc}); {self._clear_hint()}",
                            path=str(path)) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"encoder cache manifest is not valid JSON ({exc}); {self._clear_hint()}",
                            path=str(path)) from None
        if not isinstance(data, dict) or not isinstance(data.get("shards"), dict) or "encoder" not in data:
            raise DataError(f"not an encoder cache manifest (expected an object with 'encoder' and 'shards'); "
                            f"{self._clear_hint()}", path=str(path))
        if data["encoder"] != self.fp:
            log.info("encoder cache %s: made by another encoder or cache version; starting afresh", self.cache_dir)
            return {"encoder": self.fp, "shards": {}}
        return data

    def _clear_hint(self) -> str:
        return f"delete the cache directory to re-encode from scratch: rm -r '{self.cache_dir}'"

    def _shard_hash(self, items: Sequence[Any]) -> str:
        h = hashlib.sha256()
        for item in items:
            key = self.key_fn(item)
            h.update(len(key).to_bytes(8, "little"))
            h.update(key)
        return h.hexdigest()

    # -- shards
    def _load_shard(self, index: int, entry: Mapping[str, Any], rows: int) -> Optional[np.ndarray]:
        """The cached vectors of shard ``index``, or None (with a warning) when the file fails verification."""
        path = self.cache_dir / str(entry.get("file", ""))
        problem = None
        if not path.is_file():
            problem = "file missing"
        elif sha256_file(path) != entry.get("sha256"):
            problem = "sha256 differs from the manifest (corrupted or truncated)"
        else:
            try:
                arr = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                problem = f"unreadable ({exc})"
            else:
                if arr.shape == (rows, self.dim) and arr.dtype == np.float32:
                    return arr
                problem = f"holds {arr.dtype} {arr.shape}, expected float32 ({rows}, {self.dim})"
        log.warning("encoder cache: shard %d (%s): %s; re-encoding it", index, path, problem)
        self.stats.repaired_shards += 1
        return None

    def _save_shard(self, index: int, arr: np.ndarray) -> Dict[str, str]:
        """Write ``shard_NNNNN.npy`` atomically; its file name and sha256 for the manifest."""
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        data = buf.getvalue()
        name = f"shard_{index:05d}.npy"
        atomic_write(self.cache_dir / name, lambda tmp: tmp.write_bytes(data))
        return {"file": name, "sha256": hashlib.sha256(data).hexdigest()}

    # -- the run
    def encode(self, items: Sequence[Any], *, max_new_shards: Optional[int] = None) -> np.ndarray:
        """(len(items), dim) float32; encodes only the shards not already cached (and intact) for these inputs.

        ``max_new_shards`` stops (raising :class:`EncodingStopped`) after that many newly encoded shards when
        more remain: the time-boxed or interrupted run. Ctrl-C behaves the same way: finished shards are kept.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._load_manifest()
        n = len(items)
        num_shards = math.ceil(n / self.shard_size)
        out = np.zeros((n, self.dim), dtype=np.float32)
        self.stats = CacheStats(num_items=n, num_shards=num_shards)
        bar = _progress(n, f"encode[{self.name}]", self.progress)
        try:
            for s in range(num_shards):
                a, b = s * self.shard_size, min(n, (s + 1) * self.shard_size)
                part = items[a:b]
                digest = self._shard_hash(part)
                entry = manifest["shards"].get(str(s))
                cached = None
                if isinstance(entry, dict) and entry.get("input_sha256") == digest:
                    cached = self._load_shard(s, entry, b - a)
                if cached is not None:
                    out[a:b] = cached
                    self.stats.reused_shards += 1
                    bar.update(b - a)
                    continue
                if max_new_shards is not None and self.stats.new_shards >= max_new_shards:
                    raise EncodingStopped(f"stopped after {self.stats.new_shards} new shard(s); "
                                          f"{num_shards - s} of {num_shards} shard(s) left")
                started = time.perf_counter()
                vecs = np.asarray(self.fn(part), dtype=np.float32)
                self.stats.encode_seconds += time.perf_counter() - started
                if vecs.shape != (b - a, self.dim):
                    raise DataError(f"encoder '{self.name}' returned shape {vecs.shape} for {b - a} items; "
                                    f"expected ({b - a}, {self.dim})")
                manifest["shards"][str(s)] = dict(self._save_shard(s, vecs), rows=[a, b], input_sha256=digest)
                atomic_write_json(self.manifest_path, manifest)
                out[a:b] = vecs
                self.stats.new_shards += 1
                self.stats.encoded_items += b - a
                self.stats.shard_log.append(s)
                bar.update(b - a)
        finally:
            bar.close()
        self.stats.complete = True
        return out
