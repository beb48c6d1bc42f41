"""Worker processes that end when their parent dies.

A worker of a process pool (the report's figure worker, a sensitivity pool) calls
:func:`watch_parent` from its initializer: on Linux the kernel sends it SIGKILL when the
parent dies (``prctl(PR_SET_PDEATHSIG)``), and on every platform a daemon thread checks
once a second that the parent is still the same process and ends the worker otherwise
(a parent killed with SIGKILL cannot shut its pool down). When the parent and its
workers are gone, multiprocessing's resource tracker sees its pipe close and exits too.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["watch_parent"]

_PR_SET_PDEATHSIG = 1
#: Seconds between two checks of the parent process.
POLL_SECONDS = 1.0


def _set_pdeathsig() -> None:
    """Ask the Linux kernel to SIGKILL this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread remains
        pass


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: no clean-up is owed to anyone


def watch_parent(parent: int | None = None) -> None:
    """End this process when ``parent`` (default: the current parent) dies."""
    pid = os.getppid() if parent is None else parent
    _set_pdeathsig()
    if os.getppid() != pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(pid,), name="hccmeta-parent-watch", daemon=True).start()
