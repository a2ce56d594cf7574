"""Worker process pools whose workers die with their parent (issue 11, item 3).

``ProcessPoolExecutor`` workers block reading their call queue; each holds the queue's write end too, so
when the parent is SIGKILLed the read never sees end-of-file and the workers (and through them the
forkserver's and resource tracker's pipes) live on: 11 killed audits left 40 processes holding 2.4 GB.

Here each worker watches the process that created the pool and exits at once when it is gone:

- a daemon thread blocks on a Linux ``pidfd`` of that process (readable when it exits), or, where there is
  no ``pidfd_open``, polls it every :data:`POLL_SECONDS`;
- ``PR_SET_PDEATHSIG`` (Linux) has the kernel kill the worker when its direct parent, the forkserver,
  exits.

The forkserver itself exits when the pool's creator closes (or loses) its end of the forkserver's "alive"
pipe, and the resource tracker when every holder of its pipe is gone, so nothing is left behind.
Workers start from ``forkserver`` (a clean process without torch's threads; ``fork`` after torch is
loaded can deadlock).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

#: How often a worker without ``pidfd_open`` checks that its creator is alive.
POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A ``forkserver`` process pool of ``workers`` processes that exit when this process dies."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver"),
                               initializer=watch_parent, initargs=(os.getpid(),))


def watch_parent(parent_pid: int) -> None:
    """Worker initializer: exit this process as soon as ``parent_pid`` is gone.

    Never raises (a failing initializer would break the pool); at worst the worker is only as safe as a
    plain pool worker.
    """
    _set_parent_death_signal()
    try:
        pidfd = os.pidfd_open(parent_pid)  # Linux >= 5.3, Python >= 3.9
    except ProcessLookupError:
        os._exit(1)  # already gone
    except (AttributeError, OSError):
        pidfd = None
    thread = threading.Thread(target=_wait_then_exit, args=(parent_pid, pidfd), name="watch-parent",
                              daemon=True)
    thread.start()


def _wait_then_exit(parent_pid: int, pidfd: int | None) -> None:
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            while not poller.poll(None):  # readable = the process has exited
                pass
        except OSError:
            _poll_until_gone(parent_pid)
    else:
        _poll_until_gone(parent_pid)
    # os._exit, not sys.exit: skip atexit handlers and joins that would wait on the dead parent's queues.
    os._exit(1)


def _poll_until_gone(parent_pid: int) -> None:
    while True:
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(POLL_SECONDS)


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
