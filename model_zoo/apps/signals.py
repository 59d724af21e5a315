"""Signals for the applications: SIGTERM raised as an exception in the main thread (so a run or a sweep unwinds like
a Ctrl-C and records its state), and a block during which Ctrl-C / SIGTERM wait (for writes that belong together)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["Terminated", "sigterm_raises", "signals_deferred", "in_main_thread"]


class Terminated(BaseException):
    """SIGTERM, raised in the main thread (see :func:`sigterm_raises`)."""


def in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere: no change)."""
    if not in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for the duration (delivered right after), where POSIX signal masks exist."""
    if not hasattr(signal, "pthread_sigmask") or not in_main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
