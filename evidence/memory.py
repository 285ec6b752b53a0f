"""Process memory settings for the commands that hold a window's samples (collect, evaluate, render, show, watch).

Measured on the goal's scale (168 h at 3 M samples a day, 21 M samples), peak RSS as a process:

- ``evidence collect`` (four fetch threads): 491 MB with the defaults, 407 MB with pyarrow's
  system pool and two malloc arenas, 354 MB with every array over 256 KiB mapped on its own too;
- ``evidence evaluate``: 339 MB, 318 MB (7.4 s against 7.0), and 281 MB, but 10.2 s.

What was live at collect's peak was far less (tracemalloc: 165 MB); the rest was memory freed
but kept by the allocators.  pyarrow's default pool (mimalloc) keeps the pages of the row groups
written; the system pool gives big buffers back.  glibc gives each thread a heap of its own and
raises its mmap threshold after each big free (up to 32 MB), so later arrays of that size come
from heaps that fragment: two arenas bound the heaps, and a fixed threshold (``mmap_arrays``)
puts every array over 256 KiB in its own mapping, returned on free, at the cost of fresh page
faults on every such array: the fetch waits on Prometheus anyway, so collect and the watcher pay
it; the commands that only read a bundle do not.

A setting made in the environment (``ARROW_DEFAULT_MEMORY_POOL``, ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_ARENA_MAX``, or ``glibc.malloc.*`` in ``GLIBC_TUNABLES``) wins.  The library never
calls this: a program that imports ``evidence`` keeps its own allocators.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: glibc's mallopt parameters (malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 << 10
ARENAS = 2


def tune_memory(mmap_arrays: bool = False) -> dict[str, Any]:
    """Make freed memory go back to the system (call before the data is read and the threads start).

    ``mmap_arrays``: every allocation over ``MMAP_THRESHOLD`` in its own mapping (collect, watch).
    Returns what was set: ``arrow_pool``, and on glibc ``arena_max`` and ``mmap_threshold``
    (a setting the environment made, in its variable or in ``GLIBC_TUNABLES``, is left alone).
    """
    applied: dict[str, Any] = {}
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        if "pyarrow" in sys.modules:
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())
        else:
            os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # read when pyarrow is first imported
        applied["arrow_pool"] = "system"
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # glibc only: musl and macOS have no such mallopt
    except (ValueError, OSError, AttributeError):
        return applied
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return applied
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    wanted = [("arena_max", M_ARENA_MAX, ARENAS, "MALLOC_ARENA_MAX")]
    if mmap_arrays:
        wanted.append(("mmap_threshold", M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"))
    for name, param, value, variable in wanted:
        if variable in os.environ or f"glibc.malloc.{name}" in tunables:
            continue
        if mallopt(param, value) == 1:  # mallopt answers 1 when it took the setting
            applied[name] = value
    return applied
