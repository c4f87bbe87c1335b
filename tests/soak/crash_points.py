"""What the planted crash points of the worker and the matcher share: a process that kills itself (SIGKILL, no
clean-up of any kind) the nth time a planted point is passed."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable


def die_on(nth: int) -> Callable[[], None]:
    passes = itertools.count(1)

    def passed() -> None:
        if next(passes) == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    return passed
