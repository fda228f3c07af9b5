"""Fault injection for the crash tests: die at a named point, as `kill -9` would (issue 13).

`XUESHI_CRASH_AT=<point>` (or `<point>#<n>`, the n-th time the point is reached) makes the
process leave with `os._exit` there: no cleanup, no rollback but the database's own, no flush.
Unset, a point costs one dictionary lookup. Points: `pull` (a pulled batch not yet stored),
`store:<step>` (inside a store transaction, e.g. `store:raw_record` between a batch and its
watermark, `store:completion` inside the ledger replace), `files` (between two provincial files
being put in place), `manifest` (files in place, manifest not yet).
"""

from __future__ import annotations

import os
from collections import Counter

CRASH_AT = "XUESHI_CRASH_AT"
EXIT_CODE = 137
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """Exit at once if `XUESHI_CRASH_AT` names this point (and this is its n-th time)."""
    wanted = os.environ.get(CRASH_AT)
    if not wanted:
        return
    point, _, nth = wanted.partition("#")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] >= int(nth or 1):
        os._exit(EXIT_CODE)


def store_progress(step: str, _rows: int) -> None:
    """A `Store` progress hook: the crash point `store:<step>`."""
    crash_point(f"store:{step}")
