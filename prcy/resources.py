"""What a run needs from the machine, checked before any compute: its memory, estimated from its
spec (``prcy.simulate.memory_parts``, ``prcy.dmft.memory_parts``), against what this machine can
give a process."""
from __future__ import annotations

import os
import resource


def machine_memory() -> int:
    """Bytes a process may use here: the physical memory, or the address-space limit (``ulimit -v``)
    when that is lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    return physical if limit == resource.RLIM_INFINITY else min(physical, limit)


def format_bytes(n: float) -> str:
    """``3.2 GiB``, ``512 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def check_memory(parts: dict[str, float], options: str) -> None:
    """Refuse a run whose estimated memory (``parts``: what -> bytes) exceeds ``machine_memory()``,
    with a ``ValueError`` naming the estimate, its largest part, the machine's memory and the
    ``options`` that size the run."""
    total, available = sum(parts.values()), machine_memory()
    if total > available:
        largest = max(parts, key=parts.get)
        raise ValueError(f"memory: this run needs about {format_bytes(total)} ({largest}: "
                         f"{format_bytes(parts[largest])}), more than the {format_bytes(available)} this machine "
                         f"gives a process; allowed: smaller {options}")
