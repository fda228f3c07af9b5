"""Handing freed memory back to the system between units of work (a shard, a pull year, a
year of files).

A process that runs step after step (the in-process executor, a celery worker) would otherwise
hold the high-water mark of two allocators at once: pyarrow's pool (mimalloc, behind every
pandas `str` column) and glibc's malloc (NumPy, Python objects) each keep what a shard freed
for their own next allocations, and neither can use what the other keeps. Measured on 1M
records, four ledger shards in one process kept 420 MB above the start between shards; with
the pool released and the heap trimmed, 100 MB (docs/decisions.md, Person shards).

Cyclic garbage is collected first. Each Great Expectations validation leaves reference cycles
that hold its frame; CPython's oldest generation is collected only after many allocations, so
at 10M records a process running 40 shards kept about 70 MB more after every shard.

A full collection walks every object the collector tracks, and about 400,000 of them are the
imported libraries (Dagster, pandas, Great Expectations), alive for the whole process: 0.25 s
a collection, 17 s of a 300,000-record run. Once those are loaded they are frozen
(`exempt_long_lived`), so that a collection walks only what was made since: 0.4 s in all.
"""

import ctypes
import gc

import pyarrow as pa

_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)
"""glibc's, from the symbols the process already has (`find_library` would run `ldconfig` at
every import); other C libraries (musl, macOS) return freed pages without being asked."""


def exempt_long_lived() -> None:
    """Leave out of every later collection what is alive now: call it once the libraries are
    imported. What is frozen is still freed by its reference count; only cycles among frozen
    objects would stay, and the modules' objects live as long as the process anyway."""
    gc.freeze()


def release_memory() -> None:
    """Free what only reference cycles keep, then return the pages pyarrow's pool and the C
    heap hold free to the system."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
