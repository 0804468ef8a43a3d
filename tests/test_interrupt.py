"""prcy.interrupt.run_interruptible: the result or the worker's exception comes back to the caller; an
exception in the caller (Ctrl-C, a failing progress callback) stops the worker through its abort flag
before it propagates."""
import time

import numpy as np
import pytest

from prcy.interrupt import run_interruptible


def _until_aborted(abort, stopped):
    while not abort[0]:
        time.sleep(0.01)
    stopped.append(True)
    return "stopped"


def test_result_and_worker_exception_come_back():
    abort = np.zeros(1, dtype=np.int32)
    assert run_interruptible(abort, lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ValueError, match="in the worker"):
        run_interruptible(abort, lambda: (_ for _ in ()).throw(ValueError("in the worker")))
    assert abort[0] == 0


def test_an_interrupt_in_the_caller_stops_the_worker_first():
    abort = np.zeros(1, dtype=np.int32)
    stopped, polls = [], []

    def poll():
        polls.append(1)
        if len(polls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_interruptible(abort, _until_aborted, abort, stopped, poll=poll)
    assert abort[0] == 1 and stopped == [True]      # the worker saw the flag and returned before the raise
