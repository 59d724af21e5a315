"""File helpers shared by the whole zoo: hashing, atomic writes, atomic directory publishing, locked appends.

Every file the zoo writes goes through here: a temp file in the target's directory, then a rename, so a reader never
sees a half-written file and an interrupted writer leaves nothing behind (or, for directories, the previous version).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

__all__ = ["sha256_file", "atomic_write", "atomic_write_text", "atomic_write_figure", "atomic_write_json", "temp_dir_for", "publish_dir",
           "remove_stale_temp", "append_line_locked", "file_lock", "directory_lock"]

TEMP_MARK = ".tmp-"  # temp files and dirs are named "<name>.tmp-<pid>-<random>" next to their target


def sha256_file(path: str | Path, block_size: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, then rename the temp file over ``path`` (mode 0644); on error nothing is left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}{os.getpid()}-", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_figure(path: str | Path, figure: Any, dpi: int = 110) -> Path:
    """Save a matplotlib ``figure`` as PNG atomically, then close it (whatever happens)."""
    import matplotlib.pyplot as plt
    try:
        return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(figure)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, payload: Mapping[str, Any] | list) -> Path:
    """Write ``payload`` as indented, key-sorted JSON atomically (numpy scalars and paths become plain values)."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "item"):
            return obj.item()
        if isinstance(obj, (Path, set, tuple)):
            return str(obj) if isinstance(obj, Path) else list(obj)
        raise TypeError(f"not JSON serializable: {type(obj).__name__}")
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=default) + "\n")


def temp_dir_for(final: str | Path) -> Path:
    """A fresh, empty temp directory next to ``final`` (same filesystem, so :func:`publish_dir` can rename it)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}{TEMP_MARK}{os.getpid()}-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the published directory gets the usual permissions
    return tmp


def publish_dir(tmp: str | Path, final: str | Path) -> Path:
    """Move the completed directory ``tmp`` to ``final``; an existing ``final`` is replaced only at the end.

    The old directory is renamed aside first and deleted after the new one is in place, so an interruption at
    any point leaves either the old or the new directory at ``final`` (plus, at worst, a ``*.tmp-*`` sibling that
    :func:`remove_stale_temp` deletes later), never neither.
    """
    tmp, final = Path(tmp), Path(final)
    aside = None
    if final.exists():
        aside = final.with_name(f"{final.name}{TEMP_MARK}{os.getpid()}-old")
        os.rename(final, aside)
    try:
        os.rename(tmp, final)
    except BaseException:
        if aside is not None:
            os.rename(aside, final)  # put the old one back
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp(final: str | Path, *, min_age_seconds: float = 0.0) -> list:
    """Delete temp files/dirs of ``final`` (``<name>.tmp-<pid>-*`` or ``.<name>.tmp-<pid>-*``) left by dead processes.

    A temp whose writer process is still alive is kept (a parallel run may be writing it). Returns what was removed.
    """
    final = Path(final)
    removed = []
    if not final.parent.is_dir():
        return removed
    for prefix in (f"{final.name}{TEMP_MARK}", f".{final.name}{TEMP_MARK}"):
        for cand in final.parent.glob(prefix + "*"):
            pid_part = cand.name[len(prefix):].split("-", 1)[0]
            if pid_part.isdigit() and _pid_alive(int(pid_part)) and int(pid_part) != os.getpid():
                continue
            if min_age_seconds and time.time() - cand.lstat().st_mtime < min_age_seconds:
                continue
            if cand.is_dir() and not cand.is_symlink():
                shutil.rmtree(cand, ignore_errors=True)
            else:
                cand.unlink(missing_ok=True)
            removed.append(cand)
    return removed


class file_lock:
    """Exclusive advisory lock on ``<path>.lock`` for the duration of a ``with`` block (POSIX ``flock``)."""

    def __init__(self, path: str | Path) -> None:
        self.lock_path = Path(str(path) + ".lock")
        self._fh = None

    def __enter__(self) -> "file_lock":
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.lock_path, "a")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: Any) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()


class directory_lock:
    """Exclusive advisory lock on a directory itself (POSIX ``flock`` on its descriptor) for a ``with`` block.

    Unlike :class:`file_lock` it leaves no lock file next to what it guards.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None

    def __enter__(self) -> "directory_lock":
        self._fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        os.close(self._fd)  # closing the descriptor releases the lock


def append_line_locked(path: str | Path, line: str, *, header: str | None = None) -> Path:
    """Append one line (no newline inside) to ``path`` under an exclusive lock, flushed and fsynced.

    ``header`` is written first when the file is new or empty. The write is a single ``write`` of the whole line on
    an ``O_APPEND`` descriptor: the file is never rewritten, so earlier lines cannot be damaged by this call.
    """
    if "\n" in line or "\r" in line:
        raise ValueError("append_line_locked: the line must not contain a newline")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            payload = line + "\n"
            size = os.fstat(fd).st_size
            if header is not None and size == 0:
                payload = header + "\n" + payload
            elif size > 0:
                with open(path, "rb") as fh:  # a previous writer killed mid-line: start on a fresh line
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        payload = "\n" + payload
            os.write(fd, payload.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of each line, decoding bytes that are not UTF-8 as U+FFFD instead of failing."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            yield number, raw.decode("utf-8", errors="replace").rstrip("\r\n")
