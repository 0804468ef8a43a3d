"""Kernels that Ctrl-C can stop: a long ``nogil`` kernel call runs in a worker thread while the calling
(main) thread waits in short joins, so a ``KeyboardInterrupt`` reaches it at once; the kernel is then
told to stop through its ``abort`` flag (``abort[0] = 1``, read by the kernels between steps), joined,
and the interrupt goes on up."""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

POLL_SECONDS = 0.2


def run_interruptible(abort: np.ndarray, fn: Callable, /, *args, poll: Callable[[], None] | None = None,
                      **kwargs):
    """``fn(*args, **kwargs)`` in a worker thread, returning its result or raising its exception (``abort``
    and ``fn`` are positional-only, so ``fn`` may take an ``abort`` keyword, as the kernels do);
    ``poll()`` (e.g. a progress bar's update) is called every ``POLL_SECONDS`` while it runs. Any
    exception in the calling thread (Ctrl-C, an error in ``poll``) sets ``abort[0] = 1`` and waits for
    the kernel to return before it propagates."""
    result: dict = {}

    def work():
        try:
            result["out"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the calling thread
            result["error"] = exc

    thread = threading.Thread(target=work, name="prcy-kernels", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(timeout=POLL_SECONDS)
            if poll is not None:
                poll()
    except BaseException:
        abort[0] = 1
        thread.join()
        raise
    if "error" in result:
        raise result["error"]
    return result["out"]
